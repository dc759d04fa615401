"""ConvDecoder: the paper's decoder, its first layer as a matmul, its linearisation at one latent."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.errors import InputError


def test_first_layer_matmul_equals_the_transposed_convolution():
    keras.utils.set_random_seed(0)
    decoder = keras_gon.layers.ConvDecoder(image_shape=(16, 16, 3), latent_dim=5, width=4)
    decoder.build((None, 5))
    latents = tf.random.normal((7, 5))
    projected = decoder._project_latents(latents)
    convolved = decoder.convs[0](tf.reshape(latents, (7, 1, 1, 5)))
    assert projected.shape == (7, 4, 4, 8)
    np.testing.assert_allclose(projected, convolved, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("activation", ["softmax", "glu"])
def test_channel_mixing_activations_are_refused(activation):
    with pytest.raises(InputError, match="elementwise"):
        keras_gon.layers.ConvDecoder(activation=activation)


def test_linearized_decoder_is_its_forward_pass_and_jacobian(float64):
    """ConvDecoder.linearize against F itself and tf's reverse-mode Jacobian."""
    for normalization, training in [("layer", True), ("group", True), ("none", True),
                                    ("batch", False), ("batch_frozen_origin", True)]:
        keras.utils.set_random_seed(1)
        decoder = keras_gon.layers.ConvDecoder(
            image_shape=(8, 8, 2), latent_dim=3, width=4, normalization=normalization, activation="selu"
        )
        decoder.build((None, 3))
        for variable in decoder.weights:  # a generic point: non-trivial scales, offsets, statistics
            variable.assign(variable + 0.3 * np.random.default_rng(2).uniform(0.1, 1.0, variable.shape))
        latent = tf.constant([[0.2, -0.5, 0.1]], tf.float64)
        outputs, jacobian = decoder.linearize(latent, training=training, inner_pass=True)
        np.testing.assert_allclose(outputs, decoder(latent, training=training, inner_pass=True), rtol=1e-12)
        with tf.GradientTape() as tape:
            tape.watch(latent)
            reference = decoder(latent, training=training, inner_pass=True)
        expected = tf.transpose(tape.jacobian(reference, latent)[0, ..., 0, :], (3, 0, 1, 2))
        assert jacobian.shape == (3, 8, 8, 2)
        np.testing.assert_allclose(jacobian, expected, rtol=1e-9, atol=1e-12)
    decoder = keras_gon.layers.ConvDecoder(image_shape=(8, 8, 1), latent_dim=3, width=4, normalization="batch")
    with pytest.raises(ValueError, match="couples the examples"):
        decoder.linearize(tf.zeros((1, 3)), training=True)
