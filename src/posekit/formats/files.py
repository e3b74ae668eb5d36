"""The file layer shared by the format modules.

Writing format files atomically: a temporary file in the destination folder that
then replaces the destination (``os.replace``), so a crash or an error never leaves
half a file, and an existing file is kept until the new one is complete. The new
file gets the mode of the file it replaces, else ``0o644`` (as :func:`write_coco
<posekit.formats.coco.write_coco>` does), not the ``0o600`` of a temporary file.
Reading the stored size of an image next to an annotation file
(:func:`stored_image_size`).

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())
    >>> atomic_write_text(folder / "a.txt", "hello").read_text()
    'hello'
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "stored_image_size",
    "temporary_beside",
]

_NEW_FILE_MODE = 0o644


def _mode_for(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        return _NEW_FILE_MODE


def temporary_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """``tempfile.mkstemp`` in ``path``'s folder: ``(fd, name)`` of a new hidden file.

    Raises:
        FileNotFoundError: the folder does not exist; the error names the folder (not
            the temporary file's name).
    """
    if not path.parent.is_dir():
        raise FileNotFoundError(errno.ENOENT, "output folder does not exist", str(path.parent))
    return tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary path next to ``path`` for a writer that needs a file name (an
    existing, empty file); it replaces ``path`` when the block ends without an
    error, and is removed otherwise. ``suffix`` is the temporary file's suffix (for
    writers that pick the format from it)."""
    path = Path(path)
    fd, tmp_name = temporary_beside(path, suffix)
    os.close(fd)
    try:
        yield Path(tmp_name)
        os.chmod(tmp_name, _mode_for(path))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], payload: bytes) -> Path:
    """Write ``payload`` to ``path`` atomically; returns ``path`` as a :class:`Path`."""
    path = Path(path)
    fd, tmp_name = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp_name, _mode_for(path))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (no newline translation); returns ``path``."""
    return atomic_write_bytes(path, text.encode(encoding))


def stored_image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` as stored in the image file's header (no EXIF rotation),
    or None when the file is missing or not a readable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        return None
