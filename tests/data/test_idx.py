"""Tests of keras_gon.data.idx (IDX reader) on the real MNIST files."""

import gzip
import shutil
import struct

import numpy as np
import pytest

from keras_gon.data import load_idx_directory, read_idx

from helpers import MNIST_DIR, file_error, input_error

IMAGES_GZ = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
LABELS_GZ = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"


def _idx_bytes(array: np.ndarray, type_code: int) -> bytes:
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    header = bytes([0, 0, type_code, array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype[type_code]).tobytes()


def test_read_real_images_and_labels(mnist10k):
    x = read_idx(IMAGES_GZ)
    y = read_idx(LABELS_GZ)
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.dtype == np.uint8
    assert x.flags.writeable
    assert x.min() == 0 and x.max() == 255
    assert set(np.unique(y)) == set(range(10))
    assert y[0] == 7  # The first MNIST test digit is a 7.
    np.testing.assert_array_equal(x, np.concatenate([mnist10k["x_train"], mnist10k["x_test"]]))
    np.testing.assert_array_equal(y, np.concatenate([mnist10k["y_train"], mnist10k["y_test"]]))


def test_read_uncompressed_copy(tmp_path):
    raw = tmp_path / "t10k-labels-idx1-ubyte"
    raw.write_bytes(gzip.decompress(LABELS_GZ.read_bytes()))
    np.testing.assert_array_equal(read_idx(raw), read_idx(LABELS_GZ))


@pytest.mark.parametrize(
    "type_code, dtype",
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_all_type_codes_round_trip(tmp_path, type_code, dtype):
    sign = -1 if type_code in (0x09, 0x0B) else 1
    array = (np.arange(24).reshape(2, 3, 4) * sign).astype(dtype)
    if dtype in (np.float32, np.float64):
        array = array + dtype(0.25)
    path = tmp_path / "a.idx"
    path.write_bytes(_idx_bytes(array, type_code))
    out = read_idx(path)
    assert out.dtype == dtype and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


def test_truncated_file(tmp_path):
    data = gzip.decompress(IMAGES_GZ.read_bytes())
    path = tmp_path / "t10k-images-idx3-ubyte"
    message = file_error(read_idx, path, data[:-100])
    assert str(path) in message and "truncated" in message
    assert "7840000" in message and "7839900" in message


@pytest.mark.parametrize(
    "name, corrupt",
    [
        ("t10k-images-idx3-ubyte.gz", lambda data: data[: len(data) // 2]),  # truncated
        ("train-images-idx3-ubyte.gz", lambda data: b"definitely not gzip data"),
    ],
    ids=["truncated", "not-gzip"],
)
def test_bad_gzip(tmp_path, name, corrupt):
    path = tmp_path / name
    message = file_error(read_idx, path, corrupt(IMAGES_GZ.read_bytes()))
    assert str(path) in message and "gzip" in message


def test_trailing_data(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    message = file_error(read_idx, path, _idx_bytes(np.arange(5), 0x08) + b"\x00\x01")
    assert "trailing" in message and "expected" in message
    assert "expected 5 payload bytes" in message and "found 7" in message


def test_header_shorter_than_dims(tmp_path):
    path = tmp_path / "short"
    assert "truncated" in file_error(read_idx, path, bytes([0, 0, 8, 3]) + b"\x00\x00")
    assert "not an IDX file" in file_error(read_idx, path, b"\x00\x00")


@pytest.mark.parametrize(
    "magic",
    [b"\x00\x01\x08\x01", b"\x00\x00\x0a\x01", b"\x00\x00\x08\x00", b"PK\x03\x04"],
)
def test_bad_magic(tmp_path, magic):
    path = tmp_path / "bad"
    message = file_error(read_idx, path, magic + struct.pack(">I", 1) + b"\x00")
    assert "magic" in message and magic.hex() in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope-idx3-ubyte.gz"
    message = input_error(read_idx, path)
    assert str(path) in message and "not found" in message
    assert "directory" in input_error(read_idx, tmp_path)


def test_load_real_directory_splits_80_20_like_the_npz(mnist10k):
    (x_train, y_train), (x_test, y_test) = load_idx_directory(MNIST_DIR)
    np.testing.assert_array_equal(x_train, mnist10k["x_train"])
    np.testing.assert_array_equal(y_train, mnist10k["y_train"])
    np.testing.assert_array_equal(x_test, mnist10k["x_test"])
    np.testing.assert_array_equal(y_test, mnist10k["y_test"])


def test_directory_with_train_and_t10k_pairs(tmp_path):
    rng = np.random.default_rng(0)
    x_tr = rng.integers(0, 256, (7, 4, 5), dtype=np.uint8)
    x_te = rng.integers(0, 256, (3, 4, 5), dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(x_tr, 0x08))
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(np.arange(7), 0x08))
    )
    # Dotted spelling, gzipped.
    (tmp_path / "t10k-images.idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(x_te, 0x08)))
    (train, test) = load_idx_directory(str(tmp_path))
    np.testing.assert_array_equal(train[0], x_tr)
    np.testing.assert_array_equal(train[1], np.arange(7))
    np.testing.assert_array_equal(test[0], x_te)
    assert test[1] is None  # No t10k labels file.


def test_directory_without_labels(tmp_path):
    shutil.copy(IMAGES_GZ, tmp_path / IMAGES_GZ.name)
    (x_train, y_train), (x_test, y_test) = load_idx_directory(tmp_path)
    assert x_train.shape == (8000, 28, 28) and x_test.shape == (2000, 28, 28)
    assert y_train is None and y_test is None


def test_directory_labels_length_mismatch(tmp_path):
    images = _idx_bytes(np.zeros((10, 2, 2)), 0x08)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(images)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(9), 0x08))
    message = input_error(load_idx_directory, tmp_path)
    assert "t10k-labels-idx1-ubyte" in message and "(10,)" in message


def test_directory_images_must_be_3d(tmp_path):
    images = _idx_bytes(np.zeros((10, 4)), 0x08)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(images)
    assert "(N, H, W)" in input_error(load_idx_directory, tmp_path)


def test_empty_directory_lists_names(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    message = input_error(load_idx_directory, tmp_path)
    assert "train-images-idx3-ubyte" in message and "t10k-images-idx3-ubyte" in message


def test_missing_directory(tmp_path):
    message = input_error(load_idx_directory, tmp_path / "missing")
    assert message == f"no such file or directory: {tmp_path / 'missing'}"
