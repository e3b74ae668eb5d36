"""Typed structs of the parts of a Label Studio export that the reader uses, for
the fast decode of :mod:`posekit.formats.labelstudio_fast`.

``msgspec`` decodes the JSON straight into these structs, keeping only the fields
listed here (``from_name``, ``to_name``, ``origin``, user fields of ``data``/``meta``
and the like are skipped without building Python objects), so a keypoint region
costs a few objects instead of the ~13 of a generic parse. The types are strict:
a field of another type (a string ``x``, a non-object ``value`` or ``meta``, a
float task id...) or malformed JSON makes the decode fail, and the reader then
parses the file generically, where its checks raise the usual messages. Fields
that posekit only reads as "a string or not" are typed ``str | None`` all the
same: the fast path only takes files whose every such field is of the usual type.

A region's ``image_rotation`` must be 0 (or absent): a rotated image, an error
for posekit's regions, is left to the generic reader with the rest. Label lists
are decoded as tuples: msgspec builds a million one-element lists
several times slower than tuples (a keypoint region's ``keypointlabels`` must
hold exactly one name, so another length also fails the strict decode).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

#: Default of optional numbers: a float column then needs no None check (an
#: explicit ``null`` still decodes as None).
MISSING = float("nan")

__all__ = [
    "MISSING",
    "Annotation",
    "PosekitMeta",
    "Prediction",
    "Region",
    "Task",
    "TaskMeta",
    "decoder",
]


class Value(msgspec.Struct, gc=False):
    """A region's ``value`` (keypoint, rectangle or per-region choice)."""

    x: float | None = MISSING
    y: float | None = MISSING
    width: float | None = MISSING
    height: float | None = MISSING
    rotation: float | None = MISSING
    keypointlabels: tuple[str] | None = None  # exactly one name
    rectanglelabels: tuple[str, ...] | None = None
    choices: tuple[str, ...] | None = None


class RegionMeta(msgspec.Struct, gc=False):
    """A region's ``meta`` (posekit marks derived boxes in ``text``)."""

    text: tuple[str, ...] | None = None


class Region(msgspec.Struct, gc=False):
    """One entry of a ``result`` list."""

    id: str | None = None
    type: str | None = None
    parentID: str | None = None  # Label Studio's name
    original_width: int | None = None
    original_height: int | None = None
    image_rotation: Literal[0] | None = None  # posekit reads unrotated images only
    value: Value | None = None
    score: float | None = MISSING
    meta: RegionMeta | None = None


class Annotation(msgspec.Struct, gc=False):
    """One entry of a task's ``annotations``."""

    result: list[Region] | None = None
    was_cancelled: bool | None = None
    skipped: bool | None = None
    updated_at: str | None = None
    created_at: str | None = None


class Prediction(msgspec.Struct, gc=False):
    """One entry of a task's ``predictions``."""

    result: list[Region] | None = None
    model_version: str | None = None
    score: float | None = None


class PosekitMeta(msgspec.Struct, gc=False):
    """``meta.posekit`` as :func:`~posekit.formats.labelstudio.to_labelstudio` writes it."""

    file_name: str | None = None
    width: int | None = None
    height: int | None = None


class TaskMeta(msgspec.Struct, gc=False):
    """A task's ``meta``."""

    posekit: PosekitMeta | None = None


class Task(msgspec.Struct, gc=False):
    """One task of the export."""

    id: int | None = None
    data: dict[str, Any] | None = None
    meta: TaskMeta | None = None
    annotations: list[Annotation] | None = None
    predictions: list[Prediction] | None = None


_DECODER: Any = None


def decoder() -> msgspec.json.Decoder:
    """The decoder of an export: a list of tasks, or one task."""
    global _DECODER
    if _DECODER is None:
        _DECODER = msgspec.json.Decoder(list[Task] | Task)
    return _DECODER
