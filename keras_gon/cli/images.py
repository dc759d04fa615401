"""`keras-gon sample`, `render` and `interpolate`: pictures from a trained run.

keras-gon sample /tmp/vgon --n 64 --seed 0 --out samples.png
keras-gon render /tmp/igon --resolution 256 [--out render.png] [--samples]
keras-gon interpolate /tmp/igon [--out interpolation.png] [--pairs 8 --steps 10]
"""

from __future__ import annotations

from pathlib import Path

from keras_gon.cli.common import (
    add_data_arguments,
    add_png_out,
    add_run_command,
    check_png_out,
    check_run,
    default_png,
    held_out_images,
    load_run,
    positive_int,
    seed,
)
from keras_gon.errors import InputError
from keras_gon.options import PRIORS

SAMPLE_COUNT = 64
GRID_COLUMNS = 8
"""Columns of `sample`'s grid of up to 64 images (a square grid beyond)."""


def add_parsers(commands) -> None:
    """Registers `keras-gon sample`, `render` and `interpolate`."""
    sample = add_run_command(
        commands, "sample", "write a PNG grid of a run's samples, z ~ its prior"
    )
    sample.add_argument("--n", type=positive_int, default=SAMPLE_COUNT, help="number of samples")
    sample.add_argument("--seed", type=seed, default=0, help="same seed, same samples")
    sample.add_argument(
        "--prior",
        choices=PRIORS,
        help="what z is drawn from: standard (N(0, I)) or fitted (the normal fitted to the "
        "training posterior; vgon_celeba64's and vgon_cifar10's); default: the model's",
    )
    add_png_out(sample, "samples", "PNG file")
    sample.set_defaults(func=sample_command)

    render = add_run_command(
        commands,
        "render",
        "decode held-out images (or samples) of an implicit GON at any resolution",
    )
    render.add_argument("--resolution", type=positive_int, default=256)
    add_png_out(render, "render")
    render.add_argument("--count", type=positive_int, default=8, help="images to render")
    render.add_argument(
        "--samples",
        action="store_true",
        help="render samples (appendix D) instead of held-out images",
    )
    render.add_argument("--seed", type=seed, default=0, help="seed of the samples")
    add_data_arguments(render)
    render.set_defaults(func=render_command)

    interpolate = add_run_command(
        commands, "interpolate", "slerp between the latents of pairs of held-out images (fig. 6)"
    )
    add_png_out(interpolate, "interpolation")
    interpolate.add_argument("--pairs", type=positive_int, default=8, help="rows")
    interpolate.add_argument(
        "--steps", type=positive_int, default=10, help="images per row, endpoints included"
    )
    interpolate.add_argument(
        "--resolution", type=positive_int, help="decoding resolution (default: the training size)"
    )
    add_data_arguments(interpolate)
    interpolate.set_defaults(func=interpolate_command)


def sample_grid(model, count: int) -> tuple[int, float]:
    """(columns, scale) of `sample`'s grid: 8 columns, or a square beyond 64 samples; each
    image drawn at its own size or larger (`keras_gon.plotting.native_scale`)."""
    from keras_gon.plotting import grid_columns, native_scale

    columns = grid_columns(count, GRID_COLUMNS)
    return columns, native_scale(model.image_shape[1], columns)


def check_sample_count(model, count: int) -> None:
    """Refuses `--n` samples whose grid PNG matplotlib cannot draw, or whose decoding
    and picture cannot fit in memory, from the shapes (before anything is decoded)."""
    from keras_gon.plotting import image_rows_size
    from keras_gon.resources import (
        MAX_PICTURE_SIDE,
        check_memory,
        check_picture_side,
        decoding_bytes,
    )

    def side(n: int) -> int:
        return max(image_rows_size(n, 1, *sample_grid(model, n)))

    picture_width, picture_height = image_rows_size(count, 1, *sample_grid(model, count))
    if max(picture_width, picture_height) > MAX_PICTURE_SIDE:
        low, high = 1, count  # the most samples one PNG holds: side() grows with n
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if side(middle) <= MAX_PICTURE_SIDE else (low, middle - 1)
        check_picture_side(
            max(picture_width, picture_height),
            f"--n {count}: the grid of {count:,} samples",
            f": at most {low:,} samples fit in one PNG",
        )
    height, width = model.image_shape[:2]
    # the decoding, the decoded images and their tiles (float32, 3 channels), the RGBA picture
    check_memory(
        decoding_bytes(model, count)
        + count * height * width * 4 * 3 * 2
        + picture_width * picture_height * 4 * 2,
        f"--n {count}: decoding and drawing {count:,} samples",
        ": ask for fewer",
    )


def sample_command(args) -> Path:
    """`keras-gon sample`: a PNG grid of `--n` images decoded from z ~ the prior (`--prior`)."""
    import numpy as np

    from keras_gon.files import atomic_write
    from keras_gon.plotting import save_image_rows

    check_run(args.run_dir)
    out = check_png_out(args.out or default_png(args.run_dir, "samples"))  # before any work
    model = load_run(args.run_dir)
    if not hasattr(model, "sample"):
        raise InputError(f"{type(model).__name__} cannot sample (vgon, vae and igon can)")
    options = {}
    if args.prior is not None:
        if not hasattr(model, "check_sampling_prior"):
            raise InputError(
                f"--prior: {type(model).__name__} samples from its fitted normal only "
                "(--prior is for vgon and vae)"
            )
        options["prior"] = model.check_sampling_prior(args.prior)  # (before any decoding)
    prior = options.get("prior", getattr(model, "prior", None))
    check_sample_count(model, args.n)
    images = np.asarray(model.sample(args.n, seed=args.seed, **options))
    columns, scale = sample_grid(model, args.n)
    atomic_write(out, lambda path: save_image_rows(path, [("samples", images)], columns, scale))
    source = {"standard": ", z ~ N(0, I)", "fitted": ", z ~ the fitted normal"}.get(prior, "")
    print(f"wrote {args.n} samples (seed {args.seed}{source}) to {out}")
    return out


def _check_grid(rows: int, columns: int, size: int, title: str, row_labels, options: str):
    """Refuses a labelled grid (render, interpolate) matplotlib cannot draw or memory cannot
    hold, from the shapes, before anything is decoded."""
    from keras_gon.plotting import labelled_grid_size
    from keras_gon.resources import check_memory, check_picture_side

    width, height = labelled_grid_size(rows, columns, size, size, title, row_labels, [""])
    check_picture_side(
        max(width, height),
        f"{options}: the picture of {rows} x {columns} images of {size}x{size}",
        ": ask for fewer or smaller images",
    )
    # the decoded images and their tiles (float32, 3 channels), the RGBA picture
    check_memory(
        rows * columns * size * size * 4 * 3 * 2 + width * height * 4 * 2,
        f"{options}: {rows} x {columns} images of {size}x{size}",
        ": ask for fewer or smaller images",
    )


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
    check_run(args.run_dir)
    out = check_png_out(args.out or default_png(args.run_dir, "render"))
    model = _load_implicit_run(args.run_dir)
    size = args.resolution
    title = f"Implicit GON ({args.run_dir}): decoded at {size}x{size}"
    height = model.image_shape[0]
    rows = (
        [f"samples, {size}x{size}"]
        if args.samples
        else [f"held-out {height}x{height}", f"rendered {size}x{size}"]
    )
    _check_grid(len(rows), args.count, size, title, rows, "--count and --resolution")
    if args.samples:
        rendered = np.asarray(model.sample(args.count, seed=args.seed, resolution=size))
        grid = rendered[None]
    else:
        originals = held_out_images(args, model, args.count, "--count")
        rendered = np.asarray(model.render(model.encode(originals), size))
        grid = np.stack([nearest_upscale(originals, size, size), rendered])
    save_labelled_grid(
        out, grid, title, row_labels=rows, column_labels=[str(i + 1) for i in range(args.count)]
    )
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
    check_run(args.run_dir)
    out = check_png_out(args.out or default_png(args.run_dir, "interpolation"))
    model = _load_implicit_run(args.run_dir)
    size = args.resolution or model.image_shape[0]
    _check_grid(
        args.pairs,
        args.steps + 2,
        size,
        "",
        [f"pair {args.pairs}"],
        "--pairs, --steps and --resolution",
    )
    images = held_out_images(args, model, 2 * args.pairs, "2 x --pairs")
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
        out,
        rows,
        f"slerp between held-out digits, decoded at {size[0]}x{size[1]} (fig. 6)",
        row_labels=[f"pair {i + 1}" for i in range(args.pairs)],
        column_labels=["image a", *[f"t = {t:.2f}" for t in ts], "image b"],
    )
    print(
        f"interpolated {args.pairs} pairs in {args.steps} steps at {size[0]}x{size[1]}; wrote {out}"
    )
    return out
