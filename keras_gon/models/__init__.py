"""GON models: one model per module."""

from keras_gon.models.autoencoder import ConvAutoencoder
from keras_gon.models.glo import GLO
from keras_gon.models.gon import GON
from keras_gon.models.gon_classifier import GONClassifier
from keras_gon.models.gradient_origin import GradientOriginModel
from keras_gon.models.implicit_gon import ImplicitGON
from keras_gon.models.latent_model import LatentModel
from keras_gon.models.tied_autoencoder import TiedAutoencoder
from keras_gon.models.vae import VAE
from keras_gon.models.variational_gon import VariationalGON
from keras_gon.registry import ModelKind, get_kind

_CLASSES = {
    cls.__name__: cls
    for cls in (
        ConvAutoencoder,
        GLO,
        GON,
        GONClassifier,
        ImplicitGON,
        TiedAutoencoder,
        VAE,
        VariationalGON,
    )
}


def model_class(kind: str | ModelKind) -> type:
    """The `keras.Model` subclass of a registered kind (`keras_gon.registry.MODEL_KINDS`)."""
    kind = get_kind(kind) if isinstance(kind, str) else kind
    return _CLASSES[kind.class_name]


def build_model(kind: str | ModelKind, **options) -> LatentModel:
    """A new model of a registered kind; options it does not take are refused by name."""
    kind = get_kind(kind) if isinstance(kind, str) else kind
    kind.check_options(options)
    return model_class(kind)(**options)


__all__ = [
    "ConvAutoencoder",
    "GLO",
    "GONClassifier",
    "TiedAutoencoder",
    "GON",
    "GradientOriginModel",
    "ImplicitGON",
    "LatentModel",
    "VAE",
    "VariationalGON",
    "build_model",
    "model_class",
]
