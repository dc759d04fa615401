"""keras_gon.layers.GroupNormalization: per-example statistics, exact gradients, serialisation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gon.layers import GroupNormalization
from keras_gon.layers.group_normalization import group_normalize


def test_layer_normalization_is_per_example(mnist32):
    x = np.repeat(mnist32[1][:4], 4, axis=-1)  # 4 channels
    layer = GroupNormalization(groups=1)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y.reshape(4, -1).mean(1), 0.0, atol=1e-5)
    alone = keras.ops.convert_to_numpy(layer(x[:1]))
    np.testing.assert_allclose(alone, y[:1], rtol=1e-5, atol=1e-6)


def test_groups_must_divide_channels():
    with pytest.raises(ValueError, match="groups=3"):
        GroupNormalization(groups=3).build((None, 4, 4, 8))


def test_config_round_trip():
    layer = GroupNormalization(groups=4, epsilon=1e-3)
    assert GroupNormalization.from_config(layer.get_config()).get_config() == layer.get_config()


def _reference_group_norm(x, gamma, beta, groups, epsilon=1e-5):
    """Group norm as plain ops, differentiated by TensorFlow (the formula the layer replaces)."""
    shape = tf.shape(x)
    grouped = tf.reshape(x, (shape[0], -1, groups, x.shape[-1] // groups))
    mean = tf.reduce_mean(grouped, axis=(1, 3), keepdims=True)
    variance = tf.reduce_mean(tf.square(grouped - mean), axis=(1, 3), keepdims=True)
    normalized = tf.reshape((grouped - mean) * tf.math.rsqrt(variance + epsilon), shape)
    return normalized * gamma + beta


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("traced", [False, True], ids=["eager", "tf.function"])
def test_hand_written_gradient_is_exact_to_second_order(float64, mnist32, groups, traced):
    """First and second derivatives of `group_normalize` against TensorFlow's of the plain ops."""
    rng = np.random.default_rng(0)
    x = tf.constant(np.concatenate([mnist32[1][:3], mnist32[1][3:6] ** 2], axis=-1), tf.float64)
    x = x + 0.1 * rng.standard_normal(x.shape)  # digits with a generic offset: no exact zeros
    gamma = tf.constant(rng.uniform(0.5, 1.5, 2))
    beta = tf.constant(rng.standard_normal(2))
    weights = tf.constant(rng.standard_normal(x.shape))

    def derivatives(normalize):
        with tf.GradientTape() as outer:
            outer.watch([x, gamma, beta])
            with tf.GradientTape() as inner:
                inner.watch(x)
                value = tf.reduce_sum(tf.sin(normalize(x, gamma, beta)) * weights)
            first = inner.gradient(value, x)
            penalty = tf.reduce_sum(tf.square(first))
        return [first, *outer.gradient(penalty, [x, gamma, beta])]

    def ours(x, gamma, beta):
        return group_normalize(x, gamma, beta, groups=groups, epsilon=1e-5)

    def reference(x, gamma, beta):
        return _reference_group_norm(x, gamma, beta, groups)

    run = tf.function(derivatives) if traced else derivatives
    for got, expected in zip(run(ours), run(reference)):
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def test_layer_without_scale_or_offset_has_no_weights_and_normalizes(mnist32):
    layer = GroupNormalization(groups=1, scale=False, center=False)
    x = tf.constant(mnist32[1][:2])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(y * x)
    assert layer.weights == []
    np.testing.assert_allclose(tf.math.reduce_std(tf.reshape(y, (2, -1)), axis=1), 1.0, rtol=1e-3)
    assert np.isfinite(tape.gradient(loss, x).numpy()).all()


@pytest.mark.parametrize("groups", [1, 2])
def test_transposed_linearization_is_the_vector_jacobian_product(float64, groups):
    """GroupNormalization.linearize_transpose against tf's gradient at one example."""
    rng = np.random.default_rng(0)
    layer = GroupNormalization(groups=groups)
    layer.build((None, 4, 4, 4))
    layer.gamma.assign(rng.normal(1.0, 0.3, 4))
    layer.beta.assign(rng.normal(0.0, 0.3, 4))
    x = tf.constant(rng.normal(size=(1, 4, 4, 4)), tf.float64)
    cotangents = tf.constant(rng.normal(size=(3, 4, 4, 4)), tf.float64)
    outputs, transpose = layer.linearize_transpose(x)
    np.testing.assert_allclose(outputs, layer(x), rtol=1e-12)
    copies = tf.repeat(x, 3, axis=0)
    with tf.GradientTape() as tape:
        tape.watch(copies)
        total = tf.reduce_sum(cotangents * layer(copies))
    np.testing.assert_allclose(
        transpose(cotangents), tape.gradient(total, copies), rtol=1e-10, atol=1e-12
    )
