"""keras_gon.files: files that appear whole or not at all (atomic_write, write_text, write_json)."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from keras_gon.files import about_path, atomic_write, write_json, write_text


class Interrupted(Exception):
    """Stands for anything that stops a writer midway (an error, a kill, Ctrl-C)."""


def _half_write_then_fail(temporary):
    with open(temporary, "w") as handle:
        handle.write("half of the ")
    raise Interrupted


def test_the_file_appears_whole_and_is_the_only_file(tmp_path):
    path = tmp_path / "out.txt"
    assert atomic_write(path, lambda temporary: Path(temporary).write_text("whole")) == path
    assert path.read_text() == "whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]  # no temporary left


def test_the_writer_writes_a_hidden_file_beside_the_target(tmp_path):
    seen = []

    def write(temporary):
        seen.append(temporary)
        assert not (tmp_path / "model.keras").exists()  # nothing at the target yet
        Path(temporary).write_text("x")

    atomic_write(tmp_path / "model.keras", write)
    (temporary,) = seen
    name = os.path.basename(temporary)
    assert os.path.dirname(temporary) == str(tmp_path)  # same folder: the rename is atomic
    assert name.startswith(".model-") and name.endswith(".keras")
    assert not os.path.exists(temporary)


def test_a_failing_writer_leaves_no_file_and_no_temporary(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(Interrupted):
        atomic_write(path, _half_write_then_fail)
    assert list(tmp_path.iterdir()) == []


def test_a_failing_overwrite_keeps_the_old_content(tmp_path):
    path = tmp_path / "metrics.json"
    write_json(path, {"loss": 1.0})
    old = path.read_bytes()
    with pytest.raises(Interrupted):
        atomic_write(path, _half_write_then_fail)
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    atomic_write(path, lambda temporary: Path(temporary).write_text("new"))  # then it works
    assert path.read_text() == "new"


def test_an_os_error_names_the_target_not_the_temporary(tmp_path):
    path = tmp_path / "run.png"

    def disk_full(temporary):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), temporary)

    with pytest.raises(OSError) as info:
        atomic_write(path, disk_full)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(FileNotFoundError) as info:  # the folder is missing: mkstemp fails
        atomic_write(tmp_path / "missing" / "run.png", lambda temporary: None)
    assert info.value.filename == str(tmp_path / "missing" / "run.png")


def test_about_path_keeps_the_class_and_errno():
    error = about_path(PermissionError(errno.EACCES, "Permission denied", "/tmp/.x-123"), "a/b")
    assert type(error) is PermissionError and error.errno == errno.EACCES
    assert error.filename == "a/b" and "Permission denied" in str(error)
    plain = OSError("no errno")
    assert about_path(plain, "a/b") is plain  # nothing to rebuild it from


def test_the_file_gets_the_permissions_of_a_new_file(tmp_path):
    mask = os.umask(0o027)
    try:
        path = write_text(tmp_path / "a.txt", "text")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # not mkstemp's 0o600


def test_write_text_and_write_json(tmp_path):
    assert write_text(tmp_path / "a.txt", "héllo\n").read_text() == "héllo\n"
    path = write_json(tmp_path / "a.json", {"b": [1, 2], "a": 0.5}, indent=1)
    assert path.read_text() == '{\n "a": 0.5,\n "b": [\n  1,\n  2\n ]\n}\n'  # sorted keys
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [1, 2]}
    with pytest.raises(TypeError):
        write_json(tmp_path / "bad.json", {"a": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.txt"]
