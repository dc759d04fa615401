"""keras_gon.preset_builder: presets built from training recipes, with their baselines."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from keras_gon.errors import InputError
from keras_gon.preset_builder import (
    PRESET_DATASETS,
    PRESET_RECIPES,
    build_presets,
    parse_data,
)
from keras_gon.presets import load_preset, save_to_preset

from helpers import NPZ, tiny_gon_preset

TINY = {"tiny_gon": tiny_gon_preset(baseline="ae", epochs=2, train_images=256, lr=1e-3)}


def test_every_preset_has_data_a_recipe_and_a_baseline_where_it_has_a_rival():
    for name, preset in PRESET_RECIPES.items():
        assert preset.dataset in PRESET_DATASETS and preset.recipe.kind in (
            "gon",
            "vgon",
            "igon",
            "classifier",
        )
        expected = {"gon": "ae", "vgon": "vae"}.get(preset.recipe.kind)
        if name == "vgon_mnist":  # MNIST's VGON vs VAE: benchmarks/REPRODUCTION.md
            expected = None
        assert preset.baseline == expected, name
        if preset.baseline:
            baseline = preset.baseline_recipe()
            assert baseline.kind == preset.baseline and baseline.epochs == preset.recipe.epochs
            assert dict(baseline.options)["latent_dim"] == dict(preset.recipe.options)["latent_dim"]
    assert PRESET_RECIPES["vgon_celeba64"].recipe.size == 64
    assert dict(PRESET_RECIPES["gon_cifar10"].recipe.options)["latent_dim"] == 256


def test_a_build_writes_the_preset_its_baseline_and_picture_and_resumes(tmp_path):
    out, work, pictures = tmp_path / "out", tmp_path / "work", tmp_path / "pictures"
    lines = []
    rows = build_presets(
        {"mnist": NPZ}, out=out, work=work, pictures=pictures, recipes=TINY, log=lines.append
    )
    metadata = json.loads((out / "tiny_gon" / "metadata.json").read_text())
    assert rows[0]["held_out_value"] == metadata["held_out_value"] > 0
    assert metadata["baseline_kind"] == "ae" and metadata["baseline_value"] > 0
    assert metadata["baseline_parameters"] > metadata["parameters"]  # the AE has an encoder
    assert metadata["steps"] == 2 * (256 // 64) and metadata["split"].endswith("(seed 0)")
    with h5py.File(out / "tiny_gon" / "model.weights.h5", "r") as weights:
        assert "optimizer" not in weights  # the model alone
    assert "compile_config" not in json.loads((out / "tiny_gon" / "config.json").read_text())
    assert (pictures / "tiny_gon.png").read_bytes()[:4] == b"\x89PNG"
    assert not work.joinpath("tiny_gon").exists()  # backups gone once written
    again = []
    build_presets({"mnist": NPZ}, out=out, work=work, recipes=TINY, log=again.append)
    assert again == [f"tiny_gon: already built in {out / 'tiny_gon'}"]
    # a built preset's missing picture is drawn, the preset left as it was
    weights = (out / "tiny_gon" / "model.weights.h5").read_bytes()
    drawn, later = tmp_path / "later", []
    build_presets({"mnist": NPZ}, out=out, pictures=drawn, recipes=TINY, log=later.append)
    assert (drawn / "tiny_gon.png").read_bytes()[:4] == b"\x89PNG"
    assert later[0] == f"tiny_gon: picture {drawn / 'tiny_gon.png'}"
    assert (out / "tiny_gon" / "model.weights.h5").read_bytes() == weights


def test_an_older_preset_is_saved_again_without_optimizer_state(tmp_path):
    import keras

    out = tmp_path / "out"
    model = load_preset("gon_mnist")
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.build_optimizer()
    model.save_weights(tmp_path / "with_optimizer.weights.h5")  # as presets used to be saved
    save_to_preset(model, out / "tiny_gon", {"held_out_value": 1.0, "baseline_value": 2.0})
    weights = out / "tiny_gon" / "model.weights.h5"
    weights.write_bytes((tmp_path / "with_optimizer.weights.h5").read_bytes())
    with h5py.File(weights, "r") as h5:
        assert "optimizer" in h5
    lines = []
    build_presets({"mnist": NPZ}, out=out, recipes=TINY, log=lines.append)
    with h5py.File(weights, "r") as h5:
        assert "optimizer" not in h5
    assert "saved again as the model alone" in lines[0]
    assert json.loads((out / "tiny_gon" / "metadata.json").read_text())["baseline_value"] == 2.0


@pytest.mark.parametrize(
    "items, message",
    [
        (["cifar10"], "--data takes NAME=PATH items"),
        (["svhn=/tmp"], "unknown preset data 'svhn'"),
    ],
)
def test_data_items_are_checked(items, message):
    with pytest.raises(InputError, match=message):
        parse_data(items)


def test_missing_data_and_unknown_presets_are_refused(tmp_path):
    with pytest.raises(InputError, match="give --data for cifar10=PATH"):
        build_presets({"mnist": NPZ}, names=["gon_cifar10"], out=tmp_path)
    with pytest.raises(InputError, match="unknown presets \\['nope'\\]"):
        build_presets({"mnist": NPZ}, names=["nope"], out=tmp_path)


def _tiny_vgon(prior: str) -> dict:
    from keras_gon.preset_builder import PresetRecipe
    from keras_gon.training import TrainingRecipe

    options = {"latent_dim": 4, "width": 2, "prior": prior}
    recipe = TrainingRecipe("vgon", data=None, options=options, epochs=1, train_images=256)
    return {
        "tiny_vgon": PresetRecipe("tiny_vgon", "a tiny VGON", "mnist", recipe, picture="samples")
    }


def test_a_fitted_prior_is_fitted_when_built_and_added_to_a_built_preset(tmp_path):
    out, pictures = tmp_path / "out", tmp_path / "pictures"
    build_presets({"mnist": NPZ}, out=out, work=tmp_path / "w", recipes=_tiny_vgon("standard"))
    before = load_preset(out / "tiny_vgon")
    figure = json.loads((out / "tiny_vgon" / "metadata.json").read_text())["held_out_value"]
    lines = []
    build_presets(
        {"mnist": NPZ},
        out=out,
        work=tmp_path / "w",
        pictures=pictures,
        recipes=_tiny_vgon("fitted"),
        log=lines.append,
    )
    assert lines[-1].endswith("sampling from the fitted prior")
    after = load_preset(out / "tiny_vgon")
    assert after.prior == "fitted" and after.latent_count.numpy() == 256
    metadata = json.loads((out / "tiny_vgon" / "metadata.json").read_text())
    assert (
        metadata["held_out_value"] == figure and "256 training images" in metadata["sampling_prior"]
    )
    new = {variable.path: variable.numpy() for variable in after.weights}
    for old in before.weights:  # the trained weights, unchanged
        assert (old.numpy() == new[old.path]).all(), old.path
    assert len(new) == len(before.weights) + 3  # and the normal's
    assert (pictures / "tiny_vgon.png").read_bytes()[:4] == b"\x89PNG"
    # and back to N(0, I): the normal and its metadata dropped, the weights kept
    build_presets({"mnist": NPZ}, out=out, work=tmp_path / "w", recipes=_tiny_vgon("standard"))
    back = load_preset(out / "tiny_vgon")
    assert back.prior == "standard" and len(back.weights) == len(before.weights)
    assert "sampling_prior" not in json.loads((out / "tiny_vgon" / "metadata.json").read_text())
    np.testing.assert_array_equal(back.sample(2, seed=0).numpy(), before.sample(2, seed=0).numpy())
    # built from scratch, the training fits it
    fresh = tmp_path / "fresh"
    build_presets({"mnist": NPZ}, out=fresh, work=tmp_path / "w", recipes=_tiny_vgon("fitted"))
    assert load_preset(fresh / "tiny_vgon").latent_count.numpy() == 256
    assert "sampling_prior" in json.loads((fresh / "tiny_vgon" / "metadata.json").read_text())
