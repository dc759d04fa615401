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


# --- spatial latents (the paper's fig. 10a) ----------------------------------------


@pytest.mark.parametrize("size, channels, k", [(32, 1, 4), (32, 1, 8), (64, 3, 4), (64, 3, 8)])
def test_output_map_mirrors_a_spatial_latent_decoder(size, channels, k):
    keras.utils.set_random_seed(0)
    decoder = ConvDecoder(
        image_shape=(size, size, channels), latent_dim=2 * k * k, width=4, latent_map_size=k
    )
    decoder.build((None, 2 * k * k))
    encoder = ConvEncoder.mirroring(decoder, 2 * k * k)
    assert encoder.output_map_size == k
    images = np.random.default_rng(0).random((3, size, size, channels)).astype("float32")
    out = encoder(images)
    assert out.shape == (3, 2 * k * k)
    # the decoder's kernels in reverse, all stride 2 down to k x k
    assert [c.kernel.shape for c in encoder.convs] == [c.kernel.shape for c in decoder.convs[::-1]]
    assert all(conv.strides == (2, 2) and conv.padding == "same" for conv in encoder.convs)
    assert len(encoder.norms) == len(encoder.convs) - 1  # none after the last conv
    x = images  # by hand: the last conv's (k, k, c) map, flattened as the decoder reshapes it
    for index, conv in enumerate(encoder.convs[:-1]):
        x = encoder.activations[index](encoder.norms[index](conv(x)))
    last = encoder.convs[-1](x)
    assert last.shape == (3, k, k, 2)
    np.testing.assert_allclose(out, np.reshape(last, (3, -1)), rtol=1e-6, atol=1e-6)


def test_output_map_size_config_and_bad_values():
    encoder = ConvEncoder(image_shape=(16, 16, 1), output_dim=32, width=2, output_map_size=4)
    config = encoder.get_config()
    assert config["output_map_size"] == 4
    assert ConvEncoder.from_config(config).get_config() == config
    config = ConvEncoder(image_shape=(16, 16, 1), output_dim=8, width=2).get_config()
    assert config.pop("output_map_size") == 1
    assert ConvEncoder.from_config(config).output_map_size == 1  # a config from before it
    with pytest.raises(InputError, match=r"output_dim=24 .*output_map_size²=16"):
        ConvEncoder(image_shape=(16, 16, 1), output_dim=24, output_map_size=4)
    with pytest.raises(InputError, match=r"output_map_size must be 1 .*from 4 to 8 .*got 16"):
        ConvEncoder(image_shape=(16, 16, 1), output_dim=256, output_map_size=16)
