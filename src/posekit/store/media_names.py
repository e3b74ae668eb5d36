"""Names of imported media files, valid on every file system the exports get copied to."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = [
    "LABEL_STUDIO_PREFIX",
    "base_name_candidates",
    "check_declared_size",
    "claim_stored_name",
    "portable_name",
]

T = TypeVar("T")

#: Label Studio stores uploads as ``upload/<project>/<8 hex>-<original name>``.
LABEL_STUDIO_PREFIX = re.compile(r"^[0-9a-f]{8}-(?=.)")

#: Characters Windows refuses in file names (and that break exports copied there);
#: uploaded and imported image names get ``_`` instead (see :func:`portable_name`).
_NON_PORTABLE = re.compile(r'[<>:"\\|?*\x00-\x1f]')
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)


def portable_name(name: str) -> str:
    """``name`` (a POSIX relative path) with every part valid on Windows too:
    ``<img onerror=x>.jpg`` -> ``_img onerror=x_.jpg``; ``con.jpg`` -> ``_con.jpg``;
    trailing dots and spaces dropped."""
    parts = []
    for part in name.split("/"):
        part = _NON_PORTABLE.sub("_", part).rstrip(" .") or "_"
        if part.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
            part = f"_{part}"
        parts.append(part)
    return "/".join(parts)


def check_declared_size(file: Path, where: str, source: Path, declared: tuple[int, int]) -> None:
    """Refuse (``StoreError`` naming ``file`` and ``where``) an image ``source`` that is
    not an image, or not of the ``declared`` width x height. Reads the header only."""
    from posekit.media import ImageError, image_size
    from posekit.store.errors import StoreError

    try:
        actual = image_size(source)
    except ImageError as exc:
        raise StoreError(f"{file}: {where}: {exc}") from None
    if actual != declared:
        raise StoreError(
            f"{file}: {where}: the file says {declared[0]}x{declared[1]} "
            f"pixels but the image is {actual[0]}x{actual[1]}; fix width/height"
        )


def claim_stored_name(file: Path, where: str, name: str, seen: set[str]) -> str:
    """The portable name ``name`` is stored under (:func:`portable_name`), added to
    ``seen``; a ``StoreError`` when another image of the file already has it."""
    from posekit.store.errors import StoreError

    stored = portable_name(name)
    if stored != name and stored in seen:
        raise StoreError(f"{file}: {where}: name clashes with {stored!r}")
    seen.add(stored)
    return stored


def base_name_candidates(name: str, by_base: Mapping[str, Sequence[T]]) -> list[T]:
    """What ``name`` may be by base name, from ``by_base`` (base name -> files or stored
    names): those of its base name, else (a Label Studio upload name
    ``<8 hex>-photo.jpg``) those of the base name without the prefix.

    A pure function for every import path that needs the same rule (one candidate:
    a match; several: ambiguous, not to be guessed).

    >>> base_name_candidates("upload/18/3f2a9c1b-a.jpg", {"a.jpg": ["a.jpg"]})
    ['a.jpg']
    >>> base_name_candidates("x/a.jpg", {"a.jpg": ["t/a.jpg", "v/a.jpg"]})
    ['t/a.jpg', 'v/a.jpg']
    """
    base = name.rpartition("/")[2]  # a POSIX relative name
    found = by_base.get(base)
    if not found:
        stripped = LABEL_STUDIO_PREFIX.sub("", base)
        found = by_base.get(stripped) if stripped != base else None
    return list(found or [])
