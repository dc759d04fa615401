"""GradientOriginModel(outer_target="y"): inner loss on a source, outer loss on a target (§3.5)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.data import mask_half, masked_pairs
from keras_gon.errors import InputError

# 100 steps (batch 64) of mnist10k, latent 16, width 8, Adam 1e-3, seed 0.
# Measured held-out SSE of the full image from its left half: 40.4;
# the same model's SSE on the right half alone: 27.9, against 74.8 for a blank right half.
STEPS = 100
FULL_IMAGE_SSE_THRESHOLD = 50.0


@pytest.fixture(scope="module")
def trained(mnist32):
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(latent_dim=16, width=8, outer_target="y", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = tf.data.Dataset.from_tensor_slices(mnist32[0][: STEPS * 64]).shuffle(6400, seed=0)
    model.fit(masked_pairs(images.batch(64)), epochs=1, verbose=0)
    test = masked_pairs(tf.data.Dataset.from_tensor_slices(mnist32[1]).batch(500))
    return model, model.evaluate(test, verbose=0, return_dict=True)


def test_mask_half():
    x = np.ones((2, 4, 4, 1), "float32")
    masked = mask_half(tf.constant(x), "right").numpy()
    assert masked[:, :, :2].min() == 1 and masked[:, :, 2:].max() == 0
    with pytest.raises(InputError, match="side"):
        mask_half(tf.constant(x), "middle")


def test_fills_in_the_masked_half(trained, mnist32):
    model, held_out = trained
    print("modality conversion held-out", held_out)
    assert held_out["loss"] < FULL_IMAGE_SSE_THRESHOLD
    x = mnist32[1][:200]
    source = mask_half(tf.constant(x)).numpy()
    prediction = model.reconstruct(source).numpy()  # the latent sees the left half only
    right = lambda a: a[:, :, 16:]  # noqa: E731
    sse_right = np.sum((right(prediction) - right(x)) ** 2, axis=(1, 2, 3)).mean()
    sse_blank = np.sum(right(x) ** 2, axis=(1, 2, 3)).mean()
    print("right-half SSE", sse_right, "against a blank right half", sse_blank)
    assert sse_right < 0.75 * sse_blank


def test_needs_targets_and_round_trips_the_option(mnist32, tmp_path):
    model = keras_gon.GON(latent_dim=8, width=4, outer_target="y")
    model.compile(optimizer="adam", jit_compile=False)
    with pytest.raises(InputError, match="target"):
        model.fit(mnist32[0][:64], batch_size=32, verbose=0)
    assert keras_gon.GON.from_config(model.get_config()).outer_target == "y"
    with pytest.raises(InputError, match="outer_target"):
        keras_gon.GON(outer_target="labels")
