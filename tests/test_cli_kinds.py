"""Every registered kind through the command line, end to end, at a tiny budget.

`keras-gon train KIND` (two steps of a tiny model on real MNIST), then every artefact of
the run folder is checked (model.keras loads as the kind, metrics.json has the kind's
figures, reconstructions.png and samples.png are whole PNGs of the size the plotting
code gives), then `keras-gon evaluate` and `keras-gon export` run on that folder.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

from helpers import KIND_NAMES, NPZ, train_argv

TINY = {
    "igon": ["--hidden-units", "8", "--num-layers", "2"],
    "glo": ["--width", "2", "--inference-steps", "3"],
}
"""Each kind's tiny model options (the conv kinds: `CONV_TINY`)."""
CONV_TINY = ["--width", "2"]


def _tiny_train_argv(kind: str, run, steps: int, batch_size: int, *flags) -> list:
    """`train` of a tiny model of `kind` (latent 4, quiet, eager) on mnist10k into `run`."""
    options = ("--latent-dim", "4", "--verbose", "0", "--no-jit")
    return train_argv(
        kind,
        NPZ,
        str(run),
        "--steps",
        str(steps),
        "--batch-size",
        str(batch_size),
        *options,
        *flags,
    )


FIGURES = {"vgon": "bits_per_dim", "vae": "bits_per_dim", "classifier": "accuracy"}
"""The held-out figure a kind reports beside its loss (the presets table's)."""


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a whole PNG file (its signature, IHDR and IEND chunks checked)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    assert data[12:16] == b"IHDR" and data[-8:-4] == b"IEND", path
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_trains_evaluates_and_exports_through_the_cli(kind, tmp_path, capsys):
    import keras
    import tensorflow as tf

    from keras_gon import cli
    from keras_gon.plotting import image_rows_size
    from keras_gon.registry import kind_of

    run = tmp_path / "run"
    argv = _tiny_train_argv(kind, run, 2, 16, *TINY.get(kind, CONV_TINY))
    assert cli.main(argv) == 0, capsys.readouterr().err

    model = keras.saving.load_model(run / "model.keras")
    assert kind_of(model).name == kind
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["model"] == kind and metrics["steps"] == 2
    assert metrics["num_train"] == 8000 and metrics["num_test"] == 2000
    for key in ("train_loss", "test_loss", "seconds", "parameters"):
        assert math.isfinite(metrics[key]), key
    figure = FIGURES.get(kind)
    if figure:
        assert math.isfinite(metrics[f"test_{figure}"])
    assert png_size(run / "reconstructions.png") == image_rows_size(16, rows=2)
    samples = run / "samples.png"
    assert samples.exists() == hasattr(model, "sample")
    if hasattr(model, "sample"):
        assert png_size(samples) == image_rows_size(64, rows=1)
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temporary left

    capsys.readouterr()
    assert cli.main(["evaluate", str(run), "--data", NPZ, "--batch-size", "500"]) == 0
    out = capsys.readouterr().out
    evaluation = json.loads((run / "metrics.json").read_text())["evaluations"][-1]
    assert f"{evaluation['test_loss']:.4f}" in out
    if figure:
        assert (
            math.isfinite(evaluation[figure])
            and {"accuracy": "accuracy"}.get(figure, "bits/dim") in out
        )

    assert cli.main(["export", str(run), "--to", str(tmp_path / "served")]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "served" / "1"))
    expected = {"serving_default", "reconstruct", "encode", "decode"}
    expected |= (
        {"sample"} if hasattr(model, "sample_images") or hasattr(model, "sample_latents") else set()
    )
    expected |= {"render"} if hasattr(model, "render_latents") else set()
    expected |= {"classify"} if hasattr(model, "classify") else set()
    assert set(loaded.signatures) == expected
    height, width, channels = model.image_shape
    images = tf.zeros((2, height, width, channels))
    latents = loaded.signatures["encode"](images=images)["latents"]
    assert latents.shape == (2, model.latent_dim)
    assert loaded.signatures["decode"](latents=latents)["images"].shape == (
        2,
        height,
        width,
        channels,
    )


@pytest.mark.parametrize(
    ("kind", "flags", "lr", "hidden_units"),
    [
        ("vgon", CONV_TINY, 1e-3, None),  # as vgon_mnist was trained
        ("igon", ["--num-layers", "2"], 1e-3, 64),  # igon_mnist's width, not the paper's 256
        ("igon", ["--num-layers", "2", "--hidden-units", "8", "--lr", "2e-4"], 2e-4, 8),
        ("gon", CONV_TINY, 1e-4, None),
    ],
)
def test_train_defaults_are_each_kinds_preset_settings(
    kind, flags, lr, hidden_units, tmp_path, capsys
):
    import keras

    from keras_gon import cli

    run = tmp_path / "run"
    argv = _tiny_train_argv(kind, run, 1, 8, *flags)
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert json.loads((run / "metrics.json").read_text())["lr"] == lr
    if hidden_units is not None:
        model = keras.saving.load_model(run / "model.keras")
        assert model.get_config()["hidden_units"] == hidden_units
