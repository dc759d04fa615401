"""keras_gon.validation: each check returns good values in their canonical type and refuses bad
ones with a one-line InputError naming the parameter."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_gon.errors import InputError
from keras_gon.validation import (
    MAX_SEED,
    channels_first_error,
    check_choice,
    check_image_shape,
    check_number,
    check_positive_int,
    check_seed,
    check_square_image_shape,
    count_noun,
)

from helpers import input_error


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(255)])
def test_check_positive_int_accepts_integers_from_1(value):
    result = check_positive_int(value, "batch_size")
    assert result == int(value) and type(result) is int


@pytest.mark.parametrize("value", [0, -2, 2.0, 2.5, "3", None, True, np.bool_(True)])
def test_check_positive_int_refuses_the_rest_by_name(value):
    message = input_error(check_positive_int, value, "batch_size")
    assert message == f"batch_size must be a positive integer, got {value!r}"


@pytest.mark.parametrize("value", [0, 1, MAX_SEED, np.int32(5)])
def test_check_seed_accepts_int32_seeds(value):
    assert check_seed(value) == int(value) and type(check_seed(value)) is int


@pytest.mark.parametrize("value", [-1, MAX_SEED + 1, 2**40, 1.0, "0", None, False])
def test_check_seed_refuses_the_rest_by_name(value):
    assert input_error(check_seed, value) == (
        f"seed must be an integer in [0, 2147483647], got {value!r}"
    )
    assert input_error(check_seed, value, "--seed").startswith("--seed must be an integer")


def test_check_number_accepts_finite_numbers_within_bounds():
    assert check_number(3, "lr") == 3.0 and type(check_number(3, "lr")) is float
    assert check_number(np.float32(0.5), "lr", minimum=0.0, maximum=1.0) == 0.5
    assert check_number(0.0, "kl_weight", minimum=0.0) == 0.0  # a closed bound
    assert check_number(1.0, "fraction", minimum=0.0, maximum=1.0, strict_minimum=True) == 1.0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, "1e-3", None, True])
def test_check_number_refuses_what_is_not_a_finite_number(value):
    assert input_error(check_number, value, "lr") == (f"lr must be a finite number, got {value!r}")


def test_check_number_names_the_interval_it_expects():
    assert input_error(check_number, -0.5, "kl_weight", minimum=0.0) == (
        "kl_weight must be in [0, inf], got -0.5"
    )
    assert input_error(check_number, 0.0, "lr", minimum=0.0, strict_minimum=True) == (
        "lr must be in (0, inf], got 0"
    )
    assert (
        input_error(check_number, 1.5, "fraction", minimum=0.0, maximum=1.0, strict_minimum=True)
        == "fraction must be in (0, 1], got 1.5"
    )


def test_check_choice():
    assert check_choice("gaussian", "likelihood", ("logistic", "gaussian")) == "gaussian"
    message = input_error(check_choice, "poisson", "likelihood", ["logistic", "gaussian"])
    assert message == "unknown likelihood 'poisson': expected one of ('logistic', 'gaussian')"


@pytest.mark.parametrize(
    "shape, expected",
    [
        ((28, 28, 1), (28, 28, 1)),
        ([64, 48, 3], (64, 48, 3)),
        (np.array([8, 8, 5]), (8, 8, 5)),
    ],
)
def test_check_image_shape_accepts_three_positive_sizes(shape, expected):
    assert check_image_shape(shape) == expected


@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 28, 1), (28, 0, 1), 28, None, ("a", 2, 1)])
def test_check_image_shape_refuses_the_rest_by_name(shape):
    assert input_error(check_image_shape, shape) == (
        f"image_shape must be (height, width, channels), got {shape!r}"
    )


def test_check_square_image_shape():
    assert check_square_image_shape([32, 32, 3]) == (32, 32, 3)
    assert check_square_image_shape((8, 8, 1)) == (8, 8, 1)
    assert input_error(check_square_image_shape, (32, 16, 1)) == (
        "image_shape must be square, got 32x16"
    )
    for size in (4, 24, 0):
        assert input_error(check_square_image_shape, (size, size, 1)) == (
            f"image size must be a power of two >= 8 (8, 16, 32, 64, 128, ...), got {size}"
        )
    assert input_error(check_square_image_shape, (16, 16, 0)) == (
        "image_shape needs at least one channel, got 0"
    )
    assert input_error(check_square_image_shape, (16, 16)).startswith(
        "image_shape must be (height, width, channels)"
    )


def test_channels_first_error_recognises_pytorch_layouts_only():
    error = channels_first_error((None, 1, 28, 28), "x_train")
    assert isinstance(error, InputError) and "\n" not in str(error)
    assert str(error).startswith("the shape (None, 1, 28, 28) of x_train is channels-first")
    assert "np.transpose(x, (0, 2, 3, 1))" in str(error)
    assert channels_first_error((10, 3, 32, 32)) is not None  # RGB
    for channels_last in [
        (10, 28, 28, 1),
        (10, 32, 32, 3),
        (10, 4, 4, 4),
        (10, 1, 28, None),
        (10, 2, 28, 28),
        (28, 28, 1),
    ]:
        assert channels_first_error(channels_last) is None, channels_last


def test_count_noun_is_singular_for_one_only():
    assert count_noun(1, "channel") == "1 channel"
    assert count_noun(3, "channel") == "3 channels"
    assert count_noun(0, "image") == "0 images" and count_noun(8000, "step") == "8,000 steps"
    assert count_noun(2, "class", "classes") == "2 classes" and count_noun(1, "class") == "1 class"
