"""Names of imported media files, valid on every file system the exports get copied to."""

from __future__ import annotations

import re

__all__ = ["portable_name"]

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
