"""keras_gon.GONClassifier (eq. 13): a linear softmax layer on the origin gradient."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_gon
from keras_gon.errors import InputError

# 150 steps (batch 64) of mnist10k, latent 16, width 8, Adam 1e-3, seed 0, no XLA.
# Measured held-out accuracy on the 2,000 test digits: alone 0.887, joint (weight 1) 0.789.
STEPS = 150
ACCURACY_THRESHOLD = 0.70


def _data(mnist32, mnist10k, split, count):
    x = mnist32[0] if split == "train" else mnist32[1]
    y = mnist10k["y_train" if split == "train" else "y_test"].astype("int32")
    return tf.data.Dataset.from_tensor_slices((x[:count], y[:count]))


def _train(mnist32, mnist10k, reconstruction_weight):
    keras.utils.set_random_seed(0)
    model = keras_gon.GONClassifier(
        latent_dim=16, width=8, reconstruction_weight=reconstruction_weight, seed=0
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    train = _data(mnist32, mnist10k, "train", STEPS * 64).shuffle(STEPS * 64, seed=0).batch(64)
    model.fit(train, epochs=1, verbose=0)
    held_out = model.evaluate(
        _data(mnist32, mnist10k, "test", 2000).batch(500), verbose=0, return_dict=True
    )
    return model, held_out


@pytest.fixture(scope="module")
def alone(mnist32, mnist10k):
    return _train(mnist32, mnist10k, 0.0)


def test_classifier_alone_accuracy(alone):
    model, held_out = alone
    print("classifier alone", held_out)
    assert set(held_out) == {"loss", "cross_entropy", "accuracy"}
    assert held_out["accuracy"] > ACCURACY_THRESHOLD


def test_joint_training_reports_sse_and_classifies(mnist32, mnist10k):
    _, held_out = _train(mnist32, mnist10k, 1.0)
    print("classifier joint", held_out)
    assert held_out["accuracy"] > ACCURACY_THRESHOLD
    np.testing.assert_allclose(
        held_out["loss"], held_out["cross_entropy"] + held_out["sse"], rtol=1e-4
    )


def test_predict_classify_save_and_load(alone, mnist32, mnist10k, tmp_path):
    model, _ = alone
    x = mnist32[1][:8]
    probabilities = model.classify(x).numpy()
    assert probabilities.shape == (8, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.predict(x, verbose=0), probabilities, rtol=1e-5, atol=1e-6)
    assert model.reconstruct(x).shape == (8, 32, 32, 1)
    model.save(tmp_path / "classifier.keras")
    loaded = keras.saving.load_model(tmp_path / "classifier.keras")
    assert isinstance(loaded, keras_gon.GONClassifier)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.classify(x).numpy(), probabilities)


def test_refuses_images_without_labels(mnist32):
    model = keras_gon.GONClassifier(latent_dim=8, width=4)
    model.compile(optimizer="adam", jit_compile=False)
    with pytest.raises(InputError, match="labels"):
        model.fit(mnist32[0][:64], batch_size=32, verbose=0)
    with pytest.raises(InputError, match="num_classes"):
        keras_gon.GONClassifier(num_classes=1)


def test_classifier_learns_labels_from_class_subfolders(cifar10_folder):
    """3 CIFAR-10 classes from their folders, 100 steps (Adam 1e-3, width 8, latent 32):
    held-out accuracy 0.13 -> 0.67 and cross-entropy 3.61 -> 1.58 measured (chance 1/3)."""
    from helpers import train_on_folder

    keras.utils.set_random_seed(0)
    model = keras_gon.GONClassifier(
        image_shape=(32, 32, 3), latent_dim=32, width=8, num_classes=3, seed=0
    )
    before, after, _ = train_on_folder(model, cifar10_folder, 100, batch_size=32, with_labels=True)
    assert after["accuracy"] >= 0.5
    assert after["cross_entropy"] < 0.6 * before["cross_entropy"]


def test_a_fit_refused_for_missing_labels_leaves_the_model_trainable(mnist32, mnist10k):
    """The refusal comes before a step is traced: the same model then trains (it used to
    fail with "Creating variables on a non-first call to a function")."""
    x, y = mnist32[0][:64], mnist10k["y_train"][:64].astype("int32")
    model = keras_gon.GONClassifier(latent_dim=4, width=2)
    model.compile(optimizer="adam")
    for data in ((x,), (tf.data.Dataset.from_tensor_slices(x).batch(32),)):
        with pytest.raises(InputError, match=r"trains on \(images, integer labels\)"):
            model.fit(*data, epochs=1, verbose=0)
    history = model.fit(x, y, batch_size=32, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][-1])
