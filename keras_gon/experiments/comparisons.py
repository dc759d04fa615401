"""The paper's comparisons as commands: Table 1, activations (fig. 3), origin variance (fig. 11).

Each experiment trains several variants with the same decoder, data and
budget for each seed (and each latent size and width of a sweep), then
writes to `out`:

- `<name>.md`: a Markdown table per (latent size, width) of held-out SSE per
  image (mean ± std over seeds, std with ddof=1), the training-set SSE of the
  same weights, and trainable parameter counts;
- `<name>.png`: training-loss curves (mean over seeds, per step);
- `<name>.json`: every run's numbers, with per-epoch losses of the fixed model
  on training and held-out images (the generalisation gap).

Runs are appended to `<name>.partial.json` as they finish; the same command
run again skips them (a killed experiment continues where it stopped).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_gon.errors import InputError
from keras_gon.experiments.arguments import DEFAULT_ACTIVATIONS, DEFAULT_ORIGIN_STDDEVS  # noqa
from keras_gon.files import write_json, write_text

EXPERIMENTS = ("table1", "activations", "origin")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a table: a label, a registered model kind and its options."""

    label: str
    kind: str = "gon"
    options: tuple = ()

    def recipe(self, budget: Budget, seed: int):
        """The variant's `keras_gon.training.TrainingRecipe` for one run."""
        from keras_gon.registry import get_kind
        from keras_gon.training import TrainingRecipe

        kind = get_kind(self.kind)
        options = dict(
            latent_dim=budget.latent_dim,
            width=budget.width,
            activation=budget.activation,
            normalization=budget.normalization,
        )
        if "origin" in kind.option_groups:
            options["inner_batch_reduction"] = budget.inner_batch_reduction
        if self.kind == "glo":
            options["inference_steps"] = budget.glo_inference_steps
        options.update(dict(self.options))
        shared = ("data", "image_size", "batch_size", "lr", "epochs", "steps", "jit_compile")
        return TrainingRecipe(
            self.kind,
            options=options,
            seed=seed,
            **{name: getattr(budget, name) for name in shared},
        )

    @property
    def indexed(self) -> bool:
        """Trains on (images, indices) pairs (GLO)."""
        return self.kind == "glo"


@dataclasses.dataclass(frozen=True)
class Budget:
    """What every variant gets: data, epochs (or steps), sizes, setting, optimiser.

    `statistics` is how batch norms are evaluated: "moving" (Keras's
    inference) or "batch" (each batch's own, as the authors' code does;
    `keras_gon.layers.inference_statistics`).
    """

    data: str
    epochs: int = 3
    steps: int | None = None
    batch_size: int = 64
    latent_dim: int = 32
    width: int = 16
    image_size: int = 32
    lr: float = 1e-4
    jit_compile: bool | None = None
    glo_inference_steps: int = 100
    activation: str = "elu"
    normalization: str = "layer"
    inner_batch_reduction: str = "sum"
    statistics: str = "moving"


def table1_variants(budget: Budget) -> list[Variant]:
    """Paper Table 1: GON, AE, tied AE, 1-step detach, GLO, 10-step, 10-step detach."""
    return [
        Variant("GON"),
        Variant("AE", "ae"),
        Variant("tied AE", "tied_ae"),
        Variant("1-step detach", options=(("detach", True),)),
        Variant("GLO", "glo"),
        # Last: ten inner steps cost about ten GON steps each.
        Variant("10-step", options=(("num_steps", 10), ("step_size", 0.1))),
        Variant(
            "10-step detach", options=(("num_steps", 10), ("step_size", 0.1), ("detach", True))
        ),
    ]


def activation_variants(budget: Budget, activations: Sequence[str]) -> list[Variant]:
    """Paper fig. 3: the GON with each hidden activation."""
    return [Variant(name, options=(("activation", name),)) for name in activations]


def origin_variants(budget: Budget, stddevs: Sequence[float]) -> list[Variant]:
    """Paper fig. 11 / appendix C: the GON trained from z0 ~ N(0, σ²), variants (a) and (b).

    (a) z = -∇z0 L (the paper's main variant), (b) z = z0 - ∇z0 L; the
    same when σ = 0, which is run once.
    """
    variants = []
    for stddev in stddevs:
        for add_origin in (True,) if stddev == 0 else (False, True):
            name = "" if stddev == 0 else (" (b)" if add_origin else " (a)")
            variants.append(
                Variant(
                    f"σ = {stddev:g}{name}",
                    options=(("origin_stddev", float(stddev)), ("add_origin", add_origin)),
                )
            )
    return variants


def train_variant(variant: Variant, budget: Budget, seed: int, verbose: int = 0) -> dict:
    """Trains one variant for one seed (`keras_gon.training.train`): held-out and training
    SSE, parameters, curves, seconds."""
    from keras_gon.callbacks import BatchLosses, EpochEvaluation
    from keras_gon.errors import NonFiniteLossError
    from keras_gon.layers.batch_normalization import inference_statistics
    from keras_gon.training import count_parameters, train

    recipe = variant.recipe(budget, seed)
    data = recipe.load_data()
    ordered = data[0] if variant.indexed else recipe.load_data(shuffle=False)[0]
    model = recipe.build(data[2])
    curve = BatchLosses()
    callbacks = [curve]
    epochs = None
    if not variant.indexed:  # GLO fits held-out latents by gradient descent: once, at the end
        epochs = EpochEvaluation(ordered, data[1], budget.statistics)
        callbacks.append(epochs)
    start = time.perf_counter()
    try:
        train(
            recipe,
            model=model,
            data=data,
            callbacks=callbacks,
            validate=False,
            evaluate=False,
            verbose=verbose,
        )
    except NonFiniteLossError:
        return {
            "label": variant.label,
            "seed": seed,
            "held_out_sse": float("nan"),
            "train_sse": float("nan"),
            "parameters": count_parameters(model),
            "train_losses": curve.losses,
            "epochs": [],
            "seconds": 0.0,
        }
    seconds = time.perf_counter() - start
    if epochs is not None:
        last = epochs.history[-1]
        held_out, train_sse = last["held_out_loss"], last["train_eval_loss"]
    else:
        with inference_statistics(model, budget.statistics):
            held_out = float(model.evaluate(data[1], verbose=0, return_dict=True)["loss"])
        train_sse = float("nan")
    return {
        "label": variant.label,
        "seed": seed,
        "held_out_sse": float(held_out),
        "train_sse": float(train_sse),
        "parameters": count_parameters(model),
        "train_losses": curve.losses,
        "epochs": epochs.history if epochs is not None else [],
        "seconds": seconds,
    }


def summarize(runs: list[dict], labels: Sequence[str]) -> list[dict]:
    """Per-label mean and std (ddof=1) of held-out SSE over seeds (and the training SSE's mean)."""
    rows = []
    for label in labels:
        chosen = [r for r in runs if r["label"] == label]
        values = np.array([r["held_out_sse"] for r in chosen], "float64")
        train = np.array([r.get("train_sse", np.nan) for r in chosen], "float64")
        rows.append(
            {
                "label": label,
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "train_mean": float(train.mean()) if len(train) else float("nan"),
                "seeds": int(len(values)),
                "parameters": int(chosen[0]["parameters"]),
            }
        )
    return rows


def markdown_table(rows: list[dict], title: str, budget: Budget) -> str:
    """The Markdown table of `summarize` rows."""
    run = f"{budget.steps} steps" if budget.steps else f"{budget.epochs} epochs"
    lines = [
        f"### {title}",
        "",
        f"Held-out SSE per image on `{budget.data}` ({run}, batch {budget.batch_size}, "
        f"latent {budget.latent_dim}, width {budget.width}, {budget.normalization} norm, "
        f"{budget.activation}, inner loss {budget.inner_batch_reduction} over the batch, "
        f"batch norm evaluated with {budget.statistics} statistics, Adam {budget.lr:g}; "
        f"mean ± std over {rows[0]['seeds']} seed(s)). Training SSE: the same weights on the "
        "training images.",
        "",
        "| model | held-out SSE | training SSE | parameters |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        train = row.get("train_mean", float("nan"))
        train_text = "—" if not np.isfinite(train) else f"{train:.2f}"
        lines.append(
            f"| {row['label']} | {row['mean']:.2f} ± {row['std']:.2f} | {train_text} | "
            f"{row['parameters']:,} |"
        )
    return "\n".join(lines) + "\n"


def plot_curves(path: Path, runs: list[dict], labels: Sequence[str], title: str) -> None:
    """Training loss per step (mean over seeds, smoothed) for each label, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for label in labels:
        curves = [r["train_losses"] for r in runs if r["label"] == label]
        length = min((len(c) for c in curves), default=0)
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


def run_experiment(
    name: str,
    variants: list[Variant],
    budget: Budget,
    seeds: Sequence[int],
    out: Path,
    title: str,
    verbose: int = 0,
    sweep: Sequence[tuple[int, int]] | None = None,
) -> dict:
    """Trains every variant for every seed (and sweep cell) and writes `<name>.md/.png/.json`.

    `sweep` lists `(latent_dim, width)` cells (default: the budget's own).
    Finished runs are kept in `<name>.partial.json` and not run again.
    """
    if not seeds:
        raise InputError("give at least one seed")
    out.mkdir(parents=True, exist_ok=True)
    sweep = list(sweep or [(budget.latent_dim, budget.width)])
    partial = out / f"{name}.partial.json"
    runs = json.loads(partial.read_text())["runs"] if partial.is_file() else []
    done = {(r["label"], r["seed"], r.get("latent_dim"), r.get("width")) for r in runs}
    for latent_dim, width in sweep:
        cell = dataclasses.replace(budget, latent_dim=latent_dim, width=width)
        for variant in variants:
            for seed in seeds:
                if (variant.label, seed, latent_dim, width) in done:
                    continue
                run = train_variant(variant, cell, seed, verbose=verbose)
                run.update(latent_dim=latent_dim, width=width)
                if not np.isfinite(run["held_out_sse"]):
                    print(f"{variant.label} (seed {seed}): the loss became non-finite")
                else:
                    print(
                        f"{variant.label} (latent {latent_dim}, width {width}, seed {seed}): "
                        f"held-out SSE {run['held_out_sse']:.2f} ({run['seconds']:.0f} s)",
                        flush=True,
                    )
                runs.append(run)
                write_json(partial, {"runs": runs})  # partial results survive a kill
    labels = [v.label for v in variants]
    tables, cells = [], []
    for latent_dim, width in sweep:
        cell_runs = [
            r for r in runs if (r.get("latent_dim"), r.get("width")) == (latent_dim, width)
        ]
        rows = summarize(cell_runs, labels)
        cell = dataclasses.replace(budget, latent_dim=latent_dim, width=width)
        tables.append(markdown_table(rows, title, cell))
        cells.append({"latent_dim": latent_dim, "width": width, "rows": rows})
    table = "\n".join(tables)
    write_text(out / f"{name}.md", table)
    plot_curves(out / f"{name}.png", runs, labels, title)
    payload = {
        "experiment": name,
        "budget": dataclasses.asdict(budget),
        "seeds": list(seeds),
        "sweep": [list(c) for c in sweep],
        "cells": cells,
        "rows": cells[0]["rows"],
        "runs": runs,
    }
    write_json(out / f"{name}.json", payload)
    partial.unlink(missing_ok=True)
    print(table)
    return payload


def main(args) -> dict:
    """`keras-gon experiment table1|activations|origin`."""
    import keras

    budget = Budget(
        data=args.data,
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        latent_dim=args.latent_dim[0],
        width=args.width[0],
        image_size=args.image_size,
        lr=args.lr,
        jit_compile=False if args.no_jit else None,
        glo_inference_steps=args.glo_inference_steps,
        activation=args.activation,
        normalization=args.normalization,
        inner_batch_reduction=args.inner_batch_reduction,
        statistics=args.bn_statistics,
    )
    if args.name == "table1":
        variants, title = table1_variants(budget), "Table 1: GON and baselines"
    elif args.name == "activations":
        for activation in args.activations:
            try:
                keras.activations.get(activation)
            except ValueError:
                raise InputError(f"unknown activation {activation!r}") from None
        variants, title = activation_variants(budget, args.activations), "GON activations (fig. 3)"
    else:
        if any(not np.isfinite(s) or s < 0 for s in args.stddevs):
            raise InputError(f"origin standard deviations must be >= 0, got {args.stddevs}")
        variants, title = (
            origin_variants(budget, args.stddevs),
            "GON origin z0 ~ N(0, σ²) (fig. 11)",
        )
    out = args.out or Path("runs") / f"{args.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    sweep = [(z, w) for z in args.latent_dim for w in args.width]
    return run_experiment(
        args.name, variants, budget, args.seeds, out, title, args.verbose, sweep=sweep
    )
