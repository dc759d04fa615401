"""keras-gon: Gradient Origin Networks (Bond-Taylor & Willcocks, ICLR 2021) in Keras 3.

The models, layers and losses are imported on first use, so that
`import keras_gon` (and `keras-gon --help`) does not import TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "keras_gon.models": ("ConvAutoencoder", "GLO", "GON", "GONClassifier", "GradientOriginModel",
                         "ImplicitGON", "LatentModel", "TiedAutoencoder", "VAE",
                         "VariationalGON"),
    "keras_gon.errors": ("InputError",),
    "keras_gon.interpolation": ("slerp",),
    "keras_gon.presets": ("list_presets",),
}
_SUBMODULES = ("callbacks", "data", "distribute", "experiments", "export", "layers", "losses",
               "presets", "registry")


def __getattr__(name):
    for module, names in _EXPORTS.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_gon.{name}")
    raise AttributeError(f"module 'keras_gon' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [name for names in _EXPORTS.values() for name in names] + [
    "__version__", "layers", "losses"]
