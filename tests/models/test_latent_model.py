"""keras_gon.models.latent_model: the one training step every model shares."""

import keras
import numpy as np
import pytest

import keras_gon


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
