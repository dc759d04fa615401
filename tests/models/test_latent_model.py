"""keras_gon.models.latent_model: the one training step every model shares."""

import re

import keras
import numpy as np
import pytest

import keras_gon
from keras_gon.errors import InputError
from keras_gon.models import latent_model


@pytest.mark.parametrize("jit_compile", [False, True], ids=["no-xla", "xla"])
def test_a_non_finite_step_changes_no_variable(jit_compile):
    """Weights, batch-norm moving statistics (updated in the forward pass), the optimizer's
    slots and its step count are those of the last finite step (the update is undone by a
    select, without a branch: tests/models/test_contract.py), with and without XLA."""
    keras.utils.set_random_seed(0)
    model = keras_gon.GON(image_shape=(16, 16, 1), latent_dim=4, width=2, normalization="batch")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit_compile)
    x = np.random.default_rng(0).uniform(size=(64, 16, 16, 1)).astype("float32")
    model.train_on_batch(x[:32])
    state = [*model.variables, *model.optimizer.variables]
    before = [v.numpy().copy() for v in state]
    bad = x[32:].copy()
    bad[0, 0, 0, 0] = np.nan
    assert not np.isfinite(model.train_on_batch(bad, return_dict=True)["loss"])
    for variable, value in zip(state, before):
        np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.path)
    model.train_on_batch(x[32:])  # a finite step still trains
    assert int(model.optimizer.iterations.numpy()) == 2
    assert not np.array_equal(model.trainable_variables[0].numpy(), before[0])


def test_xla_by_default_on_an_accelerator_only(monkeypatch):
    """`compile()` without jit_compile: XLA off on the CPU, where it was measured slower for
    every model of the package (benchmarks/RESULTS.md, "XLA on the CPU")."""
    monkeypatch.setattr(latent_model, "has_accelerator", lambda: False)
    autoencoder = keras_gon.ConvAutoencoder(latent_dim=8, width=4)
    autoencoder.compile(optimizer="adam")
    assert autoencoder.jit_compile is False
    monkeypatch.setattr(latent_model, "has_accelerator", lambda: True)
    autoencoder.compile(optimizer="adam")
    assert autoencoder.jit_compile is True


def test_xla_on_the_cpu_for_the_discretised_logistic_on_small_images(monkeypatch):
    """XLA fuses the likelihood's elementwise ops (faster at 32x32, slower at 128x128)."""
    monkeypatch.setattr(latent_model, "has_accelerator", lambda: False)
    for model_class in (keras_gon.VariationalGON, keras_gon.VAE):
        small = model_class(latent_dim=8, width=4)  # discretised logistic by default
        small.compile(optimizer="adam")
        assert small.jit_compile is True
        large = model_class(image_shape=(64, 64, 3), latent_dim=8, width=4)
        large.compile(optimizer="adam")
        assert large.jit_compile is False
        bce = model_class(latent_dim=8, width=4, likelihood="bce")
        bce.compile(optimizer="adam")
        assert bce.jit_compile is False


def test_fit_names_a_generator_of_bare_arrays_in_one_line():
    model = keras_gon.ConvAutoencoder(image_shape=(8, 8, 1), latent_dim=2, width=2)
    model.compile(optimizer="adam")

    def batches():
        yield np.zeros((4, 8, 8, 1), "float32")  # (should be a tuple: (batch,))

    with pytest.raises(InputError, match=r"must yield tuples, \(images,\)") as error:
        model.fit(batches(), epochs=1, verbose=0)
    assert "\n" not in str(error.value) and len(str(error.value)) < 200


def test_targets_the_model_would_ignore_and_empty_datasets_are_refused(mnist32):
    """A GON trains on images alone: a y (or a dataset of pairs) would be ignored, so it is
    refused; a dataset with no batch is refused by fit, evaluate and predict alike."""
    import tensorflow as tf

    x = mnist32[0][:64]
    model = keras_gon.GON(latent_dim=4, width=2)
    model.compile(optimizer="adam")
    message = "GON trains on images alone: x comes with targets (y), which it would ignore"
    for args in (
        (x, np.zeros(64, "int32")),
        (tf.data.Dataset.from_tensor_slices((x, x)).batch(32),),
    ):
        with pytest.raises(InputError, match=re.escape(message)):
            model.fit(*args, epochs=1, verbose=0)
    with pytest.raises(InputError, match="validation_data comes with targets"):
        model.fit(x, epochs=1, verbose=0, validation_data=(x, x))
    empty = tf.data.Dataset.from_tensor_slices(x[:0]).batch(32)
    for method in (model.fit, model.evaluate, model.predict):
        with pytest.raises(InputError, match="x is an empty dataset: it holds no batch of images"):
            method(empty, verbose=0)
    assert np.isfinite(model.fit(x, epochs=1, batch_size=32, verbose=0).history["loss"][-1])
