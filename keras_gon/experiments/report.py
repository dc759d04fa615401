"""The study's Markdown reports (per dataset, and the summary over datasets) and plots."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_gon.experiments.plan import (
    BUDGETS,
    GROUPS,
    LINEAR_ENCODER,
    VGON_REMEDIES,
    DatasetPlan,
    ReproductionBudget,
    get_dataset_plan,
    reproduction_specs,
    settings,
)
from keras_gon.experiments.study import RunSpec, StudyData, stored_results
from keras_gon.experiments.verdicts import (
    PAPER_SUMMARY,
    SWEEPS,
    Results,
    activation_figures,
    dataset_summary,
    format_values,
    mean_std,
    origin_figures,
    sweep_values,
    verdict_rows,
)
from keras_gon.files import write_text

ANALYSIS_START, ANALYSIS_END = "<!-- analysis -->", "<!-- /analysis -->"

SETTING_TITLES = {"paper": "paper's setting (BatchNorm)", "ours": "library default (LayerNorm)"}


def decisive_rows(results: Results, setting: str, latent: int) -> list[tuple[str, dict]]:
    """(row name, spec fields) of the decisive models at a setting and latent size, each
    baseline followed by its linear-encoder diagnostic where the study has one."""
    rows = []
    for kind in ("gon", "ae", "vgon", "vae"):
        rows.append(
            (kind.upper(), dict(kind=kind, setting=setting, latent_dim=latent, group="decisive"))
        )
        linear = dict(
            kind=kind,
            setting=setting,
            latent_dim=latent,
            group="diagnostics",
            options=LINEAR_ENCODER,
        )
        if kind in ("ae", "vae") and results.select(**linear):
            rows.append((f"{kind.upper()}, linear encoder", linear))
    return rows


def run_seconds(run: dict) -> float:
    """What a stored run cost: its CPU seconds, or its wall seconds if it predates them."""
    return run.get("cpu_seconds", run["seconds"])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def report_markdown(
    specs: Sequence[RunSpec],
    stored: dict,
    budget: ReproductionBudget,
    data: StudyData,
    command: str,
    analysis: str = "",
    plan: DatasetPlan | None = None,
    figure_path: Path | None = None,
) -> str:
    """The Markdown report of what is stored (see the module docstring); `figure_path`
    names the plot of the fig. 10 sweeps, written beside it (see `write_report`)."""
    specs = list(dict.fromkeys(specs))
    results = Results(specs, stored)
    groups = [g for g in GROUPS if any(s.group == g for s in specs)]
    b = budget
    missing = list({s.key: s for s in results.missing()}.values())
    total = len({s.key for s in specs})
    on = "" if plan is None or plan.name == "mnist" else f" on {plan.title}"
    subset = (
        ""
        if data.train_images is None
        else (f" (a fixed random subset of {data.train_images:,} training images)")
    )
    seconds = [run_seconds(r) for r in stored.values() if "seconds" in r]
    wall = sum("cpu_seconds" not in r for r in stored.values() if "seconds" in r)
    before = (
        f", or the wall seconds for the {wall} runs stored before CPU time was recorded (they "
        "include the times the study was paused or shared its core)"
        if wall
        else ""
    )
    timing = (
        ""
        if not seconds
        else (
            " Seconds per run (training and per-epoch evaluation, one thread): the CPU seconds "
            f"of the run's process{before}: median {sorted(seconds)[len(seconds) // 2]:.0f}, "
            f"total {sum(seconds) / 3600:.1f} h."
        )
    )
    lines = [
        f"# Reproducing the paper's claims{on}",
        "",
        f"Written by `{command}` from the {len(stored)} stored runs of {total} "
        f"({'complete' if not missing else f'{len(missing)} missing'}); regenerated after each run.",
        "",
        f"Data: `{Path(data.source).name}`{subset}, resized to {data.image_size}x{data.image_size}, "
        f"batch {data.batch_size}, Adam {data.lr:g}. Width {b.width}.{timing} "
        f"Budget `{b.name}`: {budget_text(b, groups)}."
        + (
            " **A plumbing check: runs this short (tiny widths and latents, a few epochs, "
            "some collapsing) say nothing about the claims; their verdicts are not findings.**"
            if b.name == "tiny"
            else ""
        ),
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
    for setting in settings():
        header += [f"ours, {SETTING_TITLES[setting]}", "verdict"]
    rows = []
    for claim, paper, cells in verdict_rows(results, b, groups, plan):
        row = [claim, paper]
        for setting in settings():
            row += list(cells.get(setting, ("missing", "missing")))
        rows.append(row)
    lines += markdown_table(header, rows)
    lines += ["", "## Decisive runs: held-out figure, parameters, seconds per run", ""]
    drows = []
    for latent in b.decisive_latents:
        for setting in settings():
            for name, fields in decisive_rows(results, setting, latent):
                kind = fields["kind"]
                final = results.final(**fields)
                moving = (
                    results.final(**fields)
                    if setting == "ours"
                    else [
                        r.get("test_moving", {}).get(r["metric"], float("nan"))
                        for _, r in results.select(**fields)
                        if r is not None
                    ]
                )
                seconds = [run_seconds(r) for _, r in results.select(**fields) if r is not None]
                digits = 3 if kind in ("vgon", "vae") else 2
                drows.append(
                    [
                        name,
                        setting,
                        latent,
                        format_values(final, digits),
                        format_values(moving, digits) if setting == "paper" else "(same)",
                        results.parameters(**fields) or "",
                        format_values(seconds, 0),
                        f"{len(final)}/{len(results.select(**fields))}",
                    ]
                )
    lines += markdown_table(
        [
            "model",
            "setting",
            "latent",
            "held-out (as the setting evaluates)",
            "held-out, moving BN statistics",
            "parameters",
            "seconds",
            "seeds",
        ],
        drows,
    )
    lines += ["", "## Per-epoch held-out figure of the decisive runs (fixed test images)", ""]
    epochs = sorted({1, 3, 10, b.decisive_epochs} & set(range(1, b.decisive_epochs + 1)))
    erows = []
    for latent in b.decisive_latents:
        for setting in settings():
            for name, fields in decisive_rows(results, setting, latent):
                digits = 3 if fields["kind"] in ("vgon", "vae") else 2
                cells = [format_values(results.at_epoch(e, **fields), digits) for e in epochs]
                train = format_values(
                    results.at_epoch(b.decisive_epochs, prefix="train_eval", **fields), digits
                )
                erows.append([name, setting, latent, *cells, train])
    lines += markdown_table(
        [
            "model",
            "setting",
            "latent",
            *[f"epoch {e}" for e in epochs],
            f"train, epoch {b.decisive_epochs}",
        ],
        erows,
    )
    if "table1" in groups or "multistep" in groups:
        lines += ["", "## Table 1 ablations (held-out SSE on the fixed test images)", ""]
        trows = []
        rows_of = [
            ("gon", "decisive", b.table1_epochs),
            ("ae", "decisive", b.table1_epochs),
            ("tied_ae", "table1", b.table1_epochs),
            ("gon_detach", "table1", b.table1_epochs),
            ("glo", "table1", b.table1_epochs),
            ("gon", "decisive", b.multistep_epochs),
            ("gon_10step", "multistep", b.multistep_epochs),
            ("gon_10step_detach", "multistep", b.multistep_epochs),
        ]
        for latent in b.ablation_latents:
            for setting in settings():
                for kind, group, epoch in rows_of:
                    fields = dict(kind=kind, setting=setting, latent_dim=latent, group=group)
                    if group != "decisive" and not results.select(**fields):
                        continue  # not in the plan
                    trows.append(
                        [
                            kind,
                            setting,
                            latent,
                            epoch,
                            format_values(results.at_epoch(epoch, **fields)),
                            results.parameters(**fields) or "",
                        ]
                    )
        lines += markdown_table(
            ["model", "setting", "latent", "epochs", "held-out SSE", "parameters"], trows
        )
    if "activations" in groups:
        lines += [
            "",
            f"## Activations (fig. 3): held-out SSE after {b.activation_epochs} epochs",
            "",
        ]
        arows = []
        for setting in settings():
            figures = [
                activation_figures(results, setting, latent, b) for latent in b.activation_latents
            ]
            for activation in b.activations:
                arows.append(
                    [setting, activation, *[format_values(f[activation]) for f in figures]]
                )
        lines += markdown_table(
            ["setting", "activation", *[f"latent {latent}" for latent in b.activation_latents]],
            arows,
        )
    if "origin" in groups:
        lines += [
            "",
            f"## Origin (fig. 11): held-out SSE after {b.origin_epochs} epochs, "
            "z0 ~ N(0, σ²) in training",
            "",
        ]
        orows = []
        for setting in settings():
            figures = origin_figures(results, setting, b)
            for stddev in b.origin_stddevs:
                a = figures.get((stddev, False), figures.get((stddev, True)) if stddev == 0 else [])
                c = figures.get((stddev, True), [])
                orows.append([setting, f"{stddev:g}", format_values(a or []), format_values(c)])
        lines += markdown_table(["setting", "σ", "(a) z = -∇z0 L", "(b) z = z0 - ∇z0 L"], orows)
    sweeps = [g for g in SWEEPS if g in groups]
    if sweeps:
        lines += [
            "",
            f"## Fig. 10: GON against AE, library default, {b.sweep_epochs} epochs "
            "(held-out SSE, whole test set)",
            "",
        ]
        if figure_path is not None:
            lines += [f"![fig. 10]({figure_path.name})", ""]
        for group in sweeps:
            _, figure, name = SWEEPS[group]
            srows = [
                [value, format_values(gon), format_values(ae), f"{len(gon)}/{len(b.sweep_seeds)}"]
                for value, (gon, ae) in sweep_values(results, group).items()
            ]
            lines += [
                f"**{figure}** ({name}; latent {b.sweep_latent} where it is not the value swept):",
                "",
            ]
            lines += markdown_table([name, "GON", "AE", "seeds"], srows) + [""]
    if "remedies" in groups:
        lines += [
            "",
            f"## Variational GON remedies ({b.remedy_epochs} epochs, library default,"
            " held-out bits/dim)",
            "",
        ]
        rrows = []
        for latent in b.decisive_latents:
            for name, fields in (
                ("VGON", dict(kind="vgon", group="decisive")),
                ("VAE", dict(kind="vae", group="decisive")),
                *(
                    (label, dict(kind=kind, group="remedies", options=options))
                    for label, kind, options in VGON_REMEDIES
                ),
            ):
                unit = "nats" if "gaussian" in fields["kind"] else "bits/dim"
                rrows.append(
                    [
                        name,
                        latent,
                        unit,
                        format_values(
                            results.at_epoch(
                                b.remedy_epochs, setting="ours", latent_dim=latent, **fields
                            ),
                            3,
                        ),
                    ]
                )
        lines += markdown_table(
            ["model", "latent", "figure", f"-ELBO at epoch {b.remedy_epochs} (fixed test images)"],
            rrows,
        )
    if "diagnostics" in groups:
        lines += ["", "## Diagnostics", ""]
        grows = []
        for spec, result in Results(specs, stored).select(group="diagnostics"):
            if spec.options == LINEAR_ENCODER:  # shown beside the decisive runs
                continue
            figure = (
                "missing"
                if result is None
                else (f"{result.get('test', {}).get(result['metric'], float('nan')):.4f}")
            )
            name = spec.label or spec.kind
            grows.append(
                [
                    name,
                    spec.setting,
                    spec.latent_dim,
                    spec.width,
                    spec.seed,
                    spec.epochs,
                    "missing" if result is None else result["metric"],
                    figure,
                ]
            )
        lines += markdown_table(
            ["run", "setting", "latent", "width", "seed", "epochs", "metric", "held-out"], grows
        )
    lines += ["", ANALYSIS_START, analysis.strip(), ANALYSIS_END]
    if missing:  # last: the list the next `reproduce` run works through
        lines += ["", f"## Missing cells ({len(missing)} runs not yet stored)", ""]
        lines += [f"- `{spec.key}` ({spec.group})" for spec in missing[:200]]
        if len(missing) > 200:
            lines.append(f"- ... and {len(missing) - 200} more")
    return "\n".join(lines + [""])


def budget_text(b: ReproductionBudget, groups: Sequence[str]) -> str:
    """The budget of each group run, in words."""
    parts = []
    if "decisive" in groups:
        variational = (
            ""
            if b.vgon_seeds == b.decisive_seeds
            else (f" (VGON and VAE seeds {list(b.vgon_seeds)})")
        )
        parts.append(
            f"decisive runs {b.decisive_epochs} epochs x seeds "
            f"{list(b.decisive_seeds)}{variational}"
        )
    if "table1" in groups:
        parts.append(
            f"Table 1 ablations {b.table1_epochs} epochs x seeds {list(b.table1_seeds)}"
            f" at latents {list(b.ablation_latents)}"
        )
    if "multistep" in groups:
        parts.append(f"multi-step {b.multistep_epochs} epochs x seeds {list(b.multistep_seeds)}")
    if "activations" in groups:
        parts.append(f"activations {b.activation_epochs} epochs, seed 0")
    if "origin" in groups:
        parts.append(f"origin {b.origin_epochs} epochs, seed 0")
    sweeps = [g for g in ("widths", "latents", "spatial") if g in groups]
    if sweeps:
        parts.append(
            f"fig. 10 sweeps ({', '.join(sweeps)}) {b.sweep_epochs} epochs x seeds "
            f"{list(b.sweep_seeds)}"
        )
    if "remedies" in groups:
        parts.append(f"VGON remedies {b.remedy_epochs} epochs x seeds {list(b.remedy_seeds)}")
    return "; ".join(parts)


def existing_analysis(path: Path) -> str:
    if not path.is_file():
        return ""
    text = path.read_text()
    match = re.search(
        re.escape(ANALYSIS_START) + r"(.*?)" + re.escape(ANALYSIS_END), text, re.DOTALL
    )
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
            points = [(v, *mean_std(pair[index])[:2]) for v, pair in table.items() if pair[index]]
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


def write_report(
    path: Path, specs, stored, budget, data, command, plan: DatasetPlan | None = None
) -> None:
    """Writes the report to `path` (atomically), keeping its analysis section, and the plot
    of the fig. 10 sweeps beside it (`<name>_fig10.png`) when the study has them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    groups = {s.group for s in specs}
    figure = None
    if groups & set(SWEEPS):
        figure = path.with_name(f"{path.stem}_fig10.png")
        plot_sweeps(figure, Results(list(specs), stored), [g for g in GROUPS if g in groups])
    write_text(
        path,
        report_markdown(
            specs,
            stored,
            budget,
            data,
            command,
            existing_analysis(path),
            plan=plan,
            figure_path=figure,
        ),
    )


def summary_markdown(summaries: dict[str, tuple[DatasetPlan, dict]]) -> str:
    """The summary rows of Tables 1 and 2 over the datasets studied, as the paper states
    them ("GON lowest of the single-step methods on k of n datasets", "VGON below VAE on k
    of n"), beside the paper's own."""
    lines = [
        "# The paper's summary rows, over the datasets studied here",
        "",
        "Generated by `keras-gon experiment reproduce` with several `--dataset`s from their "
        "stored runs (each dataset's report has the cells). 'yes': clearly (every "
        "comparison beyond twice its standard error, or 5 % with one seed); 'lowest "
        "mean': lowest but not clearly; 'missing': runs not yet stored.",
        "",
    ]
    latents = sorted({latent for _, cells in summaries.values() for latent in cells["table1"]})
    header = ["dataset", *[f"GON lowest single-step, latent {z}" for z in latents]]
    rows = [
        [plan.title, *[cells["table1"].get(z, "not run") for z in latents]]
        for plan, cells in summaries.values()
    ]
    lines += markdown_table(header, rows)
    for latent in latents:
        lines += [
            "",
            count_line(
                [c["table1"].get(latent) for _, c in summaries.values()],
                "lowest mean",
                f"**Table 1, latent {latent}, library default**: GON lowest of the single-step "
                "methods",
                PAPER_SUMMARY["table1"],
            ),
        ]
    latent_size = latent_size_lines(summaries)
    lines += ["", *latent_size] if latent_size else []
    keys = sorted({key for _, cells in summaries.values() for key in cells["table2"]})
    lines += [
        "",
        *markdown_table(
            ["dataset", *[f"VGON < VAE, latent {z}, {SETTING_TITLES[s]}" for z, s in keys]],
            [
                [plan.title, *[cells["table2"].get(k, "not run") for k in keys]]
                for plan, cells in summaries.values()
            ],
        ),
    ]
    for key in keys:
        lines += [
            "",
            count_line(
                [c["table2"].get(key) for _, c in summaries.values()],
                "lower mean",
                f"**Table 2, latent {key[0]}, {SETTING_TITLES[key[1]]}**: VGON below VAE",
                PAPER_SUMMARY["table2"],
            ),
        ]
    return "\n".join(lines + [""])


def latent_size_lines(summaries: dict[str, tuple[DatasetPlan, dict]]) -> list[str]:
    """The GON's held-out SSE over the AE's by decisive latent and setting, per dataset, and
    on how many datasets the ratio falls from the smallest latent to the largest: the
    paper's fig. 10c ("the GON's lead lessens as the latent shrinks"), which MNIST showed."""
    keys = sorted({key for _, cells in summaries.values() for key in cells["gon_over_ae"]})
    if not keys:
        return []
    smallest, largest = keys[0][0], keys[-1][0]
    rows, falls = [], {}
    for plan, cells in summaries.values():
        ratios = cells["gon_over_ae"]
        rows.append(
            [
                plan.title,
                *[
                    "not run"
                    if k not in ratios
                    else "missing"
                    if ratios[k] is None
                    else f"{ratios[k]:.2f}"
                    for k in keys
                ],
            ]
        )
        for setting in sorted({s for _, s in keys}):
            low, high = ratios.get((smallest, setting)), ratios.get((largest, setting))
            if smallest != largest and low is not None and high is not None:
                falls.setdefault(setting, []).append(high < low)
    lines = [
        "GON's held-out SSE / AE's (decisive runs, mean over seeds; below 1: the GON is lower):",
        "",
        *markdown_table(["dataset", *[f"latent {z}, {SETTING_TITLES[s]}" for z, s in keys]], rows),
    ]
    for setting, fell in sorted(falls.items()):
        lines += [
            "",
            f"**Latent size, {SETTING_TITLES[setting]}**: the GON's ratio to the AE is lower at "
            f"latent {largest} than at {smallest} on {sum(fell)} of {len(fell)} datasets with "
            "both; the paper (fig. 10c): the GON's lead over the AE lessens as the latent shrinks.",
        ]
    return lines


def count_line(cells: list, weaker: str, claim: str, paper: str) -> str:
    """'<claim> on k of n datasets clearly, <weaker> on m of n (j missing); the paper: ...'."""
    counted = [c for c in cells if c in ("yes", weaker, "no")]
    missing = len(cells) - len(counted)
    return (
        f"{claim} on {sum(c == 'yes' for c in counted)} of {len(counted)} datasets "
        f"clearly, {weaker} on {sum(c in ('yes', weaker) for c in counted)} of "
        f"{len(counted)}{f' ({missing} missing)' if missing else ''}; the paper: "
        f'"{paper}".'
    )


def write_summary(path: Path, studies: dict[str, tuple[Path, str]], budget: str = "full") -> None:
    """Writes `summary_markdown` for `{dataset: (study folder, data source)}`."""
    summaries = {}
    for dataset, (folder, _) in studies.items():
        plan = get_dataset_plan(dataset)
        b = plan.budget if budget == "full" else BUDGETS[budget]
        specs = reproduction_specs(b, plan.groups)
        summaries[dataset] = (
            plan,
            dataset_summary(Results(specs, stored_results(folder, specs)), b),
        )
    write_text(Path(path), summary_markdown(summaries))
