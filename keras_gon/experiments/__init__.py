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
    "comparisons": ("Budget", "Variant", "activation_variants", "markdown_table",
                    "origin_variants", "plot_curves", "run_experiment", "summarize",
                    "table1_variants", "train_variant", "EXPERIMENTS", "DEFAULT_ACTIVATIONS",
                    "DEFAULT_ORIGIN_STDDEVS"),
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

    if args.name != "reproduce":
        from keras_gon.experiments.comparisons import main as compare

        return compare(args)
    from keras_gon.experiments.reproduce import reproduce

    out = args.out or Path("runs") / f"reproduce-{time.strftime('%Y%m%d-%H%M%S')}"
    return reproduce(args.data, out, budget=args.budget, report=args.report,
                     groups=args.groups, report_only=args.report_only)


__all__ = ["main", *[name for names in _EXPORTS.values() for name in names]]
