"""keras_gon.slerp and interpolation grids (paper fig. 6)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import keras_gon
from keras_gon.errors import InputError
from keras_gon.interpolation import interpolation_grid


def test_endpoints_return_a_and_b_exactly():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 32)).astype("float32")
    b = 3.0 * rng.normal(size=(5, 32)).astype("float32")
    np.testing.assert_array_equal(np.asarray(keras_gon.slerp(a, b, 0.0)), a)
    np.testing.assert_array_equal(np.asarray(keras_gon.slerp(a, b, 1.0)), b)
    path = np.asarray(keras_gon.slerp(a[:, None], b[:, None], np.linspace(0, 1, 7)))
    assert path.shape == (5, 7, 32)
    np.testing.assert_array_equal(path[:, 0], a)
    np.testing.assert_array_equal(path[:, -1], b)


def test_follows_the_great_circle_at_constant_speed():
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.0, 1.0, 0.0])
    t = np.linspace(0.0, 1.0, 11)
    path = np.asarray(keras_gon.slerp(a, b, t))
    assert path.dtype == np.float64 and path.shape == (11, 3)
    angles = np.arctan2(path[:, 1], path[:, 0])
    np.testing.assert_allclose(angles, t * np.pi / 2, atol=1e-12)
    np.testing.assert_allclose(path[:, 2], 0.0, atol=1e-12)
    # Unit vectors stay on the unit sphere, unlike linear interpolation (norm 0.71 midway).
    np.testing.assert_allclose(np.linalg.norm(path, axis=-1), 1.0, atol=1e-12)
    assert np.linalg.norm(0.5 * a + 0.5 * b) < 0.71


def test_parallel_and_zero_vectors_fall_back_to_linear_interpolation():
    a = np.array([[1.0, 2.0], [0.0, 0.0]])
    b = np.array([[2.0, 4.0], [3.0, 1.0]])
    result = np.asarray(keras_gon.slerp(a, b, 0.25))
    assert np.all(np.isfinite(result))
    np.testing.assert_allclose(result, 0.75 * a + 0.25 * b, atol=1e-12)


@pytest.mark.parametrize(
    "a, b, t, message",
    [
        (np.zeros((2, 3)), np.zeros((2, 4)), 0.5, "different latent sizes"),
        (np.zeros((2, 3)), np.zeros((3, 3)), 0.5, "do not broadcast"),
        (np.full((1, 3), np.nan), np.zeros((1, 3)), 0.5, "NaN"),
        (np.zeros(3), np.zeros(3), np.nan, "finite"),
        (np.array(["a"]), np.zeros(1), 0.5, "numeric"),
        (1.0, np.zeros(1), 0.5, "scalar"),
    ],
)
def test_bad_inputs_are_refused(a, b, t, message):
    with pytest.raises(InputError, match=message):
        keras_gon.slerp(a, b, t)


def test_interpolation_grid_rows_start_and_end_at_the_reconstructions(mnist10k):
    keras.utils.set_random_seed(0)
    model = keras_gon.ImplicitGON(hidden_units=16, num_layers=2)
    images = mnist10k["x_test"][:6, :, :, None] / 255.0
    grid = interpolation_grid(model, images[:3], images[3:], steps=5)
    assert grid.shape == (3, 5, 28, 28, 1)
    np.testing.assert_allclose(grid[:, 0], model.reconstruct(images[:3]).numpy(), atol=1e-6)
    np.testing.assert_allclose(grid[:, -1], model.reconstruct(images[3:]).numpy(), atol=1e-6)
    assert interpolation_grid(model, images[:1], images[1:2], steps=2, resolution=40).shape == (
        1,
        2,
        40,
        40,
        1,
    )
    with pytest.raises(InputError, match="steps"):
        interpolation_grid(model, images[:1], images[1:2], steps=1)
    with pytest.raises(InputError, match="same number"):
        interpolation_grid(model, images[:2], images[2:3])
