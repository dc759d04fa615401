"""keras_gon.layers.BatchNormalization: statistics, moving averages, serialisation."""

import keras
import numpy as np
import tensorflow as tf

from keras_gon.layers import BatchNormalization


def test_training_uses_batch_statistics_and_updates_moving_ones(mnist32):
    x = mnist32[0][:16]
    layer = BatchNormalization(momentum=0.9)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(y.mean(), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(), x.var() / (x.var() + 1e-5), rtol=1e-4)
    unbiased = x.var(ddof=1)
    np.testing.assert_allclose(layer.moving_mean.numpy(), 0.1 * x.mean(), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), 0.9 + 0.1 * unbiased, rtol=1e-5)


def test_pass_can_be_kept_out_of_moving_statistics(mnist32):
    layer = BatchNormalization()
    layer(mnist32[0][:8], training=True, update_moving_statistics=False)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), 0.0)
    np.testing.assert_array_equal(layer.moving_variance.numpy(), 1.0)


def test_inference_uses_moving_statistics_and_matches_keras(mnist32):
    x = mnist32[1][:8]
    ours = BatchNormalization(epsilon=1e-3)
    stock = keras.layers.BatchNormalization(epsilon=1e-3)
    ours.build(x.shape)
    stock.build(x.shape)
    for layer in (ours, stock):
        layer.moving_mean.assign([0.2])
        layer.moving_variance.assign([0.5])
        layer.gamma.assign([1.5])
        layer.beta.assign([-0.3])
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x, training=False)),
        keras.ops.convert_to_numpy(stock(x, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_config_round_trip():
    layer = BatchNormalization(momentum=0.8, epsilon=1e-4, center=False)
    clone = BatchNormalization.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_transposed_linearization_scales_cotangents_as_moving_statistics_do():
    layer = BatchNormalization()
    layer.build((None, 2, 2, 3))
    layer.moving_mean.assign([0.2, -0.1, 0.0])
    layer.moving_variance.assign([0.5, 2.0, 1.5])
    layer.gamma.assign([1.5, -0.5, 2.0])
    x = tf.random.normal((1, 2, 2, 3))
    cotangents = tf.random.normal((4, 2, 2, 3))
    outputs, transpose = layer.linearize_transpose(x)
    np.testing.assert_allclose(outputs, layer(x, training=False), rtol=1e-6)
    copies = tf.repeat(x, 4, axis=0)
    with tf.GradientTape() as tape:
        tape.watch(copies)
        total = tf.reduce_sum(cotangents * layer(copies, training=False))
    np.testing.assert_allclose(transpose(cotangents), tape.gradient(total, copies), rtol=1e-5)
