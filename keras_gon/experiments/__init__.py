"""The paper's experiments as commands (`keras-gon experiment NAME`).

- `table1`, `activations`, `origin` (`comparisons`): one table of held-out SSE
  per command, for the given budget and setting (sweeps over latent size and width).
- `reproduce` (`reproduce`): every claim of the paper at its setting and the
  library's default, as one resumable study (`study`) with a verdict per claim.

The submodules import TensorFlow; this package does not, until used.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "comparisons": (
        "Budget",
        "Variant",
        "activation_variants",
        "markdown_table",
        "origin_variants",
        "plot_curves",
        "run_experiment",
        "summarize",
        "table1_variants",
        "train_variant",
        "EXPERIMENTS",
        "DEFAULT_ACTIVATIONS",
        "DEFAULT_ORIGIN_STDDEVS",
    ),
    "reproduce": ("BUDGETS", "GROUPS", "reproduce", "reproduction_specs"),
    "study": ("SETTINGS", "RunSpec", "StudyData", "run_study"),
}


def __getattr__(name):
    for module, names in _EXPORTS.items():
        if name in names:
            return getattr(importlib.import_module(f"keras_gon.experiments.{module}"), name)
    raise AttributeError(f"module 'keras_gon.experiments' has no attribute {name!r}")


def main(args) -> dict:
    """`keras-gon experiment NAME`."""
    import time
    from pathlib import Path

    from keras_gon.errors import InputError

    if args.name != "reproduce":
        from keras_gon.experiments.comparisons import main as compare

        if args.data is not None and len(args.data) != 1:
            raise InputError(f"--data takes one source for `experiment {args.name}`")
        args.data = "mnist5k" if args.data is None else args.data[0]
        return compare(args)
    from keras_gon.experiments.plan import get_dataset_plan
    from keras_gon.experiments.reproduce import reproduce

    datasets = list(dict.fromkeys(args.dataset))
    if args.data is None:
        if datasets != ["mnist"]:
            wanted = ", ".join(f"{name} ({get_dataset_plan(name).data})" for name in datasets)
            raise InputError(f"give --data for each --dataset, in order: {wanted}")
        args.data = ["mnist5k"]
    if len(args.data) != len(datasets):
        raise InputError(
            f"{len(datasets)} --dataset but {len(args.data)} --data: give one "
            "source per dataset, in the same order"
        )
    out = args.out or Path("runs") / f"reproduce-{time.strftime('%Y%m%d-%H%M%S')}"
    results = {}
    for dataset, data in zip(datasets, args.data):
        folder, report = out, args.report
        if len(datasets) > 1:  # one study folder and one report per dataset
            folder = out / dataset
            report = report and Path(report).with_name(
                f"{Path(report).stem}_{dataset}{Path(report).suffix}"
            )
        results[dataset] = reproduce(
            data,
            folder,
            budget=args.budget,
            report=report,
            groups=args.groups,
            report_only=args.report_only,
            dataset=dataset,
        )
    if len(datasets) > 1 and args.report:
        from keras_gon.experiments.report import write_summary

        report = Path(args.report)
        write_summary(
            report.with_name(f"{report.stem}_summary{report.suffix}"),
            {d: (out / d, data) for d, data in zip(datasets, args.data)},
            budget=args.budget,
        )
    return results if len(datasets) > 1 else results[datasets[0]]


__all__ = ["main", *[name for names in _EXPORTS.values() for name in names]]
