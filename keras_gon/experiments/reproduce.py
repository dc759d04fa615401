"""`keras-gon experiment reproduce`: the paper's claims, run as one resumable study.

The study (`reproduction_specs`) trains, at the paper's setting and at the
library's default (`study.SETTINGS`):

- *decisive*: GON, autoencoder, variational GON and VAE at latent 32 and 256
  (Tables 1-2; the generalisation gap of figs. 2c/16);
- *table1*: the tied autoencoder, the 1-step detached GON and GLO;
- *multistep*: the 10-step GON with and without detach;
- *activations*: the GON with eight activations at latent 32, 128 and 512 (fig. 3);
- *origin*: the GON from z0 ~ N(0, σ²), appendix C's variants (a) and (b) (fig. 11);
- *diagnostics*: runs that test explanations of what does not reproduce (among them
  the autoencoder and VAE with a linear encoder, the class of a GON's encoder, shown
  beside the decisive runs).

`write_report` turns whatever is stored into `REPRODUCTION.md`: a verdict per
claim (reproduced, not reproduced, or reversed), the tables behind it with
mean ± std over seeds, the budget, and the cells still missing. A section
between `<!-- analysis -->` and `<!-- /analysis -->` in an existing report is
kept when the report is regenerated.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
from pathlib import Path
from typing import Sequence

from keras_gon.errors import InputError
from keras_gon.files import write_text
from keras_gon.experiments.study import (
    SETTINGS,
    RunSpec,
    StudyData,
    run_study,
    stored_results,
    write_json_atomically,
)

from keras_gon.experiments.arguments import (  # noqa: E402  (the names the CLI offers)
    STUDY_GROUPS as GROUPS,
)
ANALYSIS_START, ANALYSIS_END = "<!-- analysis -->", "<!-- /analysis -->"
PAPER_VGON = dict(latent_dim=48, width=32)
"""The authors' Variational-GON.py: latent 48, width 32 (BatchNorm, batch-mean ELBO, BCE)."""


@dataclasses.dataclass(frozen=True)
class ReproductionBudget:
    """How much each group of the study trains (epochs, seeds, latent sizes)."""

    name: str
    decisive_epochs: int = 30
    decisive_seeds: tuple = (0, 1, 2)
    decisive_latents: tuple = (32, 256)
    table1_epochs: int = 10
    table1_seeds: tuple = (0, 1)
    multistep_epochs: int = 5
    multistep_seeds: tuple = (0,)
    ablation_latent: int = 32
    activation_epochs: int = 3
    activation_latents: tuple = (32, 128, 512)
    activations: tuple = ("elu", "relu", "leaky_relu", "selu", "swish", "tanh")
    origin_epochs: int = 5
    origin_stddevs: tuple = (0.0, 0.1, 0.5, 1.0)
    diagnostic_epochs: int = 30
    diagnostic_seeds: tuple = (0, 1)
    diagnostic_latents: tuple = (32,)
    paper_vgon_epochs: int = 10
    width: int = 16
    eval_images: int = 2000
    steps_per_epoch: int | None = None


BUDGETS = {
    "full": ReproductionBudget("full"),
    # What CI runs: every group and code path, a few steps each.
    "tiny": ReproductionBudget(
        "tiny", decisive_epochs=2, decisive_seeds=(0, 1), decisive_latents=(4,),
        table1_epochs=2, table1_seeds=(0,), ablation_latent=4, activation_epochs=1,
        activation_latents=(4,), activations=("elu", "relu"), origin_epochs=1,
        origin_stddevs=(0.0, 0.5), diagnostic_epochs=1, diagnostic_seeds=(0,),
        diagnostic_latents=(4,),
        paper_vgon_epochs=1, multistep_epochs=1, width=2, eval_images=64, steps_per_epoch=2,
    ),
}


def _settings():
    return tuple(SETTINGS)


def reproduction_specs(budget: ReproductionBudget, groups: Sequence[str] = GROUPS) -> list[RunSpec]:
    """Every run of the study, the decisive ones first (seed by seed)."""
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise InputError(f"unknown study groups {unknown}: expected some of {GROUPS}")
    b, specs = budget, []
    base = dict(width=b.width)
    if "decisive" in groups:
        for seed in b.decisive_seeds:
            for latent in b.decisive_latents:
                for setting in _settings():
                    for kind in ("gon", "ae", "vgon", "vae"):
                        specs.append(RunSpec(kind, setting, latent, b.decisive_epochs, seed,
                                             group="decisive", **base))
    z = b.ablation_latent
    if "table1" in groups:
        for seed in b.table1_seeds:
            for setting in _settings():
                for kind in ("tied_ae", "gon_detach", "glo"):
                    specs.append(RunSpec(kind, setting, z, b.table1_epochs, seed,
                                         group="table1", **base))
    if "multistep" in groups:
        for seed in b.multistep_seeds:
            for setting in _settings():
                for kind in ("gon_10step", "gon_10step_detach"):
                    specs.append(RunSpec(kind, setting, z, b.multistep_epochs, seed,
                                         group="multistep", **base))
    if "activations" in groups:
        for latent in b.activation_latents:
            for setting in _settings():
                for activation in b.activations:
                    specs.append(RunSpec("gon", setting, latent, b.activation_epochs, 0,
                                         activation=activation, group="activations", **base))
    if "origin" in groups:
        for setting in _settings():
            for stddev in b.origin_stddevs:
                for add_origin in ((True,) if stddev == 0 else (False, True)):
                    specs.append(RunSpec("gon", setting, z, b.origin_epochs, 0,
                                         origin_stddev=stddev, add_origin=add_origin,
                                         group="origin", **base))
    if "diagnostics" in groups:
        # The variational GON at the library's default without its 1/64 step: latents
        # 64x the authors' (the summed inner -ELBO against their batch mean).
        for seed in b.diagnostic_seeds:
            for latent in b.diagnostic_latents:
                specs.append(RunSpec("vgon", "ours", latent, b.diagnostic_epochs, seed,
                                     options=(("step_size", 1.0),), group="diagnostics",
                                     label="VGON, step 1 (latents 64x)", **base))
        # The GON's and variational GON's encoders are affine maps of the image: the same
        # baselines with a linear encoder (free, not tied to the decoder's Jacobian).
        for seed in b.diagnostic_seeds:
            for latent in b.decisive_latents:
                for kind, settings in (("ae", _settings()), ("vae", ("ours",))):
                    for setting in settings:
                        specs.append(RunSpec(kind, setting, latent, b.decisive_epochs, seed,
                                             options=LINEAR_ENCODER,
                                             group="diagnostics",
                                             label=f"{kind.upper()}, linear encoder", **base))
        # The authors' own variational GON (latent 48, width 32, BCE) against the same VAE.
        width = PAPER_VGON["width"] if budget.name == "full" else b.width
        latent = PAPER_VGON["latent_dim"] if budget.name == "full" else b.ablation_latent
        for kind in ("vgon_bce", "vae_bce"):
            specs.append(RunSpec(kind, "paper", latent, b.paper_vgon_epochs, 0, width=width,
                                 group="diagnostics"))
    return sorted(specs, key=lambda spec: _priority(spec, budget))


def _priority(spec: RunSpec, budget: ReproductionBudget) -> int:
    """The order runs are trained in, so that a study stopped early still has every claim:
    the decisive runs' first two seeds, every ablation's first seed, the diagnostics, then
    the remaining seeds (`sorted` keeps the grid's order within each rank)."""
    first_seeds = set(budget.decisive_seeds[:2])
    if spec.group == "decisive":
        return 0 if spec.seed in first_seeds else 3
    if spec.group == "diagnostics":
        return 2
    return 1 if spec.seed == 0 else 4


# --- statistics and verdicts ----------------------------------------------------------


def _mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan"), 0
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0, 1
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance), len(values)


def compare(lower: Sequence[float], higher: Sequence[float], kind: str = "less") -> str:
    """Verdict on the claim that `lower` < `higher` (loss values over seeds).

    With two or more seeds each: the difference of the means against twice
    its standard error (Welch). With one seed: a 5 % margin. `kind`:
    - "less": reproduced if clearly lower, reversed if clearly higher;
    - "far_less": also needs the higher one at least 1.25x the lower;
    - "similar": reproduced if the means are within 10 % of each other.
    """
    a_mean, a_std, a_n = _mean_std(lower)
    b_mean, b_std, b_n = _mean_std(higher)
    if a_n == 0 or b_n == 0:
        return "missing"
    if kind == "similar":
        ratio = a_mean / b_mean if b_mean else float("inf")
        return "reproduced" if abs(ratio - 1.0) <= 0.10 else "not reproduced"
    if a_n >= 2 and b_n >= 2:
        error = math.sqrt(a_std**2 / a_n + b_std**2 / b_n)
        clearly_lower = b_mean - a_mean > 2 * error
        clearly_higher = a_mean - b_mean > 2 * error
    else:
        clearly_lower = b_mean > 1.05 * a_mean
        clearly_higher = a_mean > 1.05 * b_mean
    if kind == "far_less" and clearly_lower and b_mean < 1.25 * a_mean:
        return "not reproduced (worse, not far worse)"
    if clearly_lower:
        return "reproduced"
    if clearly_higher:
        return "reversed"
    return "not reproduced (within noise)"


def _format(values: Sequence[float], digits: int = 2) -> str:
    mean, std, n = _mean_std(values)
    if n == 0:
        return "missing"
    if n == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


class Results:
    """Stored results of a study, queried by spec fields."""

    def __init__(self, specs: Sequence[RunSpec], stored: dict[str, dict]):
        self.specs = list(specs)
        self.stored = stored

    def select(self, **fields) -> list[tuple[RunSpec, dict | None]]:
        found = []
        for spec in self.specs:
            if all(getattr(spec, k) == v for k, v in fields.items()):
                found.append((spec, self.stored.get(spec.key)))
        return found

    def final(self, metric: str | None = None, **fields) -> list[float]:
        """The final held-out figure (whole test set) of each matching, stored run."""
        values = []
        for _, result in self.select(**fields):
            if result is None:
                continue
            name = metric or result["metric"]
            values.append(result.get("test", {}).get(name, float("nan")))
        return values

    def at_epoch(self, epoch: int, prefix: str = "held_out", metric: str | None = None,
                 **fields) -> list[float]:
        """The per-epoch figure (`held_out_` or `train_eval_`, on the fixed subsets)."""
        values = []
        for _, result in self.select(**fields):
            if result is None:
                continue
            name = f"{prefix}_{metric or result['metric']}"
            for row in result.get("epochs", []):
                if row["epoch"] == epoch and name in row:
                    values.append(row[name])
        return values

    def parameters(self, **fields) -> int | None:
        for _, result in self.select(**fields):
            if result is not None:
                return int(result["parameters"])
        return None

    def missing(self) -> list[RunSpec]:
        return [s for s in self.specs if s.key not in self.stored]


# --- the report ------------------------------------------------------------------------

SETTING_TITLES = {"paper": "paper's setting (BatchNorm)", "ours": "library default (LayerNorm)"}


def _verdict_rows(results: Results, budget: ReproductionBudget) -> list[tuple]:
    """(claim, paper, {setting: (ours, verdict)}) for each claim."""
    b = budget
    rows = []
    z = b.ablation_latent
    for latent in b.decisive_latents:
        cells = {}
        for setting in _settings():
            gon = results.final(kind="gon", setting=setting, latent_dim=latent, group="decisive")
            ae = results.final(kind="ae", setting=setting, latent_dim=latent, group="decisive")
            cells[setting] = (f"GON {_format(gon)} vs AE {_format(ae)}", compare(gon, ae))
        rows.append((f"Table 1: GON < AE (SSE, latent {latent}, {b.decisive_epochs} epochs)",
                     "GON lower than AE, with about half the parameters", cells))
    for latent in b.decisive_latents:
        cells = {}
        for setting in _settings():
            vgon = results.final(kind="vgon", setting=setting, latent_dim=latent, group="decisive")
            vae = results.final(kind="vae", setting=setting, latent_dim=latent, group="decisive")
            cells[setting] = (f"VGON {_format(vgon, 3)} vs VAE {_format(vae, 3)}",
                              compare(vgon, vae))
        rows.append((f"Table 2: VGON < VAE (bits/dim, latent {latent}, {b.decisive_epochs} epochs)",
                     "MNIST: VGON 1.06, VAE 1.15 bits/dim", cells))
    e1 = b.table1_epochs

    def decisive_at(kind, setting, epoch):
        return results.at_epoch(epoch, kind=kind, setting=setting, latent_dim=z, group="decisive")

    def group_at(kind, setting, epoch, group):
        return results.at_epoch(epoch, kind=kind, setting=setting, latent_dim=z, group=group)

    table1 = [
        ("AE < tied AE", "ae", "tied_ae", "less", "AE lower than tied AE"),
        ("1-step GON << 1-step detach", "gon", "gon_detach", "far_less",
         "detaching the 1-step GON is far worse"),
        ("GON < GLO", "gon", "glo", "less", "GON lower than GLO"),
    ]
    for claim, first, second, kind, paper in table1:
        cells = {}
        for setting in _settings():
            a = decisive_at(first, setting, e1) if first in ("gon", "ae") else group_at(
                first, setting, e1, "table1")
            c = group_at(second, setting, e1, "table1")
            cells[setting] = (f"{_format(a)} vs {_format(c)}", compare(a, c, kind))
        rows.append((f"Table 1: {claim} (held-out SSE, latent {z}, {e1} epochs)", paper, cells))
    e2 = b.multistep_epochs
    multistep = [
        ("10-step ≈ 1-step", "gon_10step", "gon", "similar", "10-step about equal to 1-step"),
        ("10-step << 10-step detach", "gon_10step", "gon_10step_detach", "far_less",
         "detaching the 10-step GON is far worse"),
    ]
    for claim, first, second, kind, paper in multistep:
        cells = {}
        for setting in _settings():
            a = group_at(first, setting, e2, "multistep")
            c = (decisive_at(second, setting, e2) if second == "gon"
                 else group_at(second, setting, e2, "multistep"))
            cells[setting] = (f"{_format(a)} vs {_format(c)}", compare(a, c, kind))
        rows.append((f"Table 1: {claim} (held-out SSE, latent {z}, {e2} epochs)", paper, cells))
    for latent in b.decisive_latents:
        for first, second in (("gon", "ae"), ("vgon", "vae")):
            cells = {}
            for setting in _settings():
                a = _gaps(results, kind=first, setting=setting, latent_dim=latent,
                          group="decisive")
                c = _gaps(results, kind=second, setting=setting, latent_dim=latent,
                          group="decisive")
                fields = dict(setting=setting, latent_dim=latent, group="decisive")
                ra = _gaps(results, relative=True, kind=first, **fields)
                rc = _gaps(results, relative=True, kind=second, **fields)
                cells[setting] = (f"gap {_format(a, 3)} vs {_format(c, 3)} ({_format(ra, 1)} "
                                  f"vs {_format(rc, 1)} % of train)", compare(a, c))
            rows.append((f"Figs. 2c/16: {first.upper()} overfits less than {second.upper()} "
                         f"(held-out - train, latent {latent})",
                         "GONs' held-out loss stays closer to their training loss", cells))
    for latent in b.activation_latents:
        cells = {}
        for setting in _settings():
            figures = {
                a: results.at_epoch(b.activation_epochs, kind="gon", setting=setting,
                                    latent_dim=latent, activation=a, group="activations")
                for a in b.activations
            }
            cells[setting] = _activation_cell(figures)
        rows.append((f"Fig. 3: ELU best, ReLU worst (latent {latent}, "
                     f"{b.activation_epochs} epochs)", "ELU best, ReLU worst", cells))
    cells = {}
    for setting in _settings():
        figures = _origin_figures(results, setting, b)
        zero = figures.get((0.0, True), [])
        others = [v for (s, _), vals in figures.items() if s > 0 for v in vals]
        best = zero and others and all(zero[0] <= v for v in others)
        worst_a = figures.get((max(b.origin_stddevs), False), [])
        worst_b = figures.get((max(b.origin_stddevs), True), [])
        text = (f"σ=0 {_format(zero)}; σ={max(b.origin_stddevs):g}: (a) {_format(worst_a)}, "
                f"(b) {_format(worst_b)}")
        verdict = "missing" if not (zero and others) else (
            "reproduced" if best else "not reproduced")
        cells[setting] = (text, verdict)
    rows.append((f"Fig. 11: σ = 0 best, variants (a) and (b) (latent {z}, "
                 f"{b.origin_epochs} epochs)", "σ = 0 best; both variants degrade as σ grows",
                 cells))
    return rows


def _gaps(results: Results, relative: bool = False, **fields) -> list[float]:
    """Held-out minus training figure of the fixed model at the last epoch, per seed
    (with `relative`, as a percentage of the training figure)."""
    gaps = []
    for spec, result in results.select(**fields):
        if result is None or not result.get("epochs"):
            continue
        last = result["epochs"][-1]
        metric = result["metric"]
        held, train = last.get(f"held_out_{metric}"), last.get(f"train_eval_{metric}")
        if held is not None and train is not None:
            gaps.append(100.0 * (held - train) / train if relative else held - train)
    return gaps


LINEAR_ENCODER = (("encoder", "linear"),)


def _decisive_rows(results: Results, setting: str, latent: int) -> list[tuple[str, dict]]:
    """(row name, spec fields) of the decisive models at a setting and latent size, each
    baseline followed by its linear-encoder diagnostic where the study has one."""
    rows = []
    for kind in ("gon", "ae", "vgon", "vae"):
        rows.append((kind.upper(), dict(kind=kind, setting=setting, latent_dim=latent,
                                        group="decisive")))
        linear = dict(kind=kind, setting=setting, latent_dim=latent, group="diagnostics",
                      options=LINEAR_ENCODER)
        if kind in ("ae", "vae") and results.select(**linear):
            rows.append((f"{kind.upper()}, linear encoder", linear))
    return rows


def _activation_cell(figures: dict) -> tuple[str, str]:
    means = {a: _mean_std(v)[0] for a, v in figures.items() if v}
    if len(means) < 2 or "elu" not in means or "relu" not in means:
        return "missing", "missing"
    order = sorted(means, key=means.get)
    text = " < ".join(f"{a} {means[a]:.1f}" for a in order)
    best, worst = order[0] == "elu", order[-1] == "relu"
    if best and worst:
        verdict = "reproduced"
    elif means["elu"] < means["relu"]:
        verdict = "partly: ELU beats ReLU" + ("" if best else f", {order[0]} best") + (
            "" if worst else f", {order[-1]} worst")
    else:
        verdict = "reversed: ReLU beats ELU"
    return text, verdict


def _origin_figures(results: Results, setting: str, budget: ReproductionBudget) -> dict:
    figures = {}
    for stddev in budget.origin_stddevs:
        for add_origin in (False, True):
            values = results.at_epoch(budget.origin_epochs, kind="gon", setting=setting,
                                      origin_stddev=stddev, add_origin=add_origin,
                                      group="origin")
            if values:
                figures[(stddev, add_origin)] = values
    return figures


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def report_markdown(specs: Sequence[RunSpec], stored: dict, budget: ReproductionBudget,
                    data: StudyData, command: str, analysis: str = "") -> str:
    """The Markdown report of what is stored (see the module docstring)."""
    specs = list(dict.fromkeys(specs))
    results = Results(specs, stored)
    b = budget
    missing = list({s.key: s for s in results.missing()}.values())
    total = len({s.key for s in specs})
    lines = [
        "# Reproducing the paper's claims",
        "",
        f"Written by `{command}` from the {len(stored)} stored runs of {total} "
        f"({'complete' if not missing else f'{len(missing)} missing'}); regenerated after each run.",
        "",
        f"Data: `{Path(data.source).name}`, resized to 32x32, batch {data.batch_size}, "
        f"Adam {data.lr:g}. Width {b.width}. "
        f"Budget `{b.name}`: decisive runs {b.decisive_epochs} epochs x seeds "
        f"{list(b.decisive_seeds)}; Table 1 ablations {b.table1_epochs} epochs x seeds "
        f"{list(b.table1_seeds)}; multi-step {b.multistep_epochs} epochs x seeds "
        f"{list(b.multistep_seeds)}; activations {b.activation_epochs} epochs, origin "
        f"{b.origin_epochs} epochs, seed 0.",
        "",
        "Settings: **paper** = BatchNorm, the authors' inner-loss reductions (batch and pixel "
        "mean), every loss evaluated with batch statistics as their code does; **ours** = the "
        "library default, per-example LayerNorm, inner losses summed over the batch, inference "
        "as exported. Figures are mean ± std over seeds (ddof 1). Final figures are on the "
        "whole test set (SSE per image, or bits/dim of the discretised logistic likelihood); "
        f"per-epoch figures (ablations, gaps) on fixed {data.eval_images:,} training and "
        f"{data.eval_images:,} test images.",
        "",
        "Verdicts: with two or more seeds, a difference of means beyond twice its standard "
        "error; with one seed, a 5 % margin; 'far worse' also needs 1.25x; '≈' means within "
        "10 %.",
        "",
        "## Verdicts",
        "",
    ]
    header = ["claim", "paper"]
    for setting in _settings():
        header += [f"ours, {SETTING_TITLES[setting]}", "verdict"]
    rows = []
    for claim, paper, cells in _verdict_rows(results, b):
        row = [claim, paper]
        for setting in _settings():
            row += list(cells.get(setting, ("missing", "missing")))
        rows.append(row)
    lines += _table(header, rows)
    lines += ["", "## Decisive runs: held-out figure, parameters, seconds per run", ""]
    drows = []
    for latent in b.decisive_latents:
        for setting in _settings():
            for name, fields in _decisive_rows(results, setting, latent):
                kind = fields["kind"]
                final = results.final(**fields)
                moving = results.final(**fields) if setting == "ours" else [
                    r.get("test_moving", {}).get(r["metric"], float("nan"))
                    for _, r in results.select(**fields) if r is not None]
                seconds = [r["seconds"] for _, r in results.select(**fields) if r is not None]
                digits = 3 if kind in ("vgon", "vae") else 2
                drows.append([
                    name, setting, latent, _format(final, digits),
                    _format(moving, digits) if setting == "paper" else "(same)",
                    results.parameters(**fields) or "", _format(seconds, 0),
                    f"{len(final)}/{len(results.select(**fields))}",
                ])
    lines += _table(["model", "setting", "latent", "held-out (as the setting evaluates)",
                     "held-out, moving BN statistics", "parameters", "seconds", "seeds"], drows)
    lines += ["", "## Per-epoch held-out figure of the decisive runs (fixed test images)", ""]
    epochs = sorted({1, 3, 10, b.decisive_epochs} & set(range(1, b.decisive_epochs + 1)))
    erows = []
    for latent in b.decisive_latents:
        for setting in _settings():
            for name, fields in _decisive_rows(results, setting, latent):
                digits = 3 if fields["kind"] in ("vgon", "vae") else 2
                cells = [_format(results.at_epoch(e, **fields), digits) for e in epochs]
                train = _format(results.at_epoch(b.decisive_epochs, prefix="train_eval",
                                                 **fields), digits)
                erows.append([name, setting, latent, *cells, train])
    lines += _table(["model", "setting", "latent", *[f"epoch {e}" for e in epochs],
                     f"train, epoch {b.decisive_epochs}"], erows)
    lines += ["", f"## Table 1 ablations (latent {b.ablation_latent}, held-out SSE on the fixed "
              "test images)", ""]
    trows = []
    for setting in _settings():
        for kind, group, epoch in (("gon", "decisive", b.table1_epochs),
                                   ("ae", "decisive", b.table1_epochs),
                                   ("tied_ae", "table1", b.table1_epochs),
                                   ("gon_detach", "table1", b.table1_epochs),
                                   ("glo", "table1", b.table1_epochs),
                                   ("gon", "decisive", b.multistep_epochs),
                                   ("gon_10step", "multistep", b.multistep_epochs),
                                   ("gon_10step_detach", "multistep", b.multistep_epochs)):
            fields = dict(kind=kind, setting=setting, latent_dim=b.ablation_latent, group=group)
            trows.append([kind, setting, epoch, _format(results.at_epoch(epoch, **fields)),
                          results.parameters(**fields) or ""])
    lines += _table(["model", "setting", "epochs", "held-out SSE", "parameters"], trows)
    lines += ["", f"## Activations (fig. 3): held-out SSE after {b.activation_epochs} epochs", ""]
    arows = []
    for setting in _settings():
        for activation in b.activations:
            arows.append([setting, activation, *[
                _format(results.at_epoch(b.activation_epochs, kind="gon", setting=setting,
                                         latent_dim=latent, activation=activation,
                                         group="activations"))
                for latent in b.activation_latents]])
    lines += _table(["setting", "activation",
                     *[f"latent {latent}" for latent in b.activation_latents]], arows)
    lines += ["", f"## Origin (fig. 11): held-out SSE after {b.origin_epochs} epochs, "
              "z0 ~ N(0, σ²) in training", ""]
    orows = []
    for setting in _settings():
        figures = _origin_figures(results, setting, b)
        for stddev in b.origin_stddevs:
            a = figures.get((stddev, False), figures.get((stddev, True)) if stddev == 0 else [])
            c = figures.get((stddev, True), [])
            orows.append([setting, f"{stddev:g}", _format(a or []), _format(c)])
    lines += _table(["setting", "σ", "(a) z = -∇z0 L", "(b) z = z0 - ∇z0 L"], orows)
    lines += ["", "## Diagnostics", ""]
    grows = []
    for spec, result in Results(specs, stored).select(group="diagnostics"):
        if spec.options == LINEAR_ENCODER:  # shown beside the decisive runs
            continue
        figure = "missing" if result is None else (
            f"{result.get('test', {}).get(result['metric'], float('nan')):.4f}")
        name = spec.label or spec.kind
        grows.append([name, spec.setting, spec.latent_dim, spec.width, spec.seed, spec.epochs,
                      "missing" if result is None else result["metric"], figure])
    lines += _table(["run", "setting", "latent", "width", "seed", "epochs", "metric",
                     "held-out"], grows)
    lines += ["", ANALYSIS_START, analysis.strip(), ANALYSIS_END]
    if missing:  # last: the list the next `reproduce` run works through
        lines += ["", f"## Missing cells ({len(missing)} runs not yet stored)", ""]
        lines += [f"- `{spec.key}` ({spec.group})" for spec in missing[:200]]
        if len(missing) > 200:
            lines.append(f"- ... and {len(missing) - 200} more")
    return "\n".join(lines + [""])


def _existing_analysis(path: Path) -> str:
    if not path.is_file():
        return ""
    text = path.read_text()
    match = re.search(re.escape(ANALYSIS_START) + r"(.*?)" + re.escape(ANALYSIS_END), text,
                      re.DOTALL)
    return match.group(1).strip() if match else ""


def write_report(path: Path, specs, stored, budget, data, command) -> None:
    """Writes the report to `path` (atomically), keeping its analysis section."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, report_markdown(specs, stored, budget, data, command,
                                     _existing_analysis(path)))


def reproduce(data: str, out: Path, budget: str = "full", report: Path | None = None,
              groups: Sequence[str] = GROUPS, report_only: bool = False,
              command: str = "keras-gon experiment reproduce", log=print) -> dict:
    """Runs (or continues) the study in `out` and writes the report; returns the results."""
    if budget not in BUDGETS:
        raise InputError(f"unknown budget {budget!r}: expected one of {tuple(BUDGETS)}")
    plan = BUDGETS[budget]
    study_data = StudyData(source=str(data), eval_images=plan.eval_images,
                           steps_per_epoch=plan.steps_per_epoch)
    specs = reproduction_specs(plan, groups)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report_paths = [out / "REPRODUCTION.md"] + ([Path(report)] if report else [])
    write_json_atomically(out / "study.json", {
        "budget": dataclasses.asdict(plan), "data": dataclasses.asdict(study_data),
        "groups": list(groups), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    })

    def rewrite(*_):
        stored = stored_results(out, specs)
        for path in report_paths:
            write_report(path, specs, stored, plan, study_data, command)

    if report_only:
        rewrite()
        return stored_results(out, specs)
    from keras_gon.data import load_dataset

    load_dataset(study_data.source, image_size=32, batch_size=study_data.batch_size)  # checks
    results = run_study(specs, study_data, out, on_result=rewrite, log=log)
    rewrite()
    return results
