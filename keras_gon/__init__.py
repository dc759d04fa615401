"""keras-gon: Gradient Origin Networks (Bond-Taylor & Willcocks, ICLR 2021) in Keras 3.

The models, layers and losses are imported on first use, so that
`import keras_gon` (and `keras-gon --help`) does not import TensorFlow. Their
Keras registrations (which `keras.saving.load_model` needs) are made as soon as
Keras is imported, before or after `import keras_gon`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

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


def _register_serializables() -> None:
    """Imports the modules whose classes are `register_keras_serializable`."""
    importlib.import_module("keras_gon.models")


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Runs `_register_serializables` right after `import keras` completes."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # once; the normal finders locate Keras
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            sys.modules["keras"] = module
            _register_serializables()

        spec.loader.exec_module = exec_then_register
        return spec


if "keras" in sys.modules:
    _register_serializables()
elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterKeras())


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [name for names in _EXPORTS.values() for name in names] + [
    "__version__", "layers", "losses"]
