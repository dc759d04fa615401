"""Verdicts on the paper's claims from stored results: statistics, rows, summaries."""

from __future__ import annotations

import math
from collections.abc import Sequence

from keras_gon.experiments.plan import (
    GROUPS,
    VGON_REMEDIES,
    DatasetPlan,
    ReproductionBudget,
    settings,
)
from keras_gon.experiments.study import RunSpec


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
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
    a_mean, a_std, a_n = mean_std(lower)
    b_mean, b_std, b_n = mean_std(higher)
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


def format_values(values: Sequence[float], digits: int = 2) -> str:
    mean, std, n = mean_std(values)
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

    def at_epoch(
        self, epoch: int, prefix: str = "held_out", metric: str | None = None, **fields
    ) -> list[float]:
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


def verdict_rows(
    results: Results,
    budget: ReproductionBudget,
    groups: Sequence[str] = GROUPS,
    plan: DatasetPlan | None = None,
) -> list[tuple]:
    """(claim, paper, {setting: (ours, verdict)}) for each claim of the groups run."""
    b = budget
    rows = []
    z = b.ablation_latent
    vgon_paper = (
        "MNIST: VGON 1.06, VAE 1.15 bits/dim"
        if plan is None or plan.name == "mnist"
        else "VGON lower -ELBO than VAE"
    )

    def cell(first, second, kind="less", digits=2, names=("", "")):
        if not (first[1] or second[1]):  # neither is in the plan
            return ("not run", "")
        a, c = first[0], second[0]
        text = f"{names[0]}{format_values(a, digits)} vs {names[1]}{format_values(c, digits)}"
        return (text, compare(a, c, kind))

    def final(kind, setting, latent, group="decisive"):
        fields = dict(kind=kind, setting=setting, latent_dim=latent, group=group)
        return results.final(**fields), bool(results.select(**fields))

    def at(kind, setting, latent, epoch, group):
        fields = dict(kind=kind, setting=setting, latent_dim=latent, group=group)
        return results.at_epoch(epoch, **fields), bool(results.select(**fields))

    if "decisive" in groups:
        for latent in b.decisive_latents:
            cells = {
                setting: cell(
                    final("gon", setting, latent),
                    final("ae", setting, latent),
                    names=("GON ", "AE "),
                )
                for setting in settings()
            }
            rows.append(
                (
                    f"Table 1: GON < AE (SSE, latent {latent}, {b.decisive_epochs} epochs)",
                    "GON lower than AE, with about half the parameters",
                    cells,
                )
            )
        for latent in b.decisive_latents:
            cells = {
                setting: cell(
                    final("vgon", setting, latent),
                    final("vae", setting, latent),
                    digits=3,
                    names=("VGON ", "VAE "),
                )
                for setting in settings()
            }
            rows.append(
                (
                    f"Table 2: VGON < VAE (bits/dim, latent {latent}, {b.decisive_epochs} epochs)",
                    vgon_paper,
                    cells,
                )
            )
    e1 = b.table1_epochs
    table1 = [
        ("AE < tied AE", "ae", "tied_ae", "less", "AE lower than tied AE"),
        _detach_claim("1-step GON << 1-step detach", "gon", "1-step"),
        ("GON < GLO", "gon", "glo", "less", "GON lower than GLO"),
    ]
    if "table1" in groups:
        for latent in b.ablation_latents:
            for claim, first, second, kind, paper in table1:
                cells = {}
                for setting in settings():
                    group = "decisive" if first in ("gon", "ae") else "table1"
                    ablation = at(second, setting, latent, e1, "table1")
                    cells[setting] = (
                        cell(at(first, setting, latent, e1, group), ablation, kind)
                        if ablation[1]
                        else ("not run", "")
                    )
                rows.append(
                    (f"Table 1: {claim} (held-out SSE, latent {latent}, {e1} epochs)", paper, cells)
                )
    e2 = b.multistep_epochs
    multistep = [
        ("10-step ≈ 1-step", "gon_10step", "gon", "similar", "10-step about equal to 1-step"),
        _detach_claim("10-step << 10-step detach", "gon_10step", "10-step"),
    ]
    if "multistep" in groups:
        for claim, first, second, kind, paper in multistep:
            cells = {}
            for setting in settings():
                ten = at(first, setting, z, e2, "multistep")
                other = at(second, setting, z, e2, "decisive" if second == "gon" else "multistep")
                cells[setting] = cell(ten, other, kind) if ten[1] else ("not run", "")
            rows.append((f"Table 1: {claim} (held-out SSE, latent {z}, {e2} epochs)", paper, cells))
    for latent in b.decisive_latents if "decisive" in groups else ():
        for first, second in (("gon", "ae"), ("vgon", "vae")):
            cells = {}
            for setting in settings():
                a = gaps(results, kind=first, setting=setting, latent_dim=latent, group="decisive")
                c = gaps(results, kind=second, setting=setting, latent_dim=latent, group="decisive")
                fields = dict(setting=setting, latent_dim=latent, group="decisive")
                ra = gaps(results, relative=True, kind=first, **fields)
                rc = gaps(results, relative=True, kind=second, **fields)
                cells[setting] = (
                    f"gap {format_values(a, 3)} vs {format_values(c, 3)} ({format_values(ra, 1)} "
                    f"vs {format_values(rc, 1)} % of train)",
                    compare(a, c),
                )
            rows.append(
                (
                    f"Figs. 2c/16: {first.upper()} overfits less than {second.upper()} "
                    f"(held-out - train, latent {latent})",
                    "GONs' held-out loss stays closer to their training loss",
                    cells,
                )
            )
    for latent in b.activation_latents if "activations" in groups else ():
        cells = {}
        for setting in settings():
            cells[setting] = activation_cell(activation_figures(results, setting, latent, b))
        rows.append(
            (
                f"Fig. 3: ELU best, ReLU worst (latent {latent}, {b.activation_epochs} epochs)",
                "ELU best, ReLU worst",
                cells,
            )
        )
    if "origin" in groups:
        rows.append(origin_row(results, b))
    if "remedies" in groups:
        rows += remedy_rows(results, b)
    return rows + sweep_rows(results, b, groups)


def remedy_rows(results: Results, b: ReproductionBudget) -> list[tuple]:
    """VGON < VAE with each remedy, at the remedies' epoch on the fixed test images."""
    rows = []
    for latent in b.decisive_latents:
        for label, kind, options in VGON_REMEDIES:
            if kind.startswith("vae"):
                continue
            rival = "vae_gaussian" if "gaussian" in kind else "vae"
            group = "remedies" if "gaussian" in kind else "decisive"
            vgon = results.at_epoch(
                b.remedy_epochs,
                kind=kind,
                setting="ours",
                latent_dim=latent,
                group="remedies",
                options=options,
            )
            vae = results.at_epoch(
                b.remedy_epochs, kind=rival, setting="ours", latent_dim=latent, group=group
            )
            unit = "nats" if "gaussian" in kind else "bits/dim"
            rows.append(
                (
                    f"Remedy: {label} < VAE ({unit}, latent {latent}, {b.remedy_epochs} epochs)",
                    "the paper's remedies for the variational GON",
                    {
                        "ours": (
                            f"{format_values(vgon, 3)} vs {format_values(vae, 3)}",
                            compare(vgon, vae),
                        ),
                        "paper": ("not run", ""),
                    },
                )
            )
    return rows


def origin_row(results: Results, b: ReproductionBudget) -> tuple:
    cells = {}
    for setting in settings():
        figures = origin_figures(results, setting, b)
        zero = figures.get((0.0, True), [])
        others = [v for (s, _), vals in figures.items() if s > 0 for v in vals]
        best = zero and others and all(zero[0] <= v for v in others)
        worst_a = figures.get((max(b.origin_stddevs), False), [])
        worst_b = figures.get((max(b.origin_stddevs), True), [])
        text = (
            f"σ=0 {format_values(zero)}; σ={max(b.origin_stddevs):g}: (a) {format_values(worst_a)}, "
            f"(b) {format_values(worst_b)}"
        )
        verdict = (
            "missing" if not (zero and others) else ("reproduced" if best else "not reproduced")
        )
        cells[setting] = (text, verdict)
    return (
        f"Fig. 11: σ = 0 best, variants (a) and (b) (latent {b.ablation_latent}, "
        f"{b.origin_epochs} epochs)",
        "σ = 0 best; both variants degrade as σ grows",
        cells,
    )


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
        value = (
            dict(spec.options).get(field, 1) if field == "latent_map_size" else getattr(spec, field)
        )
        pair = table.setdefault(value, ([], []))
        if result is None:
            continue
        if epoch is None:
            figure = result.get("test", {}).get(result["metric"], float("nan"))
        else:
            figure = next(
                (row["held_out_loss"] for row in result.get("epochs", []) if row["epoch"] == epoch),
                float("nan"),
            )
        pair[0 if spec.kind == "gon" else 1].append(figure)
    return dict(sorted(table.items()))


def sweep_rows(results: Results, b: ReproductionBudget, groups: Sequence[str]) -> list[tuple]:
    """Verdicts of the fig. 10 sweeps: GON against AE at each value; for fig. 10c the
    paper's "the GON's lead lessens as the latent shrinks"."""
    rows = []
    for group, (_, figure, name) in SWEEPS.items():
        if group not in groups:
            continue
        table = sweep_values(results, group)
        done = {v: pair for v, pair in table.items() if pair[0] and pair[1]}
        wins = [v for v, (gon, ae) in done.items() if compare(gon, ae) == "reproduced"]
        text = ", ".join(
            f"{v}: {format_values(gon)} vs {format_values(ae)}" for v, (gon, ae) in done.items()
        )
        margin = " (one seed: a 5 % margin)" if len(b.sweep_seeds) == 1 else ""
        verdict = (
            "missing"
            if len(done) < len(table) or not table
            else (f"GON lower at {len(wins)} of {len(done)}{margin}")
        )
        rows.append(
            (
                f"{figure}: GON < AE by {name} (held-out SSE, {b.sweep_epochs} epochs)",
                "GON lower than AE",
                {"ours": (text or "missing", verdict), "paper": ("not run", "")},
            )
        )
        if group == "latents" and len(done) >= 2:
            lead = {
                v: (mean_std(ae)[0] - mean_std(gon)[0]) / mean_std(ae)[0]
                for v, (gon, ae) in done.items()
            }
            smallest, largest = min(lead), max(lead)
            text = ", ".join(f"{v}: {100 * lead[v]:+.0f} %" for v in lead)
            verdict = "reproduced" if lead[largest] > lead[smallest] else "not reproduced"
            rows.append(
                (
                    f"{figure}: the GON's lead over the AE lessens as the latent shrinks",
                    "the lead lessens with smaller latents",
                    {"ours": (f"(AE - GON) / AE: {text}", verdict), "paper": ("not run", "")},
                )
            )
    return rows


def gaps(results: Results, relative: bool = False, **fields) -> list[float]:
    """Held-out minus training figure of the fixed model at the last epoch, per seed
    (with `relative`, as a percentage of the training figure)."""
    gaps = []
    for _spec, result in results.select(**fields):
        if result is None or not result.get("epochs"):
            continue
        last = result["epochs"][-1]
        metric = result["metric"]
        held, train = last.get(f"held_out_{metric}"), last.get(f"train_eval_{metric}")
        if held is not None and train is not None:
            gaps.append(100.0 * (held - train) / train if relative else held - train)
    return gaps


def activation_cell(figures: dict) -> tuple[str, str]:
    means = {a: mean_std(v)[0] for a, v in figures.items() if v}
    if len(means) < 2 or "elu" not in means or "relu" not in means:
        return "missing", "missing"
    order = sorted(means, key=means.get)
    text = " < ".join(f"{a} {means[a]:.1f}" for a in order)
    best, worst = order[0] == "elu", order[-1] == "relu"
    if best and worst:
        verdict = "reproduced"
    elif means["elu"] < means["relu"]:
        verdict = (
            "partly: ELU beats ReLU"
            + ("" if best else f", {order[0]} best")
            + ("" if worst else f", {order[-1]} worst")
        )
    else:
        verdict = "reversed: ReLU beats ELU"
    return text, verdict


def _detach_claim(claim: str, kind: str, name: str) -> tuple:
    """Table 1's claim that the `name` GON (`kind`) is far below its detached variant."""
    return (claim, kind, f"{kind}_detach", "far_less", f"detaching the {name} GON is far worse")


def activation_figures(
    results: Results, setting: str, latent: int, budget: ReproductionBudget
) -> dict:
    """The GON's held-out SSE values of each activation of fig. 3, by activation."""
    fields = dict(kind="gon", setting=setting, latent_dim=latent, group="activations")
    return {
        activation: results.at_epoch(budget.activation_epochs, activation=activation, **fields)
        for activation in budget.activations
    }


def origin_figures(results: Results, setting: str, budget: ReproductionBudget) -> dict:
    figures, fields = {}, dict(kind="gon", setting=setting, group="origin")
    for stddev in budget.origin_stddevs:
        for add_origin in (False, True):
            origin = dict(origin_stddev=stddev, add_origin=add_origin)
            values = results.at_epoch(budget.origin_epochs, **origin, **fields)
            if values:
                figures[(stddev, add_origin)] = values
    return figures


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
    "no", or "missing". Also "gon_over_ae": for each decisive latent and setting, the GON's
    mean held-out SSE over the AE's (None: missing), what the latent-size explanation
    (fig. 10c: the GON's lead grows with the latent) is read from."""
    cells = {"table1": {}, "table2": {}, "gon_over_ae": {}}
    for latent in budget.decisive_latents:
        for setting in settings():
            gon, ae = (
                results.final(kind=kind, setting=setting, latent_dim=latent, group="decisive")
                for kind in ("gon", "ae")
            )
            cells["gon_over_ae"][(latent, setting)] = (
                mean_std(gon)[0] / mean_std(ae)[0] if gon and ae else None
            )
    epoch = budget.table1_epochs
    for latent in budget.ablation_latents:
        gon = results.at_epoch(
            epoch, kind="gon", setting="ours", latent_dim=latent, group="decisive"
        )
        rivals = {}
        for kind in SINGLE_STEP:
            group = "decisive" if kind == "ae" else "table1"
            rivals[kind] = results.at_epoch(
                epoch, kind=kind, setting="ours", latent_dim=latent, group=group
            )
        if not gon or not all(rivals.values()):
            cells["table1"][latent] = "missing"
            continue
        verdicts = [compare(gon, values) for values in rivals.values()]
        lowest = all(mean_std(gon)[0] < mean_std(v)[0] for v in rivals.values())
        cells["table1"][latent] = (
            "yes"
            if all(v == "reproduced" for v in verdicts)
            else ("lowest mean" if lowest else "no")
        )
    for latent in budget.decisive_latents:
        for setting in settings():
            vgon = results.final(kind="vgon", setting=setting, latent_dim=latent, group="decisive")
            vae = results.final(kind="vae", setting=setting, latent_dim=latent, group="decisive")
            if not vgon or not vae:
                cells["table2"][(latent, setting)] = "missing"
                continue
            verdict = compare(vgon, vae)
            cells["table2"][(latent, setting)] = (
                "yes"
                if verdict == "reproduced"
                else ("lower mean" if mean_std(vgon)[0] < mean_std(vae)[0] else "no")
            )
    return cells
