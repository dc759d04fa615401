"""Variational GON against the VAE at one learning rate (issue 16's diagnosis).

Trains `keras_gon.VariationalGON` and `keras_gon.VAE` (latent 32, width 16,
LayerNorm decoder, discretised-logistic likelihood: the library's defaults)
exactly as `keras-gon presets build` trains `vgon_mnist` (seed 0, batch 64,
Adam(lr, epsilon=1e-8), the training images of the data), then reports on the
test images: bits/dim, its reconstruction and KL terms (nats per image), how far
the aggregate posterior is from the prior (the mean over images of μ, per latent
dimension), and the mean pixel of 256 prior samples (data: about 0.15).
One JSON line per model is appended to `--out` as it finishes (resumable).

    python benchmarks/vgon_vae_learning_rate.py --data ../shared/data/mnist22k.npz \
        --lr 1e-3 --epochs 30 --out benchmarks/experiments/vgon_vae_learning_rate.jsonl
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def run(kind: str, data: str, lr: float, epochs: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_gon
    from keras_gon.data import load_dataset

    keras.utils.set_random_seed(0)
    train, _, info = load_dataset(data, image_size=32, batch_size=64, seed=0)
    _, test, _ = load_dataset(data, image_size=32, batch_size=500)
    model_class = {"vgon": keras_gon.VariationalGON, "vae": keras_gon.VAE}[kind]
    model = model_class(latent_dim=32, width=16, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(lr, epsilon=1e-8))
    start = time.perf_counter()
    model.fit(train, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    model.compile(optimizer="adam", jit_compile=False)
    results = model.evaluate(test, verbose=0, return_dict=True)
    means = []
    for images in test.take(4):
        latents = model.encode_latents(images)
        if kind == "vgon":
            latents = model.decode_with_posterior(latents, training=False)[1]
        means.append(np.asarray(latents))
    means = np.concatenate(means)
    samples = model.sample(256, seed=0).numpy()
    return {
        "kind": kind,
        "lr": lr,
        "epochs": epochs,
        "data": Path(data).name,
        "bits_per_dim": float(results["bits_per_dim"]),
        "reconstruction_nats": float(results["reconstruction_loss"]),
        "kl_nats": float(results["kl_loss"]),
        "posterior_mean_offset_rms": float(np.sqrt((means.mean(0) ** 2).mean())),
        "posterior_mean_offset_max": float(np.abs(means.mean(0)).max()),
        "prior_sample_mean_pixel": float(samples.mean()),
        "train_seconds": round(seconds, 1),
        "tensorflow": tf.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/mnist22k.npz")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--kinds", nargs="+", default=["vae", "vgon"])
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/experiments/vgon_vae_learning_rate.jsonl")
    )
    args = parser.parse_args()
    done = set()
    if args.out.is_file():
        for line in args.out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["kind"], row["lr"], row["epochs"]))
    for kind in args.kinds:
        if (kind, args.lr, args.epochs) in done:
            continue
        row = run(kind, args.data, args.lr, args.epochs)
        print(json.dumps(row), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a") as out:  # one whole line per finished model
            out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
