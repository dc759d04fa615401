"""Image grids saved as PNG (matplotlib, no display needed)."""

from __future__ import annotations

import os

import numpy as np


def displayable(images: np.ndarray) -> np.ndarray:
    """Images a PNG can show: grey (1 channel) or RGB; more channels show their first three,
    two channels their first."""
    images = np.asarray(images, dtype="float32")
    channels = images.shape[-1]
    if channels in (1, 3):
        return images
    return images[..., :3] if channels > 3 else images[..., :1]


def image_grid(images: np.ndarray, columns: int, padding: int = 1) -> np.ndarray:
    """Tiles (N, H, W, C) images in [0, 1] into one (rows*H, columns*W, C') array
    (C' = 1 or 3, see `displayable`)."""
    images = np.clip(displayable(images), 0.0, 1.0)
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    grid = np.ones(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels),
        dtype="float32",
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top = padding + row * (height + padding)
        left = padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def save_image_rows(path: str | os.PathLike, rows: list[tuple[str, np.ndarray]], columns: int = 8,
                    scale: float = 1.0):
    """Saves labelled grids one above the other (e.g. originals above reconstructions);
    `scale` enlarges the figure (each image is drawn about 80 * scale pixels wide)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heights = [-(-len(images) // columns) for _, images in rows]
    figure, axes = plt.subplots(
        len(rows), 1, figsize=(columns * 0.8 * scale, (0.9 * sum(heights) + 0.3) * scale),
        gridspec_kw={"height_ratios": heights},
    )
    axes = np.atleast_1d(axes)
    for axis, (title, images) in zip(axes, rows):
        channels = np.shape(images)[-1]
        if channels not in (1, 3):
            shown = "the first 3" if channels > 3 else "the first"
            title = f"{title} ({shown} of {channels} channels)"
        grid = image_grid(images, columns)
        axis.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1,
                    interpolation="nearest")
        axis.set_title(title, fontsize=9 * max(1.0, scale ** 0.5))
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def save_reconstructions(path: str | os.PathLike, originals: np.ndarray, reconstructions: np.ndarray):
    """PNG with the originals above their reconstructions."""
    save_image_rows(path, [("original", originals), ("reconstruction", reconstructions)])


def save_pixels(path: str | os.PathLike, grid: np.ndarray) -> None:
    """Writes an image grid pixel for pixel (no resampling), atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_gon.files import atomic_write

    image = grid[..., 0] if grid.shape[-1] == 1 else grid

    def write(temporary):
        plt.imsave(temporary, image, cmap="gray", vmin=0.0, vmax=1.0, format="png")

    atomic_write(path, write)


def nearest_upscale(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, h, w, C) images repeated pixel for pixel to (N, height, width, C)."""
    rows = (np.arange(height) * images.shape[1]) // height
    columns = (np.arange(width) * images.shape[2]) // width
    return images[:, rows][:, :, columns]


def save_labelled_grid(path: str | os.PathLike, images: np.ndarray, title: str,
                       row_labels=None, column_labels=None, min_tile: int = 84) -> None:
    """A (rows, columns, H, W, C) array of images as a titled PNG with labelled rows and columns.

    Pixels are drawn as they are (no resampling; images smaller than
    `min_tile` pixels are enlarged by an integer factor, nearest neighbour),
    so a 256x256 render shows 256x256 pixels and a 28x28 digit stays legible
    at 100 %. Written atomically.
    """
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_gon.files import atomic_write

    images = np.asarray(images, "float32")
    rows, columns, height, width = images.shape[:4]
    factor = max(1, math.ceil(min_tile / max(height, 1)))
    tiles = nearest_upscale(images.reshape((-1,) + images.shape[2:]), height * factor,
                            width * factor)
    grid = image_grid(tiles, columns=columns)
    grid_height, grid_width = grid.shape[:2]
    left = 80 if row_labels is not None else 10
    top = 34 + (18 if column_labels is not None else 0)
    bottom, right = 8, 10
    figure = plt.figure(figsize=((grid_width + left + right) / 100,
                                 (grid_height + top + bottom) / 100), dpi=100)
    figure.figimage(grid[..., 0] if grid.shape[-1] == 1 else grid, xo=left, yo=bottom,
                    cmap="gray", vmin=0, vmax=1, origin="upper")
    total_width, total_height = grid_width + left + right, grid_height + top + bottom
    figure.text(0.5, 1 - 12 / total_height, title, ha="center", va="top", fontsize=10)
    tile_width, tile_height = width * factor + 1, height * factor + 1
    if column_labels is not None:
        for column, label in enumerate(column_labels):
            x = left + 1 + column * tile_width + tile_width / 2
            figure.text(x / total_width, (bottom + grid_height + 4) / total_height, label,
                        ha="center", va="bottom", fontsize=8)
    if row_labels is not None:
        for row, label in enumerate(row_labels):
            y = bottom + grid_height - 1 - row * tile_height - tile_height / 2
            figure.text((left - 6) / total_width, y / total_height, label, ha="right",
                        va="center", fontsize=8)
    atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    plt.close(figure)
