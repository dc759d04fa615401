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
import errno
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence

from keras_gon.cli import experiment, images, presets, runs, train
from keras_gon.cli.common import ArgumentParser, NonFiniteLossError
from keras_gon.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    """The `keras-gon` argument parser (no TensorFlow import)."""
    from keras_gon import __version__
    from keras_gon.registry import MODEL_KINDS

    kinds = "\n".join(f"  {k.name:<11} {k.description}" for k in MODEL_KINDS.values())
    parser = ArgumentParser(
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


FILESYSTEM_ERRORS = {
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.EEXIST: "already exists",
    errno.EMLINK: "too many links",
    errno.EXDEV: "crosses file systems",
}
"""Errors of the user's paths and disks: the command line reports them in one line."""


def filesystem_message(error: OSError) -> str | None:
    """One line naming the path and the reason of a filesystem error, or None if `error`
    is not one (`FILESYSTEM_ERRORS`)."""
    reason = FILESYSTEM_ERRORS.get(error.errno)
    if reason is None:
        return None
    paths = [str(p) for p in (error.filename, error.filename2) if p is not None]
    where = " -> ".join(paths) if paths else "a file or folder"
    return f"{where}: {reason} ({errno.errorcode[error.errno]})"


NATIVE_STARTUP_NOISE = ("WARNING: All log messages before absl::InitializeLog() is called",)
"""How the lines start that TensorFlow's native libraries print when they load, before
absl logging is initialised (so whatever TF_CPP_MIN_LOG_LEVEL says): each of the two
copies of TSL (in libtensorflow_framework.so and _pywrap_profiler_plugin.so) prints them."""


def _is_startup_noise(line: str) -> bool:
    """Pre-initialisation INFO lines (`I0000 00:00:...`) and absl's warning about them."""
    return line.startswith(NATIVE_STARTUP_NOISE) or (line.startswith("I0000 ") and "] " in line)


@contextlib.contextmanager
def quiet_native_startup() -> Iterator[None]:
    """Holds back file descriptor 2 while TensorFlow loads, then writes back every line
    but the INFO lines its libraries print before logging is set up (`_is_startup_noise`):
    warnings, errors and Python's own messages still reach stderr, in order. A no-op
    when TF_CPP_MIN_LOG_LEVEL asks for INFO lines (0) or stderr has no descriptor."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") in ("", "0"):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not _is_startup_noise(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `keras-gon` and `python -m keras_gon`; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported
    args = build_parser().parse_args(argv)
    with quiet_native_startup():
        import keras_gon

        keras_gon.register_with_keras()  # every command from here on uses Keras and the models
    try:
        with _settings(args):
            args.func(args)
    except (InputError, NonFiniteLossError) as error:
        return _error(str(error))
    except OSError as error:
        message = filesystem_message(error)
        if message is None:
            raise
        return _error(message)
    except MemoryError:
        return _error("out of memory: try a smaller --batch-size, --n, --count or --resolution")
    return 0


def _error(message: str) -> int:
    """Prints `keras-gon: error: MESSAGE` (its first line) on stderr; returns the status, 2."""
    lines = str(message).strip().splitlines() or ["unknown error"]
    print(f"keras-gon: error: {lines[0]}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
