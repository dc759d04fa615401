"""Issue 10: which normalisation should the GON decoder use at the origin?

For each candidate, trains a GON (latent 32, width 16, batch 64, Adam 1e-4)
for one epoch of ../shared/data/mnist10k.npz and reports, over several seeds:

- held-out SSE per image with encoding and decoding in inference mode (the
  way an exported / served model is used);
- the batch-1 vs batch-64 latent difference (max |z_1 - z_64| / max |z_64|)
  for 8 held-out images, at inference and in training mode;
- training steps per second after compilation (XLA on).

Run:  python benchmarks/normalization_study.py [--seeds 0 1] [--epochs 1]
Writes a Markdown table to stdout (and to --out if given).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

import keras_gon
from keras_gon.callbacks import StepTimer
from keras_gon.data import load_dataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist10k.npz"

CANDIDATES = {
    "batch (paper BN, both passes; authors' batch-mean inner loss)": dict(
        normalization="batch", inner_batch_reduction="mean"
    ),
    "batch (paper BN, both passes)": dict(normalization="batch"),
    "keras_batch (stock Keras BN, both passes)": dict(normalization="keras_batch"),
    "batch_outer (moving stats from outer pass only)": dict(normalization="batch_outer"),
    "batch_frozen_origin (inner pass uses moving stats)": dict(normalization="batch_frozen_origin"),
    "group (GroupNorm, 8 groups)": dict(normalization="group"),
    "layer (LayerNorm)": dict(normalization="layer"),
    "none": dict(normalization="none"),
}


def batch_difference(latents_alone: np.ndarray, latents_batch: np.ndarray) -> float:
    return float(np.abs(latents_alone - latents_batch).max() / np.abs(latents_batch).max())


def run(options: dict, seed: int, epochs: int, train, test, x_probe) -> dict:
    keras.utils.set_random_seed(seed)
    model = keras_gon.GON(image_shape=(32, 32, 1), latent_dim=32, width=16, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8), jit_compile=True)
    timer = StepTimer()
    model.fit(train, epochs=epochs, verbose=0, callbacks=[timer])
    held_out = model.evaluate(test, verbose=0, return_dict=True)["loss"]
    alone = np.concatenate([model.encode(x_probe[i : i + 1]).numpy() for i in range(8)])
    in_batch = model.encode(x_probe).numpy()[:8]
    train_alone = np.concatenate(
        [
            model.origin_latents(tf.constant(x_probe[i : i + 1]), training=True)[0].numpy()
            for i in range(8)
        ]
    )
    train_batch = model.origin_latents(tf.constant(x_probe), training=True)[0].numpy()[:8]
    return {
        "sse": held_out,
        "diff_inference": batch_difference(alone, in_batch),
        "diff_training": batch_difference(train_alone, train_batch),
        "steps_per_second": timer.steps_per_second,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    train, test, _ = load_dataset(str(DATA), image_size=32, batch_size=64, seed=0)
    x_probe = next(iter(test.unbatch().batch(64))).numpy()
    rows = [
        f"| candidate | held-out SSE at inference (mean ± std over seeds {args.seeds}) "
        "| batch-1 vs batch-64 latent diff, inference | same, training mode | steps/s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, options in CANDIDATES.items():
        results = [run(options, seed, args.epochs, train, test, x_probe) for seed in args.seeds]
        sse = np.array([r["sse"] for r in results])
        rows.append(
            f"| {label} | {sse.mean():.1f} ± {sse.std():.1f} "
            f"| {max(r['diff_inference'] for r in results):.1e} "
            f"| {max(r['diff_training'] for r in results):.1e} "
            f"| {np.mean([r['steps_per_second'] for r in results]):.1f} |"
        )
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print("\n" + table)
    if args.out:
        args.out.write_text(table + "\n")


if __name__ == "__main__":
    main()
