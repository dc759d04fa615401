"""keras_gon.data.pairs: GLO's numbered images and the masked pairs of modality conversion."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.data import masked_pairs, with_example_indices
from keras_gon.errors import InputError


def _batches(images: np.ndarray, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices(images).batch(batch_size)


def test_with_example_indices_numbers_each_image_by_position(mnist32):
    images = mnist32[0][:100]
    ds = with_example_indices(_batches(images, 30), 16, seed=0)
    seen = {}
    for x, index in ds:
        for image, i in zip(x.numpy(), index.numpy()):
            seen[int(i)] = image
    # Shuffling drops the last incomplete batch: 6 batches of 16 of the 100 images.
    assert len(seen) == 96
    for i, image in seen.items():
        np.testing.assert_array_equal(image, images[i])


def test_with_example_indices_knows_its_number_of_batches(mnist32):
    images = _batches(mnist32[0][:100], 30)
    assert int(with_example_indices(images, 16, seed=0).cardinality()) == 6
    assert int(with_example_indices(images, 16, shuffle=False).cardinality()) == 7
    labelled = tf.data.Dataset.from_tensor_slices((mnist32[0][:50], np.zeros(50, "int32")))
    assert int(with_example_indices(labelled.batch(8), 10, seed=0).cardinality()) == 5


def test_with_example_indices_rejects_a_repeated_dataset(mnist32):
    with pytest.raises(InputError, match="finite dataset"):
        with_example_indices(_batches(mnist32[0][:10], 5).repeat(), 4)


def test_glo_fit_on_numbered_images_warns_nothing(mnist32):
    """Keras warned "input ran out of data" (unknown count) and "shuffle=True ... ignored"."""
    model = keras_gon.GLO(latent_dim=4, width=2, num_examples=64, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    ds = with_example_indices(_batches(mnist32[0][:64], 32), 32, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(ds, epochs=2, verbose=0)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "ran out of data" in m or "shuffle" in m], messages


def test_masked_pairs_zero_one_half(mnist32):
    images = mnist32[0][:8]
    masked, target = next(iter(masked_pairs(_batches(images, 8), side="right")))
    np.testing.assert_array_equal(target.numpy(), images)
    assert np.all(masked.numpy()[:, :, 16:] == 0)
    np.testing.assert_array_equal(masked.numpy()[:, :, :16], images[:, :, :16])
