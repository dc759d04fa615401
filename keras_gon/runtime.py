"""Process-wide settings of a training run: seed, op determinism, mixed precision.

`run_settings(...)` applies them for the length of a `with` block and puts the
previous dtype policy and determinism setting back afterwards, so a command
run in-process (tests, notebooks) leaves no global state behind.

Mixed precision keeps the GON's latents in float32: the core computes them
in the variables' dtype (`GradientOriginModel.latent_dtype`), the decoder's
output layer computes in float32, and only the outer loss is scaled by the
optimizer (`LossScaleOptimizer` under "mixed_float16"), never the inner loss
whose gradient is the latent.
"""

from __future__ import annotations

import contextlib

from keras_gon.errors import InputError

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@contextlib.contextmanager
def run_settings(
    seed: int | None = None, deterministic: bool = False, precision: str | None = None
):
    """Seeds every generator, optionally makes ops deterministic and sets the dtype policy.

    Args:
        seed: seed of Python, NumPy, TensorFlow and Keras (`keras.utils.set_random_seed`).
        deterministic: `tf.config.experimental.enable_op_determinism()`: the
            same seed gives bit-identical results (ops without a deterministic
            kernel raise an error instead of running).
        precision: a Keras dtype policy from `PRECISIONS` (None: leave it).
    """
    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    if precision is not None and precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}: expected one of {PRECISIONS}")
    if deterministic and seed is None:
        raise InputError("deterministic training needs a seed")
    previous_policy = keras.config.dtype_policy()
    was_deterministic = tf_config.is_op_determinism_enabled()
    try:
        if seed is not None:
            keras.utils.set_random_seed(seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        if precision is not None:
            keras.mixed_precision.set_global_policy(precision)
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
        if deterministic and not was_deterministic:
            tf_config.disable_op_determinism()
