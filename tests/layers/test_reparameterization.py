"""keras_gon.layers.Reparameterization: μ at inference, seeded N(μ, σ²) samples in training."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_gon.layers import Reparameterization


def _posterior(batch=4000, dim=3):
    mean = np.tile(np.array([[0.5, -2.0, 0.0]], "float32"), (batch, 1))[:, :dim]
    log_variance = np.tile(np.log(np.array([[0.25, 1.0, 4.0]], "float32")), (batch, 1))[:, :dim]
    return tf.constant(mean), tf.constant(log_variance)


def test_inference_returns_the_mean_and_training_samples_n_mean_sigma():
    mean, log_variance = _posterior()
    layer = Reparameterization(seed=0)
    np.testing.assert_array_equal(layer([mean, log_variance], training=False).numpy(), mean.numpy())
    z = layer([mean, log_variance], training=True).numpy()
    # 4000 draws: standard errors of the mean 0.008-0.03, of the std ~1 %.
    np.testing.assert_allclose(z.mean(0), [0.5, -2.0, 0.0], atol=0.1)
    np.testing.assert_allclose(z.std(0), [0.5, 1.0, 2.0], rtol=0.05)


def test_sample_argument_overrides_training():
    mean, log_variance = _posterior(batch=8)
    layer = Reparameterization(seed=0)
    assert not np.allclose(layer([mean, log_variance], training=False, sample=True), mean)
    np.testing.assert_array_equal(layer([mean, log_variance], training=True, sample=False), mean)


def test_seeding():
    mean, log_variance = _posterior(batch=8)
    first = Reparameterization(seed=3)([mean, log_variance], training=True).numpy()
    same = Reparameterization(seed=3)([mean, log_variance], training=True).numpy()
    other = Reparameterization(seed=4)([mean, log_variance], training=True).numpy()
    np.testing.assert_array_equal(first, same)
    assert not np.allclose(first, other)
    # a layer draws fresh noise at every call
    layer = Reparameterization(seed=3)
    first_call = layer([mean, log_variance], training=True)
    assert not np.allclose(first_call, layer([mean, log_variance], training=True))


def test_gradients_flow_to_mean_and_log_variance():
    mean, log_variance = _posterior(batch=8)
    layer = Reparameterization(seed=1)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([mean, log_variance])
        z = layer([mean, log_variance], training=True)
        total = tf.reduce_sum(z)
    noise = (z - mean) / tf.exp(0.5 * log_variance)
    np.testing.assert_allclose(tape.gradient(total, mean).numpy(), 1.0)
    np.testing.assert_allclose(
        tape.gradient(total, log_variance).numpy(),
        (0.5 * tf.exp(0.5 * log_variance) * noise).numpy(),
        rtol=1e-5,
        atol=1e-6,
    )


def test_works_under_xla_and_serializes():
    mean, log_variance = _posterior(batch=8)
    layer = Reparameterization(seed=5, name="sampler")
    compiled = tf.function(lambda m, v: layer([m, v], training=True), jit_compile=True)
    assert compiled(mean, log_variance).shape == (8, 3)
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(revived, Reparameterization)
    assert revived.get_config() == layer.get_config() and revived.seed == 5
    assert layer.compute_output_shape([(None, 3), (None, 3)]) == (None, 3)
