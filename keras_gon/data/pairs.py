"""Datasets of pairs for the baselines and experiments: example indices, masked sources."""

from __future__ import annotations

import tensorflow as tf

from keras_gon.errors import InputError

MASKED_SIDES = ("right", "left", "bottom", "top")


def _images_only(ds: tf.data.Dataset) -> tf.data.Dataset:
    spec = ds.element_spec
    if isinstance(spec, tuple):
        return ds.map(lambda x, *rest: x)
    if isinstance(spec, dict):
        raise InputError("expected a dataset of images or (images, labels), got a dict")
    return ds


def with_example_indices(
    ds: tf.data.Dataset, batch_size: int, *, shuffle: bool = True, seed: int | None = None
) -> tf.data.Dataset:
    """`(images, indices)` batches from a batched, *unshuffled* dataset of images.

    Each image is numbered by its position in `ds` (0, 1, ...), then the
    pairs are cached, shuffled and rebatched (dropping the last incomplete
    batch when shuffling), for `keras_gon.GLO`. Build `ds` with
    `load_dataset(..., shuffle_train=False)` so the numbering is stable.
    """
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size}")
    if ds.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise InputError(
            "with_example_indices needs a finite dataset (one pass numbers the "
            "images), got a repeated one: call .repeat() after it"
        )
    # Cached first: counting is the pass that fills the cache, the epochs read it.
    images = _images_only(ds).cache()
    # unbatch() loses the count; knowing it, Keras sizes epochs up front.
    count = int(
        images.reduce(tf.constant(0, tf.int64), lambda n, x: n + tf.shape(x, out_type=tf.int64)[0])
    )
    pairs = images.unbatch().enumerate().map(lambda i, x: (x, tf.cast(i, tf.int32)))
    pairs = pairs.apply(tf.data.experimental.assert_cardinality(count))
    if shuffle:
        pairs = pairs.shuffle(65_536, seed=seed, reshuffle_each_iteration=True)
    return pairs.batch(int(batch_size), drop_remainder=shuffle).prefetch(tf.data.AUTOTUNE)


def mask_half(images: tf.Tensor, side: str = "right") -> tf.Tensor:
    """`images` (batch, H, W, C) with one half set to zero."""
    if side not in MASKED_SIDES:
        raise InputError(f"side must be one of {MASKED_SIDES}, got {side!r}")
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    rows = tf.range(height)[:, None]
    columns = tf.range(width)[None, :]
    keep = {
        "right": columns < width // 2,
        "left": columns >= width // 2,
        "bottom": rows < height // 2,
        "top": rows >= height // 2,
    }[side]
    keep = tf.broadcast_to(keep, (height, width))
    return images * tf.cast(keep, images.dtype)[None, :, :, None]


def masked_pairs(ds: tf.data.Dataset, side: str = "right") -> tf.data.Dataset:
    """`(masked images, images)` batches: the source/target pairs of modality conversion (§3.5).

    Train a GON with `outer_target="y"` on them: its latent is the origin
    gradient on the visible half, its outer loss is on the full image.
    """
    if side not in MASKED_SIDES:
        raise InputError(f"side must be one of {MASKED_SIDES}, got {side!r}")
    return _images_only(ds).map(lambda x: (mask_half(x, side), x))
