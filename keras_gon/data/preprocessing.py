"""The one preprocessing of images, in the graph: pipelines, models and exports all use it."""

from __future__ import annotations

import re

import tensorflow as tf

from keras_gon.errors import InputError
from keras_gon.validation import count_noun

GRAPH_ERROR_MARKER = "keras_gon.InputError: "
"""How the message of a check made in the graph starts (`graph_check`): the serving
error then reads `assertion failed: [keras_gon.InputError: <the reason>]`."""


def graph_check(condition, *message) -> tf.Operation:
    """An assertion whose InvalidArgumentError names the problem in one line.

    `message` are strings and scalar tensors, joined (numbers as their shortest
    text). `graph_error_message` finds the line again; the Python API raises it as
    `keras_gon.InputError` (`input_errors_from_graph`).
    """
    parts = [GRAPH_ERROR_MARKER]
    for part in message:
        if isinstance(part, str):
            parts.append(part)
        else:
            part = tf.convert_to_tensor(part)
            parts.append(
                part
                if part.dtype == tf.string
                else tf.strings.as_string(part, shortest=True)
                if part.dtype.is_floating
                else tf.strings.as_string(part)
            )
    return tf.debugging.Assert(condition, [tf.strings.join(parts)])


def graph_error_message(error: Exception) -> str | None:
    """The one-line reason of an error raised by `graph_check`, or None for another error."""
    # in a graph: `assertion failed: [<marker><reason>]`; eagerly: `... data: b'<marker><reason>'`
    match = re.search(
        re.escape(GRAPH_ERROR_MARKER) + r"(.*?)['\"]?\]?\s*$", str(error), re.MULTILINE
    )
    return match.group(1).strip() if match else None


class input_errors_from_graph:  # noqa: N801 (used as a `with` statement)
    """`with input_errors_from_graph():` raises a `graph_check` failure as `InputError`."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if isinstance(error, tf.errors.InvalidArgumentError):
            message = graph_error_message(error)
            if message is not None:
                raise InputError(message) from None
        return False


INTEGER_RANGE = (0, 255)
"""Integer images are grey levels in [0, 255] (divided by 255)."""
FLOAT_RANGE = (0.0, 1.0)
"""Float images are in [0, 1] (taken as they are)."""
FLOAT_TOLERANCE = 1e-4
"""How far outside [0, 1] a float pixel may be (the rounding of a resampling; then clipped)."""


def check_image_values(images, name: str = "images"):
    """`images` after the one check of pixel values, in the graph or eagerly.

    The rule, the same for the Python API (`fit`, `evaluate`, `predict`,
    `encode`, `reconstruct`), the data pipelines given to a model and the
    exported signatures: integer images are grey levels in [0, 255]; float
    images are finite and in [0, 1] (0-255 levels in a float array are refused,
    not guessed: a dark image's brightest pixel can be <= 1). A failure raises
    InvalidArgumentError with one line (`graph_check`), an `InputError` under
    `input_errors_from_graph`.
    """
    images = tf.convert_to_tensor(images)
    if images.dtype == tf.bool or not (images.dtype.is_integer or images.dtype.is_floating):
        raise InputError(
            f"{name} have dtype {images.dtype.name}, expected integer grey levels "
            "(e.g. uint8) or floats in [0, 1]"
        )
    if images.dtype.is_integer:
        low, high = tf.reduce_min(images), tf.reduce_max(images)
        in_range = (tf.size(images) == 0) | ((low >= INTEGER_RANGE[0]) & (high <= INTEGER_RANGE[1]))
        checks = [
            graph_check(
                in_range,
                f"{name} have grey levels in [",
                low,
                ", ",
                high,
                "]: integer images must be in [0, 255]",
            )
        ]
    else:
        finite = tf.reduce_all(tf.math.is_finite(images))
        values = tf.where(tf.math.is_finite(images), images, tf.zeros_like(images))
        low, high = tf.reduce_min(values), tf.reduce_max(values)
        in_range = (tf.size(images) == 0) | (
            (low >= FLOAT_RANGE[0] - FLOAT_TOLERANCE) & (high <= FLOAT_RANGE[1] + FLOAT_TOLERANCE)
        )
        checks = [
            graph_check(finite, f"{name} contain NaN or infinite (non-finite) values"),
            graph_check(
                in_range | ~finite,
                f"{name} have float values in [",
                low,
                ", ",
                high,
                "]: float images must be in [0, 1] (send grey levels 0-255 as integers, "
                "e.g. uint8, or divide them by 255)",
            ),
        ]
    with tf.control_dependencies(checks):
        return tf.identity(images)


def scale_images(images, divisor=None):
    """Images as float32 in [0, 1].

    Integer images (uint8 grey levels) are divided by 255; float images are
    taken as they are ([0, 1], `check_image_values`), unless `divisor` says
    otherwise (the data pipelines pass the one they found for a whole array).
    """
    images = tf.convert_to_tensor(images)
    integer = images.dtype.is_integer or images.dtype == tf.bool
    x = tf.cast(images, tf.float32)
    if divisor is not None:
        return x / divisor if divisor != 1.0 else x
    return x / 255.0 if integer else x


def center_crop_square(images):
    """The central square of `(..., H, W, C)` images."""
    h, w = images.shape[-3], images.shape[-2]
    if h is not None and w is not None:
        if h == w:
            return images
        size = min(h, w)
        top, left = (h - size) // 2, (w - size) // 2
    else:
        shape = tf.shape(images)
        h, w = shape[-3], shape[-2]
        size = tf.minimum(h, w)
        top, left = (h - size) // 2, (w - size) // 2
    return images[..., top : top + size, left : left + size, :]


def resize_images(images, size: tuple[int, int]):
    """Float images center-cropped to a square, resized (bilinear, antialiased) and clipped."""
    x = center_crop_square(images)
    height, width = size
    if x.shape[-3] != height or x.shape[-2] != width:
        # Bilinear, antialiased when downsampling (less aliasing). Upsampling,
        # the two agree to ~3e-6 and the plain kernel is the one XLA compiles.
        # A size known only at run time (a serving request) is resampled only
        # when it differs from the model's: the resampling kernel is most of
        # an exported encoder's time otherwise.
        upsampling = (
            x.shape[-3] is not None
            and x.shape[-3] <= height
            and (x.shape[-2] is not None and x.shape[-2] <= width)
        )
        static = x.shape[-3] is not None and x.shape[-2] is not None
        if static:
            x = tf.image.resize(x, (height, width), method="bilinear", antialias=not upsampling)
        else:  # a serving request: most come at the model's size, and skip the resampling
            shape = tf.shape(x)
            x = tf.cond(
                (shape[-3] == height) & (shape[-2] == width),
                lambda: tf.ensure_shape(x, (*x.shape[:-3], height, width, x.shape[-1])),
                lambda: tf.image.resize(x, (height, width), method="bilinear", antialias=True),
            )
    return tf.clip_by_value(x, 0.0, 1.0)


def preprocess_images(images, image_shape, divisor=None):
    """Any batch of images as the model's input: float32 `(N, *image_shape)` in [0, 1].

    `images` is `(N, H, W)` or `(N, H, W, C)`, integer (0-255) or float,
    of any size: scaled (`scale_images`), given a channel axis, cropped to a
    square and resized to the model's size (`resize_images`). Used by the
    data pipelines, every model's `train_step`/`test_step`/`predict`, its
    `encode`/`reconstruct`, and the exported serving signatures, so a 28x28
    uint8 digit reaches a 32x32 model the same way everywhere. A wrong
    channel count is an error (`InvalidArgumentError` in a graph).
    """
    x = scale_images(images, divisor)
    if x.shape.rank == 3:
        x = x[..., None]
    height, width, channels = image_shape
    if x.shape[-1] is not None and x.shape[-1] != channels:
        raise ValueError(
            f"images have {count_noun(x.shape[-1], 'channel')}, the model expects {channels}"
        )
    return resize_images(x, (height, width))
