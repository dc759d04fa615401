"""Reader for the IDX format (MNIST, Fashion-MNIST, KMNIST distributions)."""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from keras_gon.errors import InputError

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# File names looked for by `load_idx_directory`, in order of preference.
_PREFIXES = ("train", "t10k")


def _candidates(prefix: str, kind: str, rank: int) -> list[str]:
    names = []
    for sep in ("-", "."):
        base = f"{prefix}-{kind}{sep}idx{rank}-ubyte"
        names += [base, base + ".gz"]
    return names


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"IDX file not found: {path}") from None
    except IsADirectoryError:
        raise InputError(f"expected an IDX file, got a directory: {path}") from None
    except OSError as err:
        raise InputError(f"cannot read IDX file {path}: {err.strerror or err}") from None
    if path.name.endswith(".gz") or data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:
            raise InputError(
                f"{path} is not a valid gzip file ({type(err).__name__}: {err})"
            ) from None
    return data


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file, raw or gzip-compressed.

    The IDX format is a 4-byte magic number `0x00 0x00 <type> <ndim>`
    followed by `ndim` big-endian uint32 dimensions and the big-endian
    payload. Supported type codes: 0x08 (uint8), 0x09 (int8), 0x0B (int16),
    0x0C (int32), 0x0D (float32), 0x0E (float64). Files whose name ends in
    `.gz` (or which start with the gzip magic bytes) are decompressed.

    Args:
        path: Path to the file.

    Returns:
        A numpy array of shape `dims` in native byte order (e.g. uint8
        `(10000, 28, 28)` for `t10k-images-idx3-ubyte.gz`).

    Raises:
        InputError: if the file is missing, is not valid gzip, has a bad magic
            number or its payload size does not match its header.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise InputError(
            f"{path} is not an IDX file: {len(data)} bytes, expected at least a 4-byte header"
        )
    zero0, zero1, type_code, ndim = data[:4]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise InputError(
            f"{path} has a bad IDX magic number 0x{data[:4].hex()}, expected "
            "0x0000TTNN with type TT in 08/09/0B/0C/0D/0E and NN >= 1 "
            "dimensions"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise InputError(
            f"{path} is truncated: {len(data)} bytes, expected a header of "
            f"{header_size} bytes for {ndim} dimensions"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(dims) * dtype.itemsize
    found = len(data) - header_size
    if found != expected:
        what = "truncated" if found < expected else "has trailing data"
        raise InputError(
            f"{path} {what}: expected {expected} payload bytes for its header "
            f"shape {dims} of {dtype.name}, found {found}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header_size)
    return array.reshape(dims).astype(dtype.newbyteorder("="))


def _find(directory: Path, names: list[str]) -> Path | None:
    for name in names:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def _read_pair(images_path: Path, labels_path: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    x = read_idx(images_path)
    if x.ndim != 3:
        raise InputError(f"{images_path} has shape {x.shape}, expected images of shape (N, H, W)")
    if labels_path is None:
        return x, None
    y = read_idx(labels_path)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise InputError(
            f"{labels_path} has shape {y.shape}, expected ({x.shape[0]},) "
            f"to match the {x.shape[0]} images of {images_path.name}"
        )
    return x, y


def load_idx_directory(directory: str | os.PathLike):
    """Loads a train/test split from a directory of MNIST-style IDX files.

    Looks for `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
    `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each either raw
    or gzipped (`.gz`), also under the dotted spelling
    (`t10k-images.idx3-ubyte`).

    - If both the `train` and the `t10k` images exist, they are the train and
      test sets.
    - If only one of them exists, it is split: the first 80% of its images
      are the train set and the last 20% the test set (the layout of
      `mnist10k.npz` built from the MNIST `t10k` files).
    - A missing labels file gives labels `None`.

    Args:
        directory: The directory.

    Returns:
        `((x_train, y_train), (x_test, y_test))`, uint8 images of shape
        `(N, H, W)` and uint8 labels of shape `(N,)` (or `None`).

    Raises:
        InputError: if the directory does not exist, holds no images file, or
            a file is invalid.
    """
    directory = Path(directory)
    if not directory.exists():
        raise InputError(f"no such file or directory: {directory}")
    if not directory.is_dir():
        raise InputError(f"expected a directory of IDX files, got a file: {directory}")
    pairs = {}
    for prefix in _PREFIXES:
        images = _find(directory, _candidates(prefix, "images", 3))
        if images is not None:
            labels = _find(directory, _candidates(prefix, "labels", 1))
            pairs[prefix] = _read_pair(images, labels)
    if not pairs:
        looked_for = ", ".join(
            f"{_candidates(prefix, 'images', 3)[0]}[.gz]" for prefix in _PREFIXES
        )
        raise InputError(
            f"no IDX images file in {directory}: looked for {looked_for} (also with '.idx3-ubyte')"
        )
    if len(pairs) == 2:
        return pairs["train"], pairs["t10k"]
    ((x, y),) = pairs.values()
    n = x.shape[0]
    n_train = (n * 4) // 5
    if n_train == 0 or n_train == n:
        raise InputError(
            f"{directory} has only {n} image(s) in a single IDX file, too few "
            "to split into 80% train / 20% test"
        )
    y_train = None if y is None else y[:n_train]
    y_test = None if y is None else y[n_train:]
    return (x[:n_train], y_train), (x[n_train:], y_test)
