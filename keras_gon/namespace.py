"""The `keras_gon` namespace: its names, imported on first use (PEP 562).

`import keras_gon` imports no TensorFlow; `keras_gon.GON` imports the models then.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

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


class _RegisterAfterKerasImport:
    """A `sys.meta_path` finder that registers keras-gon's classes right after `keras` is
    imported (for `import keras_gon` before `import keras`), then removes itself."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # one use; the other finders find Keras itself
        spec = importlib.util.find_spec("keras")
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            if not _importing_keras_gon():  # (a keras-gon module imports Keras: it
                register_with_keras()  # registers its own classes; the models would re-enter)

        spec.loader.exec_module = exec_and_register  # (this spec's own loader object)
        return spec


def _importing_keras_gon() -> bool:
    """Whether a keras-gon submodule is being imported now (half-initialised)."""
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith("keras_gon.")
    )


def register_when_keras_is_imported() -> None:
    """`register_with_keras` now if Keras is imported, else as soon as it is (without
    importing it: `import keras_gon` stays free of TensorFlow)."""
    if "keras" in sys.modules:
        register_with_keras()
    elif not any(isinstance(f, _RegisterAfterKerasImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterKerasImport())


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [name for names in _EXPORTS.values() for name in names] + [
    "__version__",
    "layers",  # noqa: F822 (lazy: __getattr__)
    "losses",  # noqa: F822 (lazy: __getattr__)
    "register_with_keras",
]
