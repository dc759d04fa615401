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

__all__ = [
    "ConvAutoencoder", "GLO", "GONClassifier", "TiedAutoencoder",
    "GON", "GradientOriginModel", "ImplicitGON", "LatentModel", "VAE", "VariationalGON"]
