"""The command line for implicit GONs: `train igon`, `render`, `interpolate`, clear errors."""

from __future__ import annotations

import json

import matplotlib.image
import pytest

from keras_gon import cli

from helpers import NPZ, assert_one_error_line, run_cli, train_run

SMALL = ["--hidden-units", "16", "--num-layers", "2", "--latent-dim", "8", "--verbose", "0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_run(
        tmp_path_factory,
        "igon",
        "--data",
        NPZ,
        "--steps",
        "30",
        "--lr",
        "1e-3",
        "--w0",
        "25",
        "--coordinate-fraction",
        "0.5",
        *SMALL,
    )


def test_train_igon_at_native_size_writes_model_metrics_and_pngs(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["model"] == "igon" and metrics["steps"] == 30
    assert metrics["image_shape"] == [28, 28, 1]  # native MNIST, not resized to 32
    config = metrics["config"]
    assert config["hidden_units"] == 16 and config["num_layers"] == 2 and config["latent_dim"] == 8
    assert config["w0"] == 25.0 and config["coordinate_fraction"] == 0.5
    assert metrics["jit_compile"] is False  # XLA's CPU sine is slower
    # The held-out loss is the MSE per pixel on every coordinate; mean image ~0.067.
    assert 0 < metrics["test_loss"] < 0.1
    assert metrics["parameters"] == (2 + 8) * 16 + 16 + 16 * 16 + 16 + 16 + 1
    for name in ("reconstructions.png", "samples.png"):
        image = matplotlib.image.imread(run_dir / name)
        assert image.shape[0] > 50 and image.shape[1] > 300, name


def test_render_writes_full_resolution_pixels(run_dir, capsys, tmp_path):
    out = tmp_path / "render.png"
    status, stdout, _ = run_cli(
        ["render", run_dir, "--resolution", 64, "--count", 3, "--out", out], capsys
    )
    assert status == 0 and "64x64" in stdout
    # Originals (upscaled) above renders: 2 rows x 3 columns of 64x64 drawn pixel for pixel
    # (x2: tiles of at least 84 pixels), 1-pixel padding, plus a title and labels.
    image = matplotlib.image.imread(out)
    assert image.shape[0] >= 2 * 129 + 1 + 34 and image.shape[1] >= 3 * 129 + 1 + 80
    status, _, _ = run_cli(
        ["render", run_dir, "--resolution", 256, "--count", 2, "--samples"], capsys
    )
    assert status == 0  # 256x256: drawn at full resolution
    image = matplotlib.image.imread(run_dir / "render.png")
    assert image.shape[0] >= 257 + 1 and image.shape[1] >= 2 * 257 + 1


def test_interpolate_writes_rows_from_a_to_b(run_dir, capsys):
    status, stdout, _ = run_cli(["interpolate", run_dir, "--pairs", 2, "--steps", 4], capsys)
    assert status == 0 and "2 pairs" in stdout
    # Each row: original a, 4 decodings, original b (28x28 enlarged x3: legible at 100 %).
    image = matplotlib.image.imread(run_dir / "interpolation.png")
    assert image.shape[0] >= 2 * 85 + 1 + 52 and image.shape[1] >= 6 * 85 + 1 + 80
    status, _, _ = run_cli(
        [
            "interpolate",
            run_dir,
            "--pairs",
            1,
            "--steps",
            3,
            "--resolution",
            56,
            "--out",
            run_dir / "big.png",
        ],
        capsys,
    )
    assert status == 0
    image = matplotlib.image.imread(run_dir / "big.png")
    assert image.shape[0] >= 2 * 57 + 1 and image.shape[1] >= 5 * 113 + 1


def test_render_and_interpolate_refuse_bad_input_with_one_line(run_dir, capsys, tmp_path):
    status, _, err = run_cli(["render", run_dir, "--resolution", 5000], capsys)
    assert_one_error_line(status, err, "resolution must be between 1 and 4096")
    status, _, err = run_cli(["render", run_dir, "--out", tmp_path / "render.jpg"], capsys)
    assert_one_error_line(status, err, ".png")
    status, _, err = run_cli(["interpolate", run_dir, "--steps", 1], capsys)
    assert_one_error_line(status, err, "--steps must be at least 2")
    status, _, err = run_cli(["interpolate", tmp_path / "missing"], capsys)
    assert_one_error_line(status, err, "no such run folder")
    # A run of a model without coordinates: say so.
    import keras_gon

    gon_dir = tmp_path / "gon"
    gon_dir.mkdir()
    keras_gon.GON(latent_dim=4, width=2).save(gon_dir / "model.keras")
    status, _, err = run_cli(["render", gon_dir], capsys)
    assert_one_error_line(status, err, "needs an implicit GON")


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "igon", "--coordinate-fraction", "1.5"],
        ["train", "igon", "--coordinate-fraction", "0"],
        ["train", "igon", "--hidden-units", "0"],
        ["train", "igon", "--w0", "-3"],
        ["render", "somewhere", "--resolution", "0"],
    ],
)
def test_bad_flags_exit_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as error:
        cli.main(argv)
    assert error.value.code == 2
    assert "error" in capsys.readouterr().err
