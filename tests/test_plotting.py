"""keras_gon.plotting: image grids, their PNGs' pixel sizes (known from the shapes before any
image is made) and their layout."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from keras_gon.plotting import (
    displayable,
    grid_columns,
    image_grid,
    image_rows_size,
    labelled_grid_size,
    native_scale,
    nearest_upscale,
    save_image_rows,
    save_labelled_grid,
    save_pixels,
    save_reconstructions,
    text_width,
)


def _ramp(count: int, height: int, width: int, channels: int = 1) -> np.ndarray:
    """`count` distinct images in [0, 1]: image k is filled with (k + 1) / (count + 1)."""
    values = (np.arange(count, dtype="float32") + 1) / (count + 1)
    return np.broadcast_to(values[:, None, None, None], (count, height, width, channels)).copy()


def test_displayable_keeps_grey_and_rgb_and_shows_the_first_channels_of_others():
    for channels in (1, 3):
        images = np.random.default_rng(0).random((2, 4, 4, channels))
        np.testing.assert_array_equal(displayable(images), images.astype("float32"))
    images = np.random.default_rng(0).random((2, 4, 4, 5)).astype("float32")
    np.testing.assert_array_equal(displayable(images), images[..., :3])
    np.testing.assert_array_equal(displayable(images[..., :2]), images[..., :1])


def test_image_grid_places_each_image_in_its_tile_with_padding():
    images = _ramp(5, 3, 2)
    grid = image_grid(images, columns=2)  # 3 rows of 2, the last tile empty
    assert grid.shape == (3 * (3 + 1) + 1, 2 * (2 + 1) + 1, 1)
    for index, image in enumerate(images):
        row, column = divmod(index, 2)
        top, left = 1 + row * 4, 1 + column * 3
        np.testing.assert_array_equal(grid[top : top + 3, left : left + 2], image)
    tiles = np.zeros(grid.shape[:2], bool)
    for index in range(6):
        row, column = divmod(index, 2)
        tiles[1 + row * 4 : 4 + row * 4, 1 + column * 3 : 3 + column * 3] = True
    assert np.all(grid[~tiles] == 1.0)  # white padding
    assert np.all(grid[9:12, 4:6] == 1.0)  # the empty sixth tile is white too


def test_image_grid_clips_to_the_unit_interval_and_keeps_colour():
    images = np.array([[[[-0.5, 0.2, 1.7]]]], "float32")  # one 1x1 RGB image
    grid = image_grid(images, columns=1, padding=0)
    np.testing.assert_array_equal(grid, np.array([[[0.0, 0.2, 1.0]]], "float32"))


def test_nearest_upscale_repeats_each_pixel():
    images = np.arange(2 * 2 * 3).reshape(2, 2, 3, 1)
    big = nearest_upscale(images, 4, 9)
    assert big.shape == (2, 4, 9, 1)
    np.testing.assert_array_equal(big, images.repeat(2, axis=1).repeat(3, axis=2))


@pytest.mark.parametrize(
    "count, rows, columns, scale", [(16, 2, 8, 1.0), (5, 1, 4, 1.0), (10, 3, 4, 1.5)]
)
def test_save_image_rows_writes_a_png_of_the_announced_size(tmp_path, count, rows, columns, scale):
    path = tmp_path / "rows.png"
    save_image_rows(
        path, [(f"row {r}", _ramp(count, 8, 8)) for r in range(rows)], columns=columns, scale=scale
    )
    width, height = image_rows_size(count, rows=rows, columns=columns, scale=scale)
    assert matplotlib.image.imread(path).shape[:2] == (height, width)


def test_wide_images_are_drawn_at_their_own_size_or_larger(tmp_path):
    """128-pixel images are not shrunk to the grid's 80 pixels: each of 128 distinct
    columns of grey levels appears in the PNG (drawn at 75 pixels, some would be skipped)."""
    ramp = np.linspace(0.0, 1.0, 128, dtype="float32")
    images = np.broadcast_to(ramp[None, None, :, None], (8, 128, 128, 1)).copy()
    save_image_rows(tmp_path / "wide.png", [("wide", images)])
    png = matplotlib.image.imread(tmp_path / "wide.png")
    assert png.shape[:2] == image_rows_size(8, scale=native_scale(128))[::-1]
    levels = np.unique(np.round(png[..., 0] * 255))
    assert all(np.abs(levels - round(v * 255)).min() <= 1 for v in ramp)
    assert native_scale(32) == native_scale(64) == 1.0 < native_scale(128)
    tall = np.broadcast_to(ramp[None, :, None, None], (8, 128, 64, 1)).copy()  # 2:1, rows
    save_image_rows(tmp_path / "tall.png", [("tall", tall)])
    levels = np.unique(np.round(matplotlib.image.imread(tmp_path / "tall.png")[..., 0] * 255))
    assert all(np.abs(levels - round(v * 255)).min() <= 1 for v in ramp)


def test_grid_columns_are_eight_or_a_square():
    assert [grid_columns(n) for n in (1, 64, 65, 100, 5000)] == [8, 8, 9, 10, 71]


def test_save_reconstructions_is_two_rows_and_colour_stays_colour(tmp_path):
    originals = np.random.default_rng(0).random((6, 16, 16, 3)).astype("float32")
    save_reconstructions(tmp_path / "rec.png", originals, originals[::-1])
    png = matplotlib.image.imread(tmp_path / "rec.png")
    assert png.shape[:2] == image_rows_size(6, rows=2)[::-1]
    assert np.abs(png[..., 0] - png[..., 1]).max() > 0.1  # not drawn grey


def test_save_pixels_writes_the_grid_pixel_for_pixel(tmp_path):
    grid = image_grid(_ramp(4, 5, 7), columns=2)
    save_pixels(tmp_path / "grid.png", grid)
    png = matplotlib.image.imread(tmp_path / "grid.png")
    assert png.shape == grid.shape[:2] + (4,)  # RGBA, no resampling
    for channel in range(3):  # grey: R = G = B = the value, to 8 bits
        np.testing.assert_allclose(png[..., channel], grid[..., 0], atol=1 / 255)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]  # atomic: no temporary


def test_labelled_grid_draws_enlarged_tiles_in_the_announced_size(tmp_path):
    images = _ramp(6, 8, 8).reshape(2, 3, 8, 8, 1)
    path = tmp_path / "grid.png"
    save_labelled_grid(
        path, images, "a title", row_labels=["a", "b"], column_labels=["1", "2", "3"]
    )
    width, height = labelled_grid_size(2, 3, 8, 8, "a title", ["a", "b"], ["1", "2", "3"])
    png = matplotlib.image.imread(path)
    assert png.shape[:2] == (height, width)
    # 8x8 images are enlarged 11x (to at least 84 pixels), nearest neighbour: the grid of
    # 3 x (88 + 1) + 1 by 2 x (88 + 1) + 1 pixels sits `left` pixels in, 8 above the bottom
    left = width - 10 - (3 * 89 + 1)
    top = height - 8 - (2 * 89 + 1)
    for index, value in enumerate(_ramp(6, 1, 1).ravel()):
        row, column = divmod(index, 3)
        y, x = top + 1 + row * 89, left + 1 + column * 89
        tile = png[y : y + 88, x : x + 88, 0]
        np.testing.assert_allclose(tile, value, atol=2 / 255, err_msg=f"tile {index}")


def test_labelled_grid_keeps_large_renders_at_one_pixel_per_pixel():
    width, height = labelled_grid_size(1, 2, 256, 256, "renders")
    assert (width, height) == (2 * 257 + 1 + 10 + 10, 257 + 1 + 34 + 8)


def test_render_row_labels_fit_in_the_picture(tmp_path):
    labels = ["held-out 28x28 (a long label)", "rendered 256x256"]
    images = np.zeros((2, 1, 8, 8, 1), "float32")
    save_labelled_grid(tmp_path / "grid.png", images, "title", row_labels=labels)
    width, height = labelled_grid_size(2, 1, 8, 8, "title", labels)
    assert matplotlib.image.imread(tmp_path / "grid.png").shape[:2] == (height, width)
    assert width - 85 - 10 >= text_width(labels[0], 8)  # the label's room left of the grid


def test_a_long_title_widens_the_picture():
    narrow, _ = labelled_grid_size(1, 1, 8, 8, "t")
    title = "a title much longer than one 88-pixel tile and its margins"
    wide, _ = labelled_grid_size(1, 1, 8, 8, title)
    assert narrow == 89 + 1 + 10 + 10 and wide == int(np.ceil(text_width(title, 10))) + 20
