"""Dense layers initialised as PyTorch's, for the paper's architectures."""

from __future__ import annotations

import math

import keras


def pytorch_dense(units: int, fan_in: int, name: str, dtype=None) -> keras.layers.Dense:
    """A Dense layer initialised as PyTorch's nn.Linear (uniform in ±1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.layers.Dense(
        units,
        kernel_initializer=keras.initializers.VarianceScaling(
            1.0 / 3.0, mode="fan_in", distribution="uniform"
        ),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        dtype=dtype,
        name=name,
    )
