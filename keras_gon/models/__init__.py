"""GON models: one model per module."""

from keras_gon.models.gon import GON
from keras_gon.models.gradient_origin import GradientOriginModel

__all__ = ["GON", "GradientOriginModel"]
