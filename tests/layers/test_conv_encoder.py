"""keras_gon.layers.ConvEncoder: the mirror of the GON decoder."""

import keras
import numpy as np
import pytest

from keras_gon.errors import InputError
from keras_gon.layers import ConvDecoder, ConvEncoder


@pytest.mark.parametrize("size, channels", [(32, 1), (64, 3), (8, 1)])
def test_output_shape_and_mirrored_widths(size, channels):
    encoder = ConvEncoder(image_shape=(size, size, channels), output_dim=10, width=4)
    out = encoder(np.zeros((3, size, size, channels), "float32"))
    assert out.shape == (3, 10)
    decoder = ConvDecoder(image_shape=(size, size, channels), latent_dim=10, width=4)
    decoder.build((None, 10))
    encoder_filters = [conv.filters for conv in encoder.convs[:-1]]
    decoder_filters = [conv.filters for conv in decoder.convs[:-1]]
    assert encoder_filters == decoder_filters[::-1]


def test_per_example_by_default(mnist32):
    encoder = ConvEncoder(output_dim=6, width=4)
    x = mnist32[1][:8]
    together = keras.ops.convert_to_numpy(encoder(x, training=True))
    alone = keras.ops.convert_to_numpy(encoder(x[:1], training=True))
    np.testing.assert_allclose(alone, together[:1], rtol=1e-5, atol=1e-6)


def test_config_round_trip_and_bad_arguments():
    encoder = ConvEncoder(image_shape=(16, 16, 3), output_dim=8, width=2, normalization="batch")
    assert ConvEncoder.from_config(encoder.get_config()).get_config() == encoder.get_config()
    with pytest.raises(InputError, match="power of two"):
        ConvEncoder(image_shape=(20, 20, 1))
    with pytest.raises(InputError, match="output_dim"):
        ConvEncoder(output_dim=0)
