"""Path safety for file names that come from dataset files, uploads and exports.

A file name from outside (a COCO ``file_name``, an uploaded file's name) is
joined to a folder only after :func:`safe_relative_path` has checked it: the
result can never leave that folder.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

__all__ = ["UnsafePathError", "safe_relative_name", "safe_relative_path"]

_DRIVE_RE = re.compile(r"^[A-Za-z]:")


class UnsafePathError(ValueError):
    """A file name is not a safe relative path; the message names it and the reason."""


def safe_relative_name(file_name: str) -> str:
    """:func:`safe_relative_path` as a POSIX string (``"images/val/1.jpg"``).

    Names that are already plain and normal (no backslash, colon or NUL, no
    empty, ``.`` or ``..`` component) are returned as they are without building
    a path object: reading a 100k-image COCO file checks every name.

    Raises:
        UnsafePathError: naming the file name and the reason.
    """
    if (
        type(file_name) is str
        and file_name
        and "\\" not in file_name
        and ":" not in file_name
        and "\x00" not in file_name
        and "//" not in file_name
        and "/." not in file_name
        and file_name[0] not in "/."
        and file_name[-1] != "/"
    ):
        return file_name
    return safe_relative_path(file_name).as_posix()


def safe_relative_path(file_name: str) -> PurePosixPath:
    """Check a file name from a dataset file or an upload and return it as a relative path.

    Backslashes are read as separators (files written on Windows). Rejected:
    empty names, NUL characters, absolute paths, drive letters (``C:``) and any
    ``..`` component, so that joining the result to a folder can never leave
    that folder.

    Raises:
        UnsafePathError: naming the file name and the reason.

    Example:
        >>> safe_relative_path("images\\\\val\\\\1.jpg")
        PurePosixPath('images/val/1.jpg')
    """
    if not isinstance(file_name, str) or not file_name:
        raise UnsafePathError(f"file name {file_name!r} is not a non-empty string")
    if "\x00" in file_name:
        raise UnsafePathError(f"file name {file_name!r} contains a NUL character")
    normalised = file_name.replace("\\", "/")
    if normalised.startswith("/"):
        raise UnsafePathError(f"file name {file_name!r} is an absolute path")
    if _DRIVE_RE.match(normalised):
        raise UnsafePathError(f"file name {file_name!r} starts with a drive letter")
    if ".." in normalised.split("/"):
        raise UnsafePathError(f"file name {file_name!r} climbs out of the image folder ('..')")
    path = PurePosixPath(normalised)
    if not path.parts or path == PurePosixPath("."):
        raise UnsafePathError(f"file name {file_name!r} names no file")
    return path
