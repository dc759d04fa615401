"""Tests of keras_gon.data.arrays (validation and scaling of arrays)."""

import numpy as np
import pytest

from keras_gon.data import check_images, check_labels
from keras_gon.errors import InputError

from helpers import MNIST10K, input_error


def test_input_error_is_value_error():
    assert issubclass(InputError, ValueError)


def test_uint8_is_divided_by_255_and_gets_a_channel_axis():
    x = np.array([[[0, 51], [255, 102]]], dtype=np.uint8)
    out = check_images(x)
    assert out.dtype == np.float32
    assert out.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(out[0, :, :, 0], [[0.0, 0.2], [1.0, 0.4]])


def test_int64_is_divided_by_255_even_when_max_is_at_most_1():
    x = np.ones((2, 3, 3), dtype=np.int64)
    np.testing.assert_allclose(check_images(x), 1 / 255)


def test_float_in_unit_range_is_kept():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(4, 5, 5, 3))
    out = check_images(x)
    assert out.dtype == np.float32 and out.shape == (4, 5, 5, 3)
    np.testing.assert_allclose(out, x, rtol=1e-6)


def test_float_above_one_is_divided_by_255():
    x = np.array([[[0.0, 127.5], [255.0, 2.0]]], dtype=np.float64)
    out = check_images(x)
    np.testing.assert_allclose(out[0, :, :, 0], [[0, 0.5], [1, 2 / 255]], rtol=1e-6)


def test_float_scaling_threshold_is_a_max_of_1():
    exactly_one = np.array([[[0.0, 1.0]]])
    np.testing.assert_allclose(check_images(exactly_one).ravel(), [0, 1])
    above_one = np.array([[[0.0, 1.5]]])
    np.testing.assert_allclose(check_images(above_one).ravel(), [0, 1.5 / 255])


def test_real_mnist_scaling_matches_uint8_over_255():
    with np.load(MNIST10K) as data:
        x = data["x_test"][:100]
    out = check_images(x, name="x_test", channels=1)
    assert out.shape == (100, 28, 28, 1)
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_array_equal(out[..., 0], x.astype(np.float32) / 255)


def test_lists_are_accepted():
    out = check_images([[[0, 255]]])
    assert out.shape == (1, 1, 2, 1)
    np.testing.assert_allclose(out.ravel(), [0, 1])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_rejected(bad):
    x = np.zeros((2, 4, 4), dtype=np.float32)
    x[1, 2, 3] = bad
    message = input_error(check_images, x, name="x_train")
    assert "x_train" in message and "non-finite" in message


def test_values_above_255_are_rejected_with_the_range_found():
    x = np.zeros((1, 4, 4), dtype=np.int32)
    x[0, 0, 0] = 300
    message = input_error(check_images, x, name="x_train")
    assert "x_train" in message and "[0, 300]" in message and "[0, 255]" in message


def test_negative_values_are_rejected_with_the_range_found():
    x = np.full((1, 4, 4), 0.5)
    x[0, 1, 1] = -1.0
    message = input_error(check_images, x)
    assert "-1.0" in message and "0.5" in message


@pytest.mark.parametrize(
    "x",
    [
        np.array([[["a", "b"]]]),
        np.array([[[1, "b"]]], dtype=object),
        np.ones((1, 2, 2), dtype=bool),
        np.ones((1, 2, 2), dtype=np.complex64),
    ],
    ids=["str", "object", "bool", "complex"],
)
def test_non_numeric_dtypes_are_rejected(x):
    message = input_error(check_images, x, name="imgs")
    assert f"dtype {x.dtype}" in message and "imgs" in message


@pytest.mark.parametrize("shape", [(28, 28), (784,), (1, 2, 28, 28, 1)])
def test_wrong_rank_is_rejected_with_the_shape(shape):
    message = input_error(check_images, np.zeros(shape, np.uint8))
    assert "(" + ", ".join(map(str, shape)) in message
    assert "(N, H, W)" in message


def test_empty_is_rejected():
    message = input_error(check_images, np.zeros((0, 28, 28), np.uint8))
    assert "(0, 28, 28, 1)" in message


def test_ragged_input_is_rejected():
    input_error(check_images, [[[1, 2]], [[1]]])


def test_channel_mismatch_is_rejected():
    x = np.zeros((2, 8, 8, 3), np.uint8)
    message = input_error(check_images, x, name="x_train", channels=1)
    assert message == "x_train has 3 channels, the model expects 1"
    assert check_images(x, channels=3).shape == (2, 8, 8, 3)
    assert check_images(x[..., 0], channels=1).shape == (2, 8, 8, 1)


def test_one_colour_image_without_a_batch_axis_is_named():
    """(64, 64, 3) for a colour model: one image, not 64 grey ones (was "x has 1 channel")."""
    message = input_error(check_images, np.zeros((64, 64, 3), np.uint8), name="x", channels=3)
    assert message == (
        "x has shape (64, 64, 3), read as 64 grey images: give a batch (N, H, W, 3), "
        "e.g. x[None] for one image"
    )


def test_bad_channels_argument_is_rejected():
    input_error(check_images, np.zeros((1, 2, 2)), channels=0)


def test_check_labels():
    y = check_labels(np.array([3, 1, 2], dtype=np.uint8), 3)
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, [3, 1, 2])
    # keras.datasets.cifar10 layout: (N, 1).
    np.testing.assert_array_equal(check_labels([[1], [2]], 2), [1, 2])


def test_check_labels_rejects_bad_labels():
    assert "dtype float64" in input_error(check_labels, np.array([1.0, 2.0]), 2)
    assert "(2, 2)" in input_error(check_labels, np.zeros((2, 2), int), 2)
    message = input_error(check_labels, np.arange(3), 4, "y_train")
    assert "y_train" in message and "3 labels" in message and "4" in message
    input_error(check_labels, None, 2)
