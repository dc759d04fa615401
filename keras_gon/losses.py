"""Per-example reconstruction losses for Gradient Origin Networks.

Every loss here maps `(y_true, y_pred)` of shape `(batch, ...)` to a vector of
shape `(batch,)`: one value per example, summed over every other axis. The
origin gradient differentiates the *sum* of these over the batch, so each
example's latent depends on that example only (paper eq. 8 applied per
example); the outer loss reported by `fit` is their mean over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import tensorflow as tf
from keras import ops

from keras_gon import options
from keras_gon.errors import InputError

LossFn = Callable[..., "keras.KerasTensor"]


def _sum_over_features(values):
    return ops.sum(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package="keras_gon")
def sum_squared_error(y_true, y_pred):
    """Summed squared error per example, the paper's GON loss (eq. 8)."""
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


def binary_crossentropy_from_logits(y_true, logits):
    """`binary_crossentropy(y_true, sigmoid(logits))` per example, computed from the logits.

    The same function: probabilities clipped to [ε, 1 - ε] are logits clipped to
    ±log((1 - ε) / ε), where the cross-entropy is softplus(l) - y l, and its derivative
    sigmoid(l) - y (zero outside the clip, as the clip's) is written in closed form:
    the sigmoid, the clip and both logarithms are not differentiated op by op. The
    derivative is plain ops, differentiated again by an enclosing tape, so second-order
    gradients (the variational GON's) stay exact.
    """
    logits = ops.convert_to_tensor(logits)
    y_true = ops.cast(y_true, logits.dtype)
    epsilon = keras.backend.epsilon()
    bound = math.log1p(-epsilon) - math.log(epsilon)  # logit(1 - ε) = -logit(ε)

    @tf.custom_gradient
    def cross_entropy(logits):
        clipped = tf.clip_by_value(logits, -bound, bound)

        def gradient(upstream):
            inside = tf.cast(tf.abs(logits) <= bound, logits.dtype)
            return upstream * inside * (tf.sigmoid(clipped) - y_true)

        return tf.nn.softplus(clipped) - y_true * clipped, gradient

    return _sum_over_features(cross_entropy(logits))


def output_gradient(loss: LossFn, y_true, y_pred):
    """∂ loss(y_true, y_pred)_i / ∂ y_pred for the built-in losses, in closed form (None otherwise).

    Plain ops, differentiable again: the GON's shared origin uses it instead of
    a gradient tape, so its second-order terms stay exact and an exported
    encoder holds no gradient op (ONNX converts it).
    """
    y_true = ops.cast(y_true, y_pred.dtype)
    if loss is sum_squared_error:
        return 2.0 * (y_pred - y_true)
    if loss is mean_squared_error:
        size = ops.cast(ops.prod(ops.shape(y_pred)[1:]), y_pred.dtype)
        return 2.0 * (y_pred - y_true) / size
    if loss is binary_crossentropy:
        epsilon = keras.backend.epsilon()
        clipped = ops.clip(y_pred, epsilon, 1.0 - epsilon)
        inside = ops.cast((y_pred > epsilon) & (y_pred < 1.0 - epsilon), y_pred.dtype)
        return inside * (clipped - y_true) / (clipped * (1.0 - clipped))
    return None


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

LIKELIHOODS = options.LIKELIHOODS
"""Decoder likelihoods p(x|z) of `negative_elbo`:

- `"discretized_logistic"` (the default): each pixel is one of 256 grey levels
  (x rounded to k/255), with a logistic density of per-pixel location (the
  decoder's sigmoid output) and scale (a second output channel per image
  channel) integrated over the level's bin of width 1/255, the edge bins open
  (PixelCNN++'s likelihood). A probability of the 8-bit image: its -ELBO over
  D ln 2 is a real bits/dim, comparable with published figures.
- `"bernoulli"`: a Bernoulli likelihood of the image binarised at 0.5; a real
  bits/dim of the binarised image.
- `"bce"`: the authors' binary cross-entropy on grey levels (their
  Variational-GON.py). Not a normalised likelihood of grey levels: its -ELBO
  is reported in nats (`negative_elbo_nats`), never as bits/dim.
- `"gaussian"`: a Gaussian density of fixed standard deviation on [0, 1]; a
  density, not a probability of 8-bit data: nats only.
"""

LOGIT_LIKELIHOODS = ("bernoulli", "bce")
"""Likelihoods that `negative_elbo(..., logits=True)` evaluates on the decoder's logits,
the sigmoid fused into the cross-entropy (`binary_crossentropy_from_logits`)."""

BITS_PER_DIM_LIKELIHOODS = ("discretized_logistic", "bernoulli")
"""Likelihoods that are probabilities of the data as stored, so -ELBO / (D ln 2) is bits/dim."""

GREY_LEVELS = 256
LOG_SCALE_MIN = -7.0
"""Floor of the discretised logistic's log-scale (e^-7 ≈ 0.0009, a quarter of a grey level):
bounds the gradient of the likelihood, which the variational GON's latent is."""


def likelihood_parameters(likelihood: str) -> int:
    """Decoder output channels per image channel that `likelihood` needs (2: location and scale)."""
    return 2 if likelihood == "discretized_logistic" else 1


def elbo_metric_names(likelihood: str) -> tuple[str, ...]:
    """The per-example terms `negative_elbo` returns next to `loss` for `likelihood`."""
    last = "bits_per_dim" if likelihood in BITS_PER_DIM_LIKELIHOODS else "negative_elbo_nats"
    return ("reconstruction_loss", "kl_loss", last)


def grey_levels(y_true):
    """Pixels in [0, 1] as integer grey levels k in {0, ..., 255} (float): round(255 x).

    Images from 8-bit sources are exact multiples of 1/255; resized ones are
    rounded to the nearest level, as PIL's 8-bit resize in the authors' pipeline does.
    """
    top = GREY_LEVELS - 1
    return ops.round(ops.clip(y_true, 0.0, 1.0) * top)


@keras.saving.register_keras_serializable(package="keras_gon")
def discretized_logistic_negative_log_likelihood(y_true, y_pred):
    """-log P(x) per example (nats) of 8-bit images under a discretised logistic.

    `y_true` is (batch, H, W, C) in [0, 1]; `y_pred` (batch, H, W, 2C): the
    location μ (unbounded) in its first C channels and the log-scale log s in
    the last C. Pixel k/255 has probability σ((k + ½)/255 - μ)/s) -
    σ(((k - ½)/255 - μ)/s), with the bins of levels 0 and 255 extended to
    -∞ and +∞, so the probabilities of the 256 levels sum to 1.
    """
    channels = ops.shape(y_true)[-1]
    y_true = ops.cast(y_true, y_pred.dtype)
    location = y_pred[..., :channels]
    log_scale = ops.maximum(y_pred[..., channels:], LOG_SCALE_MIN)
    top = float(GREY_LEVELS - 1)
    levels = grey_levels(y_true)
    centered = levels / top - location
    inverse_scale = ops.exp(-log_scale)
    upper = inverse_scale * (centered + 0.5 / top)
    lower = inverse_scale * (centered - 0.5 / top)
    log_cdf_upper = upper - ops.softplus(upper)  # log σ(upper): the open bin of level 0
    log_survival_lower = -ops.softplus(lower)  # log(1 - σ(lower)): the open bin of level 255
    delta = ops.sigmoid(upper) - ops.sigmoid(lower)
    middle = inverse_scale * centered
    # Where the bin's mass underflows float32, its density at the centre times the width.
    log_density_mass = middle - log_scale - 2.0 * ops.softplus(middle) - math.log(top)
    log_bin = ops.where(delta > 1e-5, ops.log(ops.maximum(delta, 1e-12)), log_density_mass)
    log_probability = ops.where(
        levels < 0.5, log_cdf_upper, ops.where(levels > top - 0.5, log_survival_lower, log_bin)
    )
    return -_sum_over_features(log_probability)


@keras.saving.register_keras_serializable(package="keras_gon")
def binarized_bernoulli_negative_log_likelihood(y_true, y_pred, logits: bool = False):
    """-log P(b) per example (nats) of the image binarised at 0.5, b = [x > 0.5], p = y_pred
    (or sigmoid(y_pred) with `logits`)."""
    binary = ops.cast(ops.greater(ops.cast(y_true, y_pred.dtype), 0.5), y_pred.dtype)
    if logits:
        return binary_crossentropy_from_logits(binary, y_pred)
    return binary_crossentropy(binary, y_pred)


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
    """-log N(latents; 0, variance I) per example, e.g. the GON's origin prior N(0, 2I) (eq. 9)."""
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
    try:
        stddev = float(likelihood_stddev)
    except (TypeError, ValueError):
        raise InputError(
            f"likelihood_stddev must be a positive number, got {likelihood_stddev!r}"
        ) from None
    if not (stddev > 0 and math.isfinite(stddev)):
        raise InputError(f"likelihood_stddev must be a positive number, got {likelihood_stddev}")
    return likelihood, stddev


def reconstruction_negative_log_likelihood(
    y_true, y_pred, likelihood: str, likelihood_stddev: float = 0.1, logits: bool = False
):
    """-log p(x|z) per example (nats) of the decoder output `y_pred` under `likelihood`;
    with `logits` (only for `LOGIT_LIKELIHOODS`) `y_pred` is the output before the sigmoid."""
    if logits and likelihood not in LOGIT_LIKELIHOODS:
        raise ValueError(f"likelihood {likelihood!r} does not take logits")
    if likelihood == "discretized_logistic":
        return discretized_logistic_negative_log_likelihood(y_true, y_pred)
    if likelihood == "bernoulli":
        return binarized_bernoulli_negative_log_likelihood(y_true, y_pred, logits=logits)
    if likelihood == "bce":
        return (binary_crossentropy_from_logits if logits else binary_crossentropy)(y_true, y_pred)
    if likelihood == "gaussian":
        return gaussian_negative_log_likelihood(y_true, y_pred, likelihood_stddev)
    check_likelihood(likelihood, likelihood_stddev)  # raises for an unknown name
    raise AssertionError(likelihood)


def negative_elbo(
    y_true,
    y_pred,
    mean,
    log_variance,
    *,
    likelihood: str = "discretized_logistic",
    likelihood_stddev: float = 0.1,
    kl_weight=1.0,
    logits: bool = False,
) -> dict:
    """Per-example negative ELBO of a Gaussian posterior q(z|x) = N(mean, exp(log_variance)).

    -ELBO = -log p(x|z) + KL(q(z|x) || N(0, I)) (paper eq. 10), with y_pred = F(z)
    for one z ~ q(z|x) (a one-sample Monte Carlo estimate). Returns a dict of
    `(batch,)` tensors: `loss` (reconstruction + kl_weight * KL, the β-weighted
    objective), `reconstruction_loss` (-log p(x|z), nats), `kl_loss` (nats) and
    the bound with β = 1, whatever β is: `bits_per_dim` (over D ln 2) for the
    likelihoods that are probabilities of the data (`BITS_PER_DIM_LIKELIHOODS`),
    else `negative_elbo_nats`. With `logits` (`LOGIT_LIKELIHOODS` only), y_pred is the
    decoder's output before its sigmoid.
    """
    reconstruction = reconstruction_negative_log_likelihood(
        y_true, y_pred, likelihood, likelihood_stddev, logits=logits
    )
    kl = ops.cast(gaussian_kl_divergence(mean, log_variance), reconstruction.dtype)
    bound = reconstruction + kl
    terms = {
        "loss": reconstruction + ops.cast(kl_weight, kl.dtype) * kl,
        "reconstruction_loss": reconstruction,
        "kl_loss": kl,
    }
    if likelihood in BITS_PER_DIM_LIKELIHOODS:
        terms["bits_per_dim"] = bits_per_dim(bound, y_true)
    else:
        terms["negative_elbo_nats"] = bound
    return terms
