"""The command line for the variational models: train vgon/vae, bits/dim, `keras-gon sample`."""

from __future__ import annotations

import json
import math

import keras
import matplotlib.image
import numpy as np
import pytest

from keras_gon import cli
from keras_gon.plotting import image_rows_size

from helpers import NPZ, assert_one_error_line, run_cli, train_argv, train_run

SMALL = ["--width", "4", "--latent-dim", "8", "--verbose", "0", "--no-jit"]  # XLA: tested elsewhere
STEPS = 30


@pytest.fixture(scope="module")
def vgon_run(tmp_path_factory):
    return train_run(
        tmp_path_factory, "vgon", "--data", NPZ, "--steps", STEPS, "--kl-warmup-epochs", "1", *SMALL
    )


def test_train_vgon_writes_bits_per_dim_and_a_sample_grid(vgon_run):
    metrics = json.loads((vgon_run / "metrics.json").read_text())
    assert metrics["model"] == "vgon" and metrics["steps"] == STEPS
    # The plumbing, not the learning (tests/models): measured 3.46 bits/dim (8-bit, the
    # discretised logistic) after these 30 steps of a width-4 model under KL warm-up.
    assert 3.0 < metrics["test_bits_per_dim"] < 3.8 and math.isfinite(metrics["train_bits_per_dim"])
    assert metrics["config"]["likelihood"] == "discretized_logistic"
    assert metrics["config"]["kl_weight"] == 1.0
    grid = matplotlib.image.imread(vgon_run / "samples.png")  # 64 samples, 8 x 8
    assert grid.shape[0] > 300 and grid.shape[1] > 300
    assert (vgon_run / "reconstructions.png").is_file()


def test_kl_warmup_flag_raises_beta_over_an_epoch(vgon_run):
    model = keras.saving.load_model(vgon_run / "model.keras")
    # β before the last of 30 steps of a 125-step warm-up (8,000 images / 64)
    assert float(model.kl_weight_variable) == pytest.approx((STEPS - 1) / 125)
    assert model.kl_weight == 1.0


def test_sample_subcommand_is_seeded(vgon_run, tmp_path, capsys):
    paths = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        paths[name] = tmp_path / f"{name}.png"
        status, out, err = run_cli(
            ["sample", vgon_run, "--n", 16, "--seed", seed, "--out", paths[name]], capsys
        )
        assert status == 0, err
        assert str(paths[name]) in out
    a, b, c = (matplotlib.image.imread(paths[name]) for name in "abc")
    np.testing.assert_array_equal(a, b)
    assert a.shape == c.shape and not np.array_equal(a, c)
    assert a.shape[1] > 1.5 * a.shape[0]  # 16 samples: 2 rows of 8
    status, _, err = run_cli(["sample", vgon_run, "--n", 100, "--out", tmp_path / "d.png"], capsys)
    assert status == 0, err
    square = matplotlib.image.imread(tmp_path / "d.png")  # beyond 64: 10 x 10, not 13 rows of 8
    assert square.shape[:2] == image_rows_size(100, columns=10)[::-1]


def test_train_vae_with_gaussian_likelihood_then_evaluate(tmp_path, capsys):
    status, _, err = run_cli(
        train_argv(
            "vae",
            NPZ,
            tmp_path,
            "--steps",
            20,
            "--likelihood",
            "gaussian",
            "--likelihood-stddev",
            "0.2",
            "--kl-weight",
            "0.5",
            *SMALL,
        ),
        capsys,
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["likelihood"] == "gaussian"
    assert metrics["config"]["likelihood_stddev"] == 0.2 and metrics["config"]["kl_weight"] == 0.5
    # a density on [0, 1], not a probability of 8-bit images: nats, never bits/dim
    assert "test_bits_per_dim" not in metrics
    assert (
        math.isfinite(metrics["test_negative_elbo_nats"]) and (tmp_path / "samples.png").is_file()
    )
    status, _, err = run_cli(["evaluate", tmp_path, "--data", NPZ], capsys)
    assert status == 0, err
    evaluation = json.loads((tmp_path / "metrics.json").read_text())["evaluations"][-1]
    for name in ("test_loss", "negative_elbo_nats", "reconstruction_loss", "kl_loss"):
        assert math.isfinite(evaluation[name]), name
    # one z ~ q(z|x) per image: the two held-out estimates agree closely
    assert evaluation["negative_elbo_nats"] == pytest.approx(
        metrics["test_negative_elbo_nats"], rel=0.01
    )


def test_a_fitted_prior_run_samples_from_it_or_from_n01(tmp_path, capsys):
    run = tmp_path / "fitted"
    status, _, err = run_cli(
        train_argv("vae", NPZ, run, "--steps", 10, "--prior", "fitted", *SMALL), capsys
    )
    assert status == 0, err
    model = keras.saving.load_model(run / "model.keras")
    assert model.prior == "fitted" and model.has_latent_statistics
    pictures = {}
    for prior, source in ((None, "z ~ the fitted normal"), ("standard", "z ~ N(0, I)")):
        pictures[prior] = tmp_path / f"{prior}.png"
        argv = ["sample", run, "--n", 8, "--out", pictures[prior]]
        status, out, err = run_cli(argv + (["--prior", prior] if prior else []), capsys)
        assert status == 0 and source in out, err
    fitted, standard = (matplotlib.image.imread(p) for p in pictures.values())
    assert fitted.shape == standard.shape and not np.array_equal(fitted, standard)
    argv = ["sample", "vgon_celeba64", "--n", 4, "--prior", "standard", "--out", tmp_path / "p.png"]
    status, out, err = run_cli(argv, capsys)
    assert status == 0 and "z ~ N(0, I)" in out, err


def test_gon_runs_cannot_sample_nor_take_elbo_flags(tmp_path, capsys):
    run = tmp_path / "gon"
    status, _, err = run_cli(train_argv("gon", NPZ, run, "--steps", 1, *SMALL), capsys)
    assert status == 0, err
    assert not (run / "samples.png").exists()
    assert_one_error_line(*run_cli(["sample", run], capsys)[::2], "GON cannot sample")
    status, _, err = run_cli(
        train_argv("gon", NPZ, tmp_path / "x", "--steps", 1, "--kl-weight", 0.5, *SMALL),
        capsys,
    )
    assert_one_error_line(status, err, "--kl-weight: only for variational models")


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["sample", "{missing}"], "no such run folder"),
        (["sample", "{run}", "--out", "{tmp}/samples.jpg"], "must name a .png"),
        (["sample", "{run}", "--out", "{tmp}/no/such/dir/s.png"], "no such folder"),
        (["sample", "{run}", "--prior", "fitted"], "built with prior='standard'"),
        (["sample", "{run}/model.keras"], "is a file: give the run folder that holds it"),
        (
            train_argv("vae", NPZ, "{tmp}/r", "--num-steps", "2"),
            "--num-steps: the vae has no origin gradient",
        ),
    ],
)
def test_bad_arguments_give_one_error_line(vgon_run, tmp_path, capsys, argv, fragment):
    argv = [a.format(missing=tmp_path / "missing", run=vgon_run, tmp=tmp_path) for a in argv]
    status, _, err = run_cli(argv, capsys)
    assert_one_error_line(status, err, fragment)


@pytest.mark.parametrize("flag, value", [("--kl-weight", "-1"), ("--likelihood", "poisson")])
def test_bad_flag_values_are_refused_by_the_parser(flag, value, capsys):
    with pytest.raises(SystemExit) as error:
        cli.main(["train", "vgon", flag, value])
    assert error.value.code == 2
    assert flag in capsys.readouterr().err
