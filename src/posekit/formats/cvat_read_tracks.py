"""The ``<track>`` elements of a CVAT for video document: each point's keyframes,
every frame of the track by CVAT's rule (:mod:`posekit.formats.cvat_tracks`), and the
:class:`~posekit.dataset.TrackRecord` that keeps the keyframes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import TrackRecord
from posekit.formats.cvat_meta import _Layout, _Meta
from posekit.formats.cvat_shapes import _new_instance, _skeleton_points, _visibility_attribute
from posekit.formats.cvat_tracks import PointKeyframes, element_states
from posekit.formats.cvat_xml import (
    CVAT_STASH_KEY,
    CvatFormatError,
    _Collector,
    _flag,
    _parse_points,
    _Shape,
    _source,
)

__all__: list[str] = []


@dataclass
class _TrackResult:
    track_id: int
    frames: list[int]  # absolute frames with an instance
    instances: list[Instance]
    record: TrackRecord


def _track_frames(doc: _Collector, meta: _Meta) -> tuple[int, int, int]:
    """``(start, step, num_frames)`` of the task's frame numbering."""
    start, step = meta.start_frame, meta.step
    if meta.size is not None:
        return start, step, meta.size
    last = -1
    for _, shapes in doc.tracks:
        for shape in shapes:
            frame = shape.get("frame")
            if frame is not None and frame.lstrip("-").isdigit():
                last = max(last, int(frame))
    if meta.stop_frame is not None:
        last = max(last, meta.stop_frame)
    return start, step, max(0, (last - start) // step + 1)


def _relative(frame_text: str | None, start: int, step: int, n: int, where: str) -> int:
    try:
        frame = int(frame_text or "")
    except ValueError:
        raise CvatFormatError(f"{where}: frame={frame_text!r} is not an integer") from None
    rel, rest = divmod(frame - start, step)
    if rest or not 0 <= rel < n:
        raise CvatFormatError(
            f"{where}: frame {frame} is not a frame of the task (start {start}, step {step}, "
            f"{n} frames)"
        )
    return rel


def _shape_frame(shape: _Shape) -> int:
    try:
        return int(shape.get("frame", "0") or 0)
    except ValueError:
        return 0  # reported by _relative


def _read_track(
    attrs: dict[str, str],
    shapes: list[_Shape],
    number: int,
    layout: _Layout,
    frames: tuple[int, int, int],
    where: str,
) -> _TrackResult | None:
    start, step, n = frames
    k = layout.skeleton.num_keypoints
    track_id = int(attrs["id"]) if (attrs.get("id") or "").isdigit() else number
    where = f"{where}: <track id={attrs.get('id')!r} label={layout.label!r}>"
    rows: list[dict[int, tuple[float, float, bool, bool]]] = [{} for _ in range(k)]
    first_seen = [True] * k
    tag = "skeleton" if layout.kind == "skeleton" else "points"
    source = _source(attrs)
    for shape in sorted((s for s in shapes if s.tag == tag), key=_shape_frame):
        rel = _relative(shape.get("frame"), start, step, n, f"{where} <{tag}>")
        shape_where = f"{where} <{tag} frame={shape.get('frame')!r}>"
        shape_key = _flag(shape.attrs, "keyframe", "1", tag)
        shape_outside = _flag(shape.attrs, "outside", "0", tag)
        if layout.kind == "skeleton":
            entries = [
                (slot, x, y, out or shape_outside, occ,
                 _flag(point, "keyframe", "1" if shape_key else "0"))
                for slot, x, y, out, occ, point in _skeleton_points(shape, layout, shape_where)
            ]  # fmt: skip
        else:
            xy = _parse_points(shape.get("points"), shape_where)
            if len(xy) != k:
                raise CvatFormatError(
                    f"{shape_where}: {len(xy)} points, template {layout.skeleton.name!r} has "
                    f"{k} (points count mismatch)"
                )
            vis = _visibility_attribute(shape, k, shape_where)
            occluded = _flag(shape.attrs, "occluded", "0", tag)
            entries = [
                (i, x, y, shape_outside or (vis is not None and vis[i] == 0),
                 bool(occluded if vis is None else vis[i] == 1), shape_key)
                for i, (x, y) in enumerate(xy)
            ]  # fmt: skip
        for slot, x, y, outside, occluded, keyframe in entries:
            # CVAT makes the first shape of every element a keyframe.
            if not (keyframe or first_seen[slot]):
                continue
            first_seen[slot] = False
            if rel in rows[slot]:
                raise CvatFormatError(f"{shape_where}: a second keyframe for one point")
            rows[slot][rel] = (x, y, outside, occluded)
    keys = [PointKeyframes.from_rows([(f, *rows[s][f]) for f in sorted(rows[s])]) for s in range(k)]
    hold = layout.kind == "points" and k > 1
    xy = np.zeros((n, k, 2), dtype=np.float64)
    vis = np.zeros((n, k), dtype=np.uint8)
    for s in range(k):
        xy[:, s], vis[:, s] = element_states(keys[s], n, hold=hold)
    present = np.any(vis > 0, axis=1)
    if not present.any():
        return None
    rel_frames = np.flatnonzero(present).tolist()
    xy32 = xy.astype(np.float32)
    instances = []
    for f in rel_frames:
        instance = _new_instance(xy32[f], vis[f], source)
        instance.track_id = track_id
        instances.append(instance)
    absolute = [start + f * step for f in rel_frames]
    key_rel = set().union(*(set(key.frames.tolist()) for key in keys))
    keyframes = {start + f * step for f in key_rel if present[f]}
    ends = np.flatnonzero(~present[1:] & present[:-1]) + 1
    outside = {start + int(f) * step for f in ends.tolist()}
    stash: dict[str, Any] = {
        "points": {
            layout.skeleton.keypoints[s]: [
                [start + int(r[0]) * step, *r[1:]] for r in keys[s].to_rows()
            ]
            for s in range(k)
        }
    }
    if hold:
        stash["hold"] = True
    record = TrackRecord(
        video="",
        track_id=track_id,
        keyframes=keyframes,
        outside=outside,
        label=layout.label,
        extra={CVAT_STASH_KEY: stash},
    )
    return _TrackResult(track_id, absolute, instances, record)
