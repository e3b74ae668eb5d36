"""Copying media files into a workspace so that a failed import leaves no trace."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from posekit.store.workspace import Workspace

__all__ = ["MediaStager", "file_sha256"]


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
        temp = self._ws._checked_media_path(self._dir / f".incoming-{uuid.uuid4().hex}")
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
