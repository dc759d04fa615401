"""`keras-gon experiment reproduce`: the paper's claims, run as one resumable study.

The study (`reproduction_specs`) trains, at the paper's setting and at the
library's default (`study.SETTINGS`):

- *decisive*: GON, autoencoder, variational GON and VAE at latent 32 and 256
  (Tables 1-2; the generalisation gap of figs. 2c/16);
- *table1*: the tied autoencoder, the 1-step detached GON and GLO;
- *multistep*: the 10-step GON with and without detach;
- *activations*: the GON with each activation of the budget at latent 32, 128 and 512
  (fig. 3);
- *origin*: the GON from z0 ~ N(0, σ²), appendix C's variants (a) and (b) (fig. 11);
- *diagnostics*: runs that test explanations of what does not reproduce (among them
  the autoencoder and VAE with a linear encoder, the class of a GON's encoder, shown
  beside the decisive runs);
- *widths*, *latents*, *spatial* (CIFAR-10): fig. 10's sweeps of GON against AE;
- *remedies*: the variational GON with the paper's remedies against the VAE.

Each dataset (`DATASETS`) has its budget and groups; several datasets make one study
folder and report each, and a summary of the paper's summary rows (`write_summary`).

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

import numpy as np

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
    variational_seeds: tuple | None = None
    table1_latents: tuple | None = None
    table1_settings: tuple = ("paper", "ours")
    multistep_settings: tuple = ("paper", "ours")
    sweep_epochs: int = 10
    sweep_seeds: tuple = (0,)
    sweep_latent: int = 256
    widths: tuple = ()
    sweep_latents: tuple = ()
    map_sizes: tuple = ()
    remedy_epochs: int = 10
    remedy_seeds: tuple = (0,)

    @property
    def vgon_seeds(self) -> tuple:
        """The seeds of the decisive variational runs (VGON, VAE)."""
        return self.decisive_seeds if self.variational_seeds is None else self.variational_seeds

    @property
    def ablation_latents(self) -> tuple:
        """The latent sizes of the Table 1 ablations."""
        return (self.ablation_latent,) if self.table1_latents is None else self.table1_latents


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
        sweep_epochs=1, sweep_latent=16, widths=(2, 4), sweep_latents=(4, 16), map_sizes=(1, 4),
        remedy_epochs=1,
    ),
}


@dataclasses.dataclass(frozen=True)
class DatasetPlan:
    """A dataset of the study: what it is, how its images are used and its full budget.

    Attributes:
        name: the `--dataset` name.
        title: how reports name it.
        image_size: side of the square images (the paper trains every Table 1-2 dataset
            at 32x32).
        train_images: a fixed random subset of the training images where the whole
            split is too slow here (None: all).
        budget: the `full` budget on this dataset (`tiny` is the same everywhere).
        groups: the study groups run by default.
        data: what `--data` should point to.
    """

    name: str
    title: str
    budget: ReproductionBudget
    groups: tuple
    image_size: int = 32
    train_images: int | None = None
    data: str = ""


_OTHER_COLUMNS = dict(
    decisive_seeds=(0, 1, 2), variational_seeds=(0, 1), decisive_latents=(32, 256),
    table1_seeds=(0,), table1_latents=(32, 256), table1_settings=("ours",),
    multistep_settings=("ours",), eval_images=2000,
)
"""What the Fashion-MNIST, COIL-20 and CIFAR-10 columns share: GON vs AE at three seeds,
VGON vs VAE at two, the Table 1 ablations at latents 32 and 256 with the library's
default, one seed."""

DATASETS = {
    "mnist": DatasetPlan("mnist", "MNIST", BUDGETS["full"],
                         ("decisive", "table1", "multistep", "activations", "origin",
                          "diagnostics"),
                         data="a .npz of MNIST, e.g. ../shared/data/mnist22k.npz"),
    "fashion_mnist": DatasetPlan(
        "fashion_mnist", "Fashion-MNIST",
        ReproductionBudget("full", decisive_epochs=15, table1_epochs=10, **_OTHER_COLUMNS),
        ("decisive", "table1"), train_images=12000,
        data="the Fashion-MNIST IDX folder, e.g. ../shared/data/fashion-mnist"),
    "coil20": DatasetPlan(
        "coil20", "COIL-20",
        ReproductionBudget("full", decisive_epochs=100, table1_epochs=50, **_OTHER_COLUMNS),
        ("decisive", "table1"),
        data="the folder of COIL-20's processed PNGs (coil-20-proc; 10 % held out, seed 0)"),
    "cifar10": DatasetPlan(
        "cifar10", "CIFAR-10",
        ReproductionBudget("full", decisive_epochs=10, table1_epochs=10, multistep_epochs=5,
                           multistep_seeds=(0,), sweep_epochs=5, sweep_seeds=(0,),
                           sweep_latent=256, widths=(4, 8, 16, 32),
                           sweep_latents=(16, 32, 64, 128, 256, 512), map_sizes=(1, 4, 8),
                           remedy_epochs=5, **_OTHER_COLUMNS),
        ("decisive", "table1", "multistep", "widths", "latents", "spatial", "remedies"),
        train_images=12000,
        data="a CIFAR-10 folder with train/ and test/ class folders (cifar10-jpg.tar)"),
}
"""The datasets `keras-gon experiment reproduce --dataset` knows, by name."""


def get_dataset_plan(name: str) -> DatasetPlan:
    """The plan of dataset `name`, or an error listing the known ones."""
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}: expected one of {tuple(DATASETS)}")
    return DATASETS[name]


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
        for seed in sorted(set(b.decisive_seeds) | set(b.vgon_seeds)):
            for latent in b.decisive_latents:
                for setting in _settings():
                    kinds = (("gon", "ae") if seed in b.decisive_seeds else ()) + (
                        ("vgon", "vae") if seed in b.vgon_seeds else ())
                    for kind in kinds:
                        specs.append(RunSpec(kind, setting, latent, b.decisive_epochs, seed,
                                             group="decisive", **base))
    z = b.ablation_latent
    if "table1" in groups:
        for seed in b.table1_seeds:
            for latent in b.ablation_latents:
                for setting in b.table1_settings:
                    for kind in ("tied_ae", "gon_detach", "glo"):
                        specs.append(RunSpec(kind, setting, latent, b.table1_epochs, seed,
                                             group="table1", **base))
    if "multistep" in groups:
        for seed in b.multistep_seeds:
            for setting in b.multistep_settings:
                for kind in ("gon_10step", "gon_10step_detach"):
                    specs.append(RunSpec(kind, setting, z, b.multistep_epochs, seed,
                                         group="multistep", **base))
    sweep = dict(setting="ours", epochs=b.sweep_epochs)
    if "widths" in groups:  # fig. 10b
        for seed in b.sweep_seeds:
            for width in b.widths:
                for kind in ("gon", "ae"):
                    specs.append(RunSpec(kind, latent_dim=b.sweep_latent, seed=seed, width=width,
                                         group="widths", **sweep))
    if "latents" in groups:  # fig. 10c
        for seed in b.sweep_seeds:
            for latent in b.sweep_latents:
                for kind in ("gon", "ae"):
                    specs.append(RunSpec(kind, latent_dim=latent, seed=seed, group="latents",
                                         **sweep, **base))
    if "spatial" in groups:  # fig. 10a
        for seed in b.sweep_seeds:
            for size in b.map_sizes:
                for kind in ("gon", "ae"):
                    options = () if size == 1 else (("latent_map_size", size),)
                    specs.append(RunSpec(kind, latent_dim=b.sweep_latent, seed=seed,
                                         options=options, group="spatial",
                                         label=f"{size}x{size} latent map", **sweep, **base))
    if "remedies" in groups:  # the variational GON's remedies the paper points to
        for seed in b.remedy_seeds:
            for latent in b.decisive_latents:
                for label, kind, options in VGON_REMEDIES:
                    specs.append(RunSpec(kind, "ours", latent, b.remedy_epochs, seed,
                                         options=options, group="remedies", label=label,
                                         **base))
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


def _verdict_rows(results: Results, budget: ReproductionBudget,
                  groups: Sequence[str] = GROUPS, plan: DatasetPlan | None = None) -> list[tuple]:
    """(claim, paper, {setting: (ours, verdict)}) for each claim of the groups run."""
    b = budget
    rows = []
    z = b.ablation_latent
    vgon_paper = "MNIST: VGON 1.06, VAE 1.15 bits/dim" if plan is None or plan.name == "mnist" \
        else "VGON lower -ELBO than VAE"

    def cell(first, second, kind="less", digits=2, names=("", "")):
        if not (first[1] or second[1]):  # neither is in the plan
            return ("not run", "")
        a, c = first[0], second[0]
        text = f"{names[0]}{_format(a, digits)} vs {names[1]}{_format(c, digits)}"
        return (text, compare(a, c, kind))

    def final(kind, setting, latent, group="decisive"):
        fields = dict(kind=kind, setting=setting, latent_dim=latent, group=group)
        return results.final(**fields), bool(results.select(**fields))

    def at(kind, setting, latent, epoch, group):
        fields = dict(kind=kind, setting=setting, latent_dim=latent, group=group)
        return results.at_epoch(epoch, **fields), bool(results.select(**fields))

    if "decisive" in groups:
        for latent in b.decisive_latents:
            cells = {setting: cell(final("gon", setting, latent), final("ae", setting, latent),
                                   names=("GON ", "AE "))
                     for setting in _settings()}
            rows.append((f"Table 1: GON < AE (SSE, latent {latent}, {b.decisive_epochs} epochs)",
                         "GON lower than AE, with about half the parameters", cells))
        for latent in b.decisive_latents:
            cells = {setting: cell(final("vgon", setting, latent), final("vae", setting, latent),
                                   digits=3, names=("VGON ", "VAE "))
                     for setting in _settings()}
            rows.append((f"Table 2: VGON < VAE (bits/dim, latent {latent}, "
                         f"{b.decisive_epochs} epochs)", vgon_paper, cells))
    e1 = b.table1_epochs
    table1 = [
        ("AE < tied AE", "ae", "tied_ae", "less", "AE lower than tied AE"),
        ("1-step GON << 1-step detach", "gon", "gon_detach", "far_less",
         "detaching the 1-step GON is far worse"),
        ("GON < GLO", "gon", "glo", "less", "GON lower than GLO"),
    ]
    if "table1" in groups:
        for latent in b.ablation_latents:
            for claim, first, second, kind, paper in table1:
                cells = {}
                for setting in _settings():
                    group = "decisive" if first in ("gon", "ae") else "table1"
                    ablation = at(second, setting, latent, e1, "table1")
                    cells[setting] = cell(at(first, setting, latent, e1, group), ablation, kind) \
                        if ablation[1] else ("not run", "")
                rows.append((f"Table 1: {claim} (held-out SSE, latent {latent}, {e1} epochs)",
                             paper, cells))
    e2 = b.multistep_epochs
    multistep = [
        ("10-step ≈ 1-step", "gon_10step", "gon", "similar", "10-step about equal to 1-step"),
        ("10-step << 10-step detach", "gon_10step", "gon_10step_detach", "far_less",
         "detaching the 10-step GON is far worse"),
    ]
    if "multistep" in groups:
        for claim, first, second, kind, paper in multistep:
            cells = {}
            for setting in _settings():
                ten = at(first, setting, z, e2, "multistep")
                other = at(second, setting, z, e2, "decisive" if second == "gon" else "multistep")
                cells[setting] = cell(ten, other, kind) if ten[1] else ("not run", "")
            rows.append((f"Table 1: {claim} (held-out SSE, latent {z}, {e2} epochs)", paper,
                         cells))
    for latent in b.decisive_latents if "decisive" in groups else ():
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
    for latent in b.activation_latents if "activations" in groups else ():
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
    if "origin" in groups:
        rows.append(_origin_row(results, b))
    if "remedies" in groups:
        rows += _remedy_rows(results, b)
    return rows + _sweep_rows(results, b, groups)


def _remedy_rows(results: Results, b: ReproductionBudget) -> list[tuple]:
    """VGON < VAE with each remedy, at the remedies' epoch on the fixed test images."""
    rows = []
    for latent in b.decisive_latents:
        for label, kind, options in VGON_REMEDIES:
            if kind.startswith("vae"):
                continue
            rival = "vae_gaussian" if "gaussian" in kind else "vae"
            group = "remedies" if "gaussian" in kind else "decisive"
            vgon = results.at_epoch(b.remedy_epochs, kind=kind, setting="ours",
                                    latent_dim=latent, group="remedies", options=options)
            vae = results.at_epoch(b.remedy_epochs, kind=rival, setting="ours",
                                   latent_dim=latent, group=group)
            unit = "nats" if "gaussian" in kind else "bits/dim"
            rows.append((f"Remedy: {label} < VAE ({unit}, latent {latent}, {b.remedy_epochs} "
                         "epochs)", "the paper's remedies for the variational GON",
                         {"ours": (f"{_format(vgon, 3)} vs {_format(vae, 3)}",
                                   compare(vgon, vae)), "paper": ("not run", "")}))
    return rows


def _origin_row(results: Results, b: ReproductionBudget) -> tuple:
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
    return (f"Fig. 11: σ = 0 best, variants (a) and (b) (latent {b.ablation_latent}, "
            f"{b.origin_epochs} epochs)", "σ = 0 best; both variants degrade as σ grows", cells)


SWEEPS = {
    "widths": ("width", "Fig. 10b", "decoder width"),
    "latents": ("latent_dim", "Fig. 10c", "latent size"),
    "spatial": ("latent_map_size", "Fig. 10a", "latent map side"),
}
"""The CIFAR-10 sweeps of GON against AE (fig. 10): the field each varies, and names."""


def sweep_values(results: Results, group: str, epoch: int | None = None) -> dict:
    """{value: (GON figures, AE figures)} of a sweep group, by the value it varies: at the
    last epoch's whole test set, or at `epoch` on the fixed test images."""
    field = SWEEPS[group][0]
    table = {}
    for spec, result in results.select(group=group, setting="ours"):
        value = dict(spec.options).get(field, 1) if field == "latent_map_size" else getattr(
            spec, field)
        pair = table.setdefault(value, ([], []))
        if result is None:
            continue
        if epoch is None:
            figure = result.get("test", {}).get(result["metric"], float("nan"))
        else:
            figure = next((row["held_out_loss"] for row in result.get("epochs", [])
                           if row["epoch"] == epoch), float("nan"))
        pair[0 if spec.kind == "gon" else 1].append(figure)
    return dict(sorted(table.items()))


def _sweep_rows(results: Results, b: ReproductionBudget, groups: Sequence[str]) -> list[tuple]:
    """Verdicts of the fig. 10 sweeps: GON against AE at each value; for fig. 10c the
    paper's "the GON's lead lessens as the latent shrinks"."""
    rows = []
    for group, (_, figure, name) in SWEEPS.items():
        if group not in groups:
            continue
        table = sweep_values(results, group)
        done = {v: pair for v, pair in table.items() if pair[0] and pair[1]}
        wins = [v for v, (gon, ae) in done.items() if compare(gon, ae) == "reproduced"]
        text = ", ".join(f"{v}: {_format(gon)} vs {_format(ae)}" for v, (gon, ae) in done.items())
        margin = " (one seed: a 5 % margin)" if len(b.sweep_seeds) == 1 else ""
        verdict = "missing" if len(done) < len(table) or not table else (
            f"GON lower at {len(wins)} of {len(done)}{margin}")
        rows.append((f"{figure}: GON < AE by {name} (held-out SSE, {b.sweep_epochs} epochs)",
                     "GON lower than AE", {"ours": (text or "missing", verdict),
                                           "paper": ("not run", "")}))
        if group == "latents" and len(done) >= 2:
            lead = {v: (_mean_std(ae)[0] - _mean_std(gon)[0]) / _mean_std(ae)[0]
                    for v, (gon, ae) in done.items()}
            smallest, largest = min(lead), max(lead)
            text = ", ".join(f"{v}: {100 * lead[v]:+.0f} %" for v in lead)
            verdict = "reproduced" if lead[largest] > lead[smallest] else "not reproduced"
            rows.append((f"{figure}: the GON's lead over the AE lessens as the latent shrinks",
                         "the lead lessens with smaller latents",
                         {"ours": (f"(AE - GON) / AE: {text}", verdict),
                          "paper": ("not run", "")}))
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
VGON_REMEDIES = (
    ("VGON, 5 inner steps", "vgon", (("num_steps", 5), ("step_size", 1.0 / 320))),
    ("VGON, Gaussian p(x|z) of constant variance", "vgon_gaussian", ()),
    ("VAE, Gaussian p(x|z) of constant variance", "vae_gaussian", ()),
)
"""What the paper points to where the variational GON falls short, each against its VAE:
more than one inner step (5 steps of a fifth of the default step, the multi-step GON's
schedule; against the decisive VAE), and the constant-variance form of the likelihood that
eq. 9's empirical-Bayes reading of the origin gradient assumes (p(x|z) = N(F(z), σ²I), σ
fixed, against the VAE with the same likelihood; -ELBO in nats)."""


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
                    data: StudyData, command: str, analysis: str = "",
                    plan: DatasetPlan | None = None, figure_path: Path | None = None) -> str:
    """The Markdown report of what is stored (see the module docstring); `figure_path`
    names the plot of the fig. 10 sweeps, written beside it (see `write_report`)."""
    specs = list(dict.fromkeys(specs))
    results = Results(specs, stored)
    groups = [g for g in GROUPS if any(s.group == g for s in specs)]
    b = budget
    missing = list({s.key: s for s in results.missing()}.values())
    total = len({s.key for s in specs})
    on = "" if plan is None or plan.name == "mnist" else f" on {plan.title}"
    subset = "" if data.train_images is None else (
        f" (a fixed random subset of {data.train_images:,} training images)")
    seconds = [r["seconds"] for r in stored.values() if "seconds" in r]
    timing = "" if not seconds else (
        f" Seconds per run (training and per-epoch evaluation; one thread, other work on the "
        f"same 2 cores): median {sorted(seconds)[len(seconds) // 2]:.0f}, total "
        f"{sum(seconds) / 3600:.1f} h.")
    lines = [
        f"# Reproducing the paper's claims{on}",
        "",
        f"Written by `{command}` from the {len(stored)} stored runs of {total} "
        f"({'complete' if not missing else f'{len(missing)} missing'}); regenerated after each run.",
        "",
        f"Data: `{Path(data.source).name}`{subset}, resized to {data.image_size}x{data.image_size}, "
        f"batch {data.batch_size}, Adam {data.lr:g}. Width {b.width}.{timing} "
        f"Budget `{b.name}`: {_budget_text(b, groups)}.",
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
    for claim, paper, cells in _verdict_rows(results, b, groups, plan):
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
    if "table1" in groups or "multistep" in groups:
        lines += ["", "## Table 1 ablations (held-out SSE on the fixed test images)", ""]
        trows = []
        rows_of = [("gon", "decisive", b.table1_epochs), ("ae", "decisive", b.table1_epochs),
                   ("tied_ae", "table1", b.table1_epochs), ("gon_detach", "table1",
                                                             b.table1_epochs),
                   ("glo", "table1", b.table1_epochs), ("gon", "decisive", b.multistep_epochs),
                   ("gon_10step", "multistep", b.multistep_epochs),
                   ("gon_10step_detach", "multistep", b.multistep_epochs)]
        for latent in b.ablation_latents:
            for setting in _settings():
                for kind, group, epoch in rows_of:
                    fields = dict(kind=kind, setting=setting, latent_dim=latent, group=group)
                    if group != "decisive" and not results.select(**fields):
                        continue  # not in the plan
                    trows.append([kind, setting, latent, epoch,
                                  _format(results.at_epoch(epoch, **fields)),
                                  results.parameters(**fields) or ""])
        lines += _table(["model", "setting", "latent", "epochs", "held-out SSE", "parameters"],
                        trows)
    if "activations" in groups:
        lines += ["", f"## Activations (fig. 3): held-out SSE after {b.activation_epochs} "
                  "epochs", ""]
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
    if "origin" in groups:
        lines += ["", f"## Origin (fig. 11): held-out SSE after {b.origin_epochs} epochs, "
                  "z0 ~ N(0, σ²) in training", ""]
        orows = []
        for setting in _settings():
            figures = _origin_figures(results, setting, b)
            for stddev in b.origin_stddevs:
                a = figures.get((stddev, False),
                                figures.get((stddev, True)) if stddev == 0 else [])
                c = figures.get((stddev, True), [])
                orows.append([setting, f"{stddev:g}", _format(a or []), _format(c)])
        lines += _table(["setting", "σ", "(a) z = -∇z0 L", "(b) z = z0 - ∇z0 L"], orows)
    sweeps = [g for g in SWEEPS if g in groups]
    if sweeps:
        lines += ["", f"## Fig. 10: GON against AE, library default, {b.sweep_epochs} epochs "
                  "(held-out SSE, whole test set)", ""]
        if figure_path is not None:
            lines += [f"![fig. 10]({figure_path.name})", ""]
        for group in sweeps:
            _, figure, name = SWEEPS[group]
            srows = [[value, _format(gon), _format(ae), f"{len(gon)}/{len(b.sweep_seeds)}"]
                     for value, (gon, ae) in sweep_values(results, group).items()]
            lines += [f"**{figure}** ({name}; latent {b.sweep_latent} where it is not the "
                      "value swept):", ""]
            lines += _table([name, "GON", "AE", "seeds"], srows) + [""]
    if "remedies" in groups:
        lines += ["", f"## Variational GON remedies ({b.remedy_epochs} epochs, library default,"
                  " held-out bits/dim)", ""]
        rrows = []
        for latent in b.decisive_latents:
            for name, fields in (("VGON", dict(kind="vgon", group="decisive")),
                                 ("VAE", dict(kind="vae", group="decisive")),
                                 *((label, dict(kind=kind, group="remedies", options=options))
                                   for label, kind, options in VGON_REMEDIES)):
                unit = "nats" if "gaussian" in fields["kind"] else "bits/dim"
                rrows.append([name, latent, unit, _format(results.at_epoch(
                    b.remedy_epochs, setting="ours", latent_dim=latent, **fields), 3)])
        lines += _table(["model", "latent", "figure", f"-ELBO at epoch {b.remedy_epochs} "
                         "(fixed test images)"], rrows)
    if "diagnostics" in groups:
        lines += ["", "## Diagnostics", ""]
        grows = []
        for spec, result in Results(specs, stored).select(group="diagnostics"):
            if spec.options == LINEAR_ENCODER:  # shown beside the decisive runs
                continue
            figure = "missing" if result is None else (
                f"{result.get('test', {}).get(result['metric'], float('nan')):.4f}")
            name = spec.label or spec.kind
            grows.append([name, spec.setting, spec.latent_dim, spec.width, spec.seed,
                          spec.epochs, "missing" if result is None else result["metric"],
                          figure])
        lines += _table(["run", "setting", "latent", "width", "seed", "epochs", "metric",
                         "held-out"], grows)
    lines += ["", ANALYSIS_START, analysis.strip(), ANALYSIS_END]
    if missing:  # last: the list the next `reproduce` run works through
        lines += ["", f"## Missing cells ({len(missing)} runs not yet stored)", ""]
        lines += [f"- `{spec.key}` ({spec.group})" for spec in missing[:200]]
        if len(missing) > 200:
            lines.append(f"- ... and {len(missing) - 200} more")
    return "\n".join(lines + [""])


def _budget_text(b: ReproductionBudget, groups: Sequence[str]) -> str:
    """The budget of each group run, in words."""
    parts = []
    if "decisive" in groups:
        variational = "" if b.vgon_seeds == b.decisive_seeds else (
            f" (VGON and VAE seeds {list(b.vgon_seeds)})")
        parts.append(f"decisive runs {b.decisive_epochs} epochs x seeds "
                     f"{list(b.decisive_seeds)}{variational}")
    if "table1" in groups:
        parts.append(f"Table 1 ablations {b.table1_epochs} epochs x seeds {list(b.table1_seeds)}"
                     f" at latents {list(b.ablation_latents)}")
    if "multistep" in groups:
        parts.append(f"multi-step {b.multistep_epochs} epochs x seeds {list(b.multistep_seeds)}")
    if "activations" in groups:
        parts.append(f"activations {b.activation_epochs} epochs, seed 0")
    if "origin" in groups:
        parts.append(f"origin {b.origin_epochs} epochs, seed 0")
    sweeps = [g for g in ("widths", "latents", "spatial") if g in groups]
    if sweeps:
        parts.append(f"fig. 10 sweeps ({', '.join(sweeps)}) {b.sweep_epochs} epochs x seeds "
                     f"{list(b.sweep_seeds)}")
    if "remedies" in groups:
        parts.append(f"VGON remedies {b.remedy_epochs} epochs x seeds {list(b.remedy_seeds)}")
    return "; ".join(parts)


def _existing_analysis(path: Path) -> str:
    if not path.is_file():
        return ""
    text = path.read_text()
    match = re.search(re.escape(ANALYSIS_START) + r"(.*?)" + re.escape(ANALYSIS_END), text,
                      re.DOTALL)
    return match.group(1).strip() if match else ""


def plot_sweeps(path: Path, results: Results, groups: Sequence[str]) -> None:
    """A PNG of the fig. 10 sweeps run: held-out SSE of GON and AE against each value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_gon.files import atomic_write

    sweeps = [g for g in SWEEPS if g in groups]
    figure, axes = plt.subplots(1, len(sweeps), figsize=(4.2 * len(sweeps), 3.4), squeeze=False)
    for axis, group in zip(axes[0], sweeps):
        _, title, name = SWEEPS[group]
        table = sweep_values(results, group)
        for index, (label, marker) in enumerate((("GON", "o"), ("AE", "s"))):
            points = [(v, *_mean_std(pair[index])[:2]) for v, pair in table.items()
                      if pair[index]]
            if points:
                x, mean, std = (np.asarray(column, float) for column in zip(*points))
                axis.errorbar(x, mean, yerr=std, marker=marker, capsize=3, label=label)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel(name)
        axis.set_ylabel("held-out SSE per image")
        axis.set_title(title)
        axis.legend()
    figure.tight_layout()
    atomic_write(path, lambda target: figure.savefig(target, format="png", dpi=110))
    plt.close(figure)


def write_report(path: Path, specs, stored, budget, data, command,
                 plan: DatasetPlan | None = None) -> None:
    """Writes the report to `path` (atomically), keeping its analysis section, and the plot
    of the fig. 10 sweeps beside it (`<name>_fig10.png`) when the study has them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = {s.group for s in specs}
    figure = None
    if groups & set(SWEEPS):
        figure = path.with_name(f"{path.stem}_fig10.png")
        plot_sweeps(figure, Results(list(specs), stored), [g for g in GROUPS if g in groups])
    write_text(path, report_markdown(specs, stored, budget, data, command,
                                     _existing_analysis(path), plan=plan, figure_path=figure))


SINGLE_STEP = ("ae", "tied_ae", "gon_detach", "glo")
"""Table 1's single-step rivals of the GON (the 10-step GON is not single-step)."""

PAPER_SUMMARY = {
    "table1": "GONs achieve the lowest loss on four out of the five datasets",
    "table2": "lower ELBO on five out of the six datasets",
}
"""The paper's own summary of each table."""


def dataset_summary(results: Results, budget: ReproductionBudget) -> dict:
    """One dataset's summary cells: for each latent of the Table 1 ablations (library
    default), whether the GON is the lowest of the single-step methods (on the fixed test
    images at the ablations' epoch); for each decisive latent and setting, whether the VGON
    is below the VAE. Values: "yes" (clearly: every comparison reproduced), "lowest mean",
    "no", or "missing"."""
    cells = {"table1": {}, "table2": {}}
    epoch = budget.table1_epochs
    for latent in budget.ablation_latents:
        gon = results.at_epoch(epoch, kind="gon", setting="ours", latent_dim=latent,
                               group="decisive")
        rivals = {}
        for kind in SINGLE_STEP:
            group = "decisive" if kind == "ae" else "table1"
            rivals[kind] = results.at_epoch(epoch, kind=kind, setting="ours", latent_dim=latent,
                                            group=group)
        if not gon or not all(rivals.values()):
            cells["table1"][latent] = "missing"
            continue
        verdicts = [compare(gon, values) for values in rivals.values()]
        lowest = all(_mean_std(gon)[0] < _mean_std(v)[0] for v in rivals.values())
        cells["table1"][latent] = "yes" if all(v == "reproduced" for v in verdicts) else (
            "lowest mean" if lowest else "no")
    for latent in budget.decisive_latents:
        for setting in _settings():
            vgon = results.final(kind="vgon", setting=setting, latent_dim=latent, group="decisive")
            vae = results.final(kind="vae", setting=setting, latent_dim=latent, group="decisive")
            if not vgon or not vae:
                cells["table2"][(latent, setting)] = "missing"
                continue
            verdict = compare(vgon, vae)
            cells["table2"][(latent, setting)] = "yes" if verdict == "reproduced" else (
                "lower mean" if _mean_std(vgon)[0] < _mean_std(vae)[0] else "no")
    return cells


def summary_markdown(summaries: dict[str, tuple[DatasetPlan, dict]]) -> str:
    """The summary rows of Tables 1 and 2 over the datasets studied, as the paper states
    them ("GON lowest of the single-step methods on k of n datasets", "VGON below VAE on k
    of n"), beside the paper's own."""
    lines = ["# The paper's summary rows, over the datasets studied here", "",
             "Generated by `keras-gon experiment reproduce` with several `--dataset`s from their "
             "stored runs (each dataset's report has the cells). 'yes': clearly (every "
             "comparison beyond twice its standard error, or 5 % with one seed); 'lowest "
             "mean': lowest but not clearly; 'missing': runs not yet stored.", ""]
    latents = sorted({latent for _, cells in summaries.values() for latent in cells["table1"]})
    header = ["dataset", *[f"GON lowest single-step, latent {z}" for z in latents]]
    rows = [[plan.title, *[cells["table1"].get(z, "not run") for z in latents]]
            for plan, cells in summaries.values()]
    lines += _table(header, rows)
    for latent in latents:
        lines += ["", _count_line(
            [c["table1"].get(latent) for _, c in summaries.values()], "lowest mean",
            f"**Table 1, latent {latent}, library default**: GON lowest of the single-step "
            "methods", PAPER_SUMMARY["table1"])]
    keys = sorted({key for _, cells in summaries.values() for key in cells["table2"]})
    lines += ["", *_table(["dataset", *[f"VGON < VAE, latent {z}, {SETTING_TITLES[s]}"
                                        for z, s in keys]],
                          [[plan.title, *[cells["table2"].get(k, "not run") for k in keys]]
                           for plan, cells in summaries.values()])]
    for key in keys:
        lines += ["", _count_line(
            [c["table2"].get(key) for _, c in summaries.values()], "lower mean",
            f"**Table 2, latent {key[0]}, {SETTING_TITLES[key[1]]}**: VGON below VAE",
            PAPER_SUMMARY["table2"])]
    return "\n".join(lines + [""])


def _count_line(cells: list, weaker: str, claim: str, paper: str) -> str:
    """'<claim> on k of n datasets clearly, <weaker> on m of n (j missing); the paper: ...'."""
    counted = [c for c in cells if c in ("yes", weaker, "no")]
    missing = len(cells) - len(counted)
    return (f"{claim} on {sum(c == 'yes' for c in counted)} of {len(counted)} datasets "
            f"clearly, {weaker} on {sum(c in ('yes', weaker) for c in counted)} of "
            f"{len(counted)}{f' ({missing} missing)' if missing else ''}; the paper: "
            f"\"{paper}\".")


def write_summary(path: Path, studies: dict[str, tuple[Path, str]], budget: str = "full") -> None:
    """Writes `summary_markdown` for `{dataset: (study folder, data source)}`."""
    summaries = {}
    for dataset, (folder, _) in studies.items():
        plan = get_dataset_plan(dataset)
        b = plan.budget if budget == "full" else BUDGETS[budget]
        specs = reproduction_specs(b, plan.groups)
        summaries[dataset] = (plan, dataset_summary(Results(specs, stored_results(folder, specs)),
                                                    b))
    write_text(Path(path), summary_markdown(summaries))


def reproduce(data: str, out: Path, budget: str = "full", report: Path | None = None,
              groups: Sequence[str] | None = None, report_only: bool = False,
              command: str = "keras-gon experiment reproduce", log=print,
              dataset: str = "mnist") -> dict:
    """Runs (or continues) the study of `dataset` on the images of `data` in `out` and
    writes the report; returns the results. `groups` None runs the dataset's own
    (`DATASETS`); the `full` budget is the dataset's, `tiny` the same for all."""
    if budget not in BUDGETS:
        raise InputError(f"unknown budget {budget!r}: expected one of {tuple(BUDGETS)}")
    dataset_plan = get_dataset_plan(dataset)
    plan = dataset_plan.budget if budget == "full" else BUDGETS[budget]
    groups = dataset_plan.groups if groups is None else tuple(groups)
    study_data = StudyData(source=str(data), eval_images=plan.eval_images,
                           steps_per_epoch=plan.steps_per_epoch,
                           image_size=dataset_plan.image_size,
                           train_images=dataset_plan.train_images)
    specs = reproduction_specs(plan, groups)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report_paths = [out / "REPRODUCTION.md"] + ([Path(report)] if report else [])
    write_json_atomically(out / "study.json", {
        "dataset": dataset, "budget": dataclasses.asdict(plan),
        "data": dataclasses.asdict(study_data), "groups": list(groups),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    })

    def rewrite(*_):
        stored = stored_results(out, specs)
        for path in report_paths:
            write_report(path, specs, stored, plan, study_data, command, dataset_plan)

    if report_only:
        rewrite()
        return stored_results(out, specs)
    from keras_gon.data import load_dataset

    load_dataset(study_data.source, image_size=study_data.image_size,  # checks the data
                 batch_size=study_data.batch_size, train_images=study_data.train_images)
    results = run_study(specs, study_data, out, on_result=rewrite, log=log)
    rewrite()
    return results
