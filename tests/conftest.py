"""Shared fixtures: real MNIST from ../shared/data, resized once per session."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from helpers import MNIST10K, load_mnist10k


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, size, size, 1) in [0, 1], bilinear."""
    import tensorflow as tf

    x = images[..., None].astype("float32") / 255.0
    return tf.image.resize(x, (size, size)).numpy().clip(0.0, 1.0)


@pytest.fixture(scope="session")
def mnist10k():
    """The real mnist10k split: dict of uint8 x_train (8000) / x_test (2000) and labels."""
    if not MNIST10K.exists():
        pytest.fail(f"real data missing: {MNIST10K} (see ../shared/data/README.md)")
    return load_mnist10k()


@pytest.fixture(scope="session")
def mnist32(mnist10k):
    """mnist10k as float32 (N, 32, 32, 1) in [0, 1]: (x_train, x_test)."""
    return resize_images(mnist10k["x_train"], 32), resize_images(mnist10k["x_test"], 32)


@pytest.fixture()
def float64():
    """Run a test with Keras's default float type and dtype policy set to float64."""
    import keras

    previous_floatx = keras.config.floatx()
    previous_policy = keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(previous_floatx)
    keras.config.set_dtype_policy(previous_policy)


@pytest.fixture(scope="session")
def make_batches():
    """`make_batches(x, batch_size, shuffle, seed=0)`: a tf.data pipeline over images."""
    import tensorflow as tf

    def make(x: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0):
        dataset = tf.data.Dataset.from_tensor_slices(x)
        if shuffle:
            dataset = dataset.shuffle(len(x), seed=seed)
        return dataset.batch(batch_size, drop_remainder=shuffle).prefetch(2)

    return make


@pytest.fixture(scope="session")
def cifar10_folder(tmp_path_factory):
    """Real CIFAR-10 JPEGs of 3 classes: train/<class>/ (100 each) and test/<class>/ (30 each)."""
    from helpers import cifar10_subset

    return cifar10_subset(tmp_path_factory.mktemp("cifar10"))


@pytest.fixture(scope="session")
def celeba_folder(tmp_path_factory):
    """The first 320 real CelebA faces, a flat folder of 89x109 JPEGs."""
    from helpers import celeba_subset

    return celeba_subset(tmp_path_factory.mktemp("celeba"))


@pytest.fixture(scope="session")
def coil20_folder(tmp_path_factory):
    """Real COIL-20: the 72 grey 128x128 PNGs of 4 objects and the archive's `Icon\\r` file."""
    from helpers import coil20_subset

    return coil20_subset(tmp_path_factory.mktemp("coil20"))
