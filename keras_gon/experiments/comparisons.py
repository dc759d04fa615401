"""The paper's comparisons as commands: Table 1, activations (fig. 11), origin variance (fig. 3).

Each experiment trains several variants with the same decoder, data and
budget for each seed, then writes to `out`:

- `<name>.md`: a Markdown table of held-out SSE per image (mean ± std over
  seeds, std with ddof=1) and trainable parameter counts;
- `<name>.png`: training-loss curves (mean over seeds, per step);
- `<name>.json`: every run's numbers.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np

from keras_gon.errors import InputError

EXPERIMENTS = ("table1", "activations", "origin")
DEFAULT_ACTIVATIONS = ("elu", "relu", "leaky_relu", "selu", "gelu", "swish", "softplus", "tanh")
DEFAULT_ORIGIN_STDDEVS = (0.0, 0.01, 0.1, 0.5, 1.0)


@dataclass(frozen=True)
class Variant:
    """One row of a table: a label and a builder `(image_shape, num_train, seed) -> model`."""

    label: str
    build: Callable
    indexed: bool = False  # trains on (images, indices) pairs (GLO)


@dataclass(frozen=True)
class Budget:
    """What every variant gets: data, epochs (or steps), sizes, optimiser."""

    data: str
    epochs: int = 3
    steps: int | None = None
    batch_size: int = 64
    latent_dim: int = 32
    width: int = 16
    image_size: int = 32
    lr: float = 1e-4
    jit_compile: bool = True
    glo_inference_steps: int = 100


def _decoder_options(budget: Budget, **overrides) -> dict:
    options = dict(latent_dim=budget.latent_dim, width=budget.width)
    options.update(overrides)
    return options


def table1_variants(budget: Budget) -> list[Variant]:
    """Paper Table 1: GON, AE, tied AE, 1-step detach, 10-step, 10-step detach, GLO."""
    import keras_gon

    def gon(**options):
        return lambda shape, num_train, seed: keras_gon.GON(
            image_shape=shape, seed=seed, **_decoder_options(budget, **options)
        )

    return [
        Variant("GON", gon()),
        Variant("AE", lambda shape, n, seed: keras_gon.ConvAutoencoder(
            image_shape=shape, seed=seed, **_decoder_options(budget))),
        Variant("tied AE", lambda shape, n, seed: keras_gon.TiedAutoencoder(
            image_shape=shape, seed=seed, **_decoder_options(budget))),
        Variant("1-step detach", gon(detach=True)),
        Variant("GLO", lambda shape, n, seed: keras_gon.GLO(
            image_shape=shape, num_examples=n, seed=seed,
            inference_steps=budget.glo_inference_steps, **_decoder_options(budget)),
            indexed=True),
        # Last: ten inner steps cost about ten GON steps each.
        Variant("10-step", gon(num_steps=10, step_size=0.1)),
        Variant("10-step detach", gon(num_steps=10, step_size=0.1, detach=True)),
    ]


def activation_variants(budget: Budget, activations: Sequence[str]) -> list[Variant]:
    """Paper fig. 11: the GON with each hidden activation."""
    import keras_gon

    return [
        Variant(name, lambda shape, n, seed, name=name: keras_gon.GON(
            image_shape=shape, seed=seed, **_decoder_options(budget, activation=name)))
        for name in activations
    ]


def origin_variants(budget: Budget, stddevs: Sequence[float]) -> list[Variant]:
    """Paper fig. 3 / appendix C: the GON trained from z0 ~ N(0, σ²)."""
    import keras_gon

    return [
        Variant(f"σ = {stddev:g}", lambda shape, n, seed, stddev=stddev: keras_gon.GON(
            image_shape=shape, seed=seed, **_decoder_options(budget, origin_stddev=stddev)))
        for stddev in stddevs
    ]


class BatchLosses(keras.callbacks.Callback):
    """Collects each training step's own loss from Keras's running epoch mean."""

    def __init__(self):
        super().__init__()
        self.losses = []
        self._previous = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        # A running mean over equal batches: batch k's value is k*m_k - (k-1)*m_{k-1}.
        self.losses.append((batch + 1) * mean - batch * self._previous)
        self._previous = mean


def _parameters(model) -> int:
    count = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    if hasattr(model, "latent_table"):  # GLO's latents are trained too (by their own SGD)
        count += int(np.prod(model.latent_table.shape))
    return count


def train_variant(variant: Variant, budget: Budget, seed: int, verbose: int = 0) -> dict:
    """Trains one variant for one seed; returns held-out SSE, parameters, loss curve, seconds."""
    from keras_gon.data import load_dataset
    from keras_gon.data.pairs import with_example_indices

    keras.utils.set_random_seed(seed)
    train_ds, test_ds, info = load_dataset(
        budget.data, image_size=budget.image_size, batch_size=budget.batch_size, seed=seed,
        shuffle_train=not variant.indexed,
    )
    if variant.indexed:
        train_ds = with_example_indices(train_ds, budget.batch_size, seed=seed)
    model = variant.build(info.image_shape, info.num_train, seed)
    model.compile(optimizer=keras.optimizers.Adam(budget.lr, epsilon=1e-8),
                  jit_compile=budget.jit_compile)
    curve = BatchLosses()
    start = time.perf_counter()
    if budget.steps:
        model.fit(train_ds.repeat(), epochs=1, steps_per_epoch=budget.steps,
                  callbacks=[curve], verbose=verbose)
    else:
        model.fit(train_ds, epochs=budget.epochs, callbacks=[curve], verbose=verbose)
    seconds = time.perf_counter() - start
    held_out = float(model.evaluate(test_ds, verbose=0, return_dict=True)["loss"])
    return {
        "label": variant.label,
        "seed": seed,
        "held_out_sse": held_out,
        "parameters": _parameters(model),
        "train_losses": curve.losses,
        "seconds": seconds,
    }


def summarize(runs: list[dict], labels: Sequence[str]) -> list[dict]:
    """Per-label mean and std (ddof=1) of held-out SSE over seeds."""
    rows = []
    for label in labels:
        values = np.array([r["held_out_sse"] for r in runs if r["label"] == label], "float64")
        parameters = [r["parameters"] for r in runs if r["label"] == label]
        rows.append({
            "label": label,
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "seeds": int(len(values)),
            "parameters": int(parameters[0]),
        })
    return rows


def markdown_table(rows: list[dict], title: str, budget: Budget) -> str:
    """The Markdown table of `summarize` rows."""
    run = f"{budget.steps} steps" if budget.steps else f"{budget.epochs} epochs"
    lines = [
        f"### {title}",
        "",
        f"Held-out SSE per image on `{budget.data}` ({run}, batch {budget.batch_size}, "
        f"latent {budget.latent_dim}, width {budget.width}, Adam {budget.lr:g}; "
        f"mean ± std over {rows[0]['seeds']} seed(s)).",
        "",
        "| model | held-out SSE | parameters |",
        "|---|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['label']} | {row['mean']:.2f} ± {row['std']:.2f} | {row['parameters']:,} |")
    return "\n".join(lines) + "\n"


def plot_curves(path: Path, runs: list[dict], labels: Sequence[str], title: str) -> None:
    """Training loss per step (mean over seeds, smoothed) for each label, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label in labels:
        curves = [r["train_losses"] for r in runs if r["label"] == label]
        length = min(len(c) for c in curves)
        if length == 0:
            continue
        mean = np.mean([c[:length] for c in curves], axis=0)
        window = max(1, min(25, length // 10))
        smooth = np.convolve(mean, np.ones(window) / window, mode="valid")
        axis.plot(np.arange(len(smooth)) + window, smooth, label=label)
    axis.set_yscale("log")
    axis.set_xlabel("training step")
    axis.set_ylabel("training SSE per image")
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run_experiment(name: str, variants: list[Variant], budget: Budget, seeds: Sequence[int],
                   out: Path, title: str, verbose: int = 0) -> dict:
    """Trains every variant for every seed and writes `<name>.md`, `.png`, `.json` to `out`."""
    if not seeds:
        raise InputError("give at least one seed")
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for variant in variants:
        for seed in seeds:
            run = train_variant(variant, budget, seed, verbose=verbose)
            if not np.isfinite(run["held_out_sse"]):
                print(f"{variant.label} (seed {seed}): the loss became non-finite")
            else:
                print(f"{variant.label} (seed {seed}): held-out SSE {run['held_out_sse']:.2f} "
                      f"({run['seconds']:.0f} s)", flush=True)
            runs.append(run)
            # Partial results survive an interrupted run.
            (out / f"{name}.partial.json").write_text(json.dumps({"runs": runs}) + "\n")
    labels = [v.label for v in variants]
    rows = summarize(runs, labels)
    table = markdown_table(rows, title, budget)
    (out / f"{name}.md").write_text(table)
    plot_curves(out / f"{name}.png", runs, labels, title)
    payload = {"experiment": name, "budget": budget.__dict__, "seeds": list(seeds),
               "rows": rows, "runs": runs}
    (out / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / f"{name}.partial.json").unlink(missing_ok=True)
    print(table)
    return payload


def add_arguments(parser: argparse.ArgumentParser, positive_int, positive_float) -> None:
    """Arguments of `keras-gon experiment`."""
    parser.add_argument("name", choices=EXPERIMENTS + ("reproduce",),
                        help="table1 (paper Table 1), activations (fig. 3), origin (fig. 11), "
                        "reproduce (every claim, one resumable study)")
    parser.add_argument("--data", default="mnist5k", help="as for `keras-gon train`")
    parser.add_argument("--epochs", type=positive_int, default=3)
    parser.add_argument("--steps", type=positive_int, help="train each run for this many steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--out", type=Path, help="output folder (default runs/<name>-<time>)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--latent-dim", "--nz", type=positive_int, default=32)
    parser.add_argument("--width", "--ngf", type=positive_int, default=16)
    parser.add_argument("--image-size", type=positive_int, default=32)
    parser.add_argument("--lr", type=positive_float, default=1e-4)
    parser.add_argument("--glo-inference-steps", type=positive_int, default=100,
                        help="gradient steps that fit a GLO latent to a held-out image")
    parser.add_argument("--activations", nargs="+", default=list(DEFAULT_ACTIVATIONS))
    parser.add_argument("--stddevs", type=float, nargs="+", default=list(DEFAULT_ORIGIN_STDDEVS),
                        help="origin standard deviations σ (origin experiment)")
    parser.add_argument("--no-jit", action="store_true", help="turn XLA compilation off")
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0)


def main(args) -> dict:
    """`keras-gon experiment NAME`."""
    budget = Budget(
        data=args.data, epochs=args.epochs, steps=args.steps, batch_size=args.batch_size,
        latent_dim=args.latent_dim, width=args.width, image_size=args.image_size, lr=args.lr,
        jit_compile=not args.no_jit, glo_inference_steps=args.glo_inference_steps,
    )
    if args.name == "table1":
        variants, title = table1_variants(budget), "Table 1: GON and baselines"
    elif args.name == "activations":
        for activation in args.activations:
            try:
                keras.activations.get(activation)
            except ValueError:
                raise InputError(f"unknown activation {activation!r}") from None
        variants, title = activation_variants(budget, args.activations), "GON activations (fig. 11)"
    else:
        if any(not np.isfinite(s) or s < 0 for s in args.stddevs):
            raise InputError(f"origin standard deviations must be >= 0, got {args.stddevs}")
        variants, title = origin_variants(budget, args.stddevs), "GON origin z0 ~ N(0, σ²) (fig. 3)"
    out = args.out or Path("runs") / f"{args.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    return run_experiment(args.name, variants, budget, args.seeds, out, title, args.verbose)
