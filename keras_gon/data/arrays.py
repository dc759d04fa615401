"""Validation of in-memory image and label arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_gon.errors import InputError
from keras_gon.validation import channels_first_error, check_positive_int, count_noun


def _shape_str(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _as_array(x: Any, name: str) -> np.ndarray:
    if x is None:
        raise InputError(f"{name} is None, expected an array")
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as err:
        # Ragged nested lists and the like.
        raise InputError(f"{name} cannot be converted to an array: {err}") from None


SCALES = ("array", "dtype")
"""How the scale of float images is found: "array", from the whole array (a data set
read from a file: a maximum above 1 means 0-255); "dtype", from the dtype alone (the
models' inputs and the exported signatures: integers 0-255, floats [0, 1], refused
outside it, `keras_gon.data.preprocessing.check_image_values`)."""


def validate_images(
    x: Any, *, name: str = "images", channels: int | None = None, scale: str = "array"
) -> tuple[np.ndarray, float]:
    """Validates images without converting them.

    Same checks as `check_images`, but returns the array in its original
    dtype (NHWC) together with the divisor that maps it to [0, 1], so that
    callers can keep e.g. `uint8` data in memory and scale lazily. `scale`
    is one of `SCALES`.

    Returns:
        `(array, divisor)`: the NHWC array (original dtype) and `255.0` or
        `1.0`.
    """
    if scale not in SCALES:
        raise InputError(f"unknown scale {scale!r}: expected one of {SCALES}")
    if channels is not None:
        channels = check_positive_int(channels, "channels")
    x = _as_array(x, name)
    if x.dtype == np.bool_ or not (
        np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
    ):
        raise InputError(
            f"{name} has dtype {x.dtype}, expected a numeric (integer or float) image array"
        )
    if x.ndim not in (3, 4):
        raise InputError(
            f"{name} has shape {_shape_str(x.shape)}, expected (N, H, W) or (N, H, W, C)"
        )
    layout_error = channels_first_error(x.shape, name)
    if layout_error is not None:
        raise layout_error
    if x.ndim == 3 and channels not in (None, 1) and x.shape[-1] == channels:
        raise InputError(
            f"{name} has shape {_shape_str(x.shape)}, read as {x.shape[0]} grey images: "
            f"give a batch (N, H, W, {channels}), e.g. {name}[None] for one image"
        )
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if min(x.shape) == 0:
        raise InputError(
            f"{name} has shape {_shape_str(x.shape)}, expected at least one "
            "image with non-zero height, width and channels"
        )
    if channels is not None and x.shape[-1] != channels:
        raise InputError(
            f"{name} has {count_noun(x.shape[-1], 'channel')}, the model expects {channels}"
        )
    if scale == "dtype":  # the models' one rule, run as the exported signatures run it
        from keras_gon.data.preprocessing import check_image_values, input_errors_from_graph

        with input_errors_from_graph():
            check_image_values(x, "images" if name == "images" else f"the images of {name}")
        return x, 255.0 if np.issubdtype(x.dtype, np.integer) else 1.0
    if np.issubdtype(x.dtype, np.floating):
        finite = np.isfinite(x)
        if not finite.all():
            bad = x[~finite]
            raise InputError(
                f"{name} contains {bad.size} non-finite value(s) "
                f"(e.g. {bad.flat[0]}), expected finite pixel values"
            )
    lo, hi = x.min(), x.max()
    if lo < 0 or hi > 255:
        raise InputError(
            f"{name} has values in [{lo}, {hi}], expected pixel values in "
            "[0, 255] (integers) or [0, 1] (floats)"
        )
    if np.issubdtype(x.dtype, np.integer) or hi > 1.0:
        divisor = 255.0
    else:
        divisor = 1.0
    return x, divisor


def check_images(
    x: Any, *, name: str = "images", channels: int | None = None, scale: str = "array"
) -> np.ndarray:
    """Validates images and returns them as float32 NHWC in [0, 1].

    Accepted input: an array-like of shape `(N, H, W)` (a channel axis is
    added) or `(N, H, W, C)`, of a numeric dtype, with `N > 0`, finite values
    in [0, 255].

    Scaling rule (`scale="array"`, for a data set as a whole):
    - integer dtypes are divided by 255;
    - float arrays whose maximum is <= 1.0 are taken to be already in [0, 1]
      and are not rescaled;
    - float arrays whose maximum is > 1.0 are divided by 255.
    With `scale="dtype"` (what a model takes) float images must be in [0, 1].

    Args:
        x: The images.
        name: Name of the array, used in error messages.
        channels: If given, the number of channels the data must have.
        scale: How the scale of float images is found (`SCALES`).

    Returns:
        A float32 array of shape `(N, H, W, C)` with values in [0, 1].

    Raises:
        InputError: if the images are not valid (dtype, rank, empty,
            non-finite values, out-of-range values, channel count).
    """
    x, divisor = validate_images(x, name=name, channels=channels, scale=scale)
    x = x.astype(np.float32)
    if divisor != 1.0:
        x /= np.float32(divisor)
    return np.clip(x, 0.0, 1.0, out=x)


def check_labels(y: Any, n: int, name: str = "labels") -> np.ndarray:
    """Validates integer class labels and returns them as an int32 array.

    Args:
        y: Array-like of shape `(n,)` (or `(n, 1)`, as in
            `keras.datasets.cifar10`) of an integer dtype.
        n: The expected number of labels (the number of images).
        name: Name of the array, used in error messages.

    Returns:
        An int32 array of shape `(n,)`.

    Raises:
        InputError: if the labels have the wrong dtype, shape or length.
    """
    y = _as_array(y, name)
    if y.dtype == np.bool_ or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"{name} has dtype {y.dtype}, expected integer class labels")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(
            f"{name} has shape {_shape_str(y.shape)}, expected a 1-D array of {n} labels"
        )
    if y.shape[0] != n:
        raise InputError(f"{name} has {y.shape[0]} labels, expected {n} (one per image)")
    info = np.iinfo(np.int32)
    if y.size and (y.min() < info.min or y.max() > info.max):
        raise InputError(f"{name} has values in [{y.min()}, {y.max()}], which do not fit in int32")
    return y.astype(np.int32)
