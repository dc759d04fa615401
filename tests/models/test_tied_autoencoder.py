"""keras_gon.TiedAutoencoder: the encoder convolves with the decoder's own kernels."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import keras_gon

from helpers import assert_same_outputs, save_and_load, trained_autoencoder_fixture

# 60 steps of mnist10k at batch 64, latent 8, width 4, Adam 1e-3, seed 0.
# Measured held-out SSE per image: 75.6 (untrained: ~120).
STEPS = 60
HELD_OUT_SSE_THRESHOLD = 90.0


trained = trained_autoencoder_fixture(keras_gon.TiedAutoencoder, STEPS)


def test_trains_and_evaluates(trained):
    _, held_out = trained
    print("tied autoencoder held-out SSE", held_out["loss"])
    assert held_out["loss"] < HELD_OUT_SSE_THRESHOLD


def test_each_encoder_conv_is_the_adjoint_of_a_decoder_layer(trained):
    """<conv(x, K), y> == <x, conv_transpose(y, K)> for each tied kernel K, the 4x4 valid one too."""
    model, _ = trained
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 32, 32, 1)), tf.float32)
    for index, kernel in enumerate(model.tied_kernels):
        last = index == len(model.tied_kernels) - 1
        strides, padding = (1, "VALID") if last else (2, "SAME")
        if last:
            x = tf.constant(rng.standard_normal((2, 4, 4, kernel.shape[2])), tf.float32)
        forward = tf.nn.conv2d(x, kernel, strides, padding)
        y = tf.constant(rng.standard_normal(forward.shape), tf.float32)
        backward = tf.nn.conv2d_transpose(y, kernel, x.shape, strides, padding)
        np.testing.assert_allclose(
            float(tf.reduce_sum(forward * y)), float(tf.reduce_sum(x * backward)), rtol=1e-4
        )
        x = tf.constant(rng.standard_normal(forward.shape), tf.float32)


def test_encoder_has_no_kernels_of_its_own(trained):
    model, _ = trained
    gon = keras_gon.GON(latent_dim=8, width=4)
    count = lambda m: sum(int(np.prod(v.shape)) for v in m.trainable_variables)  # noqa: E731
    own = count(model) - count(gon)
    # 4 bias vectors (4, 8, 16, 8) and 3 layer norms (gamma, beta: 2 * (4 + 8 + 16)).
    assert own == (4 + 8 + 16 + 8) + 2 * (4 + 8 + 16)
    # The encoder's gradient reaches the decoder's kernels.
    x = tf.constant(np.random.default_rng(0).random((2, 32, 32, 1)), tf.float32)
    with tf.GradientTape() as tape:
        z = model.encode_latents(x)
    gradient = tape.gradient(z, model.decoder.convs[0].kernel)
    assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0


def test_save_and_load_give_identical_outputs(trained, mnist32, tmp_path):
    model, _ = trained
    loaded = save_and_load(model, tmp_path / "tied.keras")
    assert isinstance(loaded, keras_gon.TiedAutoencoder)
    assert_same_outputs(model, loaded, mnist32[1][:7])


def test_spatial_latents_tie_every_kernel_as_a_stride_2_convolution(mnist32):
    """With a k x k latent map (fig. 10a) the encoder's last convolution is the adjoint of
    the decoder's first stride-2 transposed convolution, down to the (k, k, c) map."""
    keras.utils.set_random_seed(0)
    model = keras_gon.TiedAutoencoder(latent_dim=32, width=4, latent_map_size=4, seed=0)
    x = tf.constant(mnist32[1][:3])
    z = model.encode_latents(x)
    assert z.shape == (3, 32) and model.reconstruct(mnist32[1][:3]).shape == (3, 32, 32, 1)
    kernel = model.tied_kernels[-1]
    assert kernel.shape == (4, 4, 8, 2)  # 2w channels at 8x8 to the 2 of the 4x4 map
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.standard_normal((2, 8, 8, 8)), tf.float32)
    forward = tf.nn.conv2d(inputs, kernel, 2, "SAME")
    assert forward.shape == (2, 4, 4, 2)
    y = tf.constant(rng.standard_normal(forward.shape), tf.float32)
    backward = model.decoder.convs[0](y) - model.decoder.convs[0].bias  # the transposed conv
    np.testing.assert_allclose(
        float(tf.reduce_sum(forward * y)), float(tf.reduce_sum(inputs * backward)), rtol=1e-4
    )
    gon = keras_gon.GON(latent_dim=32, width=4, latent_map_size=4)
    count = lambda m: sum(int(np.prod(v.shape)) for v in m.trainable_variables)  # noqa: E731
    # 3 bias vectors (4, 8, 2) and 2 layer norms (gamma, beta: 2 * (4 + 8)).
    assert count(model) - count(gon) == (4 + 8 + 2) + 2 * (4 + 8)
