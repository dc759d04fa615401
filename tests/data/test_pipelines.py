"""Tests of keras_gon.data.pipelines (make_dataset, load_dataset)."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_gon.data import DataInfo, load_dataset, make_dataset

from helpers import MNIST_DIR, NPZ, input_error


def _batches(ds) -> list:
    return [b.numpy() if isinstance(b, tf.Tensor) else tuple(t.numpy() for t in b) for b in ds]


# --- make_dataset -------------------------------------------------------------


def test_make_dataset_shapes_dtype_range(mnist10k):
    ds = make_dataset(mnist10k["x_test"][:100], image_size=32, batch_size=16, shuffle=False)
    batches = _batches(ds)
    assert [b.shape for b in batches] == [(16, 32, 32, 1)] * 6 + [(4, 32, 32, 1)]
    assert all(b.dtype == np.float32 for b in batches)
    allx = np.concatenate(batches)
    assert allx.min() >= 0.0 and allx.max() <= 1.0 and allx.max() > 0.9


def test_make_dataset_without_resize_is_exact(mnist10k):
    x = mnist10k["x_test"][:10]
    (out,) = _batches(make_dataset(x, image_size=28, batch_size=10, shuffle=False))
    np.testing.assert_array_equal(out[..., 0], x.astype(np.float32) / 255)


def test_float_unit_input_is_not_rescaled():
    x = np.random.default_rng(0).uniform(0, 1, (5, 8, 8, 3)).astype(np.float32)
    (out,) = _batches(make_dataset(x, image_size=8, batch_size=5, shuffle=False))
    np.testing.assert_allclose(out, x, rtol=1e-6)


def test_resize_28_to_32_and_back_stays_close(mnist10k):
    x = mnist10k["x_test"][:64]
    (up,) = _batches(make_dataset(x, image_size=32, batch_size=64, shuffle=False))
    down = tf.image.resize(up, (28, 28), method="bilinear").numpy()[..., 0]
    ref = x.astype(np.float32) / 255
    assert np.abs(down - ref).mean() < 0.03
    # Much closer than to other digits.
    assert np.abs(down - ref[::-1]).mean() > 5 * np.abs(down - ref).mean()


def test_non_square_images_are_center_cropped():
    x = np.tile(np.arange(8, dtype=np.uint8) * 30, (1, 4, 1))  # (1, 4, 8): columns 0..7
    (out,) = _batches(make_dataset(x, image_size=4, batch_size=1, shuffle=False))
    center = np.array([2, 3, 4, 5]) * 30 / 255
    np.testing.assert_allclose(out[0, 0, :, 0], center, rtol=1e-6)
    tall = np.transpose(x, (0, 2, 1))  # (1, 8, 4): rows 0..7
    (out,) = _batches(make_dataset(tall, image_size=4, batch_size=1, shuffle=False))
    np.testing.assert_allclose(out[0, :, 0, 0], center, rtol=1e-6)
    (out,) = _batches(make_dataset(x, image_size=2, batch_size=1, shuffle=False))
    assert out.shape == (1, 2, 2, 1)


def test_drop_remainder():
    x = np.zeros((10, 4, 4), np.uint8)
    kept = _batches(make_dataset(x, image_size=4, batch_size=4, shuffle=False))
    dropped = _batches(
        make_dataset(x, image_size=4, batch_size=4, shuffle=False, drop_remainder=True)
    )
    assert [len(b) for b in kept] == [4, 4, 2]
    assert [len(b) for b in dropped] == [4, 4]


def test_with_labels_keeps_pairs_aligned():
    x = np.arange(12, dtype=np.uint8).reshape(12, 1, 1) * np.ones((1, 3, 3), np.uint8)
    y = np.arange(12)
    ds = make_dataset(x, y, image_size=3, batch_size=5, shuffle=True, seed=3, with_labels=True)
    images, labels = zip(*_batches(ds))
    images, labels = np.concatenate(images), np.concatenate(labels)
    assert labels.dtype == np.int32
    np.testing.assert_allclose(images[:, 0, 0, 0], labels / 255, rtol=1e-6)
    assert sorted(labels) == list(range(12)) and list(labels) != list(range(12))


def test_with_labels_requires_labels():
    x = np.zeros((4, 2, 2), np.uint8)
    kwargs = dict(image_size=2, batch_size=2, shuffle=False, with_labels=True)
    message = input_error(make_dataset, x, **kwargs)
    assert "no labels" in message
    message = input_error(make_dataset, x, np.arange(3), **kwargs)
    assert "3 labels, expected 4" in message


def test_shuffle_is_deterministic_with_a_seed():
    x = np.arange(50, dtype=np.uint8).reshape(50, 1, 1)

    def order(seed, epochs=1):
        ds = make_dataset(x, image_size=1, batch_size=50, shuffle=True, seed=seed)
        return [
            tuple(np.round(b.numpy().ravel() * 255).astype(int))
            for _, b in zip(range(epochs), ds.repeat())
        ]

    first = order(7, epochs=2)
    assert order(7, epochs=2) == first
    assert sorted(first[0]) == list(range(50)) and list(first[0]) != list(range(50))
    assert first[0] != first[1]  # Reshuffled at each iteration.
    assert order(8)[0] != first[0]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=0),
        dict(batch_size=-1),
        dict(batch_size=2.5),
        dict(batch_size=True),
        dict(image_size=0),
        dict(image_size="32"),
    ],
)
def test_bad_sizes(kwargs):
    args = dict(image_size=4, batch_size=2, shuffle=False) | kwargs
    name = next(iter(kwargs))
    assert name in input_error(make_dataset, np.zeros((4, 4, 4), np.uint8), **args)


def test_make_dataset_validates_images():
    x = np.full((2, 4, 4), np.nan)
    message = input_error(make_dataset, x, image_size=4, batch_size=2, shuffle=False)
    assert "non-finite" in message


# --- load_dataset: numpy sources ---------------------------------------------


def test_load_mnist5k_default():
    train, test, info = load_dataset("mnist5k", seed=0)
    assert info == DataInfo("mnist5k", (32, 32, 1), 4000, 1000, split=info.split)
    assert "seed 0" in info.split
    train_batches, test_batches = _batches(train), _batches(test)
    assert len(train_batches) == 4000 // 64
    assert all(b.shape == (64, 32, 32, 1) for b in train_batches)
    assert all(b.dtype == np.float32 for b in train_batches)
    assert len(test_batches) == 16
    assert test_batches[-1].shape == (1000 - 15 * 64, 32, 32, 1)
    allx = np.concatenate(train_batches)
    assert allx.min() >= 0.0 and allx.max() <= 1.0


def test_load_npz_path_with_labels(mnist10k):
    train, test, info = load_dataset(NPZ, image_size=28, batch_size=500, seed=1, with_labels=True)
    assert info == DataInfo("mnist10k.npz", (28, 28, 1), 8000, 2000, split=info.split)
    assert "x_train and x_test" in info.split
    images, labels = next(iter(test))  # Not shuffled.
    np.testing.assert_array_equal(labels.numpy(), mnist10k["y_test"][:500])
    np.testing.assert_array_equal(
        images.numpy()[..., 0], mnist10k["x_test"][:500] / np.float32(255)
    )
    images, labels = next(iter(train))  # Shuffled.
    assert images.shape == (500, 28, 28, 1) and labels.dtype == tf.int32
    assert not np.array_equal(labels.numpy(), mnist10k["y_train"][:500])


def test_load_idx_directory_path_matches_npz(mnist10k):
    train, test, info = load_dataset(MNIST_DIR, image_size=28, batch_size=2000, shuffle_train=False)
    assert info == DataInfo("mnist", (28, 28, 1), 8000, 2000, split=info.split)
    assert "8000 of 10000" in info.split
    (test_images,) = _batches(test)
    np.testing.assert_array_equal(test_images[..., 0], mnist10k["x_test"] / np.float32(255))
    first = next(iter(train)).numpy()
    np.testing.assert_array_equal(first[..., 0], mnist10k["x_train"][:2000] / np.float32(255))


def test_load_tuple_sources():
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (40, 10, 10, 3), dtype=np.uint8)
    x_test = rng.uniform(0, 1, (6, 10, 10, 3))
    train, test, info = load_dataset((x_train, x_test), image_size=16, batch_size=8)
    assert info == DataInfo("arrays", (16, 16, 3), 40, 6, split="the arrays given")
    assert [b.shape for b in _batches(train)] == [(8, 16, 16, 3)] * 5
    assert [b.shape for b in _batches(test)] == [(6, 16, 16, 3)]
    message = input_error(load_dataset, (x_train, x_test), batch_size=8, with_labels=True)
    assert "no labels" in message

    y_train, y_test = np.arange(40) % 10, np.arange(6)
    train, test, _ = load_dataset(
        ((x_train, y_train), (x_test, y_test)),
        image_size=10,
        batch_size=8,
        with_labels=True,
        shuffle_train=False,
    )
    images, labels = next(iter(train))
    np.testing.assert_array_equal(labels.numpy(), y_train[:8])
    np.testing.assert_allclose(images.numpy(), x_train[:8] / 255, rtol=1e-6)


def test_load_channel_mismatch():
    message = input_error(load_dataset, "mnist5k", channels=3)
    assert message == "x_train of mnist5k has 1 channel, the model expects 3"


def test_load_train_smaller_than_batch():
    x = np.zeros((10, 4, 4), np.uint8)
    message = input_error(load_dataset, (x, x), batch_size=16)
    assert "10 images" in message and "batch_size=16" in message
    one = np.zeros((1, 4, 4), np.uint8)
    assert "has 1 image, fewer than one batch" in input_error(load_dataset, (one, x))


@pytest.mark.parametrize("source", ["missing.npz", "no/such/dir", "./mnist", "x.gz"])
def test_load_missing_path(tmp_path, monkeypatch, source):
    monkeypatch.chdir(tmp_path)
    assert input_error(load_dataset, source) == f"no such file or directory: {source}"
    assert "no such file" in input_error(load_dataset, tmp_path / source)


def test_load_unsupported_sources(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1,2\n")
    assert "unsupported data file" in input_error(load_dataset, str(path))
    assert "unsupported data source" in input_error(load_dataset, np.zeros((4, 4, 4)))
    assert "2 items" in input_error(load_dataset, (np.zeros((4, 4, 4)),) * 3)
    assert "batch_size" in input_error(load_dataset, "mnist5k", batch_size=0)
    assert "image_size" in input_error(load_dataset, "mnist5k", image_size=-3)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    assert f"no images in {empty}: expected image files" in input_error(load_dataset, str(empty))


# --- load_dataset: TFDS (offline, mocked) ------------------------------------


def test_load_tfds_mnist_mocked():
    with tfds.testing.mock_data(num_examples=40):
        train, test, info = load_dataset("mnist", batch_size=16, seed=0, with_labels=True)
        assert info == DataInfo("mnist", (32, 32, 1), 40, 40, split=info.split)
        assert "TFDS splits" in info.split
        batches = _batches(train)
        assert [b[0].shape for b in batches] == [(16, 32, 32, 1)] * 2
        images, labels = batches[0]
        assert images.dtype == np.float32 and labels.dtype == np.int32
        assert images.min() >= 0 and images.max() <= 1 and images.max() > 0.5
        assert [b[0].shape[0] for b in _batches(test)] == [16, 16, 8]
        again, _, _ = load_dataset("mnist", batch_size=16, seed=0, with_labels=True)
        np.testing.assert_array_equal(_batches(again)[0][1], labels)

        message = input_error(load_dataset, "mnist", batch_size=64)
        assert "40 images" in message and "batch_size=64" in message


def test_load_tfds_rgb_and_channel_check_mocked():
    with tfds.testing.mock_data(num_examples=8):
        train, _, info = load_dataset("cifar10", image_size=16, batch_size=4)
        assert info.image_shape == (16, 16, 3)
        assert next(iter(train)).shape == (4, 16, 16, 3)
        message = input_error(load_dataset, "cifar10", channels=1)
        assert "has 3 channels, the model expects 1" in message
        # Non-square (celeb_a 218x178) and variable-size (lsun) images.
        for name in ("celeb_a", "lsun/bedroom"):
            train, _, info = load_dataset(name, image_size=8, batch_size=4, channels=3)
            batch = next(iter(train)).numpy()
            assert batch.shape == (4, 8, 8, 3) and batch.max() <= 1.0
        message = input_error(load_dataset, "celeb_a", batch_size=4, with_labels=True)
        assert "no 'label'" in message


def test_load_unknown_tfds_name():
    """A name that is neither a TFDS dataset nor a file or folder here (a mistyped folder)."""
    message = input_error(load_dataset, "not_a_dataset_xyz")
    assert message.startswith("unknown TFDS dataset 'not_a_dataset_xyz'")
    assert message.endswith(f", and no file or folder of that name in {os.getcwd()}")


def test_source_path_is_the_path_the_loader_reads(tmp_path, monkeypatch):
    from keras_gon.data.pipelines import source_path

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mnist5k").mkdir()  # a folder named like a built-in source: not read
    (tmp_path / "faces").mkdir()
    assert source_path("mnist5k") is None and source_path("keras:mnist") is None
    assert source_path("faces") == tmp_path / "faces" and source_path("celeba") is None
    monkeypatch.setenv("HOME", str(tmp_path))
    assert source_path("~/faces") == tmp_path / "faces"


def test_load_unprepared_tfds_dataset(tmp_path, monkeypatch):
    # Mocked to fail quickly, as offline: a real download attempt might hang.
    def fail(self, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", fail)
    message = input_error(load_dataset, "fashion_mnist", data_dir=tmp_path)
    assert "not prepared" in message and "--data-dir" in message
    assert not os.listdir(tmp_path)
