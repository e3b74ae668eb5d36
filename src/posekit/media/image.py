"""Image loading with EXIF orientation, size limits and clear errors."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_PIXELS",
    "ImageError",
    "find_images",
    "image_size",
    "load_image",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
#: Refuse images above this many pixels (decompression bombs), the one limit of the
#: library, the CLI and the server (whose uploads are checked against it too);
#: override with the ``POSEKIT_MAX_PIXELS`` environment variable. 100 MP decode to
#: 300 MB of RGB (400 MB inside PIL), the most one image may take.
MAX_PIXELS = int(os.environ.get("POSEKIT_MAX_PIXELS", 100_000_000))


class ImageError(ValueError):
    """An image cannot be read; the message names the file."""


def _source(path: str | os.PathLike[str] | BinaryIO) -> Path | BinaryIO:
    """A path as a :class:`Path`; an open binary stream (named for messages) as is."""
    return path if hasattr(path, "read") else Path(path)  # type: ignore[arg-type]


def _name(path: Path | BinaryIO) -> object:
    return getattr(path, "name", path) if hasattr(path, "read") else path


def _open(path: Path | BinaryIO) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except FileNotFoundError:
        raise ImageError(f"{_name(path)}: file not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{_name(path)}: image is too large (over {MAX_PIXELS} pixels)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = str(exc).replace(f" {str(_name(path))!r}", "")  # PIL repeats the path
        raise ImageError(f"{_name(path)}: not a readable image: {reason}") from None
    if image.width * image.height > MAX_PIXELS:
        width, height = image.size
        image.close()  # the caller never gets it: release the file handle now
        raise ImageError(
            f"{_name(path)}: image is too large ({width}x{height} > {MAX_PIXELS} pixels)"
        )
    return image


def image_size(path: str | Path | BinaryIO) -> tuple[int, int]:
    """``(width, height)`` after EXIF orientation, reading only the header (of a file,
    or of an open binary stream such as a media storage's object)."""
    path = _source(path)
    image = _open(path)
    with image:
        width, height = image.size
        try:
            orientation = image.getexif().get(0x0112, 1)
        except Exception:  # malformed EXIF: treat as upright
            orientation = 1
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return width, height


def load_image(path: str | Path | BinaryIO, *, max_side: int | None = None) -> np.ndarray:
    """Decode an image to ``(H, W, 3) uint8`` RGB with EXIF orientation applied.

    Truncated or corrupt files raise :class:`ImageError` naming the file
    (PIL's lenient ``LOAD_TRUNCATED_IMAGES`` is not used: a half-grey image
    would silently produce wrong labels). Images over :data:`MAX_PIXELS` are
    refused before they are decoded, so decoding never needs more memory than
    that limit allows.

    Args:
        path: The image file (or an open binary stream, e.g. from a media storage;
            messages show its ``name``).
        max_side: Decode at most this many pixels on the longest side: JPEGs are
            decoded at a reduced scale (1/2 ... 1/8, far less memory and time),
            other formats are reduced after decoding. The result is then smaller
            than the image; scale coordinates by ``image_size(path)`` over the
            array's shape. None: full size.

    Example:
        >>> pixels = load_image("photo.jpg", max_side=1024)  # doctest: +SKIP
        >>> max(pixels.shape[:2]) <= 1024  # doctest: +SKIP
        True
    """
    path = _source(path)
    image = _open(path)
    try:
        with image:
            if max_side is not None and max(image.size) > max_side:
                image.draft("RGB", (max_side, max_side))  # before load(): JPEG only
            image.load()
            if getattr(image, "n_frames", 1) > 1:
                image.seek(0)
            # In place: exif_transpose would otherwise return a full copy even of an
            # upright image, and convert() another one of an RGB image.
            ImageOps.exif_transpose(image, in_place=True)
            frame = image if image.mode == "RGB" else image.convert("RGB")
            if max_side is not None and max(frame.size) > max_side:
                ratio = max_side / max(frame.size)
                size = (max(1, round(frame.width * ratio)), max(1, round(frame.height * ratio)))
                frame = frame.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
            return np.asarray(frame, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{_name(path)}: truncated or corrupt image: {exc}") from None


def find_images(inputs: Iterable[str | Path], *, recursive: bool = True) -> list[Path]:
    """Image files among ``inputs`` (files, or folders searched recursively),
    sorted within each folder, duplicates removed. Missing paths raise."""
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            candidates = sorted(p for p in path.glob(pattern) if p.is_file())
            candidates = [p for p in candidates if p.suffix.lower() in IMAGE_EXTENSIONS]
        elif path.is_file():
            candidates = [path]
        else:
            raise ImageError(f"{path}: no such file or folder")
        for p in candidates:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                found.append(p)
    return found
