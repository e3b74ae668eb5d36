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

from posekit.store.storage import StagedMedia

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
        mtime = path.lstat().st_mtime
    except OSError:
        return False
    return _stale(path.name, mtime, now)


def _stale(name: str, mtime: float, now: float) -> bool:
    age = now - mtime
    alive = _owner_alive(name)
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
    removed = workspace.storage.sweep_staging(lambda name, mtime: _stale(name, mtime, now))
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


class MediaStager:
    """Copies media files into the workspace's storage so that a failed import leaves
    no trace.

    Files are first staged (:meth:`posekit.store.storage.MediaStorage.stage`: a
    temporary copy, hashed while copying), published under their content-addressed
    keys with :meth:`publish` just before the database commit, and removed again by
    :meth:`rollback` if anything fails.
    """

    def __init__(self, workspace: Workspace, project_id: int, dataset_id: int) -> None:
        self._storage = workspace.storage
        self._folder = f"{int(project_id)}/{int(dataset_id)}"
        self._pending: list[StagedMedia] = []
        self._created: list[str] = []

    def stage(self, source: Path) -> tuple[str, str]:
        """Copy ``source`` to a temporary object; return ``(sha256, media_path)``."""
        suffix = source.suffix.lower() if source.suffix.lower().isascii() else ""
        with open(source, "rb") as handle:
            staged = self._storage.stage(handle, self._folder, suffix)
        self._pending.append(staged)
        return staged.sha256, staged.key

    def discard_last(self) -> None:
        """Drop the most recently staged file (a duplicate that will not be used)."""
        self._storage.discard(self._pending.pop())

    def publish(self) -> None:
        """Move staged files to their final keys (call inside the DB transaction)."""
        while self._pending:
            staged = self._pending[0]
            if self._storage.publish(staged):
                self._created.append(staged.key)
            self._pending.pop(0)

    def rollback(self) -> None:
        """Remove temporary files and files this import created."""
        for staged in self._pending:
            self._storage.discard(staged)
        for key in self._created:
            self._storage.delete(key)
        self._pending.clear()
        self._created.clear()
