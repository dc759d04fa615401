"""The keras-gon command line: train, evaluate, run folders, and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds

from helpers import NPZ, SHARED_DATA, assert_one_error_line, run_cli, train_argv, train_run

SMALL = ["--width", "4", "--latent-dim", "8", "--verbose", "0"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_run(tmp_path_factory, "gon", "--data", NPZ, "--steps", "40", *SMALL)


def test_train_writes_model_metrics_and_reconstructions(run_dir):
    assert (run_dir / "model.keras").is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in (
        "model",
        "data",
        "steps",
        "epochs",
        "train_loss",
        "test_loss",
        "seconds",
        "steps_per_second",
        "parameters",
    ):
        assert key in metrics, key
    assert metrics["model"] == "gon" and metrics["steps"] == 40
    assert metrics["from_preset"] is None  # trained from scratch
    assert metrics["epochs"] == pytest.approx(40 / 125)
    assert metrics["num_train"] == 8000 and metrics["num_test"] == 2000
    assert 0 < metrics["test_loss"] < 400 and metrics["steps_per_second"] > 0
    png = (run_dir / "reconstructions.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    image = matplotlib.image.imread(run_dir / "reconstructions.png")
    assert image.shape[0] > 100 and image.shape[1] > 300


def test_evaluate_reproduces_the_held_out_loss(run_dir, capsys):
    status, out, _ = run_cli(["evaluate", run_dir, "--data", NPZ], capsys)
    assert status == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluation = metrics["evaluations"][-1]
    assert evaluation["test_loss"] == pytest.approx(metrics["test_loss"], rel=1e-4)
    assert f"{evaluation['test_loss']:.4f}" in out


def test_train_on_offline_default_data_with_tensorboard(tmp_path, capsys):
    status, out, _ = run_cli(
        ["train", "gon", "--epochs", "1", "--out", tmp_path, "--tensorboard", *SMALL], capsys
    )
    assert status == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["data"] == "mnist5k" and metrics["num_train"] == 4000
    assert metrics["steps"] == 4000 // 64
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert len(events) >= 2  # scalars and the reconstruction images


def test_a_run_records_its_data_path_absolute_for_use_from_any_folder(
    tmp_path, monkeypatch, capsys
):
    """`--data mnist10k.npz` given relative to the current folder: metrics.json holds the
    absolute path, so `evaluate` of the run works from another folder."""
    from pathlib import Path

    monkeypatch.chdir(Path(NPZ).parent)
    out = tmp_path / "run"
    argv = train_argv("gon", Path(NPZ).name, out, "--steps", "2", *SMALL)
    assert run_cli(argv, capsys)[0] == 0
    assert json.loads((out / "metrics.json").read_text())["data"] == str(Path(NPZ).resolve())
    monkeypatch.chdir(tmp_path)
    status, out_text, err = run_cli(["evaluate", out], capsys)
    assert status == 0, err


def test_train_images_takes_a_subset_and_says_when_the_data_has_fewer(tmp_path, capsys):
    for asked, num_train in ((256, 256), (100_000, 8000)):
        out = tmp_path / str(asked)
        argv = train_argv("gon", NPZ, out, "--train-images", asked, "--steps", "1", *SMALL)
        status, _, err = run_cli(argv, capsys)
        assert status == 0, err
        metrics = json.loads((out / "metrics.json").read_text())
        assert (metrics["num_train"], metrics["train_images"]) == (num_train, asked)
        warned = "keras-gon: warning: --train-images 100,000: the data has 8,000 training images"
        assert (warned in err) == (asked > num_train)


def test_train_from_tfds_offline_with_mock_data(tmp_path, capsys):
    with tfds.testing.mock_data(num_examples=256):
        status, _, err = run_cli(
            train_argv("gon", "mnist", tmp_path, "--steps", "3", "--batch-size", "32", *SMALL),
            capsys,
        )
    assert status == 0, err
    assert json.loads((tmp_path / "metrics.json").read_text())["data"] == "mnist"


def test_idx_directory_source(tmp_path, capsys):
    status, _, err = run_cli(
        train_argv("gon", SHARED_DATA / "mnist", tmp_path, "--steps", "2", *SMALL),
        capsys,
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_train"] == 8000 and metrics["num_test"] == 2000


def _npz(path, x_train, x_test):
    np.savez(
        path,
        x_train=x_train,
        y_train=np.zeros(len(x_train), "uint8"),
        x_test=x_test,
        y_test=np.zeros(len(x_test), "uint8"),
    )
    return path


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda d: d / "missing.npz", "no such file"),
        (
            lambda d: (d / "cut.npz").write_bytes(Path(NPZ).read_bytes()[:5000]) and d / "cut.npz",
            "cut.npz",
        ),
        (
            lambda d: _npz(d / "big.npz", np.full((80, 28, 28), 300.0), np.zeros((10, 28, 28))),
            "300",
        ),
        (
            lambda d: _npz(d / "nan.npz", np.full((80, 28, 28), np.nan), np.zeros((10, 28, 28))),
            "non-finite",
        ),
        (lambda d: _npz(d / "rank.npz", np.zeros((80, 784)), np.zeros((10, 784))), "shape"),
        (
            lambda d: _npz(d / "text.npz", np.full((80, 28, 28), "a"), np.zeros((10, 28, 28))),
            "dtype",
        ),
        (lambda d: "no_such_tfds_dataset", "unknown TFDS dataset"),
    ],
)
def test_bad_data_gives_one_error_line_and_status_2(tmp_path, capsys, make, fragment):
    source = make(tmp_path)
    status, _, err = run_cli(
        train_argv("gon", source, tmp_path / "run", "--steps", "1", *SMALL),
        capsys,
    )
    assert_one_error_line(status, err, fragment)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_truncated_idx_directory(tmp_path, capsys):
    data = (SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(data[: len(data) // 2])
    status, _, err = run_cli(
        train_argv("gon", tmp_path, tmp_path / "run", "--steps", "1", *SMALL),
        capsys,
    )
    assert_one_error_line(status, err, "t10k-images-idx3-ubyte.gz")


def test_evaluate_with_wrong_channel_count(run_dir, tmp_path, capsys):
    rgb = _npz(
        tmp_path / "rgb.npz", np.zeros((80, 32, 32, 3), "uint8"), np.zeros((10, 32, 32, 3), "uint8")
    )
    status, _, err = run_cli(["evaluate", run_dir, "--data", rgb], capsys)
    assert_one_error_line(status, err, "3 channels")


def test_evaluate_missing_or_broken_run(tmp_path, capsys):
    status, _, err = run_cli(["evaluate", tmp_path / "nope"], capsys)
    assert_one_error_line(status, err, "no such run folder")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.keras").write_bytes(b"not a zip")
    status, _, err = run_cli(["evaluate", tmp_path / "broken", "--data", NPZ], capsys)
    assert_one_error_line(status, err, "cannot load")


def test_non_finite_loss_stops_cleanly_and_keeps_the_saved_model(run_dir, capsys):
    model_file = run_dir / "model.keras"
    before = hashlib.sha256(model_file.read_bytes()).hexdigest()
    files = sorted(p.name for p in run_dir.iterdir())
    status, _, err = run_cli(
        train_argv("gon", NPZ, run_dir, "--steps", "30", "--lr", "1e30", "--overwrite", *SMALL),
        capsys,
    )
    assert_one_error_line(status, err, "nothing was saved")
    assert hashlib.sha256(model_file.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in run_dir.iterdir()) == files  # the finished run stays whole


def test_console_script_and_module_entry_points(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_gon",
            "train",
            "gon",
            "--data",
            str(tmp_path / "missing.npz"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2
    assert "keras-gon: error: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    help_text = subprocess.run(
        [sys.executable, "-m", "keras_gon", "train", "--help"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (
        help_text.returncode == 0
        and "--latent-dim" in help_text.stdout
        and "--nz" in help_text.stdout
    )


def test_help_is_fast_lists_the_kinds_and_imports_no_tensorflow():
    import subprocess
    import sys
    import time

    from keras_gon.registry import MODEL_KINDS

    for argv in (["--help"], ["train", "--help"]):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "keras_gon", *argv], capture_output=True, text=True, timeout=60
        )
        seconds = time.perf_counter() - start
        assert result.returncode == 0 and seconds < 1.5, (argv, seconds)
        assert result.stdout.startswith("usage: keras-gon"), result.stdout[
            :200
        ]  # no TF noise first
        for kind in MODEL_KINDS.values():
            assert kind.name in result.stdout and kind.description in result.stdout
    assert "(default: 64)" in result.stdout  # train --help shows defaults
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, keras_gon.cli; keras_gon.cli.build_parser(); "
            "print('tensorflow' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.strip() == "False"
    version = subprocess.run(
        [sys.executable, "-m", "keras_gon", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == f"keras-gon {__import__('keras_gon').__version__}"


def test_train_ae_with_a_linear_encoder_and_refuse_it_elsewhere(tmp_path, capsys):
    status, _, err = run_cli(
        train_argv("ae", NPZ, tmp_path / "ae", "--steps", 2, "--encoder", "linear", *SMALL),
        capsys,
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "ae" / "metrics.json").read_text())
    assert metrics["config"]["encoder"] == "linear"
    status, _, err = run_cli(
        train_argv("gon", NPZ, tmp_path / "gon", "--steps", 1, "--encoder", "linear", *SMALL),
        capsys,
    )
    assert_one_error_line(status, err, "--encoder: only for the autoencoder baselines")
    assert not (tmp_path / "gon").exists()


# --- image folders --------------------------------------------------------------------


def _train_small(capsys, kind: str, data, out, options: str) -> tuple[str, dict]:
    """`keras-gon train` of the SMALL `kind` on `data` into `out` with `options` (words
    apart by spaces) succeeds; returns what it printed and its metrics.json."""
    status, printed, _ = run_cli(train_argv(kind, data, out, *options.split(), *SMALL), capsys)
    assert status == 0
    return printed, json.loads((out / "metrics.json").read_text())


def test_train_on_a_folder_of_colour_jpegs_with_class_subfolders(cifar10_folder, tmp_path, capsys):
    out = tmp_path / "gon"
    printed, metrics = _train_small(capsys, "gon", cifar10_folder, out, "--steps 5 --batch-size 32")
    assert "found 300 training and 90 held-out images of 3 classes" in printed
    assert metrics["image_shape"] == [32, 32, 3]
    assert metrics["split"] == "the train/ and test/ folders"
    assert metrics["class_names"] == ["airplane", "automobile", "bird"]
    out = tmp_path / "classifier"
    # it trains (status 0) on the labels from the subfolders
    _, metrics = _train_small(
        capsys, "classifier", cifar10_folder, out, "--steps 5 --batch-size 32"
    )
    # (without --num-classes: the folder's 3 class subfolders)
    assert metrics["config"]["num_classes"] == 3 and (out / "reconstructions.png").is_file()
    # the held-out accuracy counts right answers among all 90 test/ images, and the saved
    # model's evaluation on them gives it again
    right = metrics["test_accuracy"] * 90
    assert right == pytest.approx(round(right), abs=1e-3), metrics["test_accuracy"]
    status, _, err = run_cli(["evaluate", out, "--data", cifar10_folder], capsys)
    assert status == 0, err
    evaluation = json.loads((out / "metrics.json").read_text())["evaluations"][-1]
    assert evaluation["num_test"] == 90
    assert evaluation["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)


def test_vgon_on_a_flat_folder_at_64_samples_colour(celeba_folder, tmp_path, capsys):
    import matplotlib.image

    out = tmp_path / "vgon"
    _, metrics = _train_small(
        capsys, "vgon", celeba_folder, out, "--image-size 64 --steps 3 --batch-size 32"
    )
    assert metrics["image_shape"] == [64, 64, 3] and metrics["class_names"] == []
    assert metrics["split"] == "a fraction 0.1 held out at random, seed 0"
    assert matplotlib.image.imread(out / "samples.png").shape[-1] in (3, 4)  # colour PNG
    sample_png = tmp_path / "faces.png"
    status, _, _ = run_cli(["sample", out, "--n", "4", "--out", sample_png], capsys)
    assert status == 0 and sample_png.is_file()


def test_grey_folder_with_a_non_image_file_and_channels_option(coil20_folder, tmp_path, capsys):
    out = tmp_path / "coil"
    printed, metrics = _train_small(
        capsys, "gon", coil20_folder, out, "--image-size 32 --channels 3 --steps 2"
    )
    assert "skipped 1 file not an image" in printed
    assert metrics["image_shape"] == [32, 32, 3] and metrics["skipped_files"] == ["Icon\r"]


def test_channels_first_arrays_are_refused_with_how_to_transpose(tmp_path, capsys, mnist10k):
    path = tmp_path / "nchw.npz"
    np.savez(path, x_train=mnist10k["x_train"][:200, None], x_test=mnist10k["x_test"][:50, None])
    status, _, err = run_cli(
        train_argv("gon", path, tmp_path / "run", "--steps", "1", *SMALL), capsys
    )
    assert_one_error_line(status, err, "channels-first (N, C, H, W)")
    assert "np.transpose(x, (0, 2, 3, 1))" in err
    assert not (tmp_path / "run").exists()


def test_train_with_a_spatial_latent_and_refuse_it_elsewhere(tmp_path, capsys):
    small = ["--width", "4", "--latent-dim", "16", "--verbose", "0"]
    status, _, err = run_cli(
        train_argv("gon", NPZ, tmp_path / "gon", "--steps", 2, "--latent-map-size", 4, *small),
        capsys,
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "gon" / "metrics.json").read_text())
    assert metrics["config"]["decoder"]["config"]["latent_map_size"] == 4
    status, _, err = run_cli(
        train_argv("gon", NPZ, tmp_path / "bad", "--steps", 1, "--latent-map-size", 4, *SMALL),
        capsys,
    )
    assert_one_error_line(status, err, "latent_dim=8 is not divisible by latent_map_size²=16")
    status, _, err = run_cli(
        train_argv("igon", NPZ, tmp_path / "igon", "--steps", 1, "--latent-map-size", 4, *SMALL),
        capsys,
    )
    assert_one_error_line(status, err, "--latent-map-size: only for models with the conv")
    assert not (tmp_path / "bad").exists() and not (tmp_path / "igon").exists()


# --- run folders: never overwritten, never half-written ---------------------------------


def test_a_finished_run_is_refused_without_overwrite(run_dir, capsys):
    digests = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.iterdir() if p.is_file()
    }
    status, _, err = run_cli(train_argv("gon", NPZ, run_dir, "--steps", "2", *SMALL), capsys)
    assert_one_error_line(status, err, "holds a finished run: give another --out, or --overwrite")
    assert {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in run_dir.iterdir() if p.is_file()
    } == digests


def test_overwrite_replaces_a_finished_run_whole(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_cli(train_argv("vgon", NPZ, out, "--steps", "2", *SMALL), capsys)[0] == 0
    assert (out / "samples.png").is_file()
    assert run_cli(["sample", out, "--n", "4", "--out", out / "render.png"], capsys)[0] == 0
    (out / "interpolation.png").write_bytes((out / "samples.png").read_bytes())
    (out / "notes.txt").write_text("the user's own file stays")
    status, _, err = run_cli(
        train_argv("gon", NPZ, out, "--steps", "2", "--overwrite", *SMALL), capsys
    )
    assert status == 0, err
    assert json.loads((out / "metrics.json").read_text())["model"] == "gon"
    assert sorted(p.name for p in out.iterdir()) == [
        "metrics.json",
        "model.keras",
        "notes.txt",
        "reconstructions.png",
    ]  # the vgon's samples went too, and the pictures commands drew of it


def test_a_folder_without_a_run_keeps_the_users_pictures(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "render.png").write_bytes(b"the user's own picture")
    assert run_cli(train_argv("gon", NPZ, out, "--steps", "1", *SMALL), capsys)[0] == 0
    assert (out / "render.png").read_bytes() == b"the user's own picture"
    assert (out / "metrics.json").is_file()


def test_default_run_names_are_unique_within_a_second(tmp_path, capsys, monkeypatch):
    import time

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda *_: "20261204-120000")
    for _ in range(2):
        assert run_cli(["train", "gon", "--data", NPZ, "--steps", "1", *SMALL], capsys)[0] == 0
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert runs == ["gon-20261204-120000", "gon-20261204-120000-2"]
    assert all((tmp_path / "runs" / name / "metrics.json").is_file() for name in runs)


def test_a_failed_new_run_leaves_no_folder(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    status, _, err = run_cli(
        train_argv("gon", NPZ, out, "--steps", "30", "--lr", "1e30", *SMALL),
        capsys,
    )
    assert_one_error_line(status, err, "the loss became non-finite")
    assert not out.exists()


def test_a_collapsed_training_is_reported(tmp_path, capsys):
    """An absurd learning rate that saturates every output: one warning line saying what to
    change, and metrics.json says so."""
    out = tmp_path / "run"
    status, _, err = run_cli(
        train_argv("gon", NPZ, out, "--steps", "20", "--lr", "1e6", *SMALL),
        capsys,
    )
    assert status == 0
    warnings = [line for line in err.splitlines() if line.startswith("keras-gon: warning:")]
    assert len(warnings) == 1 and "collapsed to a constant output" in warnings[0]
    assert "lower --lr" in warnings[0]
    assert json.loads((out / "metrics.json").read_text())["collapsed"] is True


def test_preset_options_are_refused_by_name(tmp_path, capsys):
    status, _, err = run_cli(
        train_argv(
            "gon",
            NPZ,
            tmp_path / "run",
            "--from-preset",
            "gon_mnist",
            "--latent-dim",
            "64",
            "--steps",
            "1",
        ),
        capsys,
    )
    assert_one_error_line(status, err, "--latent-dim: the preset gon_mnist fixes the model's")
    assert not (tmp_path / "run").exists()
    for flag, value in (("--image-size", "64"), ("--channels", "3")):
        argv = train_argv("gon", NPZ, tmp_path / "run", "--from-preset", "gon_mnist", flag, value)
        status, _, err = run_cli([*argv, "--steps", "1"], capsys)
        assert_one_error_line(
            status, err, f"{flag} {value}: the preset gon_mnist takes 32x32 images of 1 channel"
        )
        assert not (tmp_path / "run").exists()


def test_a_variational_preset_is_fine_tuned_with_the_prior_asked_for(tmp_path, capsys):
    """`--prior` with `--from-preset`: the preset's weights, sampling from the prior asked
    for (fitted after the fine-tuning); refused by name for a kind without a prior."""
    import keras_gon

    out = tmp_path / "run"
    argv = ["--from-preset", "vgon_mnist", "--prior", "fitted", "--steps", "2", "--verbose", "0"]
    status, _, err = run_cli(train_argv("vgon", NPZ, out, *argv), capsys)
    assert status == 0, err[-3000:]
    model = keras_gon.LatentModel.from_preset(str(out / "model.keras"))
    assert model.prior == "fitted" and model.has_latent_statistics
    status, _, err = run_cli(
        train_argv("gon", NPZ, tmp_path / "gon", "--from-preset", "gon_mnist", "--prior", "fitted"),
        capsys,
    )
    assert_one_error_line(status, err, "--prior: only for variational models")
    assert not (tmp_path / "gon").exists()
