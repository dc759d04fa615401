"""keras-gon: Gradient Origin Networks (Bond-Taylor & Willcocks, ICLR 2021) in Keras 3."""

from keras_gon import layers, losses
from keras_gon.errors import InputError
from keras_gon.models import GON, GradientOriginModel
from keras_gon.models import GLO, ConvAutoencoder, GONClassifier, TiedAutoencoder
from keras_gon.models import VAE, VariationalGON
from keras_gon.models import ImplicitGON
from keras_gon.interpolation import slerp

__version__ = "0.1.0"

__all__ = [
    "ConvAutoencoder", "GLO", "GONClassifier", "TiedAutoencoder",
    "GON", "GradientOriginModel", "ImplicitGON", "InputError", "VAE", "VariationalGON", "layers", "losses", "slerp",
    "__version__",
]
