"""Writing a :class:`PoseDataset` as CVAT for images 1.1 or CVAT for video 1.1 XML.

See :mod:`posekit.formats.cvat` for the layout; the XML text is built directly
(names and values escaped with :func:`xml.sax.saxutils.quoteattr`), which is
several times faster than building an element tree for 100k instances.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from posekit.core import Instance
from posekit.dataset import PoseDataset, TrackRecord, VideoRecord
from posekit.formats.cvat_tracks import PointKeyframes, element_states
from posekit.formats.cvat_xml import CVAT_STASH_KEY, VISIBILITY_ATTRIBUTE, CvatFormatError
from posekit.formats.numbers import shortest_decimals
from posekit.skeleton import Skeleton

__all__ = ["to_cvat"]

logger = logging.getLogger(__name__)

# Interpolated frames of a track made in posekit must match CVAT's rule within this
# many pixels, else they are written as keyframes (no frame is lost).
_TOLERANCE_PX = 1e-3


def _num(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _svg(skeleton: Skeleton) -> str:
    """CVAT's skeleton SVG: one circle per node (on a circle in a 100x100 box), one
    line per edge, node ids 1..K in template order."""
    k = skeleton.num_keypoints
    pos = [
        (50 + 40 * math.cos(2 * math.pi * i / k), 50 + 40 * math.sin(2 * math.pi * i / k))
        for i in range(k)
    ]
    parts = []
    for a, b in skeleton.edge_index.tolist():
        parts.append(
            f'<line x1="{pos[a][0]:.3f}" y1="{pos[a][1]:.3f}" x2="{pos[b][0]:.3f}" '
            f'y2="{pos[b][1]:.3f}" stroke="black" data-type="edge" data-node-from="{a + 1}" '
            f'stroke-width="0.5" data-node-to="{b + 1}"></line>'
        )
    for i, name in enumerate(skeleton.keypoints):
        parts.append(
            f'<circle r="1.5" stroke="black" fill="#b3b3b3" cx="{pos[i][0]:.3f}" '
            f'cy="{pos[i][1]:.3f}" stroke-width="0.1" data-type="element node" '
            f'data-element-id="{i + 1}" data-node-id="{i + 1}" data-label-name="{name}">'
            "</circle>"
        )
    return "".join(parts)


def _labels_xml(skeleton: Skeleton, label: str, layout: str) -> list[str]:
    lines = ["      <labels>"]
    if layout == "points":
        lines += [
            "        <label>",
            f"          <name>{escape(label)}</name>",
            "          <type>points</type>",
            "          <attributes>",
            "            <attribute>",
            f"              <name>{VISIBILITY_ATTRIBUTE}</name>",
            "              <mutable>True</mutable>",
            "              <input_type>text</input_type>",
            "              <default_value></default_value>",
            "              <values></values>",
            "            </attribute>",
            "          </attributes>",
            "        </label>",
        ]
    else:
        lines += [
            "        <label>",
            f"          <name>{escape(label)}</name>",
            "          <type>skeleton</type>",
            "          <attributes>",
            "          </attributes>",
            f"          <svg>{escape(_svg(skeleton))}</svg>",
            "        </label>",
        ]
        for name in skeleton.keypoints:
            lines += [
                "        <label>",
                f"          <name>{escape(name)}</name>",
                "          <type>points</type>",
                "          <attributes>",
                "          </attributes>",
                f"          <parent>{escape(label)}</parent>",
                "        </label>",
            ]
    lines.append("      </labels>")
    return lines


def _source_attr(instance: Instance) -> str:
    return "manual" if instance.source == "manual" else "auto"


def _exported(instances: Sequence[Instance]) -> list[Instance]:
    # CVAT has no review status and no crowd regions: rejected predictions and crowd
    # regions are not annotations there.
    return [i for i in instances if i.status != "rejected" and not i.iscrowd]


# ------------------------------------------------------------------------ images


def _text_numbers(values: np.ndarray) -> list[str]:
    """float32 values (any shape, flattened) as the shortest decimals that read back."""
    return [
        text[:-2] if text.endswith(".0") else text
        for text in map(repr, shortest_decimals(values).reshape(-1).tolist())
    ]


def _images_body(dataset: PoseDataset, label: str, layout: str) -> list[str]:
    skeleton = dataset.skeleton
    k = skeleton.num_keypoints
    ids = [item.image.id for item in dataset.images]
    if any(i is None for i in ids) or len(set(ids)) != len(ids):
        ids = list(range(len(dataset.images)))
    per_image = [_exported(item.instances) for item in dataset.images]
    instances = [inst for group in per_image for inst in group]
    if instances:
        numbers = _text_numbers(np.stack([inst.keypoints for inst in instances]))
        visibility = np.stack([inst.visibility for inst in instances]).tolist()
    else:
        numbers, visibility = [], []
    quoted = quoteattr(label)
    # One prefix per (keypoint, visibility): 340k point lines for 20k people.
    prefix = {
        (s, v): f'      <points label="{name}" outside="{int(v == 0)}" occluded="{int(v == 1)}" '
        'points="'
        for s, name in enumerate(skeleton.keypoints)
        for v in (0, 1, 2)
    }
    lines = []
    n = 0
    for image_id, item, group in zip(ids, dataset.images, per_image):
        image = item.image
        lines.append(
            f'  <image id="{image_id}" name={quoteattr(image.file_name)} '
            f'width="{int(image.width)}" height="{int(image.height)}">'
        )
        for instance in group:
            src = _source_attr(instance)
            vis = visibility[n]
            base = 2 * k * n
            if layout == "points":
                points = ";".join(
                    f"{numbers[base + 2 * i]},{numbers[base + 2 * i + 1]}" for i in range(k)
                )
                occluded = int(all(v == 1 for v in vis if v))
                lines += [
                    f'    <points label={quoted} source="{src}" occluded="{occluded}" '
                    f'points="{points}" z_order="0">',
                    f'      <attribute name="{VISIBILITY_ATTRIBUTE}">'
                    f"{' '.join(map(str, vis))}</attribute>",
                    "    </points>",
                ]
            else:
                lines.append(f'    <skeleton label={quoted} source="{src}" z_order="0">')
                lines += [
                    f'{prefix[s, vis[s]]}{numbers[base + 2 * s]},{numbers[base + 2 * s + 1]}"/>'
                    for s in range(k)
                ]
                lines.append("    </skeleton>")
            n += 1
        lines.append("  </image>")
    return lines


# ------------------------------------------------------------------------ tracks


def _task_grid(video: VideoRecord, frames: Sequence[int]) -> tuple[int, int, int]:
    cvat = video.extra.get("cvat") if isinstance(video.extra, dict) else None
    if isinstance(cvat, dict) and all(isinstance(cvat.get(k), int) for k in
                                      ("start_frame", "step", "size")):  # fmt: skip
        start, step, size = cvat["start_frame"], max(1, cvat["step"]), cvat["size"]
    else:
        start, step = 0, 1
        size = video.frame_count if video.frame_count else (max(frames, default=-1) + 1)
    return start, step, size


def _states(keys: list[PointKeyframes], n: int, hold: bool) -> tuple[np.ndarray, np.ndarray]:
    k = len(keys)
    xy = np.zeros((n, k, 2), dtype=np.float64)
    vis = np.zeros((n, k), dtype=np.uint8)
    for s, key in enumerate(keys):
        xy[:, s], vis[:, s] = element_states(key, n, hold=hold)
    return xy, vis


def _stash_keys(
    record: TrackRecord | None, skeleton: Skeleton, grid: tuple[int, int, int]
) -> tuple[list[PointKeyframes], bool] | None:
    if record is None or not isinstance(record.extra, dict):
        return None
    stash = record.extra.get(CVAT_STASH_KEY)
    if not isinstance(stash, dict) or not isinstance(stash.get("points"), dict):
        return None
    points = stash["points"]
    if list(points) != list(skeleton.keypoints):
        return None
    start, step, n = grid
    keys = []
    try:
        for name in skeleton.keypoints:
            rows = []
            for frame, x, y, outside, occluded in points[name]:
                rel, rest = divmod(int(frame) - start, step)
                if rest or not 0 <= rel < n:
                    return None
                rows.append((rel, float(x), float(y), bool(outside), bool(occluded)))
            keys.append(PointKeyframes.from_rows(rows))
    except (TypeError, ValueError):
        return None
    return keys, bool(stash.get("hold", False))


def _matches(
    xy: np.ndarray, vis: np.ndarray, by_rel: dict[int, Instance], exact: bool
) -> list[int]:
    """Relative frames where the computed states differ from the instances."""
    present = np.flatnonzero(np.any(vis > 0, axis=1)).tolist()
    bad = sorted(set(present) ^ set(by_rel))
    for f, inst in by_rel.items():
        if f in bad:
            continue
        if not np.array_equal(vis[f], inst.visibility):
            bad.append(f)
            continue
        labeled = inst.visibility > 0
        got = xy[f][labeled]
        want = inst.keypoints[labeled].astype(np.float64)
        same = (
            np.array_equal(got.astype(np.float32), inst.keypoints[labeled])
            if exact
            else np.allclose(got, want, rtol=0, atol=_TOLERANCE_PX)
        )
        if not same:
            bad.append(f)
    return sorted(bad)


def _derived_keys(
    by_rel: dict[int, Instance], keyset: set[int], closing: set[int], k: int
) -> list[PointKeyframes]:
    """Per-point keyframes at ``keyset`` (instance frames) and ``closing`` (frames where
    the track is absent: outside keyframes). A point not labeled at a keyframe gets an
    outside keyframe at its last labeled position, so that CVAT holds it there."""
    rows: list[list[tuple[int, float, float, bool, bool]]] = [[] for _ in range(k)]
    last = np.zeros((k, 2), dtype=np.float64)
    for f in sorted(keyset | closing):
        inst = by_rel.get(f) if f in keyset else None
        if inst is None:
            for s in range(k):
                rows[s].append((f, last[s, 0], last[s, 1], True, False))
            continue
        xy = shortest_decimals(inst.keypoints)  # reads back as the same float32
        vis = inst.visibility
        for s in range(k):
            if vis[s]:
                last[s] = xy[s]
                rows[s].append((f, xy[s, 0], xy[s, 1], False, bool(vis[s] == 1)))
            else:
                rows[s].append((f, last[s, 0], last[s, 1], True, False))
    return [PointKeyframes.from_rows(r) for r in rows]


def _track_keys(
    by_rel: dict[int, Instance],
    record: TrackRecord | None,
    skeleton: Skeleton,
    grid: tuple[int, int, int],
    where: str,
) -> list[PointKeyframes]:
    start, step, n = grid
    stashed = _stash_keys(record, skeleton, grid)
    if stashed is not None and not stashed[1]:
        keys = stashed[0]
        if not _matches(*_states(keys, n, False), by_rel, exact=True):
            return keys
        logger.info("%s: instances changed since import; keyframes are derived again", where)
    frames = sorted(by_rel)
    if record is not None and record.keyframes:
        keyset = {(f - start) // step for f in record.keyframes if (f - start) % step == 0}
        keyset &= set(frames)
    else:
        keyset = set(frames)
    present = np.zeros(n + 1, dtype=bool)
    present[frames] = True
    starts = {f for f in frames if f == 0 or not present[f - 1]}
    closing = {f + 1 for f in frames if f + 1 < n and not present[f + 1]}
    if record is not None:
        for f in record.outside:
            rel, rest = divmod(f - start, step)
            if not rest and 0 <= rel < n and not present[rel]:
                closing.add(rel)
    keyset |= starts
    k = skeleton.num_keypoints
    while True:
        keys = _derived_keys(by_rel, keyset, closing, k)
        bad = set(_matches(*_states(keys, n, False), by_rel, exact=False)) - keyset
        bad &= set(frames)
        if not bad:
            return keys
        logger.info(
            "%s: %d frames are not CVAT's interpolation of the keyframes; written as keyframes",
            where, len(bad),
        )  # fmt: skip
        keyset |= bad


def _video_of(dataset: PoseDataset) -> VideoRecord:
    names = {item.image.video for item in dataset.images}
    stills = [item.image.file_name for item in dataset.images if item.image.video is None]
    if stills:
        raise CvatFormatError(
            f"CVAT for video: image {stills[0]!r} is not a video frame; write still images "
            "with mode='images'"
        )
    names.discard(None)
    known = {video.name: video for video in dataset.videos}
    if len(names | set(known)) > 1:
        raise CvatFormatError(
            f"CVAT for video holds one video per file; the dataset has "
            f"{len(names | set(known))} ({', '.join(sorted(map(str, names | set(known))))})"
        )
    if known:
        return next(iter(known.values()))
    if names:
        first = dataset.images[0].image
        return VideoRecord(name=str(next(iter(names))), width=first.width, height=first.height)
    return VideoRecord(name="video", width=0, height=0, frame_count=0)


def _video_body(dataset: PoseDataset, label: str, video: VideoRecord) -> tuple[list[str], Any]:
    skeleton = dataset.skeleton
    k = skeleton.num_keypoints
    frames: list[int] = []
    per_track: dict[int, dict[int, Instance]] = {}
    loose: list[tuple[int, Instance]] = []
    for item in dataset.images:
        image = item.image
        if image.frame_index is None:
            raise CvatFormatError(f"image {image.file_name!r}: a video frame without frame_index")
        frames.append(image.frame_index)
        for instance in _exported(item.instances):
            if instance.num_labeled == 0:
                continue  # nothing CVAT can show: every point outside
            if instance.track_id is None:
                loose.append((image.frame_index, instance))
                continue
            track = per_track.setdefault(instance.track_id, {})
            if image.frame_index in track:
                raise CvatFormatError(
                    f"track {instance.track_id}: two instances on frame {image.frame_index}"
                )
            track[image.frame_index] = instance
    grid = _task_grid(video, frames)
    start, step, n = grid
    next_id = max(per_track, default=-1) + 1
    for frame, instance in loose:  # CVAT: a single shape becomes a one-frame track
        per_track[next_id] = {frame: instance}
        next_id += 1
    records = {t.track_id: t for t in dataset.tracks if t.video in (video.name, None, "")}
    lines = []
    for track_id in sorted(per_track):
        where = f"track {track_id}"
        by_rel = {}
        for frame, instance in per_track[track_id].items():
            rel, rest = divmod(frame - start, step)
            if rest or not 0 <= rel < n:
                raise CvatFormatError(
                    f"{where}: frame {frame} is not a frame of the task (start {start}, step "
                    f"{step}, {n} frames)"
                )
            by_rel[rel] = instance
        record = records.get(track_id)
        keys = _track_keys(by_rel, record, skeleton, grid, where)
        xy, vis = _states(keys, n, False)
        key_frames = [set(key.frames.tolist()) for key in keys]
        row_of = [{f: i for i, f in enumerate(key.frames.tolist())} for key in keys]
        source = _source_attr(next(iter(by_rel.values())))
        lines.append(f'  <track id="{track_id}" label={quoteattr(label)} source="{source}">')
        for f in sorted(set().union(*key_frames)):
            lines.append(f'    <skeleton frame="{start + f * step}" keyframe="1" z_order="0">')
            for s, name in enumerate(skeleton.keypoints):
                if f in key_frames[s]:
                    i = row_of[s][f]
                    px, py = keys[s].xy[i]
                    outside, occluded, keyframe = int(keys[s].outside[i]), int(
                        keys[s].occluded[i]), 1  # fmt: skip
                else:
                    px, py = xy[f, s]
                    outside, occluded, keyframe = int(vis[f, s] == 0), int(vis[f, s] == 1), 0
                lines.append(
                    f'      <points label="{name}" source="{source}" outside="{outside}" '
                    f'occluded="{occluded}" keyframe="{keyframe}" points="{_num(px)},{_num(py)}">'
                    "\n      </points>"
                )
            lines.append("    </skeleton>")
        lines.append("  </track>")
    del k
    return lines, grid


# ----------------------------------------------------------------------- document


def to_cvat(
    dataset: PoseDataset,
    *,
    mode: Literal["auto", "images", "video"] = "auto",
    layout: Literal["skeleton", "points"] = "skeleton",
    label: str | None = None,
    task_name: str | None = None,
) -> bytes:
    """``dataset`` as a CVAT XML document (UTF-8 bytes).

    Args:
        dataset: What to write; rejected instances and crowd regions are skipped.
        mode: ``"images"`` (CVAT for images 1.1), ``"video"`` (CVAT for video 1.1:
            one video, its tracks) or ``"auto"`` (video when the dataset has videos).
        layout: ``"skeleton"`` (a skeleton label with one sublabel per keypoint) or
            ``"points"`` (one plain ``<points>`` shape per instance, K points in
            template order, the visibility in a ``posekit_visibility`` text
            attribute; the layout Datumaro reads). Only for images.
        label: CVAT label name (default: the template's category, e.g. ``person``).
        task_name: ``<meta><task><name>`` (default: the template's name).

    Raises:
        CvatFormatError: video mode with still images or several videos, a frame
            off the task's frame grid, or the points layout for video.
    """
    if mode == "auto":
        mode = "video" if dataset.videos or any(i.image.video for i in dataset.images) else "images"
    if mode not in ("images", "video"):
        raise CvatFormatError(f"mode must be 'auto', 'images' or 'video', got {mode!r}")
    if layout not in ("skeleton", "points"):
        raise CvatFormatError(f"layout must be 'skeleton' or 'points', got {layout!r}")
    if layout == "points" and mode == "video":
        raise CvatFormatError("the plain points layout is for CVAT for images only")
    skeleton = dataset.skeleton
    label = label or skeleton.category or "person"
    if mode == "images":
        name = task_name or skeleton.name
        body = _images_body(dataset, label, layout)
        task = [
            "    <task>",
            f"      <name>{escape(name)}</name>",
            f"      <size>{len(dataset.images)}</size>",
            "      <mode>annotation</mode>",
            "      <overlap>0</overlap>",
            "      <flipped>False</flipped>",
        ]
        tail: list[str] = []
    else:
        video = _video_of(dataset)
        name = task_name or video.name
        body, (start, step, n) = _video_body(dataset, label, video)
        task = [
            "    <task>",
            f"      <name>{escape(name)}</name>",
            f"      <size>{n}</size>",
            "      <mode>interpolation</mode>",
            "      <overlap>0</overlap>",
            "      <flipped>False</flipped>",
            f"      <start_frame>{start}</start_frame>",
            f"      <stop_frame>{start + max(n - 1, 0) * step}</stop_frame>",
            f"      <frame_filter>{f'step={step}' if step > 1 else ''}</frame_filter>",
        ]
        tail = [
            "      <original_size>",
            f"        <width>{int(video.width)}</width>",
            f"        <height>{int(video.height)}</height>",
            "      </original_size>",
        ]
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        "<annotations>",
        "  <version>1.1</version>",
        "  <meta>",
        *task,
        *_labels_xml(skeleton, label, layout),
        *tail,
        "    </task>",
    ]
    if mode == "video" and video.file_name:
        lines.append(f"    <source>{escape(video.file_name)}</source>")
    lines += ["  </meta>", *body, "</annotations>", ""]
    return "\n".join(lines).encode("utf-8")
