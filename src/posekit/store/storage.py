"""Where media files live: one interface, :class:`MediaStorage`, and the workspace folder.

Every media read and write of the store and the server goes through a
:class:`MediaStorage` (``Workspace.storage``): imports stage and publish files
through it, the server serves images and thumbnails from it, exports copy from
it and deleting a project deletes its prefix. A backend stores opaque objects
under *keys*, POSIX relative paths such as ``3/7/ab/ab12...ef.jpg``
(``<project id>/<dataset id>/<sha[:2]>/<sha256><ext>``: content-addressed, so
two imports of ``a/1.jpg`` and ``b/1.jpg`` never overwrite each other); the
database stores the key as ``media_path``.

Writes are two-phase so that an import killed half-way leaves nothing an open
workspace keeps: :meth:`MediaStorage.stage` copies a file to a temporary object
while hashing it, :meth:`MediaStorage.publish` moves it to its content-addressed
key (atomically) just before the database commits, :meth:`MediaStorage.discard`
drops it, and :meth:`MediaStorage.sweep_staging` removes temporaries of
processes that died.

:class:`LocalStorage` keeps objects as files under the workspace's ``media/``
folder (the default, the layout of every posekit release). An S3-compatible
backend implements the same methods (staging under a temporary key, publish as
copy + delete) and returns None from :meth:`~MediaStorage.local_path`; the
routes then stream bytes instead of sending a file.

Example:
    >>> storage = LocalStorage(tmp_path / "media")  # doctest: +SKIP
    >>> stored = storage.put(b"...", "1/1", ".jpg")  # doctest: +SKIP
    >>> storage.read(stored.key) == b"..."  # doctest: +SKIP
    True
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.store.errors import NotFoundError, StoreError

__all__ = [
    "INCOMING_PREFIX",
    "LocalStorage",
    "MediaStorage",
    "StagedMedia",
    "check_key",
    "content_key",
    "media_source",
]

#: Name prefix of temporary objects (staged, not yet published).
INCOMING_PREFIX = ".incoming-"
_CHUNK = 1 << 20


def check_key(key: str) -> str:
    """``key`` if it is a safe relative POSIX path (never leaves the storage root).

    Raises:
        StoreError: naming the key (absolute, ``..``, drive letter, NUL, empty).
    """
    try:
        return safe_relative_name(key)
    except UnsafePathError as exc:
        raise StoreError(
            f"{key!r}: refusing a media key outside the media storage ({exc})"
        ) from None


@dataclass(frozen=True)
class StagedMedia:
    """A file copied into a storage but not yet under its key.

    Attributes:
        key: The content-addressed key it gets when published.
        sha256: Hex SHA-256 of its content.
        size: Its length in bytes.
        token: The backend's handle of the temporary copy (a path, a temporary key).
    """

    key: str
    sha256: str
    size: int
    token: Any


class MediaStorage(ABC):
    """Objects (media files) under safe relative keys; see the module docstring.

    Implementations must make :meth:`publish` atomic (a reader sees the whole
    object or none) and :meth:`keys` list published objects only. Keys are
    checked with :func:`check_key` before any use.
    """

    # ------------------------------------------------------------- writes
    @abstractmethod
    def stage(self, source: BinaryIO, folder: str, suffix: str = "") -> StagedMedia:
        """Copy a stream to a temporary object, hashing it on the way.

        Args:
            source: Open binary stream, read to its end.
            folder: Key prefix of the final key (``"<project>/<dataset>"``).
            suffix: File extension kept in the key (``".jpg"``), lower case.
        """

    @abstractmethod
    def publish(self, staged: StagedMedia) -> bool:
        """Move a staged object to its key, atomically; True when the key was new
        (False: the same content was there already)."""

    @abstractmethod
    def discard(self, staged: StagedMedia) -> None:
        """Drop a staged object that will not be published."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object (nothing happens when it is missing)."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key lies under ``prefix/``; returns how many."""

    @abstractmethod
    def sweep_staging(self, is_stale: Callable[[str, float], bool]) -> int:
        """Remove staged objects for which ``is_stale(name, mtime)`` holds (``name``:
        the temporary's last key component, ``mtime``: its epoch seconds)."""

    def put_file(
        self, source: str | os.PathLike[str], folder: str, suffix: str | None = None
    ) -> StagedMedia:
        """Store a file under its content-addressed key (stage + publish).

        ``suffix`` defaults to the file's own extension (lower case, ASCII only).
        """
        source = Path(source)
        if suffix is None:
            suffix = source.suffix.lower() if source.suffix.isascii() else ""
        with open(source, "rb") as handle:
            staged = self.stage(handle, folder, suffix)
        self.publish(staged)
        return staged

    def put(self, data: bytes, folder: str, suffix: str = "") -> StagedMedia:
        """Store bytes under their content-addressed key (stage + publish)."""
        staged = self.stage(io.BytesIO(data), folder, suffix)
        self.publish(staged)
        return staged

    # ------------------------------------------------------------- reads
    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """The object as a readable binary stream (close it after use).

        Raises:
            NotFoundError: No object under ``key`` (the message names it).
        """

    def read(self, key: str) -> bytes:
        """The whole object as bytes (:class:`NotFoundError` when missing)."""
        with self.open(key) as handle:
            return handle.read()

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    @abstractmethod
    def size(self, key: str) -> int:
        """Length of the object in bytes (:class:`NotFoundError` when missing)."""

    @abstractmethod
    def keys(self, prefix: str = "") -> Iterator[str]:
        """Keys of the published objects under ``prefix`` (all when empty), for sweeps."""

    def local_path(self, key: str) -> Path | None:
        """The object's file on this machine, when the backend keeps one (checked to
        lie inside the storage; not checked to exist); None for remote backends."""
        check_key(key)
        return None


def _copy_hashing(source: BinaryIO, target: BinaryIO) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def content_key(folder: str, sha256: str, suffix: str) -> str:
    """The key of content ``sha256`` in ``folder``: ``<folder>/<sha[:2]>/<sha><suffix>``."""
    return f"{folder}/{sha256[:2]}/{sha256}{suffix}" if folder else f"{sha256[:2]}/{sha256}{suffix}"


class LocalStorage(MediaStorage):
    """Objects as files under a folder (the workspace's ``media/``).

    Keys are checked lexically (cheap enough for listing 100k items) and,
    before a write, resolved with symlinks to lie inside the folder. Staged
    files are ``<folder>/.incoming-<pid>-<hex>`` next to their final place, so
    publishing is one ``os.replace``. Folders left empty by a delete or a
    discard are removed (never the root).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    # ------------------------------------------------------------- paths
    def local_path(self, key: str) -> Path:
        """The file of ``key`` under the root (lexically checked)."""
        return self.root / check_key(key)

    def _checked(self, key: str) -> Path:
        """The file of ``key``, resolved through symlinks and checked to stay inside."""
        path = self.local_path(key).resolve()
        if not path.is_relative_to(self.root):
            raise StoreError(f"{key!r}: refusing a media path outside {self.root}")
        return path

    def _prune(self, folder: Path) -> None:
        """Remove ``folder`` and its parents while they are empty (never the root)."""
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:  # not empty, or gone
                if folder.exists():
                    return
            folder = folder.parent

    # ------------------------------------------------------------- writes
    def stage(self, source: BinaryIO, folder: str, suffix: str = "") -> StagedMedia:
        directory = self._checked(folder) if folder else self.root
        temp = directory / f"{INCOMING_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        for attempt in (0, 1):
            directory.mkdir(parents=True, exist_ok=True)
            try:
                handle = open(temp, "xb")  # noqa: SIM115 (closed below)
                break
            except FileNotFoundError:  # pruned by a concurrent rollback: make it again
                if attempt:
                    raise
        try:
            with handle:
                sha, size = _copy_hashing(source, handle)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        key = content_key(folder, sha, suffix)
        check_key(key)
        return StagedMedia(key=key, sha256=sha, size=size, token=temp)

    def publish(self, staged: StagedMedia) -> bool:
        final = self._checked(staged.key)
        existed = final.exists()
        for attempt in (0, 1):
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(staged.token, final)
                break
            except FileNotFoundError:
                if attempt or not Path(staged.token).exists():
                    raise
        return not existed

    def discard(self, staged: StagedMedia) -> None:
        temp = Path(staged.token)
        temp.unlink(missing_ok=True)
        self._prune(temp.parent)

    def delete(self, key: str) -> None:
        path = self._checked(key)
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        folder = self._checked(prefix)
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
        self._prune(folder.parent)
        return count

    def sweep_staging(self, is_stale: Callable[[str, float], bool]) -> int:
        removed = 0
        for temp in self.root.rglob(f"{INCOMING_PREFIX}*"):
            try:
                mtime = temp.lstat().st_mtime
            except OSError:
                continue
            if not is_stale(temp.name, mtime):
                continue
            if temp.is_dir() and not temp.is_symlink():
                shutil.rmtree(temp, ignore_errors=True)  # a frame folder being copied
            else:
                temp.unlink(missing_ok=True)
            removed += 1
        return removed

    # ------------------------------------------------------------- reads
    def open(self, key: str) -> BinaryIO:
        try:
            return open(self.local_path(key), "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"media {key!r} is not in {self.root}") from None

    def exists(self, key: str) -> bool:
        return self.local_path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self.local_path(key).stat().st_size
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundError(f"media {key!r} is not in {self.root}") from None

    def keys(self, prefix: str = "") -> Iterator[str]:
        folder = self.local_path(prefix) if prefix else self.root
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(self.root)
            if any(part.startswith(INCOMING_PREFIX) for part in relative.parts):
                continue
            if path.is_file():
                yield relative.as_posix()


def media_source(storage: MediaStorage, key: str) -> Path | BinaryIO:
    """What a decoder (PIL) reads for ``key``: the local file when the backend has one,
    else the object's bytes in memory (named after the key for messages).

    Raises:
        NotFoundError: The object is missing.
    """
    path = storage.local_path(key)
    if path is not None:
        if not path.is_file():
            raise NotFoundError(f"media {key!r} is missing")
        return path
    buffer = io.BytesIO(storage.read(key))
    buffer.name = key  # type: ignore[attr-defined]
    return buffer
