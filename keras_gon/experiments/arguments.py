"""The arguments of `keras-gon experiment` (no TensorFlow import: `--help` stays fast)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXPERIMENT_NAMES = ("table1", "activations", "origin", "reproduce")
DEFAULT_ACTIVATIONS = ("elu", "relu", "leaky_relu", "selu", "gelu", "swish", "softplus", "tanh")
DEFAULT_ORIGIN_STDDEVS = (0.0, 0.01, 0.1, 0.5, 1.0)
STUDY_BUDGETS = ("full", "tiny")
STUDY_GROUPS = (
    "decisive",
    "table1",
    "multistep",
    "activations",
    "origin",
    "diagnostics",
    "widths",
    "latents",
    "spatial",
    "remedies",
)
STUDY_DATASETS = ("mnist", "fashion_mnist", "cifar10", "coil20")


def add_arguments(parser: argparse.ArgumentParser, positive_int, positive_float, seed) -> None:
    """Arguments of `keras-gon experiment NAME`."""
    parser.add_argument(
        "name",
        choices=EXPERIMENT_NAMES,
        help="table1 (paper Table 1), activations (fig. 3), origin (fig. 11), "
        "reproduce (every claim at the paper's setting and ours, one resumable "
        "study with verdicts)",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        help="as for `keras-gon train`, default mnist5k (reproduce: one per "
        "--dataset, required beyond MNIST)",
    )
    parser.add_argument("--out", type=Path, help="output folder (default runs/<name>-<time>)")
    single = parser.add_argument_group("table1, activations, origin")
    single.add_argument("--epochs", type=positive_int, default=3)
    single.add_argument("--steps", type=positive_int, help="train each run for this many steps")
    single.add_argument("--seeds", type=seed, nargs="+", default=[0, 1])
    single.add_argument("--batch-size", type=positive_int, default=64)
    for flags, default, what in (
        (("--latent-dim", "--nz"), 32, "latent sizes"),
        (("--width", "--ngf"), 16, "decoder widths"),
    ):
        single.add_argument(
            *flags,
            type=positive_int,
            nargs="+",
            default=[default],
            help=f"{what} (several make a sweep)",
        )
    single.add_argument(
        "--normalization",
        default="layer",
        help="decoder normalisation: layer (the library's default) or batch "
        "(the paper's), group, none, ...",
    )
    single.add_argument(
        "--activation", default="elu", help="hidden activation of table1 and origin"
    )
    single.add_argument(
        "--inner-batch-reduction",
        choices=("sum", "mean"),
        default="sum",
        help="the GON's inner loss over the batch: sum (per-example latents) "
        "or mean (the authors' code)",
    )
    single.add_argument(
        "--bn-statistics",
        choices=("moving", "batch"),
        default="moving",
        help="how batch norms are evaluated: moving statistics (Keras's "
        "inference, the exported encoder) or each batch's own (the authors' "
        "code never switches BatchNorm to evaluation mode)",
    )
    single.add_argument("--image-size", type=positive_int, default=32)
    single.add_argument("--lr", type=positive_float, default=1e-4)
    single.add_argument(
        "--glo-inference-steps",
        type=positive_int,
        default=100,
        help="gradient steps that fit a GLO latent to a held-out image",
    )
    single.add_argument("--activations", nargs="+", default=list(DEFAULT_ACTIVATIONS))
    single.add_argument(
        "--stddevs",
        type=float,
        nargs="+",
        default=list(DEFAULT_ORIGIN_STDDEVS),
        help="origin standard deviations σ (origin experiment)",
    )
    single.add_argument("--no-jit", action="store_true", help="turn XLA compilation off")
    single.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0)
    study = parser.add_argument_group("reproduce")
    study.add_argument(
        "--budget",
        choices=STUDY_BUDGETS,
        default="full",
        help="how long the study trains (tiny: every code path for a few epochs of tiny models, "
        "minutes on 2 cores; a check of the plumbing whose verdicts mean nothing)",
    )
    study.add_argument(
        "--report", help="also write the report here (e.g. benchmarks/REPRODUCTION.md)"
    )
    study.add_argument(
        "--groups",
        nargs="+",
        choices=STUDY_GROUPS,
        help="the parts of the study to run (default: the dataset's own)",
    )
    study.add_argument(
        "--dataset",
        nargs="+",
        choices=STUDY_DATASETS,
        default=["mnist"],
        help="the datasets of the study (each has its budget and groups); "
        "with several, give one --data each, in the same order; each study is "
        "kept in OUT/<dataset> and its report is REPORT with the dataset's name",
    )
    study.add_argument(
        "--report-only",
        action="store_true",
        help="regenerate the report from stored runs, train nothing",
    )
