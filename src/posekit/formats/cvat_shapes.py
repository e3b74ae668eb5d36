"""The shapes of a CVAT XML document as instances: a ``<skeleton>`` (one ``<points>``
per node) or a plain ``<points>`` shape (K points matched by position), checked one by
one or, for the many skeletons of an images task, in bulk.
"""

from __future__ import annotations

import warnings
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.formats.cvat_fast import skeleton_columns
from posekit.formats.cvat_meta import _Layout
from posekit.formats.cvat_xml import (
    _FLAGS,
    VISIBILITY_ATTRIBUTE,
    CvatFormatError,
    _flag,
    _parse_points,
    _Shape,
    _source,
)

__all__: list[str] = []


def _new_instance(keypoints: np.ndarray, visibility: np.ndarray, source: str) -> Instance:
    # The arrays here were validated in bulk (shapes, finite coordinates, 0/1/2
    # visibility, zeroed unlabeled points): no per-instance re-validation.
    return Instance.trusted(keypoints, visibility, source=source)


def _visibility_attribute(shape: _Shape, k: int, where: str) -> np.ndarray | None:
    for name, parts in shape.attributes:
        if name != VISIBILITY_ATTRIBUTE:
            continue
        text = "".join(parts)
        values = text.replace(",", " ").split()
        if len(values) != k or not all(v in ("0", "1", "2") for v in values):
            raise CvatFormatError(
                f"{where}: attribute {VISIBILITY_ATTRIBUTE}={text!r}: expected {k} "
                "values of 0, 1 or 2"
            )
        return np.array([int(v) for v in values], dtype=np.uint8)
    return None


def _skeleton_points(
    shape: _Shape, layout: _Layout, where: str
) -> list[tuple[int, float, float, bool, bool, dict[str, str]]]:
    """``(template index, x, y, outside, occluded, attrs)`` of a ``<skeleton>``'s points."""
    out = []
    seen: set[int] = set()
    for point in shape.points:
        name = point.get("label")
        slot = layout.slots.get(name or "")
        if slot is None:
            raise CvatFormatError(
                f"{where}: <points label={name!r}> is not a node of skeleton {layout.label!r} "
                f"(nodes: {', '.join(layout.slots)})"
            )
        if slot in seen:
            raise CvatFormatError(f"{where}: <points label={name!r}> appears twice")
        seen.add(slot)
        point_where = f"{where}: <points label={name!r}>"
        xy = _parse_points(point.get("points"), point_where)
        if len(xy) != 1:
            raise CvatFormatError(
                f"{point_where} has {len(xy)} points, a skeleton node has exactly 1 "
                "(points count mismatch)"
            )
        out.append(
            (slot, xy[0][0], xy[0][1], _flag(point, "outside"), _flag(point, "occluded"), point)
        )
    return out


def _shape_instance(shape: _Shape, layout: _Layout, where: str) -> Instance:
    """One image shape, checked element by element (also the slow path that names the
    element when the bulk reader finds a problem)."""
    k = layout.skeleton.num_keypoints
    keypoints = np.zeros((k, 2), dtype=np.float32)
    visibility = np.zeros(k, dtype=np.uint8)
    if shape.tag == "skeleton":
        for slot, x, y, outside, occluded, _ in _skeleton_points(shape, layout, where):
            if not outside:
                keypoints[slot] = (x, y)
                visibility[slot] = 1 if occluded else 2
    else:
        xy = _parse_points(shape.get("points"), where)
        if len(xy) != k:
            raise CvatFormatError(
                f"{where}: {len(xy)} points, template {layout.skeleton.name!r} has {k} "
                "(points count mismatch)"
            )
        keypoints[:] = xy
        vis = _visibility_attribute(shape, k, where)
        if vis is None:
            vis = np.full(k, 1 if _flag(shape.attrs, "occluded", tag="points") else 2, np.uint8)
        visibility[:] = vis
        keypoints[visibility == 0] = 0
    return Instance(keypoints, visibility, source=_source(shape.attrs))


def _image_where(source: str, attrs: dict[str, str], shape: _Shape) -> str:
    return f"{source}: <image id={attrs.get('id')!r} name={attrs.get('name')!r}> <{shape.tag}>"


_DECIMAL_CHARACTERS = b"0123456789.,-+eE"


def _decimals(joined: str | bytes) -> np.ndarray:
    """The numbers of ``"x,y,x,y..."`` as float(): C parsing (``np.fromstring``) when the
    text holds only plain decimals, where it reads each as ``float()`` does."""
    raw = joined if isinstance(joined, bytes) else joined.encode("ascii", "replace")
    if raw and not raw.translate(None, _DECIMAL_CHARACTERS):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # text it stops reading
            try:
                values = np.fromstring(raw, dtype=np.float64, sep=",")
            except (DeprecationWarning, ValueError):
                values = None
        if values is not None and values.shape[0] == raw.count(b",") + 1:
            return values
    text = joined.decode("utf-8", "replace") if isinstance(joined, bytes) else joined
    return np.array(text.split(","), dtype=np.float64)


def _flags(values: list[str] | bytes) -> np.ndarray:
    """CVAT's 0/1 flags (:data:`_FLAGS`) as a bool array (KeyError on another value);
    bytes: one ``0``/``1`` byte per flag (the fast path's, checked by its grammar)."""
    if isinstance(values, bytes):
        return np.frombuffer(values, dtype=np.uint8) == ord("1")
    joined = "".join(values)
    if len(joined) == len(values) and not joined.encode("ascii", "replace").translate(None, b"01"):
        return np.frombuffer(joined.encode("ascii"), dtype=np.uint8) == ord("1")
    return np.array([_FLAGS[v] for v in values], dtype=bool)


def _column(points: list[dict[str, str]], name: str, default: str | None) -> list[Any]:
    """``[point.get(name, default) for point in points]``, at C speed when every point
    has the attribute (as CVAT and posekit write them)."""
    try:
        return list(map(itemgetter(name), points))
    except KeyError:
        return [point.get(name, default) for point in points]


def _bulk_skeletons(
    owners: list[tuple[int, _Shape]],
    images: list[tuple[dict[str, str], list[_Shape]]],
    layout: _Layout,
    source: str,
) -> list[Instance]:
    """The instances of many ``<skeleton>`` shapes, validated in bulk (numpy); on any
    problem the shapes are read one by one so that the error names the element."""
    k = layout.skeleton.num_keypoints
    slots = layout.slots
    columns = skeleton_columns([shape for _, shape in owners])
    if columns is not None:  # the fast path's columns (bytes)
        counts, labels, texts, outside_flags, occluded_flags = columns
        byte_slots = {name.encode(): slot for name, slot in slots.items()}
        slot = np.fromiter(map(byte_slots.get, labels, repeat(-1)), np.int64, len(labels))
        complete = not (slot.size and slot.min() < 0)  # every label a node; texts all there
        joined: bytes | str = b",".join(texts)
        outside: list[str] | bytes = outside_flags
        occluded: list[str] | bytes = occluded_flags
    else:
        points = [point for _, shape in owners for point in shape.points]
        counts = [len(shape.points) for _, shape in owners]
        point_slot = list(map(slots.get, _column(points, "label", "")))
        texts = _column(points, "points", None)
        complete = None not in point_slot and None not in texts
        slot = np.asarray(point_slot if complete else [], dtype=np.int64)
        outside = _column(points, "outside", "0")
        occluded = _column(points, "occluded", "0")
        joined = ""
    point_owner = np.repeat(np.arange(len(owners), dtype=np.int64), counts)

    def slow() -> list[Instance]:
        found = [
            _shape_instance(shape, layout, _image_where(source, images[i][0], shape))
            for i, shape in owners
        ]
        raise CvatFormatError(f"{source}: invalid skeleton points")  # pragma: no cover
        return found  # pragma: no cover

    m = len(texts)
    if m == 0:
        return [_new_instance(np.zeros((k, 2), np.float32), np.zeros(k, np.uint8),
                              _source(shape.attrs)) for _, shape in owners]  # fmt: skip
    if not complete:
        slow()
    if columns is None:
        joined = ",".join(texts)  # type: ignore[arg-type]
    try:
        values = _decimals(joined)
        out_flags = _flags(outside)
        occ_flags = _flags(occluded)
    except (KeyError, ValueError):
        slow()
    semicolon = b";" if isinstance(joined, bytes) else ";"
    if values.shape[0] != 2 * m or semicolon in joined or not np.all(np.isfinite(values)):
        slow()
    owner = point_owner
    # a node twice in one skeleton (np.unique costs 20x more than counting here)
    if m and np.bincount(owner * k + slot, minlength=len(owners) * k).max() > 1:
        slow()
    keypoints = np.zeros((len(owners), k, 2), dtype=np.float32)
    visibility = np.zeros((len(owners), k), dtype=np.uint8)
    shown = ~out_flags
    xy = values.reshape(m, 2)
    keypoints[owner[shown], slot[shown]] = xy[shown]
    visibility[owner[shown], slot[shown]] = np.where(occ_flags[shown], 1, 2)
    return [
        _new_instance(keypoints[n], visibility[n], _source(shape.attrs))
        for n, (_, shape) in enumerate(owners)
    ]
