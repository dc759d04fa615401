"""keras_gon.layers.GroupNormalization: per-example statistics, serialisation."""

import keras
import numpy as np
import pytest

from keras_gon.layers import GroupNormalization


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
