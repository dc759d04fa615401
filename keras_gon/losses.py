"""Per-example reconstruction losses for Gradient Origin Networks.

Every loss here maps `(y_true, y_pred)` of shape `(batch, ...)` to a vector of
shape `(batch,)`: one value per example, summed over every other axis. The
origin gradient differentiates the *sum* of these over the batch, so each
example's latent depends on that example only (paper eq. 3 applied per
example); the outer loss reported by `fit` is their mean over the batch.
"""

from __future__ import annotations

import math
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


# --- The evidence lower bound of the variational models (paper §3.3) --------------

LIKELIHOODS = ("bernoulli", "gaussian")
"""Decoder likelihoods p(x|z) of `negative_elbo`: Bernoulli (binary cross-entropy) or
Gaussian with a fixed standard deviation."""


@keras.saving.register_keras_serializable(package="keras_gon")
def gaussian_negative_log_likelihood(y_true, y_pred, stddev: float = 0.1):
    """-log N(y_true; y_pred, stddev² I) per example, summed over pixels (nats)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    scaled = (y_true - y_pred) / stddev
    nll = 0.5 * ops.square(scaled) + math.log(stddev) + 0.5 * math.log(2.0 * math.pi)
    return _sum_over_features(nll)


def gaussian_kl_divergence(mean, log_variance):
    """KL(N(mean, exp(log_variance)) || N(0, I)) per example (Kingma & Welling 2014, app. B)."""
    return 0.5 * ops.sum(ops.exp(log_variance) + ops.square(mean) - 1.0 - log_variance, axis=-1)


def gaussian_negative_log_density(latents, variance: float = 1.0):
    """-log N(latents; 0, variance I) per example, e.g. the GON's origin prior N(0, 2I) (eq. 10)."""
    dim = ops.cast(ops.shape(latents)[-1], latents.dtype)
    return 0.5 * ops.sum(ops.square(latents), axis=-1) / variance + 0.5 * dim * math.log(
        2.0 * math.pi * variance
    )


def bits_per_dim(nats, y_true):
    """Per-example nats -> bits per dimension: nats / (D ln 2), D = pixels x channels of y_true."""
    dims = ops.cast(ops.prod(ops.shape(y_true)[1:]), nats.dtype)
    return nats / (dims * math.log(2.0))


def check_likelihood(likelihood: str, likelihood_stddev: float) -> tuple[str, float]:
    """Validated `(likelihood, likelihood_stddev)` for `negative_elbo`."""
    if likelihood not in LIKELIHOODS:
        raise InputError(f"unknown likelihood {likelihood!r}: expected one of {LIKELIHOODS}")
    stddev = float(likelihood_stddev)
    if not (stddev > 0 and math.isfinite(stddev)):
        raise InputError(f"likelihood_stddev must be a positive number, got {likelihood_stddev}")
    return likelihood, stddev


def negative_elbo(y_true, y_pred, mean, log_variance, *, likelihood: str = "bernoulli",
                  likelihood_stddev: float = 0.1, kl_weight=1.0) -> dict:
    """Per-example negative ELBO of a Gaussian posterior q(z|x) = N(mean, exp(log_variance)).

    -ELBO = -log p(x|z) + KL(q(z|x) || N(0, I)) (paper eq. 9), with y_pred = F(z)
    for one z ~ q(z|x) (a one-sample Monte Carlo estimate). Returns a dict of
    `(batch,)` tensors: `loss` (reconstruction + kl_weight * KL, the β-weighted
    objective), `reconstruction_loss` (-log p(x|z), nats), `kl_loss` (nats) and
    `bits_per_dim` (-ELBO with β = 1 over D ln 2: the bound, whatever β is).
    """
    if likelihood == "bernoulli":
        reconstruction = binary_crossentropy(y_true, y_pred)
    elif likelihood == "gaussian":
        reconstruction = gaussian_negative_log_likelihood(y_true, y_pred, likelihood_stddev)
    else:
        check_likelihood(likelihood, likelihood_stddev)
    kl = ops.cast(gaussian_kl_divergence(mean, log_variance), reconstruction.dtype)
    return {
        "loss": reconstruction + ops.cast(kl_weight, kl.dtype) * kl,
        "reconstruction_loss": reconstruction,
        "kl_loss": kl,
        "bits_per_dim": bits_per_dim(reconstruction + kl, y_true),
    }
