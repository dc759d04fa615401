"""Issue 3: the variational GON against the VAE with the same decoder (paper Table 2).

Trains `keras_gon.VariationalGON` and `keras_gon.VAE` with the same budget
(latent 32, width 16, batch 64, Adam 1e-4, Bernoulli likelihood, β = 1) on
../shared/data/mnist10k.npz and reports, per seed:

- held-out bits/dim: the negative ELBO (one z ~ q(z|x) per image) over
  D ln 2, D = 32 x 32 x 1, averaged over the 2,000 held-out images, after
  the last epoch (and after each epoch, from `val_bits_per_dim`);
- the held-out reconstruction and KL terms (nats per image);
- trainable parameter counts;
- training steps per second after compilation (XLA on);

and writes a grid of 64 samples (z ~ N(0, I), seed 0) per model to --out.

Run:  python benchmarks/vgon_vs_vae.py [--epochs 3] [--seeds 0] [--out /tmp/vgon_vs_vae]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import keras_gon
from keras_gon.callbacks import StepTimer
from keras_gon.data import load_dataset
from keras_gon.plotting import save_image_rows

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist10k.npz"
MODELS = {"VariationalGON": keras_gon.VariationalGON, "VAE": keras_gon.VAE}


def run(name: str, seed: int, epochs: int, data: Path, out: Path) -> dict:
    keras.utils.set_random_seed(seed)
    train_ds, test_ds, _ = load_dataset(str(data), image_size=32, batch_size=64, seed=seed)
    model = MODELS[name](image_shape=(32, 32, 1), latent_dim=32, width=16, seed=seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8))
    timer = StepTimer(skip=10)
    history = model.fit(
        train_ds, validation_data=test_ds, epochs=epochs, callbacks=[timer], verbose=0
    )
    held_out = model.evaluate(test_ds, verbose=0, return_dict=True)
    samples = np.asarray(model.sample(64, seed=0))
    save_image_rows(out / f"samples_{name}_seed{seed}.png", [(f"{name} samples", samples)])
    return {
        "model": name,
        "seed": seed,
        "parameters": int(sum(int(np.prod(v.shape)) for v in model.trainable_variables)),
        "held_out_bits_per_dim": float(held_out["bits_per_dim"]),
        "held_out_reconstruction_loss": float(held_out["reconstruction_loss"]),
        "held_out_kl_loss": float(held_out["kl_loss"]),
        "val_bits_per_dim_per_epoch": [float(v) for v in history.history["val_bits_per_dim"]],
        "train_bits_per_dim_last_epoch": float(history.history["bits_per_dim"][-1]),
        "steps_per_second": timer.steps_per_second,
        "seconds": timer.seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path("/tmp/vgon_vs_vae"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    results = [
        run(name, seed, args.epochs, args.data, args.out) for seed in args.seeds for name in MODELS
    ]
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    print(f"{args.epochs} epochs of {args.data.name}, latent 32, width 16, batch 64, Adam 1e-4\n")
    print(
        "| model | parameters | held-out bits/dim | reconstruction (nats) | KL (nats) "
        "| val bits/dim per epoch | steps/s |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in MODELS:
        rows = [r for r in results if r["model"] == name]
        bpd = np.array([r["held_out_bits_per_dim"] for r in rows])
        spread = f" ± {bpd.std():.4f}" if len(rows) > 1 else ""
        per_epoch = np.mean([r["val_bits_per_dim_per_epoch"] for r in rows], axis=0)
        print(
            f"| {name} | {rows[0]['parameters']:,} | {bpd.mean():.4f}{spread} "
            f"| {np.mean([r['held_out_reconstruction_loss'] for r in rows]):.1f} "
            f"| {np.mean([r['held_out_kl_loss'] for r in rows]):.1f} "
            f"| {', '.join(f'{v:.4f}' for v in per_epoch)} "
            f"| {np.mean([r['steps_per_second'] for r in rows]):.1f} |"
        )
    print(f"\nsample grids and results.json in {args.out}")


if __name__ == "__main__":
    main()
