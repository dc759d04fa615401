"""Sizes checked from the shapes before anything is allocated: memory and picture sides.

A model whose weights cannot fit in the machine's memory, or a picture matplotlib
cannot draw, is refused with `keras_gon.InputError` naming the size, instead of an
out-of-memory kill or a traceback after minutes of work. Imports no TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

from keras_gon.errors import InputError

MAX_PICTURE_SIDE = 2**16 - 1
"""The largest side, in pixels, of a PNG matplotlib's Agg renderer draws (< 2^16)."""


def available_memory() -> int:
    """Bytes of memory this process can still use: the system's available memory, or the
    cgroup's limit less its use when that is smaller."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            available = 2**63 - 1  # unknown: refuse nothing
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(int(available), 0)


def format_bytes(count: float) -> str:
    """`count` bytes as text: '1.5 GiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def check_memory(num_bytes: float, what: str, hint: str = "") -> None:
    """Refuses `what` when its `num_bytes` exceed the memory available now."""
    available = available_memory()
    if num_bytes > available:
        raise InputError(
            f"{what} needs {format_bytes(num_bytes)}, more than the "
            f"{format_bytes(available)} of memory available{hint}"
        )


def check_weights(count: int, what: str, bytes_per_value: int = 4) -> None:
    """Refuses a layer or model of `count` weights (float32 by default) that cannot fit in
    memory: `what` names it with the options that set its size."""
    check_memory(
        count * bytes_per_value, f"{what} has {count:,} weights and", ": choose smaller sizes"
    )


def check_picture_side(pixels: float, what: str, hint: str = "") -> None:
    """Refuses a picture whose side would be `pixels` (more than `MAX_PICTURE_SIDE`)."""
    if pixels > MAX_PICTURE_SIDE:
        raise InputError(
            f"{what} would be {int(pixels):,} pixels a side, more than the "
            f"{MAX_PICTURE_SIDE:,} a PNG can be drawn at{hint}"
        )


def decoding_bytes(model, count: int) -> int:
    """Memory for decoding `count` images at once, from the shapes: the images and, for
    the convolutional decoder, its widest maps (normalised and activated copies)."""
    height, width, channels = model.image_shape
    per_image = height * width * channels * 4
    decoder = getattr(model, "decoder", None)
    if decoder is not None and hasattr(decoder, "width"):
        per_image += height * width * (decoder.width + 2 * channels) * 4 * 3
    return count * per_image
