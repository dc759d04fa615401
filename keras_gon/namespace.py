"""The `keras_gon` namespace: its names, imported on first use (PEP 562).

`import keras_gon` imports no TensorFlow; `keras_gon.GON` imports the models then.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "keras_gon.models": (
        "ConvAutoencoder",
        "GLO",
        "GON",
        "GONClassifier",
        "GradientOriginModel",
        "ImplicitGON",
        "LatentModel",
        "TiedAutoencoder",
        "VAE",
        "VariationalGON",
    ),
    "keras_gon.errors": ("InputError",),
    "keras_gon.interpolation": ("slerp",),
    "keras_gon.presets": ("list_presets",),
}
_SUBMODULES = (
    "callbacks",
    "data",
    "distribute",
    "experiments",
    "export",
    "layers",
    "losses",
    "options",
    "preset_builder",
    "presets",
    "registry",
    "training",
)


def __getattr__(name):
    for module, names in _EXPORTS.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_gon.{name}")
    raise AttributeError(f"module 'keras_gon' has no attribute {name!r}")


def register_with_keras() -> None:
    """Registers keras-gon's classes with Keras (imports Keras and the models), so that
    `keras.saving.load_model` loads keras-gon models."""
    importlib.import_module("keras_gon.models")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [name for names in _EXPORTS.values() for name in names] + [
    "__version__",
    "layers",  # noqa: F822 (lazy: __getattr__)
    "losses",  # noqa: F822 (lazy: __getattr__)
    "register_with_keras",
]
