"""What the `keras-gon` commands share: argument types, run folders, held-out images, PNGs.

Nothing here imports TensorFlow at module level: `keras-gon --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from keras_gon.errors import InputError, NonFiniteLossError  # noqa: F401 (the CLI's errors)
from keras_gon.validation import MAX_SEED


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose refusals are one `keras-gon: error: ...` line (status 2),
    as every other refusal of the command line; the usage stays in `--help`."""

    def error(self, message: str):
        self.exit(2, f"keras-gon: error: {self.prog}: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.HelpFormatter):
    """Shows each option's default after its help, where it has one that says something."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (
            action.default not in (None, False, argparse.SUPPRESS)
            and "%(default)" not in text
            and "default" not in text
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def _number_type(convert, accept, expected: str):
    """An argparse type: `convert(text)`, refused unless `accept(value)`."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected.replace(" ", "_")
    return parse


positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
"""argparse type: an integer >= 1."""
positive_float = _number_type(float, lambda v: v > 0 and math.isfinite(v), "a positive number")
"""argparse type: a finite number > 0."""
non_negative_float = _number_type(float, lambda v: v >= 0 and math.isfinite(v), "a number >= 0")
"""argparse type: a finite number >= 0."""
fraction = _number_type(float, lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")
"""argparse type: a number in (0, 1]."""
seed = _number_type(int, lambda v: 0 <= v <= MAX_SEED, f"an integer seed in [0, {MAX_SEED}]")
"""argparse type: a seed, an integer in [0, 2**31 - 1] (every command's `--seed`)."""


def add_data_arguments(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    """`--data`, `--data-dir`, `--manual-dir`: where images come from."""
    parser.add_argument(
        "--data",
        default=default,
        help="a folder of images (PNG, JPEG, BMP, GIF; flat or one subfolder per class, with "
        "or without train/ and test/), mnist5k (offline), keras:NAME (keras.datasets: mnist, "
        "fashion_mnist, cifar10), a TFDS name (mnist, fashion_mnist, cifar10, ...), a .npz in "
        "the keras.datasets layout or a folder of IDX files"
        + ("" if default else " (default: the run's own)"),
    )
    parser.add_argument("--data-dir", help="TFDS data_dir")
    parser.add_argument("--manual-dir", help="TFDS manual_dir (for manually downloaded files)")


def add_run_command(commands, name: str, help: str, run_help: str | None = None):
    """The parser of `keras-gon <name> RUN_DIR ...`, a command on a trained run folder."""
    parser = commands.add_parser(name, help=help, formatter_class=HelpFormatter)
    parser.add_argument("run_dir", type=Path, help=run_help)
    return parser


def add_png_out(parser: argparse.ArgumentParser, name: str, what: str = "PNG to write") -> None:
    """`--out`, the PNG a command writes (`default_png`'s place without it)."""
    parser.add_argument(
        "--out",
        type=Path,
        help=f"{what} (default RUN_DIR/{name}.png; for a preset, PRESET-{name}.png in the "
        "current folder)",
    )


def is_preset(run_dir) -> bool:
    """Whether `run_dir` names a built-in preset rather than a run folder."""
    from keras_gon.presets import available_presets

    return not Path(run_dir).exists() and str(run_dir) in available_presets()


def load_run(run_dir: Path):
    """The model of a run folder written by `keras-gon train` (or of a preset name),
    or a clear error."""
    from keras_gon.presets import load_keras_file, load_preset

    if is_preset(run_dir):
        model = load_preset(str(run_dir))  # the model alone: compiled as a run's would be
        model.compile(jit_compile=False)
        return model
    return load_keras_file(check_run(run_dir))


def check_run(run_dir: Path) -> Path:
    """The model.keras of a run folder, or a clear error (cheap: before other checks)."""
    if is_preset(run_dir):
        return Path(run_dir)
    path = Path(run_dir) / "model.keras"
    if Path(run_dir).is_file():
        raise InputError(
            f"{run_dir} is a file: give the run folder that holds it ({Path(run_dir).parent}) "
            "or a preset name"
        )
    if not Path(run_dir).is_dir():
        raise InputError(f"no such run folder or preset: {run_dir}")
    if not path.is_file():
        raise InputError(
            f"no model.keras in {run_dir}: is it a folder written by `keras-gon train`?"
        )
    return path


def run_metrics(run_dir: Path) -> dict:
    """The run's metrics.json (an empty dict if it has none; a preset's metadata)."""
    if is_preset(run_dir):
        return {}
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{path} is not valid JSON: {error}") from None


def first_images(dataset, count: int):
    """The first `count` images of a batched dataset (of images or `(images, ...)` tuples)."""
    import numpy as np

    images = []
    for batch in dataset:
        images.append(batch[0] if isinstance(batch, tuple) else batch)
        if sum(len(b) for b in images) >= count:
            break
    return np.concatenate([np.asarray(b) for b in images])[:count]


def recorded_data(data: str) -> str:
    """`--data` as a run records it: the file or folder it names as an absolute path (the
    run's commands find it from any folder), a named source (mnist5k, keras:NAME, TFDS)
    as given; `keras_gon.data.source_path` decides which, as the loader does."""
    from keras_gon.data.pipelines import source_path

    path = source_path(data)
    return data if path is None else str(path)


def held_out_split(args, model, batch_size: int, run_data: str | None = None, **options):
    """`(data, held-out dataset, info)` of `--data` (default: `run_data`, the data the run
    was trained on) at the model's size, in batches of `batch_size`; `options` go to
    `keras_gon.data.load_dataset`."""
    from keras_gon.data import load_dataset

    data = args.data or run_data or run_metrics(args.run_dir).get("data")
    if not data:
        raise InputError(f"no --data given and {args.run_dir} does not name its data (give --data)")
    height, _, channels = model.image_shape
    _, test_ds, info = load_dataset(
        data,
        image_size=height,
        channels=channels,
        batch_size=batch_size,
        data_dir=args.data_dir,
        manual_dir=args.manual_dir,
        held_out_only=True,
        **options,
    )
    return data, test_ds, info


def held_out_images(args, model, count: int, option: str = "the command"):
    """`count` held-out images of `--data` (default: the run's own) at the model's size;
    `option` names what asks for `count` of them in the error when there are fewer."""
    data, test_ds, info = held_out_split(args, model, min(256, max(count, 1)))
    if info.num_test < count:
        raise InputError(f"{data} has {info.num_test} held-out images, {option} needs {count}")
    return first_images(test_ds, count)


RUN_PICTURES = ("samples", "render", "interpolation")
"""The pictures `sample`, `render` and `interpolate` write in a run folder (`default_png`):
a run replaced by `train --overwrite` loses them (they show the old model)."""


def default_png(run_dir: Path, name: str) -> Path:
    """Where a command writes `name`.png without `--out`: in the run folder, or for a
    preset name in the current folder as `<preset>-<name>.png`."""
    if is_preset(run_dir):
        return Path(f"{run_dir}-{name}.png")
    return Path(run_dir) / f"{name}.png"


def check_png_out(path: Path) -> Path:
    """`path` if it names a .png in an existing folder this user can write in (checked
    before any work, so a bad `--out` costs nothing)."""
    if path.suffix.lower() != ".png":
        raise InputError(f"--out must name a .png file, got {path}")
    parent = path.parent
    if not parent.is_dir():
        existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise InputError(f"--out {path}: {existing} is a file, not a folder")
        raise InputError(f"no such folder for --out: {parent}")
    if path.is_dir():
        raise InputError(f"--out {path} is a folder, not a .png file")
    if not os.access(parent, os.W_OK):
        raise InputError(f"--out {path}: {parent} is not writable (permission denied)")
    return path
