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


def _move_to_a_generic_point(decoder, latent_dim: int) -> None:
    """Builds `decoder` and moves its weights to a generic point: non-trivial scales,
    offsets, statistics."""
    decoder.build((None, latent_dim))
    for variable in decoder.weights:
        variable.assign(variable + 0.3 * np.random.default_rng(2).uniform(0.1, 1.0, variable.shape))


def _assert_is_the_forward_pass(decoder, latent, training, outputs) -> None:
    np.testing.assert_allclose(
        outputs, decoder(latent, training=training, inner_pass=True), rtol=1e-12
    )


def _assert_linearization_is_the_forward_pass_and_jacobian(decoder, latent, training):
    """At a generic point of `decoder`'s weights, `decoder.linearize(latent)` gives
    F(latent) and tf's reverse-mode Jacobian, (latent_dim, H, W, C); returns the Jacobian."""
    _move_to_a_generic_point(decoder, latent.shape[-1])
    outputs, jacobian = decoder.linearize(latent, training=training, inner_pass=True)
    _assert_is_the_forward_pass(decoder, latent, training, outputs)
    with tf.GradientTape() as tape:
        tape.watch(latent)
        reference = decoder(latent, training=training, inner_pass=True)
    expected = tf.transpose(tape.jacobian(reference, latent)[0, ..., 0, :], (3, 0, 1, 2))
    np.testing.assert_allclose(jacobian, expected, rtol=1e-9, atol=1e-12)
    return jacobian


# normalization, training: the points both linearization tests check
LINEARIZED_NORMALIZATIONS = [
    ("layer", True),
    ("group", True),
    ("none", True),
    ("batch", False),
    ("batch_frozen_origin", True),
]


def _linearization_jacobian(normalization, training, latent, **geometry):
    """The Jacobian of a seeded selu ConvDecoder of width 4, checked by
    `_assert_linearization_is_the_forward_pass_and_jacobian`."""
    keras.utils.set_random_seed(1)
    decoder = keras_gon.layers.ConvDecoder(
        latent_dim=latent.shape[-1],
        width=4,
        normalization=normalization,
        activation="selu",
        **geometry,
    )
    return _assert_linearization_is_the_forward_pass_and_jacobian(decoder, latent, training)


@pytest.mark.parametrize("normalization, training", LINEARIZED_NORMALIZATIONS)
def test_linearized_decoder_is_its_forward_pass_and_jacobian(float64, normalization, training):
    """ConvDecoder.linearize against F itself and tf's reverse-mode Jacobian."""
    latent = tf.constant([[0.2, -0.5, 0.1]], tf.float64)
    jacobian = _linearization_jacobian(normalization, training, latent, image_shape=(8, 8, 2))
    assert jacobian.shape == (3, 8, 8, 2)


@pytest.mark.parametrize(
    "options",
    [
        {"normalization": "layer"},
        {"normalization": "group"},
        {"normalization": "none"},
        {"normalization": "batch", "training": False},
        {"normalization": "batch_frozen_origin"},
        {"activation": "gelu"},
        {"output_log_scale": True},
        {"latent_map_size": 4, "latent_dim": 32},
    ],
    ids=lambda options: "-".join(f"{k}={v}" for k, v in options.items()),
)
def test_transposed_linearization_is_the_backward_pass_of_the_batch(float64, options):
    """ConvDecoder.linearize_transpose: F at one latent, and Jᵀ c for a batch of cotangents
    equal to tf's gradient of Σ c·F over the batch of copies of that latent."""
    options = {
        "image_shape": (16, 16, 2),
        "latent_dim": 3,
        "width": 4,
        "activation": "selu",
        **options,
    }
    training = options.pop("training", True)
    keras.utils.set_random_seed(1)
    decoder = keras_gon.layers.ConvDecoder(**options)
    dim = options["latent_dim"]
    _move_to_a_generic_point(decoder, dim)
    rng = np.random.default_rng(3)
    latent = tf.constant(0.5 * rng.normal(size=(1, dim)), tf.float64)
    outputs, transpose = decoder.linearize_transpose(latent, training=training, inner_pass=True)
    _assert_is_the_forward_pass(decoder, latent, training, outputs)
    cotangents = tf.constant(rng.normal(size=(5, *outputs.shape[1:])), tf.float64)
    copies = tf.repeat(latent, 5, axis=0)
    with tf.GradientTape() as tape:
        tape.watch(copies)
        total = tf.reduce_sum(cotangents * decoder(copies, training=training, inner_pass=True))
    expected = tape.gradient(total, copies)
    products = transpose(cotangents)
    assert products.shape == (5, dim)
    np.testing.assert_allclose(products, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", ["linearize", "linearize_transpose"])
def test_linearizations_refuse_batch_statistics(method):
    decoder = keras_gon.layers.ConvDecoder(
        image_shape=(8, 8, 1), latent_dim=3, width=4, normalization="batch"
    )
    with pytest.raises(ValueError, match="couples the examples"):
        getattr(decoder, method)(tf.zeros((1, 3)), training=True)


# --- spatial latents (the paper's fig. 10a) ----------------------------------------


@pytest.mark.parametrize(
    "size, channels, k, layers",
    [
        (32, 1, 4, ["conv_transpose_1", "conv_transpose_2", "conv_transpose_3"]),
        (32, 1, 8, ["conv_transpose_2", "conv_transpose_3"]),
        (
            64,
            3,
            4,
            ["conv_transpose_1", "conv_transpose_2", "conv_transpose_3", "conv_transpose_4"],
        ),
        (64, 3, 8, ["conv_transpose_2", "conv_transpose_3", "conv_transpose_4"]),
    ],
)
def test_spatial_latents_drop_the_layers_up_to_the_latent_map(size, channels, k, layers):
    keras.utils.set_random_seed(0)
    latent_dim = 2 * k * k
    decoder = keras_gon.layers.ConvDecoder(
        image_shape=(size, size, channels), latent_dim=latent_dim, width=4, latent_map_size=k
    )
    vector = keras_gon.layers.ConvDecoder(
        image_shape=(size, size, channels), latent_dim=latent_dim, width=4
    )
    decoder.build((None, latent_dim))
    vector.build((None, latent_dim))
    assert decoder.latent_map_shape == (k, k, 2)
    assert [conv.name for conv in decoder.convs] == layers
    # the remaining layers are the vector decoder's last ones; the first takes the map
    assert all(conv.strides == (2, 2) and conv.padding == "same" for conv in decoder.convs)
    assert [c.filters for c in decoder.convs] == [c.filters for c in vector.convs[-len(layers) :]]
    assert decoder.convs[0].kernel.shape == (4, 4, decoder.convs[0].filters, 2)
    assert len(decoder.norms) == len(decoder.convs) - 1
    latents = tf.random.normal((3, latent_dim))
    images = decoder(latents)
    assert images.shape == (3, size, size, channels)
    x = tf.reshape(latents, (3, k, k, 2))  # by hand: the map through the remaining layers
    for index, conv in enumerate(decoder.convs):
        x = conv(x)
        if index < len(decoder.norms):
            x = decoder.activations[index](decoder.norms[index](x))
    np.testing.assert_allclose(images, tf.sigmoid(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("normalization, training", LINEARIZED_NORMALIZATIONS)
def test_spatial_latent_linearization_is_its_forward_pass_and_jacobian(
    float64, normalization, training
):
    latent = tf.constant(np.random.default_rng(3).normal(size=(1, 32)), tf.float64)
    jacobian = _linearization_jacobian(
        normalization, training, latent, image_shape=(16, 16, 2), latent_map_size=4
    )
    assert jacobian.shape == (32, 16, 16, 2)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"latent_dim": 40, "latent_map_size": 4}, r"latent_dim=40 .*latent_map_size²=16"),
        ({"latent_dim": 32, "latent_map_size": 8}, r"latent_dim=32 .*latent_map_size²=64"),
        (
            {"latent_map_size": 2},
            r"latent_map_size must be 1 .* power of two from 4 to 16 .*, got 2",
        ),
        ({"latent_map_size": 6}, r"from 4 to 16 \(half the image size\), got 6"),
        (
            {"latent_dim": 1024, "latent_map_size": 32},
            r"from 4 to 16 \(half the image size\), got 32",
        ),
        ({"latent_map_size": 0}, "latent_map_size must be a positive integer"),
        ({"latent_map_size": 4.0}, "latent_map_size must be a positive integer"),
    ],
)
def test_bad_latent_map_sizes_are_refused(options, message):
    with pytest.raises(InputError, match=message):
        keras_gon.layers.ConvDecoder(image_shape=(32, 32, 1), **options)


def test_latent_map_size_is_in_the_config_and_older_configs_load():
    decoder = keras_gon.layers.ConvDecoder(
        image_shape=(16, 16, 1), latent_dim=16, width=2, latent_map_size=4
    )
    config = decoder.get_config()
    assert config["latent_map_size"] == 4
    assert keras_gon.layers.ConvDecoder.from_config(config).get_config() == config
    vector = keras_gon.layers.ConvDecoder(image_shape=(16, 16, 1), latent_dim=16, width=2)
    config = vector.get_config()
    assert config["latent_map_size"] == 1  # every constructor argument, as keras-hub's
    del config["latent_map_size"]  # a config saved before the option existed
    assert keras_gon.layers.ConvDecoder.from_config(config).latent_map_size == 1
    assert "latent_map_size" in keras_gon.layers.conv_decoder.DECODER_OPTIONS
