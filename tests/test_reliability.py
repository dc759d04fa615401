"""Nothing lost, nothing silent: every bad input gives one clear error, exports are atomic.

The lists below are the project's catalogue of bad inputs: add a case here.
CLI cases run in-process through `keras_gon.cli.main` and must end with one
`keras-gon: error:` line and exit status 2; Python cases must raise
`keras_gon.InputError` with the fragment in its message.

This module is also a script (`python tests/test_reliability.py export BASE`)
that exports a tiny GON with `keras_gon.export.export_version`: the kill and
concurrency tests run it in subprocesses.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))
from helpers import (  # noqa: E402
    NPZ,
    assert_one_error_line,
    load_mnist10k,
    run_cli,
    tiny_model,
    train_argv,
    train_run,
)

SMALL = ["--width", "2", "--latent-dim", "4", "--verbose", "0", "--no-jit"]
KILLS = 20


@pytest.fixture(scope="module")
def gon_run(tmp_path_factory):
    return train_run(tmp_path_factory, "gon", "--data", NPZ, "--steps", "2", *SMALL)


def _npz(tmp_path, name, x_train, x_test=None):
    path = tmp_path / name
    np.savez(path, x_train=x_train, x_test=x_train[:8] if x_test is None else x_test)
    return path


def _corrupt_run(tmp_path, gon_run):
    broken = tmp_path / "broken"
    broken.mkdir()
    data = (gon_run / "model.keras").read_bytes()
    (broken / "model.keras").write_bytes(data[: len(data) // 3])  # a truncated archive
    return broken


CLI_CASES = [
    # (argv with {tmp} / {run} / {npz:...} placeholders, fragment of the error line)
    (["train", "gon", "--data", "{tmp}/missing.npz"], "no such file"),
    (["train", "gon", "--data", "{npz:nan}"], "non-finite"),
    (["train", "gon", "--data", "{npz:range}"], "[0, 255]"),
    (["train", "gon", "--data", "{npz:rank}"], "expected (N, H, W) or (N, H, W, C)"),
    (["train", "gon", "--out", "{tmp}/a-file"], "is a file, not a folder"),
    (["train", "ae", "--detach"], "GON options"),
    (["train", "vae", "--num-steps", "2"], "--num-steps: the vae has no origin gradient"),
    (["train", "gon", "--kl-weight", "0.5"], "--kl-weight: only for variational models"),
    (["train", "igon", "--width", "4"], "--width: only for models with the convolutional decoder"),
    (["train", "gon", "--hidden-units", "8"], "--hidden-units: only for the implicit GON"),
    (["train", "gon", "--resume"], "--resume needs --out"),
    (["evaluate", "{tmp}/nope"], "no such run folder"),
    (["evaluate", "{corrupt}", "--data", NPZ], "not a Keras model archive"),
    (["evaluate", "{tmp}"], "no model.keras"),
    (["export", "{run}", "--to", "{tmp}/a-file"], "is a file, not a folder of versions"),
    (["sample", "{run}"], "GON cannot sample"),
    (["sample", "{tmp}/nope"], "no such run folder"),
    (["render", "{run}"], "needs an implicit GON"),
    (["interpolate", "{run}", "--steps", "1"], "--steps must be at least 2"),
    (["experiment", "activations", "--activations", "nope"], "unknown activation 'nope'"),
    (["experiment", "origin", "--stddevs", "-1"], "must be >= 0"),
]


@pytest.mark.parametrize("argv, fragment", CLI_CASES, ids=[" ".join(c[0][:3]) for c in CLI_CASES])
def test_cli_bad_input_gives_one_error_line(argv, fragment, tmp_path, gon_run, capsys):
    (tmp_path / "a-file").write_text("not a folder")
    x = load_mnist10k()["x_train"][:16]
    bad_data = {
        "nan": lambda: _npz(tmp_path, "nan.npz", np.full((16, 28, 28), np.nan, "float32")),
        "range": lambda: _npz(tmp_path, "range.npz", np.full((16, 28, 28), 300.0, "float32")),
        "rank": lambda: _npz(tmp_path, "rank.npz", x.reshape(16, -1)),
    }
    args = []
    for item in argv:
        if item.startswith("{npz:"):
            item = str(bad_data[item[5:-1]]())
        elif item == "{corrupt}":
            item = str(_corrupt_run(tmp_path, gon_run))
        args.append(item.format(tmp=tmp_path, run=gon_run))
    if args[0] == "train":
        defaults = ["--steps", "1", *SMALL]
        for flag, value in zip(defaults[::2], defaults[1::2]):
            if flag not in args and not (args[1] == "igon" and flag == "--width"):
                args += [flag, value]
        if "--data" not in args:
            args += ["--data", NPZ]
        if "--out" not in args and "--resume" not in args:
            args += ["--out", str(tmp_path / "out")]
    assert_one_error_line(*run_cli(args, capsys)[::2], fragment)


def test_cli_trains_and_plots_five_channel_images(tmp_path, capsys):
    from keras_gon import cli

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(96, 16, 16, 5), dtype=np.uint8)
    data = _npz(tmp_path, "five.npz", x, x[:16])
    out = tmp_path / "run"
    status = cli.main(
        train_argv("gon", str(data), str(out), "--steps", "2", "--image-size", "16", *SMALL)
    )
    assert status == 0, capsys.readouterr().err
    assert (out / "reconstructions.png").read_bytes()[:4] == b"\x89PNG"


def _gon():
    return tiny_model("gon")


def _glo():
    return tiny_model("glo")


PYTHON_CASES = [
    # (build the model, call that must fail, fragment)
    (_gon, lambda m, x: m.fit(np.full((8, 28, 28), np.nan, "float32"), verbose=0), "non-finite"),
    (_gon, lambda m, x: m.fit(np.full((8, 28, 28), 256.0), verbose=0), "must be in [0, 1]"),
    (_gon, lambda m, x: m.fit(np.zeros((8, 28, 28, 3), "float32"), verbose=0), "3 channels"),
    (_gon, lambda m, x: m.fit(np.zeros((8, 28), "float32"), verbose=0), "(N, H, W)"),
    (_gon, lambda m, x: m.fit(np.array(["a", "b"]), verbose=0), "dtype"),
    (
        _gon,
        lambda m, x: m.evaluate(np.full((8, 16, 16), np.inf, "float32"), verbose=0),
        "non-finite",
    ),
    (_gon, lambda m, x: m.encode(np.full((2, 16, 16, 1), np.nan, "float32")), "non-finite"),
    (_gon, lambda m, x: m.encode(np.zeros((2, 16, 16, 2), "float32")), "2 channels"),
    (_gon, lambda m, x: m.decode(np.zeros((2, 5), "float32")), "latents have shape (2, 5)"),
    (_gon, lambda m, x: m.decode(np.full((2, 4), np.nan, "float32")), "NaN"),
    (_gon, lambda m, x: m.compile(loss="mse"), "takes no loss"),
    (_glo, lambda m, x: m.fit(x, np.arange(8) + 100, verbose=0), "indices must be in"),
    (_glo, lambda m, x: m.fit(x, verbose=0), "needs y"),
    (
        lambda: tiny_model("classifier"),
        lambda m, x: m.fit(x, np.zeros(8, "float32"), verbose=0),
        "integer labels",
    ),
    (lambda: tiny_model("vgon"), lambda m, x: m.sample(0), "number of samples"),
    (
        lambda: tiny_model("igon"),
        lambda m, x: m.render(np.zeros((1, 4), "float32"), 5000),
        "between 1 and 4096",
    ),
]


@pytest.mark.parametrize(
    "build, call, fragment",
    PYTHON_CASES,
    ids=[f"{i}-{c[2][:20]}" for i, c in enumerate(PYTHON_CASES)],
)
def test_python_bad_input_raises_a_clear_input_error(build, call, fragment):
    from keras_gon.errors import InputError

    model = build()
    model.compile(optimizer="adam", jit_compile=False) if "loss" not in fragment else None
    x = load_mnist10k()["x_test"][:8]
    with pytest.raises(InputError) as error:
        call(model, x)
    assert fragment in str(error.value), str(error.value)


def test_nan_loss_keeps_finite_weights():
    import keras
    import tensorflow as tf

    def nan_on_blank_images(y, p):  # valid pixels, a non-finite loss: blank images
        sse = tf.reduce_sum(tf.square(y - p), axis=[1, 2, 3])
        spread = tf.reduce_max(y, axis=[1, 2, 3]) - tf.reduce_min(y, axis=[1, 2, 3])
        return tf.where(spread < 1e-3, tf.constant(np.nan, sse.dtype), sse)

    model = tiny_model("gon", outer_loss=nan_on_blank_images)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    x = load_mnist10k()["x_train"][:128].astype("float32") / 255.0
    x[96:] = 0.5  # the fourth batch: blank images
    dataset = tf.data.Dataset.from_tensor_slices(x[..., None]).batch(32)
    with pytest.warns(RuntimeWarning, match="step 4: the loss became nan"):
        history = model.fit(dataset, epochs=2, verbose=0).history
    assert len(history["loss"]) == 1 and not np.isfinite(history["loss"][0])
    assert all(np.all(np.isfinite(np.asarray(w))) for w in model.weights)
    reference = _gon()  # the same three finite steps, without the blank batch
    reference.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    reference.fit(dataset.take(3), epochs=1, verbose=0)
    for a, b in zip(model.trainable_weights, reference.trainable_weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_uint8_fit_trains_on_scaled_pixels():
    import keras

    model = _gon()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    x = load_mnist10k()["x_train"][:128]  # uint8 (N, 28, 28) for a 16x16 model
    loss = model.fit(x, batch_size=32, epochs=1, verbose=0).history["loss"][-1]
    assert loss < 16 * 16  # at most 1 per pixel: [0, 1] values, not 0-255 ones


# --- exports that appear whole or not at all -------------------------------------------------


def _export_process(base: Path):
    return subprocess.Popen(
        [sys.executable, str(HERE), "export", str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def _wait_for(process, word: str, timeout: float = 120.0) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        line = process.stdout.readline()
        if line.strip() == word:
            return time.monotonic()
        if not line and process.poll() is not None:
            raise AssertionError(f"the export process ended with {process.returncode}")
    raise AssertionError(f"no {word!r} from the export process")


def _numeric_versions(base: Path) -> list[Path]:
    return (
        sorted((p for p in base.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
        if base.is_dir()
        else []
    )


def _load_all(base: Path) -> list[int]:
    import tensorflow as tf

    loaded = []
    for version in _numeric_versions(base):
        tf.saved_model.load(str(version))  # a half-written version fails here
        loaded.append(int(version.name))
    return loaded


def test_an_export_killed_at_any_point_leaves_no_half_written_version(tmp_path):
    base = tmp_path / "served"
    process = _export_process(base)  # one uninterrupted export: how long it takes
    ready = _wait_for(process, "ready")
    duration = _wait_for(process, "done") - ready
    process.wait()
    assert _load_all(base) == [1]
    rng = random.Random(0)
    delays = [duration * (i + rng.random()) / KILLS for i in range(KILLS)]  # spread over it
    for delay in delays:
        process = _export_process(base)
        _wait_for(process, "ready")
        time.sleep(delay)
        process.kill()
        process.wait()
        versions = _load_all(base)  # every numeric folder is a whole SavedModel
        assert versions == list(range(1, len(versions) + 1)), versions
    finished = len(_numeric_versions(base))
    process = _export_process(base)  # the next export cleans up and takes the next number
    _wait_for(process, "ready")
    _wait_for(process, "done")
    process.wait()
    assert _load_all(base)[-1] == finished + 1
    leftovers = [p.name for p in base.iterdir() if p.name.startswith(".")]
    assert leftovers == [], leftovers


def test_two_exports_at_once_get_different_versions(tmp_path):
    base = tmp_path / "served"
    first, second = _export_process(base), _export_process(base)
    _wait_for(first, "ready")
    _wait_for(second, "ready")
    for process in (first, second):
        _wait_for(process, "done")
        process.wait()
    assert _load_all(base) == [1, 2]


def _export_main(base: Path) -> None:
    from keras_gon.export import export_version

    model = tiny_model("gon")
    model.encode(np.zeros((1, 16, 16, 1), "float32"))  # everything imported and traced
    print("ready", flush=True)
    export_version(model, base)
    print("done", flush=True)


def test_run_files_are_whole_and_have_the_users_permissions(gon_run):
    mask = os.umask(0)
    os.umask(mask)
    for name in ("model.keras", "metrics.json", "reconstructions.png"):
        mode = (gon_run / name).stat().st_mode & 0o777
        assert mode == 0o666 & ~mask, (name, oct(mode))
    assert zipfile.is_zipfile(gon_run / "model.keras")
    assert not [p.name for p in gon_run.iterdir() if p.name.startswith(".")]  # no temporaries


if __name__ == "__main__":
    if sys.argv[1] == "export":
        _export_main(Path(sys.argv[2]))
