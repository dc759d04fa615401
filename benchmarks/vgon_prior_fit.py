"""Why a variational preset's N(0, I) samples are not faces (issue 28).

Encodes held-out images with a variational GON preset, measures its posterior means μ
(per-dimension spread, the eigenvalues of their covariance, the KL per dimension) and
decodes, side by side: the data, F(μ), μ with each dimension shuffled across images (the
marginals kept, the correlations dropped), z from a Gaussian with μ's full covariance, and
z ~ N(0, I) (the paper's sampling, `VariationalGON.sample`). Prints the figures and writes
the picture.

    PYTHONPATH=. python benchmarks/vgon_prior_fit.py vgon_celeba64 \
        --images ../shared/data/celeba-folder --out benchmarks/presets/vgon_celeba64_prior.png

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="a variational preset name or folder")
    parser.add_argument("--images", required=True, help="a folder of images (held-out split)")
    parser.add_argument("--count", type=int, default=256, help="images encoded")
    parser.add_argument("--out", required=True, help="the picture (PNG)")
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
    images = np.concatenate([np.asarray(batch) for batch in test], 0)[: args.count]
    images = images.astype("float32") / (255.0 if images.dtype == np.uint8 else 1.0)
    means, log_variances = [], []
    for start in range(0, len(images), 64):
        latents = model.encode_latents(tf.constant(images[start : start + 64]))
        means.append(model.mean_dense(latents).numpy())
        log_variances.append(model.log_variance_dense(latents).numpy())
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


if __name__ == "__main__":
    main()
