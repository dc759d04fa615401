"""The `keras_gon` namespace: its names, imported on first use (PEP 562).

`import keras_gon` imports no TensorFlow; `keras_gon.GON` imports the models then.
"""

from __future__ import annotations

import importlib
import sys
import threading
import warnings

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


class _RegisterWithKeras:
    """A `sys.meta_path` finder, installed by `import keras_gon` before Keras is imported:
    once `keras` has been imported and no keras-gon module is half-imported (registering
    imports the models, which would re-enter it), it registers keras-gon's classes and
    removes itself. It finds nothing itself: it wraps the loaders the other finders give
    for `keras` and `keras_gon.*` so that their execution ends with that check."""

    def __init__(self):
        self.keras_imported = False
        self.resolving = threading.local()  # names being found (the other finders may recurse)

    def find_spec(self, name, path=None, target=None):
        resolving = self.resolving.__dict__.setdefault("names", set())
        if (name != "keras" and not name.startswith("keras_gon.")) or name in resolving:
            return None
        resolving.add(name)
        try:
            spec = None
            for finder in list(sys.meta_path):
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        break
        finally:
            resolving.discard(name)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_register(module):
            try:
                exec_module(module)
            finally:
                vars(loader).pop("exec_module", None)  # (the loader's own method again)
            if name == "keras":
                self.keras_imported = True
            self.register_if_ready(module)

        loader.exec_module = exec_then_register  # (a find_spec's loader is its own object)
        return spec

    def register_if_ready(self, finished) -> None:
        """Registers (once) when Keras is imported and no keras-gon module but `finished`
        is being imported; a failure is a warning, not a failed `import keras`."""
        if not self.keras_imported or _importing_keras_gon(but=finished):
            return
        try:
            sys.meta_path.remove(self)
        except ValueError:  # (registered already, e.g. by another thread)
            return
        try:
            register_with_keras()
        except Exception as error:
            warnings.warn(
                f"keras-gon could not register its models with Keras ({error}); "
                "keras_gon.register_with_keras() tries again",
                RuntimeWarning,
                stacklevel=2,
            )


def _importing_keras_gon(but=None) -> bool:
    """Whether a keras-gon submodule other than `but` is being imported now."""
    return any(
        getattr(getattr(module, "__spec__", None), "_initializing", False)
        for name, module in list(sys.modules.items())
        if name.startswith("keras_gon.") and module is not but
    )


def register_when_keras_is_imported() -> None:
    """`register_with_keras` now if Keras is imported, else as soon as it is (without
    importing it: `import keras_gon` stays free of TensorFlow)."""
    if "keras" in sys.modules:
        register_with_keras()
    elif not any(isinstance(f, _RegisterWithKeras) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWithKeras())


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [name for names in _EXPORTS.values() for name in names] + [
    "__version__",
    "layers",  # noqa: F822 (lazy: __getattr__)
    "losses",  # noqa: F822 (lazy: __getattr__)
    "register_with_keras",
]
