"""`keras-gon experiment` (table1, activations, origin) and the baselines in `keras-gon train`."""

from __future__ import annotations

import json

import pytest

from helpers import NPZ, assert_one_error_line, run_cli, train_argv

TINY = [
    "--data",
    NPZ,
    "--steps",
    "2",
    "--batch-size",
    "32",
    "--width",
    "4",
    "--latent-dim",
    "8",
    "--no-jit",
]


@pytest.mark.parametrize(
    "name, options, labels",
    [
        ("activations", ["--activations", "elu", "relu"], ["elu", "relu"]),
        ("origin", ["--stddevs", "0", "0.5"], ["σ = 0", "σ = 0.5 (a)", "σ = 0.5 (b)"]),
    ],
)
def test_experiment_writes_a_table_and_a_plot(name, options, labels, tmp_path, capsys):
    status, out, err = run_cli(
        ["experiment", name, *TINY, "--seeds", "0", "1", *options, "--out", tmp_path], capsys
    )
    assert status == 0, err
    table = (tmp_path / f"{name}.md").read_text()
    for label in labels:
        assert f"| {label} |" in table
    assert table in out
    assert (tmp_path / f"{name}.png").is_file()
    assert len(json.loads((tmp_path / f"{name}.json").read_text())["runs"]) == 2 * len(labels)


def test_table1_command(tmp_path, capsys):
    status, _, err = run_cli(
        [
            "experiment",
            "table1",
            *TINY,
            "--seeds",
            "0",
            "--glo-inference-steps",
            "2",
            "--out",
            tmp_path,
        ],
        capsys,
    )
    assert status == 0, err
    table = (tmp_path / "table1.md").read_text()
    for label in ("GON", "AE", "tied AE", "1-step detach", "10-step", "10-step detach", "GLO"):
        assert f"| {label} |" in table


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["experiment", "activations", "--activations", "nope"], "unknown activation 'nope'"),
        (["experiment", "origin", "--stddevs", "-1"], "must be >= 0"),
        (["train", "ae", "--detach"], "GON options"),
        (["experiment", "reproduce", "--dataset", "cifar10", "coil20"], "2 --dataset but 1 --data"),
    ],
)
def test_bad_arguments_give_one_error_line(argv, fragment, tmp_path, capsys):
    status, _, err = run_cli([*argv, "--data", NPZ, "--out", tmp_path], capsys)
    assert_one_error_line(status, err, fragment)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (
            ["reproduce", "--dataset", "fashion_mnist"],
            "give --data for each --dataset, in order: fashion_mnist (the Fashion-MNIST IDX folder",
        ),
        (["table1", "--data", NPZ, NPZ], "--data takes one source for `experiment table1`"),
    ],
)
def test_experiment_data_arguments(argv, fragment, tmp_path, capsys):
    status, _, err = run_cli(["experiment", *argv, "--out", tmp_path], capsys)
    assert_one_error_line(status, err, fragment)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("model", ["ae", "tied_ae"])
def test_train_baseline(model, tmp_path, capsys):
    status, _, err = run_cli(
        train_argv(
            model,
            NPZ,
            tmp_path,
            "--steps",
            "3",
            "--width",
            "4",
            "--latent-dim",
            "8",
            "--verbose",
            "0",
            "--no-jit",
        ),
        capsys,
    )
    assert status == 0, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == model and (tmp_path / "model.keras").is_file()
    status, _, err = run_cli(["evaluate", tmp_path], capsys)
    assert status == 0, err
