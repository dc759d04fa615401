"""Files that appear whole or not at all: written to a temporary name, then renamed."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Calls `write(temporary_path)` on a hidden file beside `path`, then renames it to `path`.

    The rename is atomic on one filesystem: a reader sees the old file or the
    new one, never a partial one, and a write killed midway leaves no file
    behind at `path` (the temporary one is removed when the write fails).
    The file gets the permissions of a normal new file (the user's umask). An
    `OSError` (a read-only folder, a full disk...) names `path`, not the temporary file.
    """
    path = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix
        )
    except OSError as error:
        raise about_path(error, path) from None
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except OSError as error:
        raise about_path(error, path) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(temporary)
    return path


def about_path(error: OSError, path: str | os.PathLike) -> OSError:
    """`error` (same class and errno) naming `path`: what the user asked to write."""
    if error.errno is None:
        return error
    return type(error)(error.errno, error.strerror or os.strerror(error.errno), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` to `path` atomically."""
    return atomic_write(path, lambda temporary: Path(temporary).write_text(text))


def write_json(path: str | os.PathLike, payload, indent: int = 2) -> Path:
    """Writes `payload` as JSON (sorted keys) to `path` atomically."""
    return write_text(path, json.dumps(payload, indent=indent, sort_keys=True) + "\n")
