"""keras_gon.losses: per-example values, names, serialisation."""

import keras
import numpy as np
import pytest

from keras_gon import losses
from keras_gon.errors import InputError


def test_sum_squared_error_is_per_example_sum(mnist32):
    x = mnist32[1][:4]
    y = np.clip(x + 0.1, 0, 1)
    values = keras.ops.convert_to_numpy(losses.sum_squared_error(x, y))
    assert values.shape == (4,)
    np.testing.assert_allclose(values, ((x - y) ** 2).reshape(4, -1).sum(1), rtol=1e-5)


def test_mean_squared_error_and_bce_match_numpy(mnist32):
    x = mnist32[1][:3]
    y = np.full_like(x, 0.25)
    mse = keras.ops.convert_to_numpy(losses.mean_squared_error(x, y))
    np.testing.assert_allclose(mse, ((x - y) ** 2).reshape(3, -1).mean(1), rtol=1e-5)
    bce = keras.ops.convert_to_numpy(losses.binary_crossentropy(x, y))
    expected = -(x * np.log(y) + (1 - x) * np.log(1 - y)).reshape(3, -1).sum(1)
    np.testing.assert_allclose(bce, expected, rtol=1e-4)


def test_get_and_serialize_round_trip():
    for name in ("sse", "mse", "bce"):
        fn = losses.get(name)
        assert losses.deserialize(losses.serialize(fn)) is fn
    with pytest.raises(InputError, match="unknown loss 'l1'"):
        losses.get("l1")
