"""keras_gon.layers.SineDense: SIREN initialisation bounds, the sine, parts, serialisation."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from keras_gon.errors import InputError
from keras_gon.layers import SineDense


@pytest.mark.parametrize(
    "is_first, use_sine, fan_in, units",
    [(True, True, 34, 256), (False, True, 256, 256), (False, False, 256, 1), (False, True, 32, 32)],
)
def test_siren_initialisation_bounds(is_first, use_sine, fan_in, units):
    keras.utils.set_random_seed(0)
    layer = SineDense(units, w0=30.0, is_first=is_first, use_sine=use_sine)
    layer.build((None, fan_in))
    kernel = layer.kernel.numpy()
    bound = 1.0 / fan_in if is_first else math.sqrt(6.0 / fan_in) / 30.0
    assert layer.kernel_bound(fan_in) == pytest.approx(bound)
    assert np.abs(kernel).max() <= bound
    # Uniform over the whole interval, not a narrower one: the extremes come
    # close to the bound and the variance is bound²/3.
    assert np.abs(kernel).max() > 0.95 * bound
    assert kernel.var() == pytest.approx(bound**2 / 3.0, rel=0.15)
    # Biases as PyTorch's nn.Linear: uniform in ±1/sqrt(fan_in).
    bias = layer.bias.numpy()
    assert np.abs(bias).max() <= 1.0 / math.sqrt(fan_in)


def test_first_layer_bound_is_much_wider_in_frequency_than_the_others():
    # sin(w0 (Wx + b)) with |W| < 1/fan_in on the first layer: w0 * bound = 30/34 for
    # the implicit GON's 34 inputs; hidden layers keep w0 * bound = sqrt(6/fan_in).
    first, hidden = SineDense(8, is_first=True), SineDense(8)
    assert 30.0 * first.kernel_bound(34) == pytest.approx(30.0 / 34.0)
    assert 30.0 * hidden.kernel_bound(256) == pytest.approx(math.sqrt(6.0 / 256.0))


def test_output_is_the_sine_of_w0_times_the_affine_map():
    rng = np.random.default_rng(0)
    layer = SineDense(5, w0=7.5)
    x = rng.uniform(-1, 1, (3, 4, 6)).astype("float32")
    y = layer(x).numpy()
    expected = np.sin(7.5 * (x @ layer.kernel.numpy() + layer.bias.numpy()))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    linear = SineDense(2, use_sine=False, use_bias=False)
    np.testing.assert_allclose(linear(x).numpy(), x @ linear.kernel.numpy(), rtol=1e-5, atol=1e-6)
    assert linear.bias is None and len(linear.weights) == 1


def test_parts_equal_the_broadcast_concatenation():
    rng = np.random.default_rng(1)
    coordinates = rng.uniform(-1, 1, (1, 10, 2)).astype("float32")
    latents = rng.normal(size=(4, 1, 3)).astype("float32")
    layer = SineDense(6, is_first=True)
    layer.build((None, None, 5))
    concatenated = np.concatenate(
        [np.broadcast_to(coordinates, (4, 10, 2)), np.broadcast_to(latents, (4, 10, 3))], axis=-1
    )
    np.testing.assert_allclose(
        layer([coordinates, latents]).numpy(), layer(concatenated).numpy(), rtol=1e-5, atol=1e-5
    )
    assert layer.compute_output_shape([(1, 10, 2), (4, 1, 3)]) == (4, 10, 6)


def test_config_round_trip_and_serialisation():
    layer = SineDense(7, w0=12.0, is_first=True, use_sine=False, use_bias=False, name="s")
    config = layer.get_config()
    assert {k: config[k] for k in ("units", "w0", "is_first", "use_sine", "use_bias")} == {
        "units": 7,
        "w0": 12.0,
        "is_first": True,
        "use_sine": False,
        "use_bias": False,
    }
    assert SineDense.from_config(config).get_config() == config
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(revived, SineDense) and revived.get_config() == config


def test_saved_in_a_model(tmp_path):
    inputs = keras.Input((3,))
    model = keras.Model(inputs, SineDense(1, use_sine=False)(SineDense(4, is_first=True)(inputs)))
    path = tmp_path / "siren.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    x = np.linspace(-1, 1, 12, dtype="float32").reshape(4, 3)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"units": 0}, "units"),
        ({"units": 2.5}, "units"),
        ({"units": True}, "units"),
        ({"units": 3, "w0": 0.0}, "w0"),
        ({"units": 3, "w0": float("inf")}, "w0"),
        ({"units": 3, "w0": "30"}, "w0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(InputError, match=message):
        SineDense(**kwargs)


@pytest.mark.parametrize("use_sine", [True, False])
def test_linearize_gives_the_forward_mode_derivatives(use_sine):
    """SineDense.linearize: the output and its Jacobian-vector products, as autodiff gives
    them, for a tensor input and for broadcast parts with one part held fixed."""
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    layer = SineDense(5, use_sine=use_sine)
    coordinates = tf.random.uniform((1, 7, 2), -1.0, 1.0)
    latent = tf.random.normal((1, 1, 3))
    layer([coordinates, latent])  # builds it
    directions = tf.random.normal((4, 1, 3))
    outputs, jvps = layer.linearize([coordinates, latent], [None, directions])
    np.testing.assert_allclose(outputs, layer([coordinates, latent]), rtol=1e-6)
    for k in range(4):
        with tf.autodiff.ForwardAccumulator(latent, directions[k : k + 1]) as accumulator:
            expected = layer([coordinates, latent])
        np.testing.assert_allclose(jvps[k], accumulator.jvp(expected)[0], rtol=1e-5, atol=1e-6)
    inputs = tf.random.normal((1, 7, 5))
    dense = SineDense(3, use_sine=use_sine)
    dense(inputs)  # builds it
    tangents = tf.random.normal((2, 1, 7, 5))
    outputs, jvps = dense.linearize(inputs, tangents)
    with tf.autodiff.ForwardAccumulator(inputs, tangents[0]) as accumulator:
        expected = dense(inputs)
    np.testing.assert_allclose(jvps[0], accumulator.jvp(expected), rtol=1e-5, atol=1e-6)
