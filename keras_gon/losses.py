"""Per-example reconstruction losses for Gradient Origin Networks.

Every loss here maps `(y_true, y_pred)` of shape `(batch, ...)` to a vector of
shape `(batch,)`: one value per example, summed over every other axis. The
origin gradient differentiates the *sum* of these over the batch, so each
example's latent depends on that example only (paper eq. 3 applied per
example); the outer loss reported by `fit` is their mean over the batch.
"""

from __future__ import annotations

from typing import Callable

import keras
from keras import ops

from keras_gon.errors import InputError

LossFn = Callable[..., "keras.KerasTensor"]


def _sum_over_features(values):
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="keras_gon")
def sum_squared_error(y_true, y_pred):
    """Summed squared error per example, the paper's GON loss (eqs. 3-4)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    return _sum_over_features(ops.square(y_pred - y_true))


@keras.saving.register_keras_serializable(package="keras_gon")
def mean_squared_error(y_true, y_pred):
    """Mean squared error per example (the implicit GON's loss, eq. 12)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    squared = ops.reshape(ops.square(y_pred - y_true), (ops.shape(y_pred)[0], -1))
    return ops.mean(squared, axis=-1)


@keras.saving.register_keras_serializable(package="keras_gon")
def binary_crossentropy(y_true, y_pred):
    """Bernoulli negative log-likelihood per example, summed over pixels (nats)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    epsilon = keras.backend.epsilon()
    y_pred = ops.clip(y_pred, epsilon, 1.0 - epsilon)
    nll = -(y_true * ops.log(y_pred) + (1.0 - y_true) * ops.log(1.0 - y_pred))
    return _sum_over_features(nll)


_ALIASES = {
    "sse": sum_squared_error,
    "sum_squared_error": sum_squared_error,
    "mse": mean_squared_error,
    "mean_squared_error": mean_squared_error,
    "bce": binary_crossentropy,
    "binary_crossentropy": binary_crossentropy,
}


def get(identifier: str | LossFn) -> LossFn:
    """The per-example loss named `identifier` ("sse", "mse", "bce"), or a callable as is."""
    if callable(identifier):
        return identifier
    if isinstance(identifier, str) and identifier in _ALIASES:
        return _ALIASES[identifier]
    raise InputError(
        f"unknown loss {identifier!r}: expected one of {sorted(_ALIASES)} or a "
        "callable (y_true, y_pred) -> per-example losses of shape (batch,)"
    )


def serialize(loss: str | LossFn) -> str | dict:
    """A config value for `loss`: its name for built-in losses, else Keras serialisation."""
    if isinstance(loss, str):
        return loss
    for name, fn in _ALIASES.items():
        if fn is loss:
            return name
    return keras.saving.serialize_keras_object(loss)


def deserialize(config: str | dict) -> LossFn:
    """Inverse of `serialize`."""
    if isinstance(config, dict):
        return keras.saving.deserialize_keras_object(config)
    return get(config)
