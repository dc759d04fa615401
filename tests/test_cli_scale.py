"""`keras-gon train` at scale: --resume after a kill, --deterministic, --mixed-precision, --strategy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
from tensorflow.python.framework import config as tf_config

from helpers import NPZ, assert_one_error_line, run_cli, train_run

EPOCHS = 4
STEPS_PER_EPOCH = 8000 // 256
SMALL_MODEL = ["--image-size", "16", "--width", "4", "--latent-dim", "8"]
# Small and fast: 16x16 mnist10k, 31 steps per epoch, 4 epochs.
RUN = [
    "--data",
    NPZ,
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "256",
    *SMALL_MODEL,
    "--seed",
    "0",
    "--deterministic",
]
KILL_AFTER_EPOCH = 2
KILL_TIMEOUT = 300  # seconds; the run is killed or fails, it never hangs CI


def _train(argv, capsys):
    return run_cli(["train", "gon", *argv], capsys)


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def _weights(out: Path):
    return keras.saving.load_model(out / "model.keras").get_weights()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return train_run(tmp_path_factory, "gon", *RUN, "--verbose", "0")


def test_deterministic_runs_are_bit_identical(uninterrupted, tmp_path, capsys):
    status, _, err = _train([*RUN, "--out", tmp_path, "--verbose", "0"], capsys)
    assert status == 0, err
    first, second = _metrics(uninterrupted), _metrics(tmp_path)
    assert first["deterministic"] and first["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert not first["jit_compile"]  # Keras turns XLA off under op determinism
    # (On this CPU two runs without --deterministic were bit-identical too, with XLA;
    # op determinism matters on GPUs, where some kernels use atomics.)
    assert (second["train_loss"], second["test_loss"]) == (first["train_loss"], first["test_loss"])
    for a, b in zip(_weights(uninterrupted), _weights(tmp_path)):
        np.testing.assert_array_equal(a, b)
    assert not tf_config.is_op_determinism_enabled()  # the command puts the setting back


def test_resume_after_sigkill_completes_the_uninterrupted_step_count(
    uninterrupted, tmp_path, capsys
):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "keras_gon",
            "train",
            "gon",
            *RUN,
            "--out",
            str(out),
            "--verbose",
            "2",
        ],
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state_path = out / "backup" / "state.json"
    deadline = time.monotonic() + KILL_TIMEOUT
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if (
                state_path.is_file()
                and json.loads(state_path.read_text())["epoch"] >= KILL_AFTER_EPOCH
            ):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
    finally:
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
        process.wait()
    assert process.returncode == -signal.SIGKILL
    killed = json.loads(state_path.read_text())
    assert KILL_AFTER_EPOCH <= killed["epoch"] < EPOCHS
    assert killed["steps"] == killed["epoch"] * STEPS_PER_EPOCH
    assert not (out / "model.keras").exists()

    status, _, err = _train([*RUN, "--out", out, "--resume", "--verbose", "0"], capsys)
    assert status == 0, err
    resumed, reference = _metrics(out), _metrics(uninterrupted)
    assert resumed["steps"] == reference["steps"] == EPOCHS * STEPS_PER_EPOCH
    assert resumed["epochs"] == reference["epochs"] == EPOCHS
    assert resumed["resumed_from_epoch"] == killed["epoch"]
    assert not (out / "backup").exists()  # removed once the results were written
    # Only the data order after the restart differs (the shuffle starts over). Measured
    # (killed after epoch 2): held-out loss 36.657 resumed vs 36.656 uninterrupted.
    assert resumed["test_loss"] == pytest.approx(reference["test_loss"], rel=1e-3)

    status, _, err = _train([*RUN, "--out", out, "--resume", "--verbose", "0"], capsys)
    assert_one_error_line(status, err, "nothing to resume")


def test_mixed_bfloat16_trains_with_float32_latents(mnist32, tmp_path, capsys):
    status, _, err = _train(
        [
            "--data",
            NPZ,
            "--steps",
            "40",
            *SMALL_MODEL,
            "--mixed-precision",
            "mixed_bfloat16",
            "--out",
            tmp_path,
            "--verbose",
            "0",
        ],
        capsys,
    )
    assert status == 0, err
    assert keras.config.dtype_policy().name == "float32"  # restored after the command
    metrics = _metrics(tmp_path)
    assert metrics["mixed_precision"] == "mixed_bfloat16"
    # Measured held-out loss after 40 steps: 44.07 in bfloat16, 44.06 in float32;
    # 48.29 untrained (same seed).
    assert np.isfinite(metrics["train_loss"]) and metrics["test_loss"] < 46.0
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.dtype_policy.name == "mixed_bfloat16"
    assert model.decoder.compute_dtype == "bfloat16"
    assert all(np.all(np.isfinite(w)) and w.dtype == np.float32 for w in model.get_weights())
    x = keras.ops.image.resize(mnist32[1][:8], (16, 16)).numpy().clip(0, 1)
    latents, _ = model.origin_latents(keras.ops.convert_to_tensor(x), training=True)
    assert latents.dtype == "float32" and model.encode(x).dtype == "float32"
    assert np.all(np.isfinite(latents.numpy()))


def test_resume_and_strategy_errors(tmp_path, capsys, monkeypatch):
    small = [
        "--data",
        NPZ,
        "--width",
        "4",
        "--latent-dim",
        "8",
        "--image-size",
        "16",
        "--verbose",
        "0",
    ]

    def refused(argv, fragment):
        assert_one_error_line(*_train([*small, *argv], capsys)[::2], fragment)

    refused(["--resume"], "--resume needs --out")
    refused(["--steps", "3", "--resume", "--out", tmp_path], "--resume needs --epochs")
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "state.json").write_text("{}")
    refused(["--out", tmp_path], "holds an interrupted run")
    refused(["--out", tmp_path, "--resume"], "cannot read the backup")
    monkeypatch.delenv("TPU_NAME", raising=False)
    refused(["--strategy", "tpu"], "--strategy tpu: no TPU found")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    refused(["--strategy", "multiworker"], "needs the TF_CONFIG")
