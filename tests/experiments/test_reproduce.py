"""keras_gon.experiments.reproduce: plans, verdicts and summaries from stored results
(synthetic results: no training)."""

from __future__ import annotations

from keras_gon.experiments import reproduce as reproduction
from keras_gon.experiments import verdicts
from keras_gon.experiments.study import REPORTED_METRIC

PLAN = reproduction.DATASETS["cifar10"]


def _stored(specs, figure) -> dict:
    """Stored results whose held-out figure at every epoch is `figure(spec)`."""
    stored = {}
    for spec in specs:
        value = figure(spec)
        metric = REPORTED_METRIC[spec.kind]
        stored[spec.key] = {
            "metric": metric,
            "seconds": 1.0,
            "parameters": 10,
            "test": {metric: value},
            "epochs": [
                {"epoch": e, f"held_out_{metric}": value, f"train_eval_{metric}": value}
                for e in range(1, spec.epochs + 1)
            ],
        }
    return stored


def _results(figure, groups=("decisive", "table1")):
    specs = reproduction.reproduction_specs(PLAN.budget, groups)
    return reproduction.Results(specs, _stored(specs, figure))


def test_the_dataset_plans_have_their_budgets_and_groups():
    for name, plan in reproduction.DATASETS.items():
        assert plan.name == name and set(plan.groups) <= set(reproduction.GROUPS)
        specs = reproduction.reproduction_specs(plan.budget, plan.groups)
        decisive = [s for s in specs if s.group == "decisive"]
        assert {s.seed for s in decisive if s.kind in ("gon", "ae")} == {0, 1, 2}
    cifar = reproduction.reproduction_specs(PLAN.budget, PLAN.groups)
    assert {s.group for s in cifar} >= {"widths", "latents", "spatial", "remedies"}
    spatial = [s for s in cifar if s.group == "spatial"]
    assert sorted(dict(s.options).get("latent_map_size", 1) for s in spatial) == [1, 1, 4, 4, 8, 8]
    table1 = [s for s in cifar if s.group == "table1"]
    assert {s.setting for s in table1} == {"ours"} and {s.latent_dim for s in table1} == {32, 256}


def test_summary_says_whether_the_gon_is_lowest_of_the_single_step_methods():
    def gon_best(spec):
        base = {
            "gon": 1.0,
            "ae": 2.0,
            "tied_ae": 2.5,
            "gon_detach": 3.0,
            "glo": 4.0,
            "vgon": 3.0,
            "vae": 4.0,
        }[spec.kind]
        return base + 0.01 * spec.seed

    cells = reproduction.dataset_summary(_results(gon_best), PLAN.budget)
    assert cells["table1"] == {32: "yes", 256: "yes"}
    assert set(cells["table2"].values()) == {"yes"}

    def gon_behind_ae(spec):  # the AE wins: the GON is not the lowest
        return {"gon": 2.0, "ae": 1.0}.get(spec.kind, 5.0) + 0.01 * spec.seed

    cells = reproduction.dataset_summary(_results(gon_behind_ae), PLAN.budget)
    assert cells["table1"] == {32: "no", 256: "no"} and set(cells["table2"].values()) == {"no"}
    partial = reproduction.Results(reproduction.reproduction_specs(PLAN.budget, ("decisive",)), {})
    assert set(reproduction.dataset_summary(partial, PLAN.budget)["table1"].values()) == {"missing"}


def test_summary_markdown_counts_datasets_as_the_paper_states_them():
    def gon_best(spec):
        return {"gon": 1.0, "vgon": 1.0}.get(spec.kind, 3.0) + 0.01 * spec.seed

    good = reproduction.dataset_summary(_results(gon_best), PLAN.budget)
    bad = reproduction.dataset_summary(
        _results(lambda s: 3.0 - (s.kind == "ae") + 0.01 * s.seed), PLAN.budget
    )
    text = reproduction.summary_markdown({"a": (PLAN, good), "b": (PLAN, bad)})
    assert "GON lowest of the single-step methods on 1 of 2 datasets clearly" in text
    assert "VGON below VAE on 1 of 2 datasets clearly" in text
    assert reproduction.PAPER_SUMMARY["table1"] in text


def test_sweep_rows_count_gon_wins_and_the_lead_by_latent():
    specs = reproduction.reproduction_specs(PLAN.budget, ("latents",))

    def lead_grows(spec):  # the GON's lead over the AE grows with the latent
        return 100.0 if spec.kind == "ae" else 100.0 - spec.latent_dim / 10

    results = reproduction.Results(specs, _stored(specs, lead_grows))
    rows = verdicts.sweep_rows(results, PLAN.budget, ("latents",))
    by_claim = {claim: cells["ours"] for claim, _, cells in rows}
    wins = by_claim[
        f"Fig. 10c: GON < AE by latent size (held-out SSE, {PLAN.budget.sweep_epochs} epochs)"
    ]
    assert wins[1].startswith("GON lower at 4 of 6")  # within 5 % at latents 16 and 32
    lead = by_claim["Fig. 10c: the GON's lead over the AE lessens as the latent shrinks"]
    assert lead[1] == "reproduced"


def test_summary_reads_the_latent_size_explanation_on_each_dataset():
    def lead_grows(spec):  # the GON 10 % above the AE at latent 32, 20 % below at 256
        if spec.kind != "gon":
            return 10.0
        return 11.0 if spec.latent_dim == 32 else 8.0

    grows = reproduction.dataset_summary(_results(lead_grows), PLAN.budget)
    assert grows["gon_over_ae"][(32, "ours")] == 1.1
    assert grows["gon_over_ae"][(256, "paper")] == 0.8
    flat = reproduction.dataset_summary(_results(lambda s: 10.0), PLAN.budget)
    missing = reproduction.dataset_summary(
        reproduction.Results(reproduction.reproduction_specs(PLAN.budget, ("decisive",)), {}),
        PLAN.budget,
    )
    assert missing["gon_over_ae"][(32, "ours")] is None
    text = reproduction.summary_markdown(
        {"a": (PLAN, grows), "b": (PLAN, flat), "c": (PLAN, missing)}
    )
    assert "| CIFAR-10 | 1.10 | 1.10 | 0.80 | 0.80 |" in text
    assert "| CIFAR-10 | missing | missing | missing | missing |" in text
    assert "lower at latent 256 than at 32 on 1 of 2 datasets with both" in text
