"""The paper's experiments as commands (`keras-gon experiment NAME`).

- `table1`, `activations`, `origin` (`comparisons`): one table of held-out SSE
  per command, for the given budget.
- `reproduce` (`reproduce`): every claim of the paper at its setting and the
  library's default, as one resumable study (`study`) with a verdict per claim.
"""

from keras_gon.experiments.comparisons import (
    DEFAULT_ACTIVATIONS,
    DEFAULT_ORIGIN_STDDEVS,
    BatchLosses,
    Budget,
    Variant,
    activation_variants,
    markdown_table,
    origin_variants,
    plot_curves,
    run_experiment,
    summarize,
    table1_variants,
    train_variant,
)
from keras_gon.experiments.reproduce import BUDGETS, GROUPS, reproduce, reproduction_specs
from keras_gon.experiments.study import SETTINGS, RunSpec, StudyData, run_study

EXPERIMENTS = ("table1", "activations", "origin", "reproduce")


def add_arguments(parser, positive_int, positive_float) -> None:
    """Arguments of `keras-gon experiment`."""
    from keras_gon.experiments import comparisons

    comparisons.add_arguments(parser, positive_int, positive_float)
    study = parser.add_argument_group("reproduce")
    study.add_argument("--budget", choices=tuple(BUDGETS), default="full",
                       help="reproduce: how long the study trains (tiny: a few steps, for CI)")
    study.add_argument("--report", help="reproduce: also write the report here "
                       "(e.g. benchmarks/REPRODUCTION.md)")
    study.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS),
                       help="reproduce: the parts of the study to run")
    study.add_argument("--report-only", action="store_true",
                       help="reproduce: regenerate the report from stored runs, train nothing")


def main(args) -> dict:
    """`keras-gon experiment NAME`."""
    import time
    from pathlib import Path

    from keras_gon.experiments import comparisons

    if args.name != "reproduce":
        return comparisons.main(args)
    out = args.out or Path("runs") / f"reproduce-{time.strftime('%Y%m%d-%H%M%S')}"
    return reproduce(args.data, out, budget=args.budget, report=args.report,
                     groups=args.groups, report_only=args.report_only)


__all__ = [
    "BUDGETS", "BatchLosses", "Budget", "DEFAULT_ACTIVATIONS", "DEFAULT_ORIGIN_STDDEVS",
    "EXPERIMENTS", "GROUPS", "RunSpec", "SETTINGS", "StudyData", "Variant",
    "activation_variants", "add_arguments", "main", "markdown_table", "origin_variants",
    "plot_curves", "reproduce", "reproduction_specs", "run_experiment", "run_study",
    "summarize", "table1_variants", "train_variant",
]
