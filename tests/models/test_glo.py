"""keras_gon.GLO: a latent per training example; held-out latents fitted by gradient descent."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.data import with_example_indices
from keras_gon.errors import InputError

# 2 epochs of the first 1,280 mnist10k images (40 steps) at batch 64, latent 8,
# width 4, Adam 1e-3, seed 0, 30 inference steps. Measured held-out SSE: 112.5 (train 166 -> 135).
NUM_TRAIN = 1280
HELD_OUT_SSE_THRESHOLD = 130.0


@pytest.fixture(scope="module")
def trained(mnist32):
    keras.utils.set_random_seed(0)
    images = tf.data.Dataset.from_tensor_slices(mnist32[0][:NUM_TRAIN]).batch(256)
    train_ds = with_example_indices(images, 64, seed=0)
    model = keras_gon.GLO(latent_dim=8, width=4, num_examples=NUM_TRAIN, inference_steps=30, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(train_ds, epochs=2, verbose=0)
    test_ds = tf.data.Dataset.from_tensor_slices(mnist32[1][:500]).batch(250)
    held_out = model.evaluate(test_ds, verbose=0, return_dict=True)
    return model, history.history["loss"], held_out


def test_trains_and_fits_held_out_latents(trained):
    model, losses, held_out = trained
    print("GLO train losses", losses, "held-out", held_out)
    assert losses[1] < losses[0]
    assert held_out["loss"] < HELD_OUT_SSE_THRESHOLD
    table = model.latent_table.numpy()
    assert np.all(np.abs(table).sum(axis=1) > 0)  # every training latent was visited


def test_held_out_latents_depend_on_the_image_only(trained, mnist32):
    model, _, _ = trained
    x = mnist32[1][:6]
    together = model.encode(x).numpy()
    alone = model.encode(x[:1]).numpy()
    np.testing.assert_allclose(together[:1], alone, rtol=1e-4, atol=1e-4)
    # Fitted latents reconstruct better than the origin.
    sse = lambda a: np.sum((a - x) ** 2, axis=(1, 2, 3)).mean()  # noqa: E731
    assert sse(model.decode(together).numpy()) < sse(model.decode(np.zeros_like(together)).numpy())


def test_fit_refuses_images_without_indices(mnist32):
    model = keras_gon.GLO(latent_dim=8, width=4, num_examples=64)
    model.compile(optimizer="adam")
    with pytest.raises(InputError, match="indices"):
        model.fit(tf.data.Dataset.from_tensor_slices(mnist32[0][:64]).batch(32), verbose=0)
    with pytest.raises(InputError, match=r"in \[0, 64\)"):
        model.fit(mnist32[0][:64], np.arange(1, 65), batch_size=32, verbose=0)
    model.fit(mnist32[0][:64], np.arange(64), batch_size=32, verbose=0)  # numpy pairs work


def test_save_and_load_give_identical_outputs(trained, mnist32, tmp_path):
    model, _, _ = trained
    model.save(tmp_path / "glo.keras")
    loaded = keras.saving.load_model(tmp_path / "glo.keras")
    assert isinstance(loaded, keras_gon.GLO)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.latent_table.numpy(), model.latent_table.numpy())
    x = mnist32[1][:4]
    np.testing.assert_allclose(
        loaded.reconstruct(x).numpy(), model.reconstruct(x).numpy(), atol=1e-6
    )
