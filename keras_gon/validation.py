"""Checks of user-given values, shared by the models, layers, data pipelines and the CLI.

Each returns the value in its canonical type or raises `keras_gon.InputError`
with one line naming the argument, what was given and what is expected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from keras_gon.errors import InputError


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def count_noun(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun`, plural (`plural`, or `noun` + "s") unless the count is one:
    "1 channel", "3 channels", "2 classes", "8,000 images"."""
    return f"{count} {noun}" if count == 1 else f"{count:,} {plural or noun + 's'}"


def check_positive_int(value: Any, name: str) -> int:
    """`value` as an int >= 1."""
    if not _is_integer(value) or value < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


MAX_SEED = 2**31 - 1
"""The largest seed: seeds are int32 in the graphs (stateless random ops, exported `sample`)."""


def check_seed(value: Any, name: str = "seed") -> int:
    """`value` as a seed: an int in [0, MAX_SEED] (the command line's `--seed` too)."""
    if not _is_integer(value) or not 0 <= value <= MAX_SEED:
        raise InputError(f"{name} must be an integer in [0, {MAX_SEED}], got {value!r}")
    return int(value)


def check_number(
    value: Any,
    name: str,
    *,
    minimum: float = -math.inf,
    maximum: float = math.inf,
    strict_minimum: bool = False,
) -> float:
    """`value` as a finite float in [minimum, maximum] (or (minimum, maximum] if strict)."""
    if not _is_number(value) or not math.isfinite(float(value)):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    low_ok = value > minimum if strict_minimum else value >= minimum
    if not low_ok or value > maximum:
        low = "(" if strict_minimum else "["
        raise InputError(f"{name} must be in {low}{minimum:g}, {maximum:g}], got {value:g}")
    return value


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """`value` if it is one of `choices`."""
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}: expected one of {tuple(choices)}")
    return value


def check_image_shape(image_shape: Any) -> tuple[int, int, int]:
    """`(height, width, channels)`, each a positive integer."""
    try:
        shape = tuple(int(s) for s in image_shape)
    except (TypeError, ValueError):
        raise InputError(
            f"image_shape must be (height, width, channels), got {image_shape!r}"
        ) from None
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"image_shape must be (height, width, channels), got {image_shape!r}")
    return shape


def check_square_image_shape(image_shape: Any) -> tuple[int, int, int]:
    """A square `(size, size, channels)` with size a power of two >= 8 (the conv decoder's)."""
    try:
        height, width, channels = (int(v) for v in image_shape)
    except (TypeError, ValueError):
        raise InputError(
            f"image_shape must be (height, width, channels), got {image_shape!r}"
        ) from None
    if height != width:
        raise InputError(f"image_shape must be square, got {height}x{width}")
    if height < 8 or height & (height - 1):
        raise InputError(
            f"image size must be a power of two >= 8 (8, 16, 32, 64, 128, ...), got {height}"
        )
    if channels < 1:
        raise InputError(f"image_shape needs at least one channel, got {channels}")
    return height, width, channels


MAX_CHANNELS = 4
"""More channels than this in the last axis of a batch of images is not an image's
channel axis (grey, grey + alpha, RGB, RGBA)."""


def channels_first_error(shape: Sequence, name: str = "images") -> InputError | None:
    """The error for a batch of images in channels-first layout `(N, C, H, W)`, or None.

    Recognised when the second axis has 1, 3 or 4 entries (a channel count) and
    the last has more than `MAX_CHANNELS` (a width, not channels): e.g. PyTorch's
    `(N, 1, 28, 28)`, which would otherwise be read as 28-channel 1x28 images.
    """
    if len(shape) != 4 or shape[1] not in (1, 3, 4) or shape[-1] is None:
        return None
    if shape[-1] <= MAX_CHANNELS:
        return None
    dims = ", ".join("None" if d is None else str(d) for d in shape)
    return InputError(
        f"the shape ({dims}) of {name} is channels-first (N, C, H, W): keras-gon takes "
        f"channels-last (N, H, W, C) images; transpose them first, e.g. "
        f"np.transpose(x, (0, 2, 3, 1)) or tf.transpose(x, (0, 2, 3, 1))"
    )
