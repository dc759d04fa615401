"""The cost of the origin gradient's exact computations, side by side (issue 30).

For each image shape, latent size and batch size, one `keras_gon.GON` per
computation of the first inner step (`GradientOriginModel.origin_method`):
"forward" (the shared origin's Jacobian, `share_origin=True`), "reverse" (its
transposed Jacobian, `share_origin="reverse"`) and "batched"
(`share_origin=False`), each with XLA on and/or off. Times the model's
`train_step` in a `tf.function` on one fixed batch of random images, the
models interleaved (A B C A B C ...), and prints steps/s, the median of the
repeats after a warm-up (which includes tracing and XLA compilation).

    python benchmarks/origin_cost.py --images 32x32x3 64x64x3 --latents 32 64 128 256
    python benchmarks/origin_cost.py --model vgon --modes batched --jit both
    python benchmarks/origin_cost.py --images 32x32x1 --latents 32 256 512 --steps 200

`--steps` times a fixed number of steps per repeat instead of `--seconds`. For the GON
it also prints what `share_origin="auto"` chooses for each shape (the mode, and XLA as
`default_jit_compile`).

`--model vgon` / `ae` time the variational GON (BCE) / the autoencoder with the
same decoder instead (one "batched" computation; the AE has none).

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

SHARE_ORIGIN = {"forward": True, "reverse": "reverse", "batched": False, "auto": "auto"}


def build(model: str, image: str, latent: int, width: int, mode: str, jit: bool, **options):
    import keras

    import keras_gon

    keras.utils.set_random_seed(0)
    shape = tuple(int(v) for v in image.split("x"))
    common = dict(image_shape=shape, latent_dim=latent, width=width, seed=0, **options)
    if model == "gon":
        instance = keras_gon.GON(share_origin=SHARE_ORIGIN[mode], **common)
    elif model == "vgon":
        instance = keras_gon.VariationalGON(likelihood="bce", **common)
    elif model == "vgon-dlogistic":
        instance = keras_gon.VariationalGON(**common)
    else:
        instance = keras_gon.ConvAutoencoder(**common)
    instance.compile(optimizer=keras.optimizers.Adam(1e-4, epsilon=1e-8), jit_compile=jit)
    instance.optimizer.build(instance.trainable_variables)
    return instance


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gon", choices=("gon", "vgon", "vgon-dlogistic", "ae"))
    parser.add_argument("--images", nargs="+", default=["32x32x3"])
    parser.add_argument("--latents", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[64])
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--normalization", default="layer", help="the decoder's normalisation")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["forward", "reverse", "batched"],
        choices=("forward", "reverse", "batched"),
    )
    parser.add_argument("--jit", choices=("on", "off", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5, help="per timed repeat")
    parser.add_argument(
        "--steps", type=int, default=0, help="steps per timed repeat (0: as many as --seconds take)"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", help="append one JSON line per configuration")
    args = parser.parse_args(argv)

    import tensorflow as tf
    from speed import OtherLoad

    other = OtherLoad()
    options = {"normalization": args.normalization}
    jits = {"on": [True], "off": [False], "both": [True, False]}[args.jit]
    modes = args.modes if args.model == "gon" else ["batched"]
    rng = np.random.default_rng(0)
    print(
        f"{'model':6s} {'image':10s} {'batch':>5s} {'latent':>6s} {'mode':8s} {'xla':4s} "
        f"{'steps/s':>8s}  repeats",
        flush=True,
    )
    for image in args.images:
        shape = tuple(int(v) for v in image.split("x"))
        for batch_size in args.batches:
            batch = tf.constant(rng.random((batch_size, *shape), dtype=np.float32))
            for latent in args.latents:
                steps, counts = {}, {}
                if args.model == "gon":
                    auto = build(args.model, image, latent, args.width, "auto", None, **options)
                    print(
                        f"  auto: {auto.origin_method(True, batch_size=batch_size)}, XLA "
                        f"{'on' if auto.default_jit_compile() else 'off'}",
                        flush=True,
                    )
                for mode in modes:
                    for jit in jits:
                        model = build(args.model, image, latent, args.width, mode, jit, **options)
                        if args.model == "gon":
                            chosen = model.origin_method(True, batch_size=batch_size)
                            if chosen != mode:
                                print(f"  ({mode} is not exact here: {chosen})")
                                continue
                        step = tf.function(model.train_step, jit_compile=jit)
                        for _ in range(args.warmup):
                            step(batch)
                        start = time.perf_counter()
                        step(batch)
                        elapsed = time.perf_counter() - start
                        steps[(mode, jit)] = step
                        counts[(mode, jit)] = args.steps or max(
                            2, round(args.seconds / max(elapsed, 1e-4))
                        )
                rates = {key: [] for key in steps}
                other.take()
                for _ in range(args.repeats):
                    for key, step in steps.items():
                        start = time.perf_counter()
                        for _ in range(counts[key]):
                            logs = step(batch)
                        float(logs["loss"])
                        rates[key].append(counts[key] / (time.perf_counter() - start))
                competing = other.take()
                for (mode, jit), values in rates.items():
                    median = statistics.median(values)
                    print(
                        f"{args.model:6s} {image:10s} {batch_size:5d} {latent:6d} {mode:8s} "
                        f"{'on' if jit else 'off':4s} {median:8.2f}  "
                        + " ".join(f"{v:.1f}" for v in values)
                        + f"  (others' CPU {competing['mean']:.0f} %)",
                        flush=True,
                    )
                    if args.out:
                        with open(args.out, "a") as f:
                            f.write(
                                json.dumps(
                                    {
                                        "model": args.model,
                                        "image": image,
                                        "batch": batch_size,
                                        "latent": latent,
                                        "mode": mode,
                                        "normalization": args.normalization,
                                        "xla": jit,
                                        "steps_per_s": median,
                                        "repeats": values,
                                        "other_processes_cpu_percent": competing,
                                    }
                                )
                                + "\n"
                            )


if __name__ == "__main__":
    main()
