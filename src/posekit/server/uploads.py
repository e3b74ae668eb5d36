"""Checking uploaded files before anything reaches the workspace.

Uploads are all-or-nothing: every file of a request is checked (name, size,
type by content, pixel count, full decode) into a private temporary folder, and
only if all pass are they imported; otherwise the request is refused with the
first bad file named and nothing is written.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from posekit.media import IMAGE_EXTENSIONS
from posekit.media.video import VIDEO_EXTENSIONS

__all__ = ["IMAGE_FORMATS", "UploadRefused", "check_image_file", "safe_upload_name"]

#: Image formats accepted by content (PIL format name -> extension for names
#: that lack an image extension).
IMAGE_FORMATS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "TIFF": ".tif",
}
#: What the refusal of an unsupported file says is accepted (videos: the CLI's import).
_ACCEPTED = (
    f"accepted images: {', '.join(sorted(set(IMAGE_FORMATS) - {'MPO'}))} "
    f"({', '.join(sorted(IMAGE_EXTENSIONS))}); videos "
    f"({', '.join(sorted(VIDEO_EXTENSIONS))}) are imported with `posekit import`"
)
_COPY_CHUNK = 1024 * 1024
#: Longest file or folder name (bytes of UTF-8) most file systems store.
MAX_NAME_BYTES = 255


@dataclass
class UploadRefused(Exception):
    """A file was refused: HTTP ``status`` and a message naming the file."""

    status: int
    message: str

    def __str__(self) -> str:
        return self.message


def safe_upload_name(raw: str | None) -> PurePosixPath:
    """The uploaded file name as a safe relative path, else :class:`UploadRefused` (422).

    Backslashes count as separators; absolute paths, drive letters, ``..``,
    NUL and other control characters are refused (nothing may land outside the
    upload folder, and names are shown to people).
    """
    from posekit.media.paths import UnsafePathError, safe_relative_path

    if raw is None or not raw.strip():
        raise UploadRefused(422, "an uploaded file has no file name")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise UploadRefused(422, f"file name {raw!r} contains control characters")
    if len(raw) > 1000:
        raise UploadRefused(422, f"file name {raw[:60]!r}... is longer than 1000 characters")
    try:
        name = safe_relative_path(raw)
    except UnsafePathError as exc:
        raise UploadRefused(422, f"refused upload: {exc}") from None
    for part in name.parts:
        if len(part.encode("utf-8")) > MAX_NAME_BYTES:
            raise UploadRefused(
                422,
                f"file name {raw[:60]!r}... has a part of {len(part.encode('utf-8'))} bytes; "
                f"file systems allow at most {MAX_NAME_BYTES}",
            )
    return name


def save_upload(source: BinaryIO, target: Path, name: str, max_bytes: int) -> int:
    """Copy an upload stream to ``target``, refusing it (413) once it exceeds ``max_bytes``."""
    written = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise UploadRefused(
                    413, f"file {name!r} is too large (over the limit of {max_bytes} bytes)"
                )
            out.write(chunk)
    return written


def check_image_file(path: Path, name: str, max_pixels: int) -> str:
    """Check that ``path`` is a whole image of an accepted type and size.

    Returns:
        The extension of its format (``.jpg``, ``.png`` ...).

    Raises:
        UploadRefused: 415 not an image (by content) or an unsupported format;
            413 more than ``max_pixels`` pixels; 422 truncated or corrupt.
    """
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except UnidentifiedImageError:
            raise UploadRefused(
                415, f"file {name!r} is not an image (by its content); {_ACCEPTED}"
            ) from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadRefused(
                413, f"file {name!r} has too many pixels (limit {max_pixels})"
            ) from None
        except (OSError, ValueError, SyntaxError) as exc:
            raise UploadRefused(422, f"file {name!r} is not a readable image: {exc}") from None
        with image:
            fmt = image.format or ""
            if fmt not in IMAGE_FORMATS:
                raise UploadRefused(
                    415,
                    f"file {name!r} is a {fmt or 'unknown'} image; {_ACCEPTED}",
                )
            width, height = image.size
            if width * height > max_pixels:
                raise UploadRefused(
                    413,
                    f"file {name!r} has too many pixels ({width}x{height} > {max_pixels})",
                )
            try:
                # A full decode (truncated files fail here); a JPEG at 1/8 scale, which
                # still reads every byte but needs 1/64 of the memory.
                image.draft(None, (max(1, width // 8), max(1, height // 8)))
                image.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UploadRefused(
                    413, f"file {name!r} has too many pixels (limit {max_pixels})"
                ) from None
            except (OSError, ValueError, SyntaxError) as exc:
                raise UploadRefused(
                    422, f"file {name!r} is a truncated or corrupt image: {exc}"
                ) from None
    return IMAGE_FORMATS[fmt]


def stored_name(name: PurePosixPath, extension: str) -> PurePosixPath:
    """``name``, with the format's extension appended if it has no image extension
    (the import recognises images by extension, the check above by content)."""
    if name.suffix.lower() in IMAGE_EXTENSIONS:
        return name
    return name.with_name(name.name + extension)


def remove_tree(path: Path) -> None:
    """Remove a staging folder (ignoring errors: the workspace sweeps leftovers when
    it next opens)."""
    shutil.rmtree(path, ignore_errors=True)
