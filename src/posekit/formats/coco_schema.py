"""The COCO keypoints file's vocabulary, shared by the COCO reader and writer.

Field names, the per-instance round-trip stash, the error type and small
validation helpers (see :mod:`posekit.formats.coco` for the format itself).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from posekit.core import Instance

__all__ = [
    "ABSENT",
    "ANNOTATION_KEYS",
    "FLOAT32_MAX",
    "IMAGE_KEYS",
    "OPTIONAL_NULLABLE",
    "POSEKIT_FIELD",
    "STASH_KEY",
    "TOP_KEYS",
    "CocoFormatError",
    "element_name",
    "geometry_crc",
    "geometry_crc_arrays",
    "is_int",
    "is_number",
]

#: Key of the per-instance round-trip stash in ``Instance.extra`` (never written as a field).
STASH_KEY = "_coco"
#: Name of the annotation field that carries posekit's review data.
POSEKIT_FIELD = "posekit"

ANNOTATION_KEYS = frozenset(
    {
        "id",
        "image_id",
        "category_id",
        "keypoints",
        "num_keypoints",
        "bbox",
        "iscrowd",
        "area",
        "segmentation",
        "score",
        "track_id",
        POSEKIT_FIELD,
    }
)
IMAGE_KEYS = frozenset({"id", "file_name", "width", "height"})
TOP_KEYS = frozenset({"info", "licenses", "images", "annotations", "categories"})
OPTIONAL_NULLABLE = ("bbox", "area", "segmentation", "score", "track_id")
ABSENT = object()
#: Coordinates, boxes and areas are float32: larger magnitudes are refused, not inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)


class CocoFormatError(ValueError):
    """A COCO file is malformed; the message names the bad element (index and id)."""


def geometry_crc(instance: Instance) -> int:
    """CRC of an instance's keypoints, visibility and box: tells whether the geometry
    changed since the file was read (the stash is valid only while it did not)."""
    return geometry_crc_arrays(instance.keypoints, instance.visibility, instance.box)


def geometry_crc_arrays(keypoints: Any, visibility: Any, box: Any) -> int:
    """:func:`geometry_crc` of the arrays of an instance (``box`` may be None)."""
    crc = zlib.crc32(np.ascontiguousarray(keypoints, dtype=np.float32).tobytes())
    crc = zlib.crc32(np.ascontiguousarray(visibility, dtype=np.uint8).tobytes(), crc)
    if box is not None:
        crc = zlib.crc32(np.ascontiguousarray(box, dtype=np.float32).tobytes(), crc)
    return crc


def element_name(kind: str, index: int, item: Any) -> str:
    """``annotations[12] (id 4711)``: how error messages name an element of a list."""
    item_id = item.get("id") if isinstance(item, dict) else None
    return f"{kind}[{index}]" + (f" (id {item_id})" if item_id is not None else "")


def is_int(value: Any) -> bool:
    return type(value) is int


def is_number(value: Any) -> bool:
    return type(value) in (int, float)
