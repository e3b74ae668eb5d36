"""Helpers for benchmarks that compare code paths of two revisions in one run."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def overlay_tree(rev: str, files: Iterable[str], into: Path) -> Path:
    """A copy of the current ``src`` in ``into`` with ``files`` (paths from the repository
    root) as of ``rev``; a file that ``rev`` does not have is left out. Returns the
    copy's ``src`` folder (for ``PYTHONPATH``)."""
    shutil.copytree(ROOT / "src", into / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in files:
        old = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{name}"], capture_output=True)
        if old.returncode == 0:
            (into / name).write_bytes(old.stdout)
        else:  # not in that revision yet
            (into / name).unlink(missing_ok=True)
    return into / "src"
