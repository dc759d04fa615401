"""Why a variational preset's N(0, I) samples are not faces, and what its fitted prior does (issue 28).

Encodes held-out images with a variational GON preset, measures its posterior means μ
(per-dimension spread, the eigenvalues of their covariance, the KL per dimension) and
decodes, side by side: the data, F(μ), μ with each dimension shuffled across images (the
marginals kept, the correlations dropped), z from a Gaussian with μ's full covariance, and
z ~ N(0, I) (the paper's sampling, `sample(n, prior="standard")`). Then, for 64 samples
(seed 0) from the preset's own prior (`sample(n)`: the fitted one where it has it) and from
N(0, I): the mean over samples of the MSE to the nearest of `--reference` held-out images,
and the samples' per-pixel spread. Prints the figures, writes the picture and (`--json`)
adds the figures to a JSON file under the preset's name.

    PYTHONPATH=. python benchmarks/vgon_prior_fit.py vgon_celeba64 \
        --images ../shared/data/celeba-folder --out benchmarks/presets/vgon_celeba64_prior.png \
        --json benchmarks/presets/vgon_prior_fit.json

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="a variational preset name or folder")
    parser.add_argument("--images", required=True, help="a folder of images (held-out split)")
    parser.add_argument("--count", type=int, default=256, help="images encoded")
    parser.add_argument("--out", required=True, help="the picture (PNG)")
    parser.add_argument("--reference", type=int, default=1000, help="held-out images to compare")
    parser.add_argument("--json", help="a JSON file to add the figures to")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import tensorflow as tf

    from keras_gon.data import load_image_folder
    from keras_gon.presets import load_preset

    model = load_preset(args.preset)
    size = model.image_shape[0]
    _, test, _ = load_image_folder(
        args.images, image_size=size, channels=model.image_shape[-1], verbose=False
    )
    held_out = np.concatenate([np.asarray(batch) for batch in test], 0)
    held_out = held_out.astype("float32") / (255.0 if held_out.dtype == np.uint8 else 1.0)
    images = held_out[: args.count]
    means, log_variances = [], []
    for start in range(0, len(images), 64):
        mean, log_variance = model.posterior(tf.constant(images[start : start + 64]))
        means.append(mean.numpy())
        log_variances.append(log_variance.numpy())
    mean, log_variance = np.concatenate(means), np.concatenate(log_variances)
    covariance = np.cov(mean.T)
    eigenvalues = np.linalg.eigvalsh(covariance)[::-1]
    kl = 0.5 * (mean**2 + np.exp(log_variance) - 1.0 - log_variance)
    print(f"{args.preset}: {len(mean)} held-out images, latent {mean.shape[1]}")
    print(f"  posterior mean: per-dimension std {mean.std(0).mean():.3f} (mean over dims)")
    print(f"  posterior std: {np.exp(0.5 * log_variance).mean():.3f} (mean)")
    print(f"  KL: {kl.sum(1).mean():.1f} nats per image")
    print(f"  eigenvalues of cov(mu): top 5 {np.round(eigenvalues[:5], 2).tolist()},")
    print(
        f"    {int((eigenvalues < 0.1).sum())} of {len(eigenvalues)} below 0.1 "
        f"(N(0, I) puts 1 on every direction); participation ratio "
        f"{eigenvalues.sum() ** 2 / (eigenvalues**2).sum():.1f}"
    )
    rng = np.random.default_rng(0)
    n = 16

    def decode(z):
        outputs = model.decoder(tf.constant(z, tf.float32), training=False)
        return np.clip(model.output_images(outputs).numpy(), 0, 1)

    shuffled = np.stack([rng.permutation(mean[:, j]) for j in range(mean.shape[1])], 1)
    cholesky = np.linalg.cholesky(covariance + 1e-4 * np.eye(len(covariance)))
    gaussian = mean.mean(0) + rng.standard_normal((n, mean.shape[1])) @ cholesky.T
    rows = {
        "data": images[:n],
        "F(mu)": decode(mean[:n]),
        "mu, dimensions shuffled": decode(shuffled[:n]),
        "z ~ N(mean, cov) of mu": decode(gaussian),
        "z ~ N(0, I)": decode(rng.standard_normal((n, mean.shape[1]))),
    }
    figure, axes = plt.subplots(len(rows), n, figsize=(n, len(rows) * 1.15))
    for r, (title, row) in enumerate(rows.items()):
        for c in range(n):
            axes[r, c].imshow(row[c].squeeze(), cmap="gray")
            axes[r, c].axis("off")
        axes[r, 0].set_title(title, fontsize=9, loc="left")
    figure.savefig(args.out, dpi=70, bbox_inches="tight")
    print(f"wrote {args.out}")

    reference = held_out[: args.reference].reshape(min(args.reference, len(held_out)), -1)
    reference = reference.astype("float64")

    def nearest_mse(samples):
        flat = samples.reshape(len(samples), -1).astype("float64")
        squared = (flat**2).sum(1)[:, None] + (reference**2).sum(1)[None] - 2 * flat @ reference.T
        return float(squared.min(1).mean() / flat.shape[1])

    figures = {"reference_images": len(reference), "samples": 64, "seed": 0}
    for name, prior in (("own prior", None), ("N(0, I)", "standard")):
        samples = model.sample(64, seed=0, **({"prior": prior} if prior else {})).numpy()
        figures[name] = {
            "nearest_held_out_mse": nearest_mse(samples),
            "per_pixel_std": float(samples.std(0).mean()),
        }
        print(
            f"  samples from {name}: nearest held-out MSE {figures[name]['nearest_held_out_mse']:.4f}"
            f", per-pixel std {figures[name]['per_pixel_std']:.3f}"
        )
    figures["own prior"]["prior"] = getattr(model, "prior", "standard")
    if args.json:
        path = Path(args.json)
        stored = json.loads(path.read_text()) if path.is_file() else {}
        stored[args.preset] = figures
        path.write_text(json.dumps(stored, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
