"""Tests for posekit.formats.files: atomic writes leave the old file or the new one,
never half a file nor a temporary file, and give the file a normal mode."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from posekit.formats.files import atomic_path, atomic_write_bytes, atomic_write_text


def test_write_bytes_and_text(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    assert atomic_write_bytes(target, b"{}") == target
    assert target.read_bytes() == b"{}"
    atomic_write_text(str(target), "h\u00e9\n")
    assert target.read_bytes() == "h\u00e9\n".encode()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_new_file_mode_and_kept_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "a")
    assert target.stat().st_mode & 0o777 == 0o644
    os.chmod(target, 0o640)
    atomic_write_text(target, "b")
    assert target.stat().st_mode & 0o777 == 0o640


def test_failed_writer_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "table.h5"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer failed")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.h5"]


def test_atomic_path_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "labels.slp"
    with atomic_path(target, suffix=".slp") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".slp" and tmp.exists()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["labels.slp"]
