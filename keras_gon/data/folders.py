"""Folders of image files (PNG, JPEG, BMP, GIF) as `tf.data` pipelines.

The layouts of `keras.utils.image_dataset_from_directory` and of most data
people have:

- a flat folder of images (no labels);
- one subfolder per class (labels are the subfolders' indices in sorted
  order, images found at any depth below each);
- either of those under `train/` and `test/` (or `val/`, `validation/`), used
  as the split; otherwise (or under `train/` alone) a held-out fraction is drawn
  with a fixed seed.

Files are decoded by TensorFlow (`tf.io.decode_image`) and preprocessed by
`keras_gon.data.preprocessing` (centre crop to a square, resize), in the
graph, streamed from disk.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_gon.errors import InputError
from keras_gon.validation import count_noun

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
"""File extensions read as images (any case)."""
TRAIN_FOLDERS = ("train", "training")
TEST_FOLDERS = ("test", "val", "validation", "valid")
COLOR_MODES = ("grayscale", "rgb")
_VERIFY_BATCH = 256


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The images found in a folder: files, labels and how they were split.

    Attributes:
        root: the folder.
        train_files: paths of the training images.
        test_files: paths of the held-out images.
        train_labels: class indices of the training images (None for a flat folder).
        test_labels: class indices of the held-out images (None for a flat folder).
        class_names: the class subfolders' names, sorted (empty for a flat folder).
        channels: 3 if any image has colour, else 1 (what "grey or colour from the
            data" chooses).
        split: how the held-out images were chosen, in words.
        not_images: files skipped because their name is not an image's.
        corrupt: image files skipped because TensorFlow could not decode them.
    """

    root: Path
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    train_labels: tuple[int, ...] | None
    test_labels: tuple[int, ...] | None
    class_names: tuple[str, ...]
    channels: int
    split: str
    not_images: tuple[str, ...] = ()
    corrupt: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """The number of classes (0 for a flat folder)."""
        return len(self.class_names)

    def summary(self) -> str:
        """One line: how many images of how many classes, the split, what was skipped."""
        classes = (
            f" of {count_noun(self.num_classes, 'class', 'classes')}"
            if self.num_classes
            else " (a flat folder: no labels)"
        )
        text = (
            f"found {len(self.train_files):,} training and {len(self.test_files):,} "
            f"held-out images{classes} in {self.root}; split: {self.split}"
        )
        skipped = []
        if self.not_images:
            skipped.append(_files_phrase(self.not_images, "not an image"))
        if self.corrupt:
            skipped.append(_files_phrase(self.corrupt, "unreadable"))
        if skipped:
            text += "; skipped " + " and ".join(skipped)
        return text


def _files_phrase(files: tuple[str, ...], what: str) -> str:
    names = ", ".join(repr(name) for name in files[:3]) + (", ..." if len(files) > 3 else "")
    return f"{len(files)} file{'s' if len(files) != 1 else ''} {what} ({names})"


def is_image_file(path: str | os.PathLike) -> bool:
    """Whether a file name has an image extension (`IMAGE_EXTENSIONS`)."""
    return os.path.splitext(os.fspath(path))[1].lower() in IMAGE_EXTENSIONS


def holds_images(directory: str | os.PathLike) -> bool:
    """Whether `directory` or a folder below it holds at least one image file."""
    for _, _, files in os.walk(directory):
        if any(is_image_file(name) for name in files):
            return True
    return False


def _walk_files(directory: Path) -> list[Path]:
    """Every file below `directory`, in a stable (sorted) order; hidden entries skipped."""
    found = []
    for current, folders, files in os.walk(directory):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        found += [Path(current) / name for name in sorted(files) if not name.startswith(".")]
    return found


def _subfolders(directory: Path) -> list[Path]:
    try:
        return sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as error:
        raise InputError(f"cannot read folder {directory}: {error.strerror or error}") from None


def _find_split_folders(root: Path) -> tuple[Path, Path | None] | None:
    """`(train, test)` split folders of `root`; `(train, None)` when `train/` is its only
    folder of images (a fraction of it is held out); None when it has no split folders.
    A held-out folder without a training one, or a training folder beside class folders,
    is refused by name (neither is a class)."""
    folders = {p.name.lower(): p for p in _subfolders(root)}
    train = next((folders[n] for n in TRAIN_FOLDERS if n in folders), None)
    test = next((folders[n] for n in TEST_FOLDERS if n in folders), None)
    if train is not None and test is not None:
        return train, test
    split = train or test
    if split is None or not holds_images(split):  # (an empty one beside classes: ignored)
        return None
    others = [p.name for p in folders.values() if p != split and holds_images(p)]
    if test is not None:
        raise InputError(
            f"{root} has a {test.name}/ folder but no train/ beside it: add train/, "
            "or give the folder of class subfolders itself"
        )
    if others:
        raise InputError(
            f"{root} has a {train.name}/ folder beside other folders of images "
            f"({', '.join(others[:3])}): give train/ and test/, or one subfolder per class"
        )
    loose = [p.name for p in root.iterdir() if p.is_file() and is_image_file(p)]
    if loose:
        raise InputError(
            f"{root} holds images beside its {train.name}/ folder ({', '.join(loose[:3])}): "
            f"move them into {train.name}/"
        )
    return train, None


def _list_split(folder: Path, root: Path, class_names: tuple[str, ...] | None):
    """`(images, labels, class_names, not_images)` of one split folder.

    With `class_names` None, the folder's layout decides: flat (images directly in
    it, no subfolder holding images) or one subfolder per class.
    """
    loose = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")]
    classes = [d for d in _subfolders(folder) if holds_images(d)]
    if class_names is None:
        if classes and any(is_image_file(p) for p in loose):
            raise InputError(
                f"{folder} holds both images and class subfolders "
                f"({', '.join(d.name for d in classes[:3])}): put every image in a class "
                "subfolder, or give a flat folder"
            )
        class_names = tuple(d.name for d in classes)
    elif classes or any(is_image_file(p) for p in loose):
        unknown = sorted({d.name for d in classes} - set(class_names))
        if unknown:
            raise InputError(
                f"{folder} has class folders the training folder has not: {', '.join(unknown[:5])}"
            )
        if class_names and any(is_image_file(p) for p in loose):
            raise InputError(f"{folder} holds images outside the class subfolders")
    images, labels, not_images = [], [], []
    if class_names:
        for index, name in enumerate(class_names):
            if not (folder / name).is_dir():
                continue
            for path in _walk_files(folder / name):
                (images if is_image_file(path) else not_images).append(path)
                if is_image_file(path):
                    labels.append(index)
        not_images += [p for p in loose if not is_image_file(p)]
    else:
        for path in _walk_files(folder):
            (images if is_image_file(path) else not_images).append(path)
    relative = tuple(str(p.relative_to(root)) for p in not_images)
    return [str(p) for p in images], (labels if class_names else None), class_names, relative


def _verify(files: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Decodes every file once: `(readable mask, channels)` (channels 0 where unreadable).

    TensorFlow decodes (`tf.io.decode_image`, the pipeline's own decoder): a file it
    cannot decode is found here, not in the middle of training.
    """
    readable = np.zeros(len(files), bool)
    channels = np.zeros(len(files), np.int32)
    if not files:
        return readable, channels

    @tf.autograph.experimental.do_not_convert
    def probe(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        return index, tf.shape(image)[-1]

    ds = tf.data.Dataset.from_tensor_slices(files).enumerate()
    ds = ds.map(probe, num_parallel_calls=max(1, os.cpu_count() or 1))
    ds = ds.ignore_errors().batch(_VERIFY_BATCH)
    for indices, found in ds.as_numpy_iterator():
        readable[indices] = True
        channels[indices] = found
    return readable, channels


def _held_out_split(files, labels, fraction: float, seed: int):
    """Train and held-out index arrays: `fraction` of each class held out, a fixed seed."""
    rng = np.random.default_rng(seed)
    groups = (
        [np.arange(len(files))]
        if labels is None
        else [np.flatnonzero(np.asarray(labels) == c) for c in np.unique(labels)]
    )
    train, test = [], []
    for group in groups:
        group = rng.permutation(group)
        count = int(round(fraction * len(group)))
        if len(group) > 1:
            count = min(max(count, 1), len(group) - 1)
        else:
            count = 0
        test.append(group[:count])
        train.append(group[count:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def scan_image_folder(
    directory: str | os.PathLike,
    *,
    validation_split: float = 0.1,
    split_seed: int = 0,
    labels: bool | None = None,
) -> ImageFolder:
    """Finds the images of a folder, their classes and the train/held-out split.

    Every image file is decoded once by TensorFlow: files it cannot decode are
    skipped and counted (`ImageFolder.corrupt`), as are files without an image
    extension (`ImageFolder.not_images`).

    Args:
        directory: the folder (see the module docstring for the layouts).
        validation_split: fraction held out (per class) when the folder has no
            `train/` and `test/` subfolders, in (0, 1).
        split_seed: seed of that held-out draw.
        labels: True requires class subfolders, False ignores them (the images
            are taken all the same); None takes them when present.

    Returns:
        An `ImageFolder`.

    Raises:
        InputError: a missing folder, no images, a layout that mixes images and
            class folders (or images and `train/`), `test/` without `train/`,
            `train/` beside class folders, labels asked for a flat folder or for
            fewer than 2 classes, or too few images to hold some out.
    """
    root = Path(directory).expanduser()
    if not root.exists():
        raise InputError(f"no such file or directory: {directory}")
    if not root.is_dir():
        raise InputError(f"expected a folder of images, got a file: {directory}")
    if not 0.0 < float(validation_split) < 1.0:
        raise InputError(f"validation_split must be in (0, 1), got {validation_split!r}")
    split_folders = _find_split_folders(root)
    held_out_of = root  # the folder a fraction is held out of, when there is no test/
    if split_folders is not None and split_folders[1] is None:
        held_out_of, split_folders = split_folders[0], None
    if split_folders is not None:
        train_dir, test_dir = split_folders
        train_files, train_labels, class_names, skipped = _list_split(train_dir, root, None)
        test_files, test_labels, _, skipped_test = _list_split(test_dir, root, class_names)
        skipped += skipped_test
        split = f"the {train_dir.name}/ and {test_dir.name}/ folders"
    else:
        files, all_labels, class_names, skipped = _list_split(held_out_of, root, None)
        train_files, test_files = files, []
        train_labels, test_labels = all_labels, None
    if labels is False:
        class_names = ()
        train_labels = test_labels = None
    elif labels and not class_names:
        raise InputError(f"{root} is a flat folder: labels need one subfolder of images per class")
    elif labels and len(class_names) < 2:
        raise InputError(
            f"{root} has 1 class folder ({class_names[0]}): labels need at least 2 "
            "subfolders of images, one per class"
        )
    found = train_files + test_files
    if not found:
        raise InputError(
            f"no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) in {root}"
            + (f" (only {_files_phrase(tuple(skipped), 'not an image')})" if skipped else "")
        )
    readable, channels = _verify(found)
    corrupt = tuple(str(Path(f).relative_to(root)) for f, ok in zip(found, readable) if not ok)
    keep_train = readable[: len(train_files)]
    keep_test = readable[len(train_files) :]
    train_files = [f for f, ok in zip(train_files, keep_train) if ok]
    test_files = [f for f, ok in zip(test_files, keep_test) if ok]
    if train_labels is not None:
        train_labels = [y for y, ok in zip(train_labels, keep_train) if ok]
    if test_labels is not None and split_folders is not None:
        test_labels = [y for y, ok in zip(test_labels, keep_test) if ok]
    if not readable.any():
        raise InputError(
            f"none of the {len(found)} image files in {root} could be decoded (e.g. {corrupt[0]!r})"
        )
    if split_folders is None:
        train_index, test_index = _held_out_split(
            train_files, train_labels, float(validation_split), split_seed
        )
        if len(test_index) == 0:
            raise InputError(
                f"{root} has {len(train_files)} readable image(s): too few to hold "
                f"out a fraction {validation_split:g} for evaluation"
            )
        files = np.asarray(train_files, dtype=object)
        train_files, test_files = list(files[train_index]), list(files[test_index])
        if train_labels is not None:
            all_labels = np.asarray(train_labels)
            train_labels, test_labels = list(all_labels[train_index]), list(all_labels[test_index])
        each = " of each class" if train_labels is not None else ""
        of = f" of {held_out_of.name}/" if held_out_of != root else ""
        split = f"a fraction {validation_split:g}{each}{of} held out at random, seed {split_seed}"
    elif not test_files:
        raise InputError(f"{test_dir} holds no readable images")
    colour = int(channels[readable].max()) >= 3
    return ImageFolder(
        root=root,
        train_files=tuple(train_files),
        test_files=tuple(test_files),
        train_labels=None if train_labels is None else tuple(int(y) for y in train_labels),
        test_labels=None if test_labels is None else tuple(int(y) for y in test_labels),
        class_names=tuple(class_names),
        channels=3 if colour else 1,
        split=split,
        not_images=tuple(skipped),
        corrupt=corrupt,
    )


def decode_image_file(path, channels: int):
    """The image in file `path` (PNG, JPEG, BMP or GIF's first frame) as uint8 (H, W, channels).

    Grey images become colour by repeating their channel, colour images grey by
    `tf.image.rgb_to_grayscale`; an alpha channel is dropped.
    """
    image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    found = tf.shape(image)[-1]
    if channels == 1:
        image = tf.cond(
            found >= 3, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: image[..., :1]
        )
    else:
        image = tf.cond(
            found >= 3, lambda: image[..., :3], lambda: tf.tile(image[..., :1], [1, 1, 3])
        )
    return tf.ensure_shape(image, (None, None, channels))


def file_dataset(files, labels, channels: int, *, shuffle: bool, seed: int | None):
    """A dataset of decoded uint8 images (and int32 labels) read from `files`.

    Shuffled as file names (cheap, the whole list) before any file is read, so a
    folder larger than memory streams in a new order every epoch.
    """
    elements = list(files) if labels is None else (list(files), np.asarray(labels, "int32"))
    ds = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    @tf.autograph.experimental.do_not_convert
    def read(path, *label):
        return (
            (decode_image_file(path, channels), *label)
            if label
            else decode_image_file(path, channels)
        )

    return ds.map(read, num_parallel_calls=max(1, os.cpu_count() or 1))
