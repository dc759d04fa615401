"""The one preprocessing of images, in the graph: pipelines, models and exports all use it."""

from __future__ import annotations

import tensorflow as tf


def scale_images(images, divisor=None):
    """Images as float32 in [0, 1].

    Integer images (uint8 grey levels) are divided by 255. Float images are
    taken as [0, 1], or as 0-255 when their batch's maximum exceeds 1 (the
    rule `keras_gon.data.check_images` applies to a whole array), unless
    `divisor` says which.
    """
    images = tf.convert_to_tensor(images)
    integer = images.dtype.is_integer or images.dtype == tf.bool
    x = tf.cast(images, tf.float32)
    if divisor is not None:
        return x / divisor if divisor != 1.0 else x
    if integer:
        return x / 255.0
    return tf.where(tf.reduce_max(x) > 1.0, x / 255.0, x)


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
        upsampling = x.shape[-3] is not None and x.shape[-3] <= height and (
            x.shape[-2] is not None and x.shape[-2] <= width)
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
        raise ValueError(f"images have {x.shape[-1]} channels, the model expects {channels}")
    return resize_images(x, (height, width))
