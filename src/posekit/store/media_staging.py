"""Copying media files into a workspace so that a failed import leaves no trace.

Staged files are named ``.incoming-<pid>-<random>`` inside the workspace's media
folder, and temporary folders (uploads being unpacked, exports being zipped)
live under ``<workspace>/.staging/<prefix><pid>-<random>``: an import killed
with ``kill -9`` leaves them behind, and :func:`sweep_stale_staging` (run when
a workspace opens) removes those of processes that are gone, and any older
than :data:`STALE_AFTER_S`. The database is never involved: staged files are
only referenced once an import commits.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from posekit.store.workspace import Workspace

__all__ = [
    "STAGING_DIR",
    "STALE_AFTER_S",
    "MediaStager",
    "file_sha256",
    "make_staging_dir",
    "sweep_stale_staging",
]

log = logging.getLogger(__name__)

#: Folder of the workspace holding temporary folders of running imports/exports.
STAGING_DIR = ".staging"
#: Staging older than this is stale even if its process id is in use again.
STALE_AFTER_S = 24 * 3600
_INCOMING = ".incoming-"


#: ``<anything><pid>-<32 hex>``: the process id of a staging entry's creator.
_OWNER = re.compile(r"(?:(\d+)-)?[0-9a-f]{32}$")


def _owner_alive(name: str) -> bool | None:
    """Whether the process that made a staging entry still runs (None: unknown)."""
    match = _OWNER.search(name)
    if match is None or match.group(1) is None:
        return None
    pid = int(match.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's process (or no way to tell): assume it runs
    return True


def _is_stale(path: Path, now: float) -> bool:
    try:
        age = now - path.lstat().st_mtime
    except OSError:
        return False
    alive = _owner_alive(path.name)
    return age > STALE_AFTER_S or alive is False or (alive is None and age > 3600)


def make_staging_dir(workspace: Workspace, prefix: str) -> Path:
    """A new temporary folder inside the workspace (swept if its process dies)."""
    root = workspace.root / STAGING_DIR
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{prefix}{os.getpid()}-{uuid.uuid4().hex}"
    folder.mkdir()
    return folder


def sweep_stale_staging(workspace: Workspace) -> int:
    """Remove staging left by killed imports; returns how many entries went."""
    now = time.time()
    removed = 0
    for temp in workspace.media_root.rglob(f"{_INCOMING}*"):
        if temp.is_file() and _is_stale(temp, now):
            temp.unlink(missing_ok=True)
            removed += 1
    staging = workspace.root / STAGING_DIR
    if staging.is_dir():
        for entry in staging.iterdir():
            if _is_stale(entry, now):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
    if removed:
        log.info("removed %d stale staging entries in %s", removed, workspace.root)
    return removed


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _rmdir_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
    except OSError:  # not empty, or gone
        return not folder.exists()
    return True


class MediaStager:
    """Copies media files into the workspace so that a failed import leaves no trace.

    Files are first copied to temporary names (hashing while copying), moved
    to their final content-addressed names with :meth:`publish` just before the
    database commit, and removed again by :meth:`rollback` if anything fails.
    """

    def __init__(self, workspace: Workspace, project_id: int, dataset_id: int) -> None:
        self._ws = workspace
        self._dir = workspace.media_root.resolve() / str(project_id) / str(dataset_id)
        self._pending: list[tuple[Path, Path]] = []
        self._created: list[Path] = []

    def stage(self, source: Path) -> tuple[str, str]:
        """Copy ``source`` to a temporary file; return ``(sha256, media_path)``."""
        self._dir.mkdir(parents=True, exist_ok=True)
        temp = self._ws._checked_media_path(
            self._dir / f"{_INCOMING}{os.getpid()}-{uuid.uuid4().hex}"
        )
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as src, open(temp, "xb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        sha = digest.hexdigest()
        suffix = source.suffix.lower() if source.suffix.lower().isascii() else ""
        final = self._ws._checked_media_path(self._dir / sha[:2] / f"{sha}{suffix}")
        self._pending.append((temp, final))
        return sha, final.relative_to(self._ws.media_root).as_posix()

    def discard_last(self) -> None:
        """Drop the most recently staged file (a duplicate that will not be used)."""
        temp, _ = self._pending.pop()
        temp.unlink(missing_ok=True)

    def publish(self) -> None:
        """Move staged files to their final names (call inside the DB transaction)."""
        for temp, final in self._pending:
            final.parent.mkdir(parents=True, exist_ok=True)
            existed = final.exists()
            os.replace(temp, final)
            if not existed:
                self._created.append(final)
        self._pending.clear()

    def rollback(self) -> None:
        """Remove temporary files and files this import created."""
        for temp, _ in self._pending:
            temp.unlink(missing_ok=True)
        for final in self._created:
            final.unlink(missing_ok=True)
        self._pending.clear()
        self._created.clear()
        # Remove folders left empty (never above the media root).
        media_root = self._ws.media_root.resolve()
        for folder in sorted(
            (p for p in self._dir.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            _rmdir_if_empty(folder)
        folder = self._dir
        while folder != media_root and folder.is_relative_to(media_root):
            if not _rmdir_if_empty(folder):
                break
            folder = folder.parent
