"""Pretrained GONs in one line: presets (keras-hub's convention).

A preset is a directory with `config.json` (the model, serialised by Keras),
`model.weights.h5` and `metadata.json` (the data it was trained on, its
budget, its held-out figure, parameter count and library version). The
built-in presets ship inside the package, so they work offline:

```python
model = keras_gon.GON.from_preset("gon_mnist")
z = model.encode(digits)                     # uint8 (N, 28, 28) digits are fine
keras_gon.list_presets()                     # names, kinds, held-out figures
model.save_to_preset("my_preset")            # a directory others can load
keras_gon.LatentModel.from_preset("my_preset")
```

`from_preset` also takes a local preset directory or a `.keras` file.
`keras-gon presets build` trains the built-in presets again
(`keras_gon.preset_builder`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from keras_gon.errors import InputError

if TYPE_CHECKING:  # Keras is imported on first use, not with the module
    import keras

PRESET_DIR = Path(__file__).resolve().parent / "preset_files"
CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE = "config.json", "model.weights.h5", "metadata.json"
EVALUATION_BATCH = 500
"""Held-out figures are computed in batches of 500 without XLA: the same draws every time."""


def _resolve(source) -> tuple[str, Path]:
    """(kind of source, path): "preset" (a folder), "keras" (a .keras file)."""
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if (PRESET_DIR / text / CONFIG_FILE).is_file():
            return "preset", PRESET_DIR / text
        path = Path(text).expanduser()
        if path.is_dir():
            if not (path / CONFIG_FILE).is_file():
                raise InputError(f"{path} is not a preset folder: it has no {CONFIG_FILE}")
            return "preset", path
        if path.suffix == ".keras":
            if not path.is_file():
                raise InputError(f"no such file: {path}")
            return "keras", path
    names = ", ".join(sorted(available_presets())) or "(none built)"
    raise InputError(
        f"unknown preset {source!r}: the presets are {names}, or give a preset "
        "folder or a .keras file"
    )


def available_presets() -> list[str]:
    """The names of the built-in presets present in this installation."""
    if not PRESET_DIR.is_dir():
        return []
    return sorted(p.name for p in PRESET_DIR.iterdir() if (p / CONFIG_FILE).is_file())


def list_presets() -> list[dict]:
    """Every built-in preset: name, kind, description and its recorded held-out figure."""
    rows = []
    for name in available_presets():
        metadata = json.loads((PRESET_DIR / name / METADATA_FILE).read_text())
        rows.append(
            {
                key: metadata.get(key)
                for key in (
                    "name",
                    "kind",
                    "description",
                    "held_out_metric",
                    "held_out_value",
                    "held_out_meaning",
                    "parameters",
                    "data",
                    "epochs",
                    "steps",
                    "baseline_kind",
                    "baseline_value",
                )
            }
        )
    return rows


def load_keras_file(path) -> keras.Model:
    """`keras.saving.load_model(path)`, or an `InputError` naming what is wrong with the file."""
    import zipfile

    import keras  # (importing Keras registers keras_gon's classes: keras_gon/__init__.py)

    if not zipfile.is_zipfile(path):
        raise InputError(
            f"cannot load {path}: it is not a Keras model archive (a .keras file is "
            "a zip archive; this one is truncated or corrupt)"
        )
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # a foreign or damaged archive: name it, not a traceback
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"cannot load {path} (not a readable Keras model): {first}") from None


def load_preset(source):
    """The model of a preset name, a preset folder or a `.keras` file (uncompiled for presets)."""
    import keras

    what, path = _resolve(source)
    if what == "keras":
        return load_keras_file(path)
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
        config.pop("compile_config", None)  # a preset is the model, uncompiled
        model = keras.saving.deserialize_keras_object(config)
        model.load_weights(path / WEIGHTS_FILE)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"cannot load the preset in {path}: {str(error).splitlines()[0]}"
        ) from None
    return model


def preset_metadata(source) -> dict:
    """The metadata of a preset (an empty dict for a `.keras` file)."""
    what, path = _resolve(source)
    if what == "keras" or not (path / METADATA_FILE).is_file():
        return {}
    return json.loads((path / METADATA_FILE).read_text())


def save_to_preset(model, directory, metadata: dict | None = None) -> Path:
    """Writes `model` as a preset folder (config, weights, metadata), whole or not at all.

    The preset is the model alone: no compile configuration and no optimiser state
    (a fine-tuning run compiles it anew).
    """
    import keras

    import keras_gon

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise InputError(
            f"{directory} exists and is not empty: a preset is written to a new folder"
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".partial-{directory.name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        config = keras.saving.serialize_keras_object(model)
        config.pop("compile_config", None)  # the model without its optimiser's state
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=list) + "\n")
        weights_only = keras.saving.deserialize_keras_object(config)
        weights_only.set_weights(model.get_weights())
        weights_only.save_weights(staging / WEIGHTS_FILE)
        info = {
            "class_name": type(model).__name__,
            "parameters": int(sum(int(v.numpy().size) for v in model.trainable_variables)),
            "keras_gon_version": keras_gon.__version__,
            "keras_version": keras.__version__,
            **(metadata or {}),
        }
        (staging / METADATA_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        if directory.exists():
            directory.rmdir()  # empty, checked above
        os.rename(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def held_out_figure(model, test_data) -> tuple[str, float]:
    """The preset's held-out figure: accuracy, bits/dim or the reconstruction loss.

    Evaluated without XLA in batches of `EVALUATION_BATCH` (the variational
    models draw one z ~ q per image from their saved seed state: the same
    draws every time the saved model is evaluated).
    """
    from keras_gon.registry import kind_of

    model.compile(optimizer="adam", jit_compile=False)
    results = model.evaluate(test_data, verbose=0, return_dict=True)
    kind = kind_of(model).name
    metric = {"classifier": "accuracy", "vgon": "bits_per_dim", "vae": "bits_per_dim"}.get(
        kind, "loss"
    )
    return metric, float(results[metric])
