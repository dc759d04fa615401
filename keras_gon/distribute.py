"""TensorFlow distribution strategies for training GONs with `model.fit`.

Build and compile the model inside `strategy.scope()`; Keras's TF trainer then
runs `train_step` once per replica (`strategy.run`) on a slice of the global
batch, and the optimizer sums the replicas' gradients (an all-reduce).
`GradientOriginModel.train_step` divides each replica's mean loss by
`num_replicas_in_sync`, as Keras's own losses do, so one step on N replicas
equals one step on one device with the same global batch.

```python
strategy = keras_gon.distribute.make_strategy("mirrored")
with strategy.scope():
    model = keras_gon.GON(image_shape=(32, 32, 1))
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
model.fit(train_ds)          # train_ds batched with the *global* batch size
```

- "default": no distribution (one device).
- "mirrored": `tf.distribute.MirroredStrategy`, every local GPU (or the CPU).
- "multiworker": `tf.distribute.MultiWorkerMirroredStrategy` across machines
  described by the `TF_CONFIG` environment variable; create it before any
  other TensorFlow operation runs in the process.
- "tpu": `tf.distribute.TPUStrategy` on the TPU named by `tpu` (or the
  `TPU_NAME` environment variable; "local" on a TPU VM).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keras_gon.errors import InputError

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _check_tf_config() -> dict:
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise InputError(
            "--strategy multiworker needs the TF_CONFIG environment variable "
            '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}})'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"TF_CONFIG is not valid JSON: {error}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise InputError('TF_CONFIG needs a "cluster" and a "task" entry')
    task_type, index = task.get("type"), task.get("index")
    members = cluster.get(task_type)
    if not isinstance(members, list) or not isinstance(index, int) or not 0 <= index < len(members):
        raise InputError(
            f"TF_CONFIG task {task_type!r} #{index} is not in its cluster {sorted(cluster)}"
        )
    return config


def make_strategy(name: str = "default", tpu: str | None = None):
    """The `tf.distribute.Strategy` called `name` (one of `STRATEGIES`).

    Raises `InputError` for an unknown name, a missing or malformed
    `TF_CONFIG` ("multiworker"), or no reachable TPU ("tpu").
    """
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        _check_tf_config()
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (RuntimeError, ValueError) as error:
            raise InputError(f"--strategy multiworker: {_first_line(error)}") from None
    if name == "tpu":
        address = tpu if tpu is not None else os.environ.get("TPU_NAME")
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            raise InputError(
                f"--strategy tpu: no TPU found at {address or '(no TPU_NAME)'}: "
                f"{_first_line(error)}"
            ) from None
    raise InputError(f"unknown strategy {name!r}: expected one of {STRATEGIES}")


def scale_loss_for_replicas(loss):
    """`loss / num_replicas_in_sync` of the current strategy (`loss` itself on one replica).

    In a custom `train_step`, differentiate this, not the replica's mean
    loss: the optimizer sums the replicas' gradients (Keras 3's TF
    optimizer all-reduces with `ReduceOp.SUM`), and Keras's own losses
    divide by the number of replicas the same way.
    """
    import tensorflow as tf

    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return loss
    return loss * tf.cast(1.0 / replicas, loss.dtype)


def batch_normal(shape, seed_generator, stddev: float = 1.0, dtype="float32"):
    """N(0, stddev²) noise for a batch, the same under a `tf.distribute` strategy as on one device.

    On one device: `keras.random.normal(shape)`. Under a strategy with R
    replicas (whose seed generators hold the same state) each replica draws the
    noise of the whole global batch, (R * batch, ...), and keeps its own rows,
    so the step equals the single-device step on the same global batch
    (replicas holding batches of equal size, as `fit` splits a global batch of
    a multiple of R).
    """
    import keras
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return keras.random.normal(shape, stddev=stddev, seed=seed_generator, dtype=dtype)
    replicas = context.num_replicas_in_sync
    rows = shape[0]
    full = keras.random.normal(
        tf.concat([[replicas * rows], tf.convert_to_tensor(shape)[1:]], axis=0),
        stddev=stddev,
        seed=seed_generator,
        dtype=dtype,
    )
    start = tf.cast(context.replica_id_in_sync_group, tf.int32) * rows
    return full[start : start + rows]


def step_logs(logs: dict) -> dict:
    """A `train_step`/`test_step`'s metric results, shaped for Keras's cross-worker reduction.

    On a multi-worker cluster, Keras 3's TF trainer reduces each
    step's outputs with `strategy.reduce("MEAN", value, axis=0)`, which fails
    for the scalars every step returns ("Invalid reduction dimension 0 for
    input with 0 dimensions", tensorflow/tensorflow#72388). There, each
    result is returned as a 1-vector, which that reduction turns back into
    the scalar mean; elsewhere `logs` is returned as is.
    """
    import tensorflow as tf

    extended = tf.distribute.get_strategy().extended
    if not getattr(extended, "_in_multi_worker_mode", lambda: False)():
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def is_distributed(model=None) -> bool:
    """Whether `model` was built under a `tf.distribute` strategy (or, without a
    model, whether one is in scope), so its steps run per replica."""
    import tensorflow as tf

    strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    with strategy.scope():
        return tf.distribute.has_strategy()


def has_accelerator() -> bool:
    """Whether TensorFlow sees a GPU or a TPU here (else the steps run on the CPU)."""
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def is_chief(strategy=None) -> bool:
    """Whether this process writes the run's outputs: always, except on a
    multi-worker cluster, where only the chief (or worker 0 without a chief) does."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return True
    task_id = getattr(resolver, "task_id", 0) or 0
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_dir(strategy, out: Path) -> Path:
    """Where this process writes a run: `out` on the chief, `out/<task>-<index>` elsewhere.

    (Every worker of a multi-worker run holds the same weights; the others'
    copies go to subfolders, so workers sharing a file system never overwrite
    the chief's files.)
    """
    if is_chief(strategy):
        return Path(out)
    resolver = strategy.cluster_resolver
    return Path(out) / f"{resolver.task_type}-{resolver.task_id}"
