"""`keras-gon sample`, `render` and `interpolate`: pictures from a trained run.

    keras-gon sample /tmp/vgon --n 64 --seed 0 --out samples.png
    keras-gon render /tmp/igon --resolution 256 [--out render.png] [--samples]
    keras-gon interpolate /tmp/igon [--out interpolation.png] [--pairs 8 --steps 10]
"""

from __future__ import annotations

from pathlib import Path

from keras_gon.cli.common import (
    HelpFormatter,
    add_data_arguments,
    check_png_out,
    held_out_images,
    load_run,
    positive_int,
)
from keras_gon.errors import InputError

SAMPLE_COUNT = 64


def add_parsers(commands) -> None:
    """Registers `keras-gon sample`, `render` and `interpolate`."""
    sample = commands.add_parser("sample", help="write a PNG grid of a run's samples z ~ N(0, I)",
                                 formatter_class=HelpFormatter)
    sample.add_argument("run_dir", type=Path)
    sample.add_argument("--n", type=positive_int, default=SAMPLE_COUNT, help="number of samples")
    sample.add_argument("--seed", type=int, default=0, help="same seed, same samples")
    sample.add_argument("--out", type=Path, help="PNG file (default RUN_DIR/samples.png)")
    sample.set_defaults(func=sample_command)

    render = commands.add_parser(
        "render", help="decode held-out images (or samples) of an implicit GON at any resolution",
        formatter_class=HelpFormatter,
    )
    render.add_argument("run_dir", type=Path)
    render.add_argument("--resolution", type=positive_int, default=256)
    render.add_argument("--out", type=Path, help="PNG to write (default RUN_DIR/render.png)")
    render.add_argument("--count", type=positive_int, default=8, help="images to render")
    render.add_argument("--samples", action="store_true",
                        help="render samples (appendix D) instead of held-out images")
    render.add_argument("--seed", type=int, default=0, help="seed of the samples")
    add_data_arguments(render)
    render.set_defaults(func=render_command)

    interpolate = commands.add_parser(
        "interpolate", help="slerp between the latents of pairs of held-out images (fig. 6)",
        formatter_class=HelpFormatter,
    )
    interpolate.add_argument("run_dir", type=Path)
    interpolate.add_argument("--out", type=Path,
                             help="PNG to write (default RUN_DIR/interpolation.png)")
    interpolate.add_argument("--pairs", type=positive_int, default=8, help="rows")
    interpolate.add_argument("--steps", type=positive_int, default=10,
                             help="images per row, endpoints included")
    interpolate.add_argument("--resolution", type=positive_int,
                             help="decoding resolution (default: the training size)")
    add_data_arguments(interpolate)
    interpolate.set_defaults(func=interpolate_command)


def sample_command(args) -> Path:
    """`keras-gon sample`: a PNG grid of `--n` images decoded from z ~ N(0, I)."""
    import numpy as np

    from keras_gon.files import atomic_write
    from keras_gon.plotting import save_image_rows

    model = load_run(args.run_dir)
    if not hasattr(model, "sample"):
        raise InputError(f"{type(model).__name__} cannot sample (vgon, vae and igon can)")
    out = check_png_out(args.out or args.run_dir / "samples.png")
    images = np.asarray(model.sample(args.n, seed=args.seed))
    atomic_write(out, lambda path: save_image_rows(path, [("samples", images)]))
    print(f"wrote {args.n} samples (seed {args.seed}) to {out}")
    return out


def _load_implicit_run(run_dir: Path):
    model = load_run(run_dir)
    if not hasattr(model, "render"):
        raise InputError(
            f"{run_dir} holds a {type(model).__name__}: this command needs an implicit GON "
            "(keras-gon train igon)"
        )
    return model


def render_command(args) -> Path:
    """`keras-gon render`: held-out images (top, nearest-neighbour upscaled) above their renders."""
    import numpy as np

    from keras_gon.models.implicit_gon import check_resolution
    from keras_gon.plotting import nearest_upscale, save_labelled_grid

    check_resolution(args.resolution)  # before loading anything
    model = _load_implicit_run(args.run_dir)
    out = check_png_out(args.out or args.run_dir / "render.png")
    size = args.resolution
    if args.samples:
        rendered = np.asarray(model.sample(args.count, seed=args.seed, resolution=size))
        grid = rendered[None]
        rows = [f"samples, {size}x{size}"]
    else:
        originals = held_out_images(args, model, args.count)
        rendered = np.asarray(model.render(model.encode(originals), size))
        grid = np.stack([nearest_upscale(originals, size, size), rendered])
        height = model.image_shape[0]
        rows = [f"held-out {height}x{height}", f"rendered {size}x{size}"]
    save_labelled_grid(out, grid, f"Implicit GON ({args.run_dir}): decoded at {size}x{size}",
                       row_labels=rows, column_labels=[str(i + 1) for i in range(args.count)])
    what = "samples" if args.samples else "held-out images"
    print(f"rendered {args.count} {what} at {size}x{size}; wrote {out}")
    return out


def interpolate_command(args) -> Path:
    """`keras-gon interpolate`: rows from image a to image b along slerp(z_a, z_b, t) (fig. 6).

    Each row is: original a, the `steps` decodings (t = 0 ... 1), original b.
    """
    import numpy as np

    from keras_gon.interpolation import interpolation_grid
    from keras_gon.models.implicit_gon import check_resolution
    from keras_gon.plotting import nearest_upscale, save_labelled_grid

    if args.steps < 2:
        raise InputError(f"--steps must be at least 2 (the two endpoints), got {args.steps}")
    if args.resolution is not None:
        check_resolution(args.resolution)
    model = _load_implicit_run(args.run_dir)
    out = check_png_out(args.out or args.run_dir / "interpolation.png")
    images = held_out_images(args, model, 2 * args.pairs)
    first, second = images[: args.pairs], images[args.pairs :]
    decoded = interpolation_grid(model, first, second, steps=args.steps, resolution=args.resolution)
    size = decoded.shape[2:4]
    rows = np.concatenate(
        [
            nearest_upscale(first, *size)[:, None],
            decoded,
            nearest_upscale(second, *size)[:, None],
        ],
        axis=1,
    )
    ts = np.linspace(0.0, 1.0, args.steps)
    save_labelled_grid(
        out, rows, f"slerp between held-out digits, decoded at {size[0]}x{size[1]} (fig. 6)",
        row_labels=[f"pair {i + 1}" for i in range(args.pairs)],
        column_labels=["image a", *[f"t = {t:.2f}" for t in ts], "image b"],
    )
    print(
        f"interpolated {args.pairs} pairs in {args.steps} steps at {size[0]}x{size[1]}; wrote {out}"
    )
    return out
