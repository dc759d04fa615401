"""The `keras-gon` command line (`python -m keras_gon` too).

    keras-gon train gon                                   # offline mnist5k, 32x32
    keras-gon train gon --data ../shared/data/mnist10k.npz --steps 300 --out /tmp/run
    keras-gon evaluate /tmp/run --data ../shared/data/mnist10k.npz
    keras-gon experiment reproduce --data ../shared/data/mnist22k.npz --out runs/study

One module per command group (`train`, `runs`: evaluate and export,
`images`: sample, render and interpolate, `experiment`), sharing `common`.
TensorFlow is imported only when a command runs. Bad input (a missing file,
a wrong shape, pixels out of range, an unknown dataset...) prints one
`keras-gon: error: ...` line and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Sequence

from keras_gon.cli import experiment, images, presets, runs, train
from keras_gon.cli.common import NonFiniteLossError
from keras_gon.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    """The `keras-gon` argument parser (no TensorFlow import)."""
    from keras_gon import __version__
    from keras_gon.registry import MODEL_KINDS

    kinds = "\n".join(f"  {k.name:<11} {k.description}" for k in MODEL_KINDS.values())
    parser = argparse.ArgumentParser(
        prog="keras-gon",
        description="Gradient Origin Networks (Bond-Taylor & Willcocks, ICLR 2021) in Keras 3.",
        epilog=f"model kinds (keras-gon train KIND):\n{kinds}\n\n"
        "keras-gon COMMAND --help shows a command's options and defaults.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"keras-gon {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train.add_parser(commands)
    runs.add_parsers(commands)
    images.add_parsers(commands)
    experiment.add_parser(commands)
    presets.add_parser(commands)
    return parser


def _settings(args):
    """`train`'s seed, op determinism and dtype policy, restored when the command returns."""
    if not getattr(args, "settings", False):
        return contextlib.nullcontext()
    from keras_gon.runtime import run_settings

    return run_settings(args.seed, args.deterministic, args.mixed_precision)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `keras-gon` and `python -m keras_gon`; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported
    args = build_parser().parse_args(argv)
    import keras_gon

    keras_gon.register_with_keras()  # every command from here on uses Keras and the models
    try:
        with _settings(args):
            args.func(args)
    except (InputError, NonFiniteLossError) as error:
        print(f"keras-gon: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
