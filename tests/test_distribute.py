"""keras_gon.distribute: one GON step under Mirrored / MultiWorkerMirrored equals the single-device step.

The distributed runs need a fresh process (logical CPU devices must be set
before TensorFlow initialises; a multi-worker cluster is one process per
worker), so this module is also a script: `python tests/test_distribute.py
mirrored|multiworker OUT.npz` runs `one_step` and saves the results.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve()
GLOBAL_BATCH = 32
# SGD, not Adam: Adam's first update is lr * sign(g) whatever the gradient's
# scale, so it would hide a missing 1/replicas. With SGD the largest weight
# update of this step is 0.016 (measured), so a gradient summed over 2
# replicas without the scaling would be off by ~0.016, far above TOLERANCE.
LEARNING_RATE = 1e-4
TOLERANCE = 1e-5
WORKER_TIMEOUT = 300  # seconds; a hung collective fails the test, never CI


def global_batch() -> np.ndarray:
    """The first GLOBAL_BATCH real mnist10k digits, float32 (B, 32, 32, 1) in [0, 1]."""
    import tensorflow as tf

    from helpers import MNIST10K  # (as a script too: tests/ is its sys.path[0])

    with np.load(MNIST10K) as data:
        images = data["x_train"][:GLOBAL_BATCH]
    x = tf.image.resize(images[..., None].astype("float32") / 255.0, (32, 32))
    return x.numpy().clip(0.0, 1.0)


def one_step(strategy, normalization: str = "layer") -> dict:
    """One `fit` step of a seeded GON on the global batch under `strategy`."""
    import keras
    import tensorflow as tf

    import keras_gon

    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras_gon.GON(
            image_shape=(32, 32, 1), latent_dim=8, width=4, normalization=normalization
        )
        # The same kernels everywhere (the default is XLA on one device only),
        # so the comparison isolates the strategy.
        model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), jit_compile=False)
    before = [np.array(w) for w in model.get_weights()]
    dataset = tf.data.Dataset.from_tensor_slices(global_batch()).batch(GLOBAL_BATCH)
    history = model.fit(dataset, epochs=1, verbose=0).history
    result = {f"before_{i}": w for i, w in enumerate(before)}
    result.update({f"after_{i}": np.array(w) for i, w in enumerate(model.get_weights())})
    result.update(
        loss=history["loss"][0],
        inner_loss=history["inner_loss"][0],
        replicas=strategy.num_replicas_in_sync,
    )
    return result


def _weights(result, prefix):
    return [
        result[k]
        for k in sorted(
            (k for k in result if k.startswith(prefix)), key=lambda k: int(k.split("_")[1])
        )
    ]


def _max_difference(a, b, prefix="after_"):
    return max(
        float(np.max(np.abs(x - y))) for x, y in zip(_weights(a, prefix), _weights(b, prefix))
    )


def _load(path) -> dict:
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _script(mode, out, env=None):
    return subprocess.Popen(
        [sys.executable, str(HERE), mode, str(out)],
        env=dict(os.environ if env is None else env, TF_CPP_MIN_LOG_LEVEL="2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(processes):
    outputs = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=WORKER_TIMEOUT)
            outputs.append(output)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    return outputs


@pytest.fixture(scope="module")
def single():
    """The reference: the same step on one device (in this process)."""
    import tensorflow as tf

    return one_step(tf.distribute.get_strategy())


def test_mirrored_step_on_two_devices_equals_single_device_step(tmp_path, single):
    _wait([_script("mirrored", tmp_path / "mirrored.npz")])
    mirrored = _load(tmp_path / "mirrored.npz")
    assert int(mirrored["replicas"]) == 2 and int(single["replicas"]) == 1
    assert _max_difference(single, mirrored, "before_") == 0.0  # same initial weights
    update = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(_weights(single, "after_"), _weights(single, "before_"))
    )
    assert update > 1e-3, update  # the step moves the weights: the comparison can fail
    # Measured: max |Δw| 1.5e-8, |Δloss| 0 (loss 195.335).
    assert _max_difference(single, mirrored) < TOLERANCE
    assert float(mirrored["loss"]) == pytest.approx(float(single["loss"]), rel=TOLERANCE)
    assert float(mirrored["inner_loss"]) == pytest.approx(
        float(single["inner_loss"]), rel=TOLERANCE
    )


def test_multiworker_workers_end_identical_and_equal_the_single_process_step(tmp_path, single):
    ports = [_free_port(), _free_port()]
    workers = []
    for index in range(2):
        config = {
            "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
            "task": {"type": "worker", "index": index},
        }
        env = dict(os.environ, TF_CONFIG=json.dumps(config))
        workers.append(_script("multiworker", tmp_path / f"worker{index}.npz", env))
    _wait(workers)
    first, second = (_load(tmp_path / f"worker{index}.npz") for index in range(2))
    assert int(first["replicas"]) == int(second["replicas"]) == 2
    for a, b in zip(_weights(first, "after_"), _weights(second, "after_")):
        np.testing.assert_array_equal(a, b)
    # Measured: max |Δw| 1.5e-8, |Δloss| 0, the same as the mirrored step.
    assert _max_difference(single, first) < TOLERANCE
    assert float(first["loss"]) == pytest.approx(float(single["loss"]), rel=TOLERANCE)


def test_make_strategy_names_and_errors(monkeypatch):
    from keras_gon.distribute import STRATEGIES, is_chief, make_strategy
    from keras_gon.errors import InputError

    assert STRATEGIES == ("default", "mirrored", "multiworker", "tpu")
    default = make_strategy("default")
    assert default.num_replicas_in_sync == 1 and is_chief(default)
    with pytest.raises(InputError, match="unknown strategy 'horovod'"):
        make_strategy("horovod")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(InputError, match="needs the TF_CONFIG environment variable"):
        make_strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(InputError, match="TF_CONFIG is not valid JSON"):
        make_strategy("multiworker")
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
    )
    with pytest.raises(InputError, match="task 'worker' #3 is not in its cluster"):
        make_strategy("multiworker")
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(InputError, match="--strategy tpu: no TPU found"):
        make_strategy("tpu")


def _main(mode: str, out: Path) -> None:
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    else:
        from keras_gon.distribute import make_strategy

        strategy = make_strategy("multiworker")  # TF_CONFIG names this worker
    np.savez(out, **one_step(strategy))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    _main(sys.argv[1], Path(sys.argv[2]))
