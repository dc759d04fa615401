"""keras_gon.experiments.verdicts: the verdict rules on hand-made figures whose verdict is known
(the rows and summaries built on them: test_reproduce.py)."""

from __future__ import annotations

import math

import pytest

from keras_gon.experiments import verdicts
from keras_gon.experiments.study import RunSpec


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1.0, 2.0, 3.0], (2.0, 1.0, 3)),  # the sample standard deviation (n - 1)
        ([4.0], (4.0, 0.0, 1)),
        ([2.0, None, math.nan, math.inf, 4.0], (3.0, math.sqrt(2.0), 2)),  # failed runs left out
    ],
)
def test_mean_std(values, expected):
    assert verdicts.mean_std(values) == pytest.approx(expected)


def test_mean_std_of_nothing_is_nan():
    mean, std, n = verdicts.mean_std([None, math.nan])
    assert math.isnan(mean) and math.isnan(std) and n == 0


@pytest.mark.parametrize(
    "lower, higher, kind, verdict",
    [
        # two or more seeds each: the difference of the means against twice its standard error
        ([1.0, 1.1, 0.9], [2.0, 2.1, 1.9], "less", "reproduced"),
        ([2.0, 2.1, 1.9], [1.0, 1.1, 0.9], "less", "reversed"),
        ([1.0, 1.5, 0.5], [1.1, 1.6, 0.6], "less", "not reproduced (within noise)"),
        # standard error of the difference sqrt(0.02) = 0.141: 0.2 is within 2 errors, 0.3 not
        ([0.9, 1.1], [1.1, 1.3], "less", "not reproduced (within noise)"),
        ([0.9, 1.1], [1.2, 1.4], "less", "reproduced"),
        # one seed: a 5 % margin
        ([1.0], [1.04], "less", "not reproduced (within noise)"),
        ([1.0], [1.06], "less", "reproduced"),
        ([1.06], [1.0], "less", "reversed"),
        ([1.0], [1.06, 1.07], "less", "reproduced"),  # one seed on either side is enough for it
        # far_less: clearly lower and the higher at least 1.25x the lower
        ([1.0], [1.3], "far_less", "reproduced"),
        ([1.0], [1.2], "far_less", "not reproduced (worse, not far worse)"),
        ([1.0], [1.1], "far_less", "not reproduced (worse, not far worse)"),
        ([1.3], [1.0], "far_less", "reversed"),
        # similar: the means within 10 % of each other, whatever the order
        ([1.0], [1.05], "similar", "reproduced"),
        ([1.0], [1.09], "similar", "reproduced"),
        ([1.09], [1.0], "similar", "reproduced"),
        ([1.0], [1.2], "similar", "not reproduced"),
        ([1.0], [0.0], "similar", "not reproduced"),  # (no division by zero)
        # no figures on one side
        ([], [1.0], "less", "missing"),
        ([1.0], [math.nan], "far_less", "missing"),
    ],
)
def test_compare(lower, higher, kind, verdict):
    assert verdicts.compare(lower, higher, kind) == verdict


def test_format_values():
    assert verdicts.format_values([1.0, 2.0, 3.0]) == "2.00 ± 1.00"
    assert verdicts.format_values([1.234], digits=1) == "1.2"
    assert verdicts.format_values([None]) == "missing"


def _spec(kind="gon", seed=0, **fields):
    return RunSpec(kind, "paper", 32, 2, seed, **fields)


def _result(test, epochs, metric="sse"):
    """A stored result: the final `test` figure, and (held-out, training) figures per epoch."""
    return {
        "metric": metric,
        "parameters": 1234,
        "test": {metric: test},
        "epochs": [
            {"epoch": e, f"held_out_{metric}": held, f"train_eval_{metric}": train}
            for e, (held, train) in enumerate(epochs, start=1)
        ],
    }


@pytest.fixture()
def results():
    specs = [_spec("gon", 0), _spec("gon", 1), _spec("ae", 0), _spec("ae", 1)]
    stored = {
        specs[0].key: _result(10.0, [(30.0, 28.0), (20.0, 16.0)]),
        specs[1].key: _result(12.0, [(32.0, 30.0), (22.0, 20.0)]),
        specs[2].key: _result(15.0, [(35.0, 35.0), (25.0, 20.0)]),
    }  # ae seed 1: not run
    return verdicts.Results(specs, stored)


def test_results_select_the_stored_runs_by_their_fields(results):
    assert [spec.seed for spec, _ in results.select(kind="gon")] == [0, 1]
    (_, stored), (_, missing) = results.select(kind="ae")
    assert stored["test"] == {"sse": 15.0} and missing is None
    assert results.final(kind="gon") == [10.0, 12.0]
    assert results.final(kind="ae") == [15.0]  # the run not stored is left out
    absent = results.final("bits_per_dim", kind="gon")  # a figure the runs did not report
    assert len(absent) == 2 and all(math.isnan(v) for v in absent)
    assert results.at_epoch(1, kind="gon") == [30.0, 32.0]
    assert results.at_epoch(2, "train_eval", kind="ae") == [20.0]
    assert results.at_epoch(3, kind="gon") == []
    assert results.parameters(kind="ae") == 1234 and results.parameters(kind="vae") is None
    assert [(s.kind, s.seed) for s in results.missing()] == [("ae", 1)]


def test_gaps_are_held_out_minus_training_at_the_last_epoch(results):
    assert verdicts.gaps(results, kind="gon") == [4.0, 2.0]
    assert verdicts.gaps(results, relative=True, kind="gon") == pytest.approx([25.0, 10.0])
    assert verdicts.gaps(results, kind="ae") == [5.0]


@pytest.mark.parametrize(
    "figures, cell",
    [
        (
            {"elu": [1.0], "tanh": [2.0], "relu": [3.0]},
            ("elu 1.0 < tanh 2.0 < relu 3.0", "reproduced"),
        ),
        (
            {"tanh": [0.5], "elu": [1.0], "relu": [3.0]},
            ("tanh 0.5 < elu 1.0 < relu 3.0", "partly: ELU beats ReLU, tanh best"),
        ),
        (
            {"elu": [1.0], "relu": [2.0], "tanh": [3.0]},
            ("elu 1.0 < relu 2.0 < tanh 3.0", "partly: ELU beats ReLU, tanh worst"),
        ),
        ({"relu": [1.0], "elu": [2.0]}, ("relu 1.0 < elu 2.0", "reversed: ReLU beats ELU")),
        ({"elu": [1.0], "relu": []}, ("missing", "missing")),
        ({"elu": [1.0], "tanh": [2.0]}, ("missing", "missing")),
    ],
)
def test_activation_cell(figures, cell):
    assert verdicts.activation_cell(figures) == cell
