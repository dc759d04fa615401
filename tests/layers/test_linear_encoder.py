"""keras_gon.layers.LinearEncoder: one affine map of the flattened image."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_gon.errors import InputError
from keras_gon.layers import ConvDecoder, LinearEncoder


def test_is_affine_in_the_image(mnist32):
    encoder = LinearEncoder(image_shape=(32, 32, 1), output_dim=6)
    a, b = mnist32[1][:4], mnist32[1][4:8]
    mix = encoder(0.3 * a + 0.7 * b).numpy()
    np.testing.assert_allclose(
        mix, 0.3 * encoder(a).numpy() + 0.7 * encoder(b).numpy(), rtol=1e-5, atol=1e-5
    )
    assert mix.shape == (4, 6)
    assert encoder.count_params() == 32 * 32 * 6 + 6


def test_mirroring_takes_the_decoders_images_and_dtype():
    decoder = ConvDecoder(image_shape=(16, 16, 3), latent_dim=5, width=2, dtype="float64")
    encoder = LinearEncoder.mirroring(decoder, 10)
    assert encoder.image_shape == (16, 16, 3) and encoder.output_dim == 10
    assert encoder.compute_dtype == "float64"


def test_config_round_trip():
    encoder = LinearEncoder(image_shape=(8, 8, 1), output_dim=3, name="encoder")
    clone = LinearEncoder.from_config(encoder.get_config())
    assert clone.get_config() == encoder.get_config()
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(encoder))
    assert isinstance(revived, LinearEncoder)


def test_bad_arguments_are_named():
    with pytest.raises(InputError, match="output_dim"):
        LinearEncoder(output_dim=0)
    with pytest.raises(InputError):
        LinearEncoder(image_shape=(8, 4, 1))
