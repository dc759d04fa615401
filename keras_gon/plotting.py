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


def save_image_rows(path: str | os.PathLike, rows: list[tuple[str, np.ndarray]], columns: int = 8):
    """Saves labelled grids one above the other (e.g. originals above reconstructions)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(rows), 1, figsize=(columns * 0.8, len(rows) * 0.9 * -(-len(rows[0][1]) // columns) + 0.3)
    )
    axes = np.atleast_1d(axes)
    for axis, (title, images) in zip(axes, rows):
        channels = np.shape(images)[-1]
        if channels not in (1, 3):
            shown = "the first 3" if channels > 3 else "the first"
            title = f"{title} ({shown} of {channels} channels)"
        grid = image_grid(images, columns)
        axis.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=9)
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
