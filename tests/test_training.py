"""keras_gon.training: the one training recipe (CLI, presets and studies run it)."""

from __future__ import annotations

import re

import keras
import numpy as np
import pytest

from keras_gon.errors import InputError, NonFiniteLossError
from keras_gon.training import TrainingRecipe, count_parameters, train

from helpers import NPZ

TINY = dict(data=NPZ, options={"latent_dim": 4, "width": 2}, steps=20, batch_size=32, lr=1e-3)


def test_a_recipe_trains_and_reports_its_figures():
    recipe = TrainingRecipe("gon", **TINY)
    assert recipe.options == (("latent_dim", 4), ("width", 2))  # sorted pairs: hashable data
    run = train(recipe)
    assert run.steps == 20 and run.info.image_shape == (32, 32, 1)
    assert run.model.latent_dim == 4 and run.parameters == count_parameters(run.model)
    # the held-out figures are the last validation's: the final weights on the test set
    again = run.model.evaluate(run.test_data, verbose=0, return_dict=True)
    assert run.held_out["loss"] == pytest.approx(again["loss"], rel=1e-4)
    assert run.held_out["loss"] < 200.0 and not run.collapsed
    assert np.isfinite(run.train_loss)


def test_the_same_recipe_gives_the_same_run():
    recipe = TrainingRecipe("ae", **TINY)
    first, second = train(recipe), train(recipe)
    assert first.held_out["loss"] == pytest.approx(second.held_out["loss"], rel=1e-5)
    other = train(recipe.replace(seed=1))
    assert other.held_out["loss"] != pytest.approx(first.held_out["loss"], rel=1e-5)


def test_glo_counts_its_latent_table_and_the_classifier_gets_labels():
    glo = train(
        TrainingRecipe(
            "glo", **{**TINY, "options": {"latent_dim": 4, "width": 2, "inference_steps": 2}}
        )
    )
    table = int(np.prod(glo.model.latent_table.shape))
    assert table == 8000 * 4 and glo.parameters == table + sum(
        int(np.prod(v.shape)) for v in glo.model.trainable_variables
    )
    classifier = train(TrainingRecipe("classifier", **TINY))
    # the held-out accuracy is the share of test images whose most probable class is their label
    right = total = 0
    for images, labels in classifier.test_data:
        predicted = np.argmax(classifier.model.classify(images), axis=-1)
        right += int(np.sum(predicted == labels.numpy()))
        total += len(labels)
    assert total == 2000
    assert classifier.held_out["accuracy"] == pytest.approx(right / total, abs=1e-6)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(kind="nope"), "unknown model 'nope'"),
        (dict(options={"detach": True}, kind="ae"), "ae takes no detach"),
        (dict(options={"image_shape": (8, 8, 1)}), "a recipe sets image_shape itself"),
        (dict(lr=0.0), "lr must be in (0"),
        (dict(seed=-1), "seed must be an integer in [0, 2**31)"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
    ],
)
def test_bad_recipes_are_refused_by_name(changes, message):
    with pytest.raises(InputError, match=re.escape(message)):
        TrainingRecipe(**{"kind": "gon", **TINY, **changes})


def test_a_non_finite_loss_is_an_error_and_a_collapse_a_warning():
    with pytest.raises(NonFiniteLossError, match="try a lower learning rate than 1e"):
        train(TrainingRecipe("gon", **{**TINY, "lr": 1e30}))
    with pytest.warns(RuntimeWarning, match="collapsed to a constant output"):
        run = train(TrainingRecipe("gon", **{**TINY, "lr": 1e6}))
    assert run.collapsed


def test_model_fit_reports_a_collapse_too(mnist32):
    """Through the Keras API: SGD(1e12) saturates every output."""
    import keras_gon

    model = keras_gon.GON(latent_dim=4, width=2, seed=0)
    model.compile(optimizer=keras.optimizers.SGD(1e12))
    with pytest.warns(RuntimeWarning, match="collapsed to a constant output"):
        history = model.fit(mnist32[0][:256], batch_size=64, epochs=1, verbose=0)
    assert history.collapsed
    healthy = keras_gon.GON(latent_dim=4, width=2, seed=0)
    healthy.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert not healthy.fit(mnist32[0][:256], batch_size=64, epochs=1, verbose=0).collapsed


def test_a_fitted_prior_is_fitted_to_one_pass_of_the_training_images():
    options = {"latent_dim": 4, "width": 2, "prior": "fitted"}
    recipe = TrainingRecipe(
        "vae", **{**TINY, "options": options, "steps": 12, "train_images": 96, "seed": 2}
    )
    run = train(recipe, validate=False, evaluate=False)
    # 12 steps of 32 went round the 96 images four times; the prior saw each once
    assert run.steps == 12 and run.model.latent_count.numpy() == 96
    assert "fit_prior_after_fit" not in vars(run.model) and run.model.fit_prior_after_fit
    with pytest.raises(NonFiniteLossError, match="try a lower learning rate"):
        train(recipe.replace(lr=1e30), validate=False, evaluate=False)
    with pytest.raises(InputError, match="needs at least 2, the data has 1"):
        train(recipe.replace(train_images=1, batch_size=1), validate=False, evaluate=False)
