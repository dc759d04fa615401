"""Nothing lost, nothing silent, round 2 (issue 29): each fault ends as one line.

Every CLI case runs in-process through `keras_gon.cli.main` in a temporary current folder
and must end with exactly one `keras-gon: error:` line, exit status 2, no traceback and
no file written or left behind (the folders it touches are compared before and after).
The runs are the built-in presets, so no case trains.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import (
    NPZ,
    TINY_ARGV,
    assert_one_error_line,
    load_mnist10k,
    run_cli,
    tiny_gon_preset,
    tiny_model,
    train_argv,
)

RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def _files(*folders: Path) -> set:
    return {p for folder in folders if folder.exists() for p in folder.rglob("*")}


def _one_error_line(argv, capsys, fragment: str, *watched: Path) -> str:
    """Runs `keras-gon argv`; asserts one error line holding `fragment`, status 2, nothing
    written in the current folder nor in `watched`. Returns the line."""
    folders = (Path.cwd(), *watched)
    before = _files(*folders)
    status, _, err = run_cli(argv, capsys)  # (argparse's refusals too)
    line = assert_one_error_line(status, err, fragment)
    assert _files(*folders) == before, sorted(map(str, _files(*folders) - before))
    return line


@pytest.fixture()
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _save_npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def digits() -> dict:
    data = load_mnist10k()
    return {key: value[:64] for key, value in data.items()}


# --- item 2: labels outside [0, num_classes) -------------------------------------------


def test_cli_refuses_labels_outside_the_classes(in_tmp, capsys, digits):
    data = _save_npz(
        in_tmp / "labels.npz",
        x_train=digits["x_train"],
        y_train=digits["y_train"],
        x_test=digits["x_test"],
        y_test=digits["y_test"] + 1,
    )  # a 10 among them
    _one_error_line(
        ["evaluate", "gon_classifier_mnist", "--data", data],
        capsys,
        "labels must be in [0, 10) (num_classes=10), got 10",
    )


def test_a_folder_of_more_classes_than_num_classes_is_named(in_tmp, capsys, cifar10_folder):
    _one_error_line(
        train_argv("classifier", cifar10_folder, in_tmp / "run", "--num-classes", "2"),
        capsys,
        f"--num-classes 2: {cifar10_folder} has 3 classes (airplane, automobile, bird): "
        "give --num-classes 3 or more, or leave it out",
    )
    eleven = in_tmp / "eleven"
    for index in range(11):
        (eleven / f"class{index:02d}").mkdir(parents=True)
        for image in sorted((cifar10_folder / "train" / "bird").iterdir())[:3]:
            shutil.copy(image, eleven / f"class{index:02d}" / image.name)
    _one_error_line(
        train_argv("classifier", eleven, in_tmp / "run", "--from-preset", "gon_classifier_mnist")
        + ["--batch-size", "4"],
        capsys,
        f"--from-preset gon_classifier_mnist: {eleven} has 11 classes (class00, class01, class02, "
        "class03, class04, ...), the preset's classifier has 10",
        eleven,
    )


@pytest.mark.parametrize("kind, size", [("gon", "7"), ("vgon", "100"), ("ae", "4")])
def test_an_image_size_the_decoder_cannot_make_is_refused_before_the_data(
    in_tmp, capsys, kind, size
):
    line = _one_error_line(
        train_argv(kind, in_tmp / "not-read.npz", in_tmp / "run", "--image-size", size),
        capsys,
        f"--image-size {size}: image size must be a power of two >= 8",
    )
    assert "not-read.npz" not in line  # refused before the (missing) data is looked at


@pytest.mark.parametrize("as_dataset", [False, True])
@pytest.mark.parametrize("method", ["fit", "evaluate"])
def test_classifier_refuses_labels_outside_the_classes(method, as_dataset, digits):
    import tensorflow as tf

    import keras_gon

    model = tiny_model("classifier", num_classes=3)
    model.compile(optimizer="adam", jit_compile=False)
    x, y = digits["x_test"][:8], np.array([0, 1, 2, 0, 1, -2, 0, 1])
    data = (tf.data.Dataset.from_tensor_slices((x, y)).batch(4),) if as_dataset else (x, y)
    with pytest.raises(
        keras_gon.InputError,
        match=r"labels must be in \[0, 3\) "
        r"\(num_classes=3\), got -2",
    ):
        getattr(model, method)(*data, verbose=0)


# --- item 4: sizes that cannot fit, checked from the shapes --------------------------


def test_a_latent_too_large_for_memory_is_refused_before_anything_is_built(in_tmp, capsys):
    import keras_gon

    with pytest.raises(keras_gon.InputError, match="latent_dim=100000000.*memory available"):
        keras_gon.GON(latent_dim=100_000_000)
    _one_error_line(
        train_argv("gon", NPZ, in_tmp / "run", "--latent-dim", "100000000", "--steps", "1"),
        capsys,
        "memory available",
    )


def test_too_many_samples_are_refused_from_the_shapes(in_tmp, capsys):
    _one_error_line(
        ["sample", "vgon_mnist", "--n", "1000000"], capsys, "at most 529,256 samples fit in one PNG"
    )


def test_a_render_picture_too_large_is_refused(in_tmp, capsys):
    _one_error_line(
        ["render", "igon_mnist", "--samples", "--count", "64", "--resolution", "4096"],
        capsys,
        "pixels a side",
    )


# --- item 5: filesystem faults ------------------------------------------------------------


@pytest.fixture()
def read_only_folder(tmp_path) -> Path:
    """A folder nobody may write in: mode 0o555, or /sys for root (who ignores modes)."""
    if RUNNING_AS_ROOT:
        if not Path("/sys").is_dir():
            pytest.skip("root and no /sys: no read-only folder to try")
        yield Path("/sys")
        return
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


def test_sample_and_export_into_a_read_only_folder(in_tmp, capsys, read_only_folder):
    _one_error_line(
        ["sample", "vgon_mnist", "--n", "4", "--out", read_only_folder / "s.png"],
        capsys,
        str(read_only_folder),
    )
    _one_error_line(
        ["export", "gon_mnist", "--to", read_only_folder / "gon"],
        capsys,
        str(read_only_folder / "gon"),
    )


def test_a_file_in_the_output_path(in_tmp, capsys):
    (in_tmp / "a_file").write_text("not a folder")
    _one_error_line(
        ["sample", "vgon_mnist", "--out", "a_file/sub/s.png"],
        capsys,
        "a_file is a file, not a folder",
    )
    _one_error_line(
        ["export", "gon_mnist", "--to", "a_file/sub"], capsys, "a_file is a file, not a folder"
    )


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EDQUOT])
def test_sample_on_a_full_or_read_only_disk_leaves_no_temporary_file(
    in_tmp, capsys, monkeypatch, code
):
    import matplotlib.figure

    def fail_midway(self, path, *args, **kwargs):
        Path(path).write_bytes(b"\x89PNG partial")  # some bytes, then the disk fails
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", fail_midway)
    line = _one_error_line(
        ["sample", "vgon_mnist", "--n", "4", "--out", "s.png"], capsys, "s.png: "
    )
    assert errno.errorcode[code] in line


def _archive_class():
    """The class of Keras's export archives (the backend's, not keras.export.ExportArchive)."""
    import keras

    return type(keras.export.ExportArchive())


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_export_on_a_full_disk_leaves_no_version_nor_claim(in_tmp, capsys, monkeypatch, code):
    def fail_midway(self, path, *args, **kwargs):
        Path(path).mkdir(parents=True)
        (Path(path) / "saved_model.pb").write_bytes(b"partial")
        raise OSError(code, os.strerror(code), str(Path(path) / "variables"))

    monkeypatch.setattr(_archive_class(), "write_out", fail_midway)
    (in_tmp / "models").mkdir()
    line = _one_error_line(
        ["export", "gon_mnist", "--to", "models/gon"], capsys, "models/gon/1: ", in_tmp / "models"
    )
    assert errno.errorcode[code] in line


def test_export_with_tensorflows_own_file_error(in_tmp, capsys, monkeypatch):
    import tensorflow as tf

    def fail(self, path, *args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, f"{path}: No space left on device")

    monkeypatch.setattr(_archive_class(), "write_out", fail)
    _one_error_line(
        ["export", "gon_mnist", "--to", "gon"], capsys, "gon/1: no space left on device (ENOSPC)"
    )


def test_presets_build_on_a_full_disk(in_tmp, capsys, monkeypatch, digits):
    import keras

    from keras_gon import preset_builder

    recipe = tiny_gon_preset(epochs=1, image_size=16, batch_size=32)
    monkeypatch.setattr(preset_builder, "PRESET_RECIPES", {"tiny_gon": recipe})

    def full(self, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(keras.Model, "save_weights", full)
    x = load_mnist10k()["x_test"][:512]  # presets evaluate in batches of 500
    data = _save_npz(in_tmp / "small.npz", x_train=x, x_test=x[:64])
    out = in_tmp / "presets"
    out.mkdir()
    _one_error_line(
        ["presets", "build", "--data", f"mnist={data}", "--out", out, "--work", in_tmp / "work"],
        capsys,
        "no space left on device (ENOSPC)",
        out,
    )


# --- item 6: seeds -------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "2147483648", "1.5"])
def test_negative_or_too_large_seeds_are_refused(in_tmp, capsys, value):
    _one_error_line(["sample", "vgon_mnist", "--seed", value], capsys, "integer seed in [0, ")


def test_model_sample_refuses_a_negative_seed():
    import keras_gon

    with pytest.raises(keras_gon.InputError, match="seed must be an integer in"):
        tiny_model("vgon").sample(2, seed=-1)


# --- item 9: messages that say what is wrong -------------------------------------------


def test_random_bytes_named_npz(in_tmp, capsys):
    (in_tmp / "random.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    line = _one_error_line(
        ["evaluate", "gon_mnist", "--data", "random.npz"],
        capsys,
        "not a valid .npz file: not a zip archive",
    )
    assert "pickle" not in line


def test_an_npz_of_object_arrays(in_tmp, capsys):
    objects = np.array([None, "a"], dtype=object)
    np.savez(in_tmp / "objects.npz", x_train=objects, x_test=objects)
    _one_error_line(
        ["evaluate", "gon_mnist", "--data", "objects.npz"],
        capsys,
        "holds Python objects (dtype object), not images",
    )


def test_evaluate_takes_a_batch_larger_than_the_held_out_data(in_tmp, capsys):
    from keras_gon import cli

    assert cli.main(["evaluate", "gon_mnist", "--data", NPZ, "--batch-size", "1000000"]) == 0
    out = capsys.readouterr().out
    assert "evaluating gon_mnist on the 2,000 held-out images" in out  # item 11: progress


def test_interpolate_names_what_it_needs(in_tmp, capsys, digits):
    data = _save_npz(in_tmp / "one.npz", x_train=digits["x_train"][:1], x_test=digits["x_test"][:1])
    line = _one_error_line(
        ["interpolate", "igon_mnist", "--data", data],
        capsys,
        "has 1 held-out images, 2 x --pairs needs 16",
    )
    assert "batch" not in line


def test_glo_needs_num_examples():
    import keras_gon

    with pytest.raises(keras_gon.InputError, match="GLO needs num_examples"):
        keras_gon.GLO()


# --- item 10: the README's paths -----------------------------------------------------------


def test_preset_names_write_their_pictures_in_the_current_folder(in_tmp, capsys):
    from keras_gon import cli

    assert cli.main(["sample", "vgon_mnist", "--n", "4"]) == 0
    assert (
        cli.main(["render", "igon_mnist", "--data", NPZ, "--count", "2", "--resolution", "32"]) == 0
    )
    assert {p.name for p in in_tmp.iterdir()} == {"vgon_mnist-samples.png", "igon_mnist-render.png"}


def test_preprocess_images_is_where_the_readme_says():
    import keras_gon.data

    assert callable(keras_gon.data.preprocess_images)
    assert callable(keras_gon.data.check_image_values)


# --- item 11: what the commands print --------------------------------------------------------


def test_evaluate_prints_bits_per_dim_for_a_variational_model(in_tmp, capsys):
    from keras_gon import cli

    assert cli.main(["evaluate", "vgon_mnist", "--data", NPZ, "--batch-size", "500"]) == 0
    assert "bits/dim" in capsys.readouterr().out


def test_commands_print_no_tensorflow_start_up_lines(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    result = subprocess.run(
        [sys.executable, "-m", "keras_gon", "presets"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "absl::InitializeLog" not in result.stderr, result.stderr
    assert not [line for line in result.stderr.splitlines() if line.startswith("I0000")]
    assert "gon_mnist" in result.stdout


# --- train: seeds, nothing partial, memory (cli/train.py) ---------------------------------


def test_train_refuses_a_negative_seed(in_tmp, capsys):
    _one_error_line(
        train_argv("gon", NPZ, in_tmp / "run", "--seed", "-1", "--steps", "1"),
        capsys,
        "integer seed in [0, ",
    )


def test_experiment_refuses_negative_seeds(in_tmp, capsys):
    _one_error_line(["experiment", "table1", "--seeds", "-1"], capsys, "integer seed in [0, ")


def test_train_with_bad_labels_leaves_no_run_folder(in_tmp, capsys, digits):
    data = _save_npz(
        in_tmp / "l.npz",
        x_train=digits["x_train"],
        y_train=digits["y_train"] + 1,
        x_test=digits["x_test"],
        y_test=digits["y_test"],
    )
    _one_error_line(
        train_argv(
            "classifier", data, in_tmp / "run", "--steps", "1", "--batch-size", "16", *TINY_ARGV
        ),
        capsys,
        "labels must be in [0, 10)",
    )
    assert not (in_tmp / "run").exists()


def test_train_on_a_full_disk_leaves_no_partial_run(in_tmp, capsys, monkeypatch):
    import keras_gon.files

    def full(path, payload, indent=2):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(keras_gon.files, "write_json", full)
    _one_error_line(
        train_argv("gon", NPZ, in_tmp / "run", "--steps", "1", *TINY_ARGV),
        capsys,
        "no space left on device (ENOSPC)",
    )
    assert not (in_tmp / "run").exists()


def test_train_refuses_training_that_cannot_fit(in_tmp, capsys, monkeypatch):
    import keras_gon.resources

    monkeypatch.setattr(keras_gon.resources, "available_memory", lambda: 2**20)
    _one_error_line(
        train_argv("gon", NPZ, in_tmp / "run", "--steps", "1", "--width", "2", "--latent-dim", "4"),
        capsys,
        "--batch-size 64",
    )
    assert not (in_tmp / "run").exists()
