"""keras_gon.losses: per-example values, names, serialisation."""

import keras
import numpy as np
import pytest

from keras_gon import losses
from keras_gon.errors import InputError


def test_sum_squared_error_is_per_example_sum(mnist32):
    x = mnist32[1][:4]
    y = np.clip(x + 0.1, 0, 1)
    values = keras.ops.convert_to_numpy(losses.sum_squared_error(x, y))
    assert values.shape == (4,)
    np.testing.assert_allclose(values, ((x - y) ** 2).reshape(4, -1).sum(1), rtol=1e-5)


def test_mean_squared_error_and_bce_match_numpy(mnist32):
    x = mnist32[1][:3]
    y = np.full_like(x, 0.25)
    mse = keras.ops.convert_to_numpy(losses.mean_squared_error(x, y))
    np.testing.assert_allclose(mse, ((x - y) ** 2).reshape(3, -1).mean(1), rtol=1e-5)
    bce = keras.ops.convert_to_numpy(losses.binary_crossentropy(x, y))
    expected = -(x * np.log(y) + (1 - x) * np.log(1 - y)).reshape(3, -1).sum(1)
    np.testing.assert_allclose(bce, expected, rtol=1e-4)


def test_get_and_serialize_round_trip():
    for name in ("sse", "mse", "bce"):
        fn = losses.get(name)
        assert losses.deserialize(losses.serialize(fn)) is fn
    with pytest.raises(InputError, match="unknown loss 'l1'"):
        losses.get("l1")


def _discretized_logistic_numpy(x, location, log_scale):
    """-log P per example of 8-bit images under a discretised logistic, in float64 NumPy.

    Open edge bins; a bin whose mass is below 1e-5 counts as its density at the
    centre times the bin width (PixelCNN++'s rule, which the loss documents).
    """

    def log_sigmoid(v):
        return -np.logaddexp(0.0, -v)

    k = np.round(np.clip(x, 0, 1) * 255)
    log_s = np.maximum(log_scale, losses.LOG_SCALE_MIN)
    s = np.exp(log_s)
    upper = (k / 255 + 0.5 / 255 - location) / s
    lower = (k / 255 - 0.5 / 255 - location) / s
    centre = (k / 255 - location) / s
    delta = np.exp(log_sigmoid(upper)) - np.exp(log_sigmoid(lower))
    log_bin = np.where(
        delta > 1e-5,
        np.log(np.maximum(delta, 1e-300)),
        centre - log_s - 2 * np.logaddexp(0.0, centre) - np.log(255),
    )
    log_p = np.where(k == 0, log_sigmoid(upper), np.where(k == 255, log_sigmoid(-lower), log_bin))
    return -log_p.reshape(len(x), -1).sum(1)


def test_discretized_logistic_is_a_probability_of_8_bit_images():
    # The 256 levels of one pixel sum to 1, whatever the location and scale.
    levels = np.arange(256, dtype="float64")[:, None, None, None] / 255
    for location, log_scale in ((0.3, -3.0), (-0.2, -6.5), (1.4, 0.5), (0.5, -9.0)):
        y_pred = np.concatenate(
            [np.full_like(levels, location), np.full_like(levels, log_scale)], axis=-1
        )
        nll = losses.discretized_logistic_negative_log_likelihood(levels, y_pred).numpy()
        # (bins below 1e-5 use the density at their centre, as PixelCNN++ does)
        assert np.exp(-nll).sum() == pytest.approx(1.0, abs=1e-5)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(3, 4, 4, 1)) / 255.0
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.0, 1.0  # both open edge bins
    location = rng.uniform(-0.2, 1.2, size=x.shape)
    log_scale = rng.uniform(-5, 0, size=x.shape)
    y_pred = np.concatenate([location, log_scale], axis=-1)
    np.testing.assert_allclose(
        losses.discretized_logistic_negative_log_likelihood(x, y_pred).numpy(),
        _discretized_logistic_numpy(x, location, log_scale),
        rtol=1e-6,
    )


def test_discretized_logistic_rounds_to_grey_levels_and_stays_finite():
    x = np.array([[[[0.0]], [[0.5 / 255 * 0.99]], [[1.0]], [[128.4 / 255]]]])
    np.testing.assert_array_equal(losses.grey_levels(x).numpy().ravel(), [0, 0, 255, 128])
    # a location far from the pixel at the smallest scale: a tiny but finite probability
    y_pred = np.concatenate([np.full_like(x, 0.9), np.full_like(x, -20.0)], axis=-1)
    y_true = np.full_like(x, 0.1)
    nll = losses.discretized_logistic_negative_log_likelihood(y_true, y_pred).numpy()
    assert np.all(np.isfinite(nll)) and nll[0] > 100


def test_likelihood_names_say_which_report_bits_per_dim():
    assert losses.LIKELIHOODS[0] == "discretized_logistic"
    assert losses.elbo_metric_names("discretized_logistic")[-1] == "bits_per_dim"
    assert losses.elbo_metric_names("bernoulli")[-1] == "bits_per_dim"
    assert losses.elbo_metric_names("bce")[-1] == "negative_elbo_nats"
    assert losses.elbo_metric_names("gaussian")[-1] == "negative_elbo_nats"
    with pytest.raises(InputError, match="unknown likelihood"):
        losses.check_likelihood("poisson", 0.1)


def test_cross_entropy_from_logits_is_the_cross_entropy_of_the_sigmoid(float64):
    """The same function, gradient and second derivative as `binary_crossentropy` of
    sigmoid(logits), also where the probabilities are clipped (|logit| > logit(1 - ε))."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    logits = tf.constant(
        np.concatenate([rng.normal(0.0, 4.0, (3, 20)), [[20.0, -20.0, 16.5, -16.5] + [0.3] * 16]]),
        tf.float64,
    )
    targets = tf.constant(rng.uniform(size=(4, 20)), tf.float64)
    weights = tf.constant([1.0, 2.0, 3.0, 4.0], tf.float64)
    direction = tf.constant(rng.normal(size=(4, 20)), tf.float64)

    def derivatives(loss):
        with tf.GradientTape() as outer:
            outer.watch(logits)
            with tf.GradientTape() as inner:
                inner.watch(logits)
                values = loss(logits)
                total = tf.reduce_sum(values * weights)
            gradient = inner.gradient(total, logits)
            projected = tf.reduce_sum(gradient * direction)
        return values, gradient, outer.gradient(projected, logits)

    expected = derivatives(lambda v: losses.binary_crossentropy(targets, tf.sigmoid(v)))
    fused = derivatives(lambda v: losses.binary_crossentropy_from_logits(targets, v))
    for a, b in zip(fused, expected):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert float(tf.reduce_max(tf.abs(expected[2]))) > 0.1  # a second derivative to compare


def test_negative_elbo_takes_logits_for_the_bernoulli_likelihoods():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(3, 4, 4, 1)).astype("float32")
    logits = rng.normal(0.0, 3.0, size=(3, 4, 4, 1)).astype("float32")
    mean, log_variance = (rng.normal(size=(3, 5)).astype("float32") for _ in range(2))
    for likelihood in losses.LOGIT_LIKELIHOODS:
        from_logits = losses.negative_elbo(
            x, logits, mean, log_variance, likelihood=likelihood, logits=True
        )
        from_images = losses.negative_elbo(
            x, 1.0 / (1.0 + np.exp(-logits)), mean, log_variance, likelihood=likelihood
        )
        for name, value in from_images.items():
            np.testing.assert_allclose(from_logits[name], value, rtol=1e-5)
    with pytest.raises(ValueError, match="does not take logits"):
        losses.negative_elbo(x, logits, mean, log_variance, likelihood="gaussian", logits=True)
