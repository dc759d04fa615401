"""Monte Carlo coordinates for the implicit GON: speed and held-out loss (issue 4).

Trains `keras_gon.ImplicitGON` on mnist10k at its native 28x28 with every
pixel coordinate (`coordinate_fraction=1`) and with random subsets of them
(e.g. 0.25), for the same number of epochs and batch size, and reports

- steps per second, excluding the first steps (tracing: `StepTimer(skip=5)`),
- held-out SSE per image and MSE per pixel, evaluated on every coordinate,

as a Markdown table. For the first fraction it also writes the figures that
the closing note describes: held-out images rendered at 256x256 (super-
resolution, paper fig. 5), an interpolation grid (fig. 6), samples
(appendix D), and the 256x256 renders area-averaged back to 28x28 next to
the 28x28 renders.

    python benchmarks/implicit_gon_coordinates.py --data ../shared/data/mnist10k.npz \
        --epochs 3 --batch-size 64 --hidden-units 32 --fractions 1 0.25 --out /tmp/igon-bench

Timings depend on the machine and its load (the numbers in the report were
measured on 2 shared CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _train_one(args, fraction, train_ds, test_ds, info):
    import keras

    import keras_gon
    from keras_gon.callbacks import StepTimer

    keras.utils.set_random_seed(args.seed)
    model = keras_gon.ImplicitGON(
        image_shape=info.image_shape,
        latent_dim=args.latent_dim,
        hidden_units=args.hidden_units,
        num_layers=args.num_layers,
        coordinate_fraction=fraction,
        seed=args.seed,
    )
    model.compile(optimizer=keras.optimizers.Adam(args.lr, epsilon=1e-8), jit_compile=args.xla)
    timer = StepTimer(skip=5)
    start = time.perf_counter()
    if args.steps:  # a short timing run: --epochs of --steps steps
        history = model.fit(
            train_ds.repeat(),
            epochs=args.epochs,
            steps_per_epoch=args.steps,
            callbacks=[timer],
            verbose=args.verbose,
        )
    else:
        history = model.fit(train_ds, epochs=args.epochs, callbacks=[timer], verbose=args.verbose)
    seconds = time.perf_counter() - start
    held_out = model.evaluate(test_ds, verbose=0, return_dict=True)
    pixels = info.image_shape[0] * info.image_shape[1] * info.image_shape[2]
    return model, {
        "coordinate_fraction": fraction,
        "coordinates_per_step": model.num_sampled_coordinates,
        "steps": timer.steps,
        "steps_per_second": timer.steps_per_second,
        "seconds": seconds,
        "train_loss_last_epoch": float(history.history["loss"][-1]),
        "held_out_mse": float(held_out["loss"]),  # the default loss: MSE per pixel
        "held_out_sse": float(held_out["loss"]) * pixels,
    }


def _figures(model, test_ds, out: Path, resolution: int):
    import numpy as np
    import tensorflow as tf

    from keras_gon.interpolation import interpolation_grid
    from keras_gon.plotting import image_grid, nearest_upscale, save_pixels

    images = np.concatenate([np.asarray(b) for b in test_ds.take(1)])[:16]
    latents = model.encode(images[:8])
    low = model.render(latents).numpy()
    high = model.render(latents, resolution).numpy()
    pooled = tf.image.resize(high, low.shape[1:3], method="area").numpy()
    save_pixels(
        out / f"render-{resolution}.png",
        image_grid(np.concatenate([nearest_upscale(images[:8], resolution, resolution), high]), 8),
    )
    save_pixels(
        out / "render-28-vs-pooled.png", image_grid(np.concatenate([images[:8], low, pooled]), 8)
    )
    grid = interpolation_grid(model, images[:8], images[8:16], steps=10)
    save_pixels(out / "interpolation.png", image_grid(grid.reshape((-1,) + grid.shape[2:]), 10))
    save_pixels(out / "samples.png", image_grid(model.sample(32, seed=0).numpy(), 8))
    return {
        "pooled_vs_native_render_mse": float(np.mean((pooled - low) ** 2)),
        "native_render_vs_images_mse": float(np.mean((low - images[:8]) ** 2)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/mnist10k.npz")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, help="steps per epoch (default: the whole data)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--hidden-units", type=int, default=32)
    parser.add_argument("--num-layers", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--no-figures", action="store_true", help="skip the PNGs")
    parser.add_argument("--xla", action="store_true", help="compile with XLA (slower on CPU)")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/igon-bench"))
    args = parser.parse_args(argv)

    from keras_gon.data import load_dataset

    args.out.mkdir(parents=True, exist_ok=True)
    train_ds, test_ds, info = load_dataset(
        args.data, image_size=28, batch_size=args.batch_size, seed=args.seed
    )
    rows = []
    for index, fraction in enumerate(args.fractions):
        model, row = _train_one(args, fraction, train_ds, test_ds, info)
        if index == 0 and not args.no_figures:
            row.update(_figures(model, test_ds, args.out, args.resolution))
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "results.json").write_text(
        json.dumps(
            {"args": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=2, default=str
        )
    )
    print(
        f"\n{args.epochs} epochs{f' of {args.steps} steps' if args.steps else ''} of {args.data} "
        f"at 28x28, batch {args.batch_size}, Adam {args.lr}, "
        f"{args.num_layers} sine layers x {args.hidden_units} units, latent {args.latent_dim}\n"
    )
    print(
        "| coordinate_fraction | coordinates/step | steps/s | held-out SSE/image | held-out MSE/pixel |"
    )
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['coordinate_fraction']} | {row['coordinates_per_step']} | "
            f"{row['steps_per_second']:.2f} | {row['held_out_sse']:.2f} | {row['held_out_mse']:.5f} |"
        )


if __name__ == "__main__":
    main()
