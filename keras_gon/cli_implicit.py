"""Command-line parts for implicit GONs: `train igon` options, `render` and `interpolate`.

    keras-gon train igon --data ../shared/data/mnist10k.npz --hidden-units 32 --out /tmp/igon
    keras-gon render /tmp/igon --resolution 256 [--out render.png] [--samples]
    keras-gon interpolate /tmp/igon [--out interpolation.png] [--pairs 8 --steps 10]

`keras_gon.cli` registers these (kept here so the shared `cli.py` stays small).
Nothing heavy is imported at module level: `keras-gon --help` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from keras_gon.errors import InputError

IGON_IMAGE_SIZE = 28  # native MNIST: the implicit GON trains on the data as is


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text}")
    return value


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """Options of `keras-gon train igon`."""
    from keras_gon.cli import _positive_float, _positive_int

    group = train.add_argument_group("implicit GON (igon)")
    group.add_argument("--hidden-units", type=_positive_int, default=256, help="units per sine layer")
    group.add_argument("--num-layers", type=_positive_int, default=4, help="number of sine layers")
    group.add_argument("--w0", type=_positive_float, default=30.0, help="SIREN frequency factor")
    group.add_argument(
        "--coordinate-fraction",
        type=_fraction,
        default=1.0,
        help="fraction of the pixel coordinates used per training step (Monte Carlo; 1 = all)",
    )


def build_igon(args, image_shape):
    """`MODEL_BUILDERS["igon"]`: an ImplicitGON from the command line.

    It compiles without XLA (ImplicitGON.compile's default: XLA's CPU sine is
    ~3x slower than TensorFlow's).
    """
    import keras_gon
    from keras_gon.cli import _gon_options

    return keras_gon.ImplicitGON(
        image_shape=image_shape,
        latent_dim=args.latent_dim,
        hidden_units=args.hidden_units,
        num_layers=args.num_layers,
        w0=args.w0,
        coordinate_fraction=args.coordinate_fraction,
        **_gon_options(args),
    )


def add_commands(commands) -> None:
    """The `render` and `interpolate` subcommands."""
    from keras_gon.cli import _positive_int

    render_parser = commands.add_parser(
        "render", help="decode held-out images (or samples) of an implicit GON run at any resolution"
    )
    render_parser.add_argument("run_dir", type=Path)
    render_parser.add_argument("--resolution", type=_positive_int, default=256)
    render_parser.add_argument("--out", type=Path, help="PNG to write (default RUN_DIR/render.png)")
    render_parser.add_argument("--count", type=_positive_int, default=8, help="images to render")
    render_parser.add_argument(
        "--samples", action="store_true", help="render samples (appendix D) instead of held-out images"
    )
    render_parser.add_argument("--seed", type=int, default=0, help="seed of the samples")
    _add_data_arguments(render_parser)

    interpolate_parser = commands.add_parser(
        "interpolate", help="slerp between the latents of pairs of held-out images (fig. 6)"
    )
    interpolate_parser.add_argument("run_dir", type=Path)
    interpolate_parser.add_argument(
        "--out", type=Path, help="PNG to write (default RUN_DIR/interpolation.png)"
    )
    interpolate_parser.add_argument("--pairs", type=_positive_int, default=8, help="rows")
    interpolate_parser.add_argument(
        "--steps", type=_positive_int, default=10, help="images per row, endpoints included"
    )
    interpolate_parser.add_argument(
        "--resolution", type=_positive_int, help="decoding resolution (default: the training size)"
    )
    _add_data_arguments(interpolate_parser)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="held-out images (default: the data the run was trained on)")
    parser.add_argument("--data-dir")
    parser.add_argument("--manual-dir")


def _load_implicit_run(run_dir: Path):
    from keras_gon.cli import _load_run

    model = _load_run(run_dir)
    if not hasattr(model, "render"):
        raise InputError(
            f"{run_dir} holds a {type(model).__name__}: this command needs an implicit GON "
            "(keras-gon train igon)"
        )
    return model


def _held_out_images(args, model, count: int):
    import json

    from keras_gon.cli import _test_images
    from keras_gon.data import load_dataset

    metrics_path = args.run_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    data = args.data or metrics.get("data")
    if not data:
        raise InputError(f"no --data given and {metrics_path} does not name the training data")
    height, _, channels = model.input_spec_shape
    _, test_ds, info = load_dataset(
        data,
        image_size=height,
        channels=channels,
        batch_size=min(256, max(count, 1)),
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
    )
    if info.num_test < count:
        raise InputError(f"{data} has {info.num_test} held-out images, {count} are needed")
    return _test_images(test_ds, count)


def _check_out(path: Path) -> Path:
    if path.suffix.lower() != ".png":
        raise InputError(f"--out must name a .png file, got {path}")
    if not path.parent.is_dir():
        raise InputError(f"no such folder for --out: {path.parent}")
    return path


def _save_pixels(path: Path, grid) -> None:
    """Writes an image grid pixel for pixel (no resampling), through a temporary file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_gon.cli import _atomic_write

    image = grid[..., 0] if grid.shape[-1] == 1 else grid

    def write(temporary):
        plt.imsave(temporary, image, cmap="gray", vmin=0.0, vmax=1.0, format="png")

    _atomic_write(path, write)


def _nearest_upscale(images, height: int, width: int):
    import numpy as np

    rows = (np.arange(height) * images.shape[1]) // height
    columns = (np.arange(width) * images.shape[2]) // width
    return images[:, rows][:, :, columns]


def render(args) -> Path:
    """`keras-gon render`: held-out images (top, nearest-neighbour upscaled) above their renders."""
    import numpy as np

    from keras_gon.models.implicit_gon import check_resolution
    from keras_gon.plotting import image_grid

    check_resolution(args.resolution)  # before loading anything
    model = _load_implicit_run(args.run_dir)
    out = _check_out(args.out or args.run_dir / "render.png")
    size = args.resolution
    if args.samples:
        rendered = np.asarray(model.sample(args.count, seed=args.seed, resolution=size))
        grid = image_grid(rendered, columns=args.count)
    else:
        originals = _held_out_images(args, model, args.count)
        rendered = np.asarray(model.render(model.encode(originals), size))
        grid = image_grid(
            np.concatenate([_nearest_upscale(originals, size, size), rendered]), columns=args.count
        )
    _save_pixels(out, grid)
    what = "samples" if args.samples else "held-out images"
    print(f"rendered {args.count} {what} at {size}x{size}; wrote {out}")
    return out


def interpolate(args) -> Path:
    """`keras-gon interpolate`: rows from image a to image b along slerp(z_a, z_b, t) (fig. 6).

    Each row is: original a, the `steps` decodings (t = 0 ... 1), original b.
    """
    import numpy as np

    from keras_gon.interpolation import interpolation_grid
    from keras_gon.plotting import image_grid

    from keras_gon.models.implicit_gon import check_resolution

    if args.steps < 2:
        raise InputError(f"--steps must be at least 2 (the two endpoints), got {args.steps}")
    if args.resolution is not None:
        check_resolution(args.resolution)
    model = _load_implicit_run(args.run_dir)
    out = _check_out(args.out or args.run_dir / "interpolation.png")
    images = _held_out_images(args, model, 2 * args.pairs)
    first, second = images[: args.pairs], images[args.pairs :]
    decoded = interpolation_grid(model, first, second, steps=args.steps, resolution=args.resolution)
    size = decoded.shape[2:4]
    rows = np.concatenate(
        [
            _nearest_upscale(first, *size)[:, None],
            decoded,
            _nearest_upscale(second, *size)[:, None],
        ],
        axis=1,
    )
    columns = rows.shape[1]
    grid = image_grid(rows.reshape((-1,) + rows.shape[2:]), columns=columns)
    _save_pixels(out, grid)
    print(
        f"interpolated {args.pairs} pairs in {args.steps} steps at {size[0]}x{size[1]}; wrote {out}"
    )
    return out
