"""keras-gon: Gradient Origin Networks (Bond-Taylor & Willcocks, ICLR 2021) in Keras 3."""

from keras_gon import layers, losses
from keras_gon.errors import InputError
from keras_gon.models import GON, GradientOriginModel

__version__ = "0.1.0"

__all__ = ["GON", "GradientOriginModel", "InputError", "layers", "losses", "__version__"]
