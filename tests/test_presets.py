"""keras_gon.presets: the built-in pretrained models load offline and keep their figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

import keras_gon
from keras_gon import cli
from keras_gon.errors import InputError
from keras_gon.preset_builder import PRESET_RECIPES
from keras_gon.presets import (
    EVALUATION_BATCH,
    available_presets,
    held_out_figure,
    list_presets,
    load_preset,
    preset_metadata,
)

from helpers import NPZ, SHARED_DATA

MNIST22K = str(SHARED_DATA / "mnist22k.npz")
CLASSES = {
    "gon": keras_gon.GON,
    "vgon": keras_gon.VariationalGON,
    "igon": keras_gon.ImplicitGON,
    "classifier": keras_gon.GONClassifier,
}


def test_every_recipe_is_built_and_ships_small():
    assert available_presets() == sorted(PRESET_RECIPES)
    total = 0
    for name in available_presets():
        folder = keras_gon.presets.PRESET_DIR / name
        size = sum(f.stat().st_size for f in folder.iterdir())
        parameters = preset_metadata(name)["parameters"]
        assert size < 4 * parameters * 1.1 + 2**16, (name, size)  # float32 weights alone
        total += size
    assert total < 25 * 10**6  # all presets together, in the package


def fine_tune(preset: str, data, out, capsys) -> dict:
    """`keras-gon train gon --from-preset PRESET` for 3 steps on `data`: its metrics.json."""
    argv = ["train", "gon", "--from-preset", preset, "--data", str(data), "--steps", "3"]
    status = cli.main([*argv, "--verbose", "0", "--no-jit", "--out", str(out)])
    assert status == 0, capsys.readouterr().err
    return json.loads((out / "metrics.json").read_text())


MNIST_PRESETS = sorted(n for n, p in PRESET_RECIPES.items() if p.dataset == "mnist")


@pytest.mark.parametrize("name", MNIST_PRESETS)
def test_recorded_held_out_figure_matches_a_fresh_evaluation(name):
    from keras_gon.data import load_dataset

    metadata = preset_metadata(name)
    model = CLASSES[metadata["kind"]].from_preset(name)
    _, test, info = load_dataset(
        MNIST22K,
        image_size=metadata["image_size"],
        batch_size=EVALUATION_BATCH,
        with_labels=metadata["kind"] == "classifier",
    )
    assert info.num_test == metadata["num_test"] == 10000
    metric, value = held_out_figure(model, test)
    assert metric == metadata["held_out_metric"]
    assert value == pytest.approx(metadata["held_out_value"], rel=1e-4, abs=1e-4)
    assert metadata["data"] == "mnist22k.npz" and metadata["parameters"] > 0


@pytest.mark.parametrize("name", MNIST_PRESETS)
def test_save_to_preset_round_trip_gives_identical_outputs(name, tmp_path, mnist10k):
    model = load_preset(name)
    digits = mnist10k["x_test"][:6]
    folder = model.save_to_preset(tmp_path / "mine", metadata={"note": "copy"})
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "metadata.json",
        "model.weights.h5",
    ]
    again = keras_gon.LatentModel.from_preset(str(folder))
    np.testing.assert_array_equal(again.encode(digits).numpy(), model.encode(digits).numpy())
    np.testing.assert_array_equal(
        again.reconstruct(digits).numpy(), model.reconstruct(digits).numpy()
    )
    assert json.loads((folder / "metadata.json").read_text())["note"] == "copy"
    model.save(tmp_path / "model.keras")  # a .keras file is a preset source too
    from_file = keras_gon.LatentModel.from_preset(str(tmp_path / "model.keras"))
    np.testing.assert_array_equal(from_file.encode(digits).numpy(), model.encode(digits).numpy())


def test_presets_are_useful_models(mnist10k):
    digits, labels = mnist10k["x_test"][:200], mnist10k["y_test"][:200]
    gon = keras_gon.GON.from_preset("gon_mnist")
    sse = (gon.reconstruct(digits).numpy() - gon.prepare_images(digits).numpy()) ** 2
    assert sse.reshape(200, -1).sum(1).mean() < 20  # a blank image scores ~100
    probabilities = keras_gon.GONClassifier.from_preset("gon_classifier_mnist").classify(digits)
    assert (np.argmax(probabilities, axis=-1) == labels).mean() > 0.9
    samples = keras_gon.VariationalGON.from_preset("vgon_mnist").sample(4, seed=0).numpy()
    assert samples.shape == (4, 32, 32, 1) and samples.std() > 0.05
    big = keras_gon.ImplicitGON.from_preset("igon_mnist")
    rendered = big.render(big.encode(digits[:2]), 64).numpy()
    assert rendered.shape == (2, 64, 64, 1)


def test_fine_tuning_a_preset(tmp_path, mnist10k, capsys, monkeypatch):
    import keras

    model = keras_gon.GON.from_preset("gon_mnist")
    before = [np.array(w) for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-4))
    model.fit(mnist10k["x_train"][:128], batch_size=64, epochs=1, verbose=0)
    assert any(
        not np.array_equal(a, np.asarray(b)) for a, b in zip(before, model.trainable_weights)
    )
    metrics = fine_tune("gon_mnist", NPZ, tmp_path / "run", capsys)
    assert metrics["test_loss"] < 20  # starts from the trained weights, not from scratch
    assert metrics["from_preset"] == "gon_mnist"  # the run folder says where it started
    keras_gon.GON.from_preset("gon_mnist").save_to_preset(tmp_path / "mine")
    monkeypatch.chdir(tmp_path)  # a preset folder given relative: recorded absolute
    assert fine_tune("mine", NPZ, tmp_path / "run2", capsys)["from_preset"] == str(
        tmp_path / "mine"
    )


def test_cli_lists_presets_and_commands_take_a_preset_name(tmp_path, capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    for name in PRESET_RECIPES:
        assert name in out
    assert cli.main(["sample", "vgon_mnist", "--n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert cli.main(["evaluate", "gon_mnist", "--data", NPZ]) == 0
    assert cli.main(["export", "gon_mnist", "--to", str(tmp_path / "served")]) == 0
    assert (tmp_path / "served" / "1" / "saved_model.pb").is_file()
    assert (
        cli.main(
            [
                "render",
                "igon_mnist",
                "--data",
                NPZ,
                "--resolution",
                "56",
                "--count",
                "2",
                "--out",
                str(tmp_path / "r.png"),
            ]
        )
        == 0
    )


def test_unknown_or_mismatched_presets_are_refused():
    with pytest.raises(InputError, match="unknown preset 'gon_cifar'.*gon_classifier_mnist"):
        keras_gon.GON.from_preset("gon_cifar")
    with pytest.raises(InputError, match="holds a VariationalGON, not a GON"):
        keras_gon.GON.from_preset("vgon_mnist")
    assert {row["name"] for row in list_presets()} == set(PRESET_RECIPES)


# --- presets beyond digits (issue 28) -------------------------------------------------------

NATURAL_PRESETS = sorted(n for n, p in PRESET_RECIPES.items() if p.dataset != "mnist")
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


@pytest.fixture(scope="module")
def official_test_subsets(tmp_path_factory):
    """CI-sized subsets of each preset's official test split, by dataset: the Fashion-MNIST
    test file whole, 200 CIFAR-10 test JPEGs of each class (2,000), and CelebA's 800 held-out
    faces (the 8,000 faces extracted, 10 % held out with seed 0, as the preset's split)."""
    from helpers import celeba_subset, cifar10_subset

    root = tmp_path_factory.mktemp("official")
    return {
        "fashion_mnist": str(SHARED_DATA / "fashion-mnist"),
        "cifar10": str(
            cifar10_subset(
                root / "cifar10", classes=CIFAR10_CLASSES, train_per_class=50, test_per_class=200
            )
        ),
        "celeba": str(celeba_subset(root / "celeba", count=8000)),
    }


@pytest.mark.parametrize("name", NATURAL_PRESETS)
def test_published_figure_is_within_5_percent_on_a_subset_of_the_test_split(
    name, official_test_subsets
):
    from keras_gon.data import load_dataset

    metadata = preset_metadata(name)
    model = keras_gon.LatentModel.from_preset(name)
    _, test, info = load_dataset(
        official_test_subsets[metadata["dataset"]],
        image_size=metadata["image_size"],
        batch_size=EVALUATION_BATCH,
    )
    metric, value = held_out_figure(model, test)
    assert metric == metadata["held_out_metric"]
    assert value == pytest.approx(metadata["held_out_value"], rel=0.05), (info.num_test, value)
    assert metadata["baseline_kind"] in ("ae", "vae") and metadata["baseline_value"] > 0


def _nearest_held_out_mse(samples, folder: str, size: int) -> float:
    """Mean over `samples` of the MSE to the nearest held-out image of `folder`."""
    from keras_gon.data import load_dataset

    held_out = np.concatenate([np.asarray(b) for b in load_dataset(folder, image_size=size)[1]])
    scale = 255.0 if held_out.dtype == np.uint8 else 1.0
    held_out = held_out.reshape(len(held_out), -1).astype("float32") / scale
    samples = samples.reshape(len(samples), -1).astype("float64")
    held_out = held_out.astype("float64")
    squared = (samples**2).sum(1)[:, None] + (held_out**2).sum(1)[None] - 2 * samples @ held_out.T
    return float(squared.min(1).mean() / samples.shape[1])


def test_variational_presets_sample_faces_and_objects_from_their_fitted_prior(
    official_test_subsets,
):
    # Measured by benchmarks/vgon_prior_fit.py (benchmarks/presets/vgon_prior_fit.json); the
    # subsets here: the 800 held-out faces and 2,000 CIFAR-10 test images (200 per class).
    for name, dataset, bound, ratio in (
        ("vgon_celeba64", "celeba", 0.05, 0.6),
        ("vgon_cifar10", "cifar10", 0.045, 0.8),
    ):
        model = keras_gon.VariationalGON.from_preset(name)
        assert model.prior == "fitted" and model.has_latent_statistics, name
        fitted = model.sample(64, seed=0).numpy()
        standard = model.sample(64, seed=0, prior="standard").numpy()
        size = model.image_shape[0]
        assert fitted.shape == (64, size, size, 3)
        folder = official_test_subsets[dataset]
        near = _nearest_held_out_mse(fitted, folder, size)
        assert near < bound and near < ratio * _nearest_held_out_mse(standard, folder, size), name


def test_natural_image_presets_do_what_they_say(official_test_subsets, tmp_path, capsys):
    faces = keras_gon.VariationalGON.from_preset("vgon_celeba64").sample(4, seed=0).numpy()
    assert faces.shape == (4, 64, 64, 3) and faces.std() > 0.05
    cifar = keras_gon.GON.from_preset("gon_cifar10")
    assert cifar.image_shape == (32, 32, 3) and cifar.latent_dim == 256
    out = tmp_path / "faces.png"
    assert cli.main(["sample", "vgon_celeba64", "--n", "64", "--out", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    metrics = fine_tune("gon_cifar10", official_test_subsets["cifar10"], tmp_path / "tuned", capsys)
    assert metrics["image_shape"] == [32, 32, 3]
    # Adam's first steps from fresh moments move every weight by about the learning rate: the
    # loss rises from the preset's (9.05) to about 15 after 3 steps; a new model is above 50.
    assert metrics["test_loss"] < 2 * preset_metadata("gon_cifar10")["held_out_value"]


def test_presets_are_the_model_alone():
    import h5py

    for name in available_presets():
        with h5py.File(keras_gon.presets.PRESET_DIR / name / "model.weights.h5", "r") as h5:
            assert "optimizer" not in h5, name
