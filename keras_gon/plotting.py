"""Image grids saved as PNG (matplotlib, no display needed)."""

from __future__ import annotations

import math
import os

import numpy as np

IMAGE_INCHES = 0.8
"""Width in inches (at 100 dpi) of one image of `save_image_rows`'s grid at scale 1."""


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


def image_rows_size(
    count: int, rows: int = 1, columns: int = 8, scale: float = 1.0
) -> tuple[int, int]:
    """(width, height) in pixels of `save_image_rows`'s PNG for `rows` grids of `count`
    images: known from the shapes before any image is made."""
    width, height = image_rows_figsize(count, rows, columns, scale)
    return round(width * 100), round(height * 100)


def image_rows_figsize(
    count: int, rows: int = 1, columns: int = 8, scale: float = 1.0
) -> tuple[float, float]:
    """`save_image_rows`'s figure size in inches (at 100 dpi) for `rows` grids of `count`."""
    return columns * IMAGE_INCHES * scale, (rows * 0.9 * -(-count // columns) + 0.3) * scale


def native_scale(image_width: int, columns: int = 8, image_height: int | None = None) -> float:
    """The `scale` of `save_image_rows` that draws images `image_width` x `image_height`
    (default: square) at their own size or larger (1 for images up to about 70 pixels,
    more for larger ones: a 128-pixel image is not shrunk to 80)."""
    height = image_width if image_height is None else image_height
    grid_width = columns * (image_width + 1) + 1  # `image_grid`'s tiles and padding
    # the axis holds ~95 % of the figure's width (0.9: a margin) and ~80 % of each 0.9-inch
    # row's height (the title's share)
    scale = max(grid_width / (0.9 * columns * IMAGE_INCHES * 100), (height + 1) / (0.8 * 0.9 * 100))
    # in tenths, so the figure is a whole number of pixels (`image_rows_size` exact)
    return max(1.0, math.ceil(scale * 10 - 1e-9) / 10)


def grid_columns(count: int, least: int = 8) -> int:
    """Columns of a grid of `count` images: `least`, or a square for more than least² images."""
    return max(least, math.ceil(math.sqrt(count)))


def save_image_rows(
    path: str | os.PathLike,
    rows: list[tuple[str, np.ndarray]],
    columns: int = 8,
    scale: float | None = None,
):
    """Saves labelled grids one above the other (e.g. originals above reconstructions);
    `scale` enlarges the figure (each image is drawn about 80 * scale pixels wide; by
    default `native_scale` of the widest images, so none is drawn below its own size)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if scale is None:
        scale = native_scale(
            max(np.shape(images)[-2] for _, images in rows),
            columns,
            max(np.shape(images)[-3] for _, images in rows),
        )
    heights = [-(-len(images) // columns) for _, images in rows]
    figure, axes = plt.subplots(
        len(rows),
        1,
        figsize=(columns * IMAGE_INCHES * scale, (0.9 * sum(heights) + 0.3) * scale),
        gridspec_kw={"height_ratios": heights},
    )
    axes = np.atleast_1d(axes)
    for axis, (title, images) in zip(axes, rows):
        channels = np.shape(images)[-1]
        if channels not in (1, 3):
            shown = "the first 3" if channels > 3 else "the first"
            title = f"{title} ({shown} of {channels} channels)"
        grid = image_grid(images, columns)
        axis.imshow(
            grid[..., 0] if grid.shape[-1] == 1 else grid,
            cmap="gray",
            vmin=0,
            vmax=1,
            interpolation="nearest",
        )
        axis.set_title(title, fontsize=9 * max(1.0, scale**0.5))
        axis.axis("off")
    try:
        figure.tight_layout()
        figure.savefig(path, dpi=100, format="png")
    finally:
        plt.close(figure)


def save_reconstructions(
    path: str | os.PathLike, originals: np.ndarray, reconstructions: np.ndarray
):
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


def text_width(text: str, fontsize: float, dpi: int = 100) -> float:
    """Width in pixels of `text` drawn at `fontsize` points (matplotlib's default font)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    if not text:
        return 0.0
    return TextPath((0, 0), text, prop=FontProperties(size=fontsize)).get_extents().width * (
        dpi / 72
    )


def _grid_layout(shape: tuple, title: str, row_labels, column_labels, min_tile: int) -> dict:
    """Where `save_labelled_grid` puts things, in pixels, from the shapes alone: `shape` is
    (rows, columns, height, width), the others are `save_labelled_grid`'s."""
    import math

    rows, columns, height, width = shape

    factor = max(1, math.ceil(min_tile / max(height, 1)))
    tile_width, tile_height = width * factor + 1, height * factor + 1  # (1-pixel padding)
    grid_width, grid_height = columns * tile_width + 1, rows * tile_height + 1
    labels = [str(label) for label in row_labels or ()]
    left = max(80, math.ceil(max(text_width(label, 8) for label in labels)) + 14) if labels else 10
    right, top, bottom = 10, 34 + (18 if column_labels is not None else 0), 8
    total_width = max(grid_width + left + right, math.ceil(text_width(title, 10)) + 20)
    return dict(
        factor=factor,
        tile_width=tile_width,
        tile_height=tile_height,
        grid_width=grid_width,
        grid_height=grid_height,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        total_width=total_width,
        total_height=grid_height + top + bottom,
    )


def labelled_grid_size(
    rows: int,
    columns: int,
    height: int,
    width: int,
    title: str = "",
    row_labels=None,
    column_labels=None,
    min_tile: int = 84,
):
    """(width, height) in pixels of `save_labelled_grid`'s PNG, from the shapes alone."""
    layout = _grid_layout(
        (rows, columns, height, width), title, row_labels, column_labels, min_tile
    )
    return layout["total_width"], layout["total_height"]


def save_labelled_grid(
    path: str | os.PathLike,
    images: np.ndarray,
    title: str,
    row_labels=None,
    column_labels=None,
    min_tile: int = 84,
) -> None:
    """A (rows, columns, H, W, C) array of images as a titled PNG with labelled rows and columns.

    Pixels are drawn as they are (no resampling; images smaller than
    `min_tile` pixels are enlarged by an integer factor, nearest neighbour),
    so a 256x256 render shows 256x256 pixels and a 28x28 digit stays legible
    at 100 %. The margins fit the longest row label and the title. Written atomically.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_gon.files import atomic_write

    images = np.asarray(images, "float32")
    rows, columns, height, width = images.shape[:4]
    layout = _grid_layout(images.shape[:4], title, row_labels, column_labels, min_tile)
    factor = layout["factor"]
    tiles = nearest_upscale(
        images.reshape((-1,) + images.shape[2:]), height * factor, width * factor
    )
    grid = image_grid(tiles, columns=columns)
    grid_height = grid.shape[0]
    left, bottom = layout["left"], layout["bottom"]
    total_width, total_height = layout["total_width"], layout["total_height"]
    figure = plt.figure(figsize=(total_width / 100, total_height / 100), dpi=100)
    figure.figimage(
        grid[..., 0] if grid.shape[-1] == 1 else grid,
        xo=left,
        yo=bottom,
        cmap="gray",
        vmin=0,
        vmax=1,
        origin="upper",
    )
    figure.text(0.5, 1 - 12 / total_height, title, ha="center", va="top", fontsize=10)
    tile_width, tile_height = layout["tile_width"], layout["tile_height"]
    if column_labels is not None:
        for column, label in enumerate(column_labels):
            x = left + 1 + column * tile_width + tile_width / 2
            figure.text(
                x / total_width,
                (bottom + grid_height + 4) / total_height,
                label,
                ha="center",
                va="bottom",
                fontsize=8,
            )
    if row_labels is not None:
        for row, label in enumerate(row_labels):
            y = bottom + grid_height - 1 - row * tile_height - tile_height / 2
            figure.text(
                (left - 6) / total_width,
                y / total_height,
                label,
                ha="right",
                va="center",
                fontsize=8,
            )
    try:
        atomic_write(path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    finally:
        plt.close(figure)
