"""Supervisely videos projects: one annotation file per video, whose objects are tracks
and whose frames hold one graph figure per object.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.supervisely_graph import (
    OCCLUDED_TAG,
    SuperviselyFormatError,
    SuperviselyItem,
    _exported,
    _file_name,
    _graph_instance,
    _locations,
    _nodes,
    _occluded_names,
    _occluded_value,
    _size,
    _split_name,
    _Template,
)

__all__: list[str] = []


def _track_id_of(key: Any, position: int) -> int:
    try:
        value = uuid.UUID(str(key)).int
    except ValueError:
        return position
    return value if value < 2**31 else position


def _read_video(
    item: SuperviselyItem, template: _Template, where: str
) -> tuple[VideoRecord, list[LabeledImage], list[TrackRecord]]:
    ann = item.annotation
    width, height = _size(ann, where)
    count = ann.get("framesCount")
    if not isinstance(count, int) or count < 0:
        raise SuperviselyFormatError(f"{where}: 'framesCount' must be a non-negative integer")
    name = _file_name(item.dataset, item.name)
    video = VideoRecord(name=name, width=width, height=height, frame_count=count,
                        file_name=name)  # fmt: skip
    objects: dict[str, tuple[int, dict[int, list[str]]]] = {}
    used: set[int] = set()
    for o, obj in enumerate(ann.get("objects") or []):
        if not isinstance(obj, Mapping) or "key" not in obj:
            raise SuperviselyFormatError(f"{where}: objects[{o}] has no 'key'")
        if obj.get("classTitle") != template.title:
            continue
        track_id = _track_id_of(obj["key"], o)
        if track_id in used:
            track_id = max(used) + 1
        used.add(track_id)
        occluded: dict[int, list[str]] = {}
        for tag in obj.get("tags") or []:
            if isinstance(tag, Mapping) and tag.get("name") == OCCLUDED_TAG:
                span = tag.get("frameRange")
                if not (isinstance(span, list) and len(span) == 2 and all(
                        isinstance(f, int) for f in span)):  # fmt: skip
                    raise SuperviselyFormatError(
                        f"{where}: objects[{o}] tag {OCCLUDED_TAG!r} needs a frameRange [f, f]"
                    )
                names = _occluded_names([tag], f"{where}: objects[{o}]")
                for f in range(span[0], span[1] + 1):
                    occluded.setdefault(f, []).extend(names)
        objects[str(obj["key"])] = (track_id, occluded)
    by_frame: dict[int, list[Instance]] = {}
    frames_of: dict[int, set[int]] = {}
    for fr, frame in enumerate(ann.get("frames") or []):
        index = frame.get("index") if isinstance(frame, Mapping) else None
        if not isinstance(index, int) or not 0 <= index < max(count, 1):
            raise SuperviselyFormatError(
                f"{where}: frames[{fr}] index {index!r} is not a frame of the video "
                f"(0..{count - 1})"
            )
        for g, figure in enumerate(frame.get("figures") or []):
            fwhere = f"{where}: frames[{fr}] (index {index}) figures[{g}]"
            target = objects.get(str(figure.get("objectKey")))
            if target is None:
                continue  # another class
            if figure.get("geometryType") != "graph":
                continue
            geometry = figure.get("geometry") or {}
            track_id, occluded = target
            instance = _graph_instance(
                geometry.get("nodes"), occluded.get(index, []), template, fwhere
            )
            instance.track_id = track_id
            if index in frames_of.setdefault(track_id, set()):
                raise SuperviselyFormatError(f"{fwhere}: a second figure of one object")
            frames_of[track_id].add(index)
            by_frame.setdefault(index, []).append(instance)
    images = [
        LabeledImage(ImageRecord(f"{name}/frame_{f:06d}.png", width, height, video=name,
                                 frame_index=f), by_frame[f])
        for f in sorted(by_frame)
    ]  # fmt: skip
    tracks = []
    for track_id, frames in sorted(frames_of.items()):
        ends = {f + 1 for f in frames if f + 1 not in frames and f + 1 < count}
        tracks.append(TrackRecord(name, track_id, keyframes=set(frames), outside=ends,
                                  label=template.title))  # fmt: skip
    return video, images, tracks


def _video_annotation(
    dataset: PoseDataset, video: VideoRecord, frames: list[LabeledImage], title: str
) -> dict[str, Any]:
    skeleton = dataset.skeleton
    per_track: dict[int, dict[int, Instance]] = {}
    loose: list[tuple[int, Instance]] = []
    for item in frames:
        f = item.image.frame_index
        if f is None:
            raise SuperviselyFormatError(f"image {item.image.file_name!r}: no frame_index")
        for inst in _exported(item.instances):
            if inst.track_id is None:
                loose.append((f, inst))
            elif f in per_track.setdefault(inst.track_id, {}):
                raise SuperviselyFormatError(f"track {inst.track_id}: two instances on frame {f}")
            else:
                per_track[inst.track_id][f] = inst
    next_id = max(per_track, default=-1) + 1
    for f, inst in loose:
        per_track[next_id] = {f: inst}
        next_id += 1
    objects = []
    by_frame: dict[int, list[dict[str, Any]]] = {}
    for track_id in sorted(per_track):
        key = uuid.UUID(int=track_id).hex
        tags = []
        frames_of = per_track[track_id]
        ordered = sorted(frames_of)
        locs = _locations([frames_of[f] for f in ordered])
        for f, loc in zip(ordered, locs):
            inst = frames_of[f]
            vis = inst.visibility.tolist()
            value = _occluded_value(skeleton.keypoints, vis)
            if value:
                tags.append({"name": OCCLUDED_TAG, "value": value, "frameRange": [f, f]})
            by_frame.setdefault(f, []).append(
                {
                    "key": uuid.UUID(int=(track_id << 32) + f + 1).hex,
                    "objectKey": key,
                    "geometryType": "graph",
                    "geometry": {"nodes": _nodes(skeleton.keypoints, vis, loc)},
                }
            )
        objects.append({"key": key, "classTitle": title, "tags": tags})
    count = video.frame_count
    if count is None:
        count = max(by_frame, default=-1) + 1
    return {
        "size": {"height": int(video.height), "width": int(video.width)},
        "description": "",
        "key": uuid.uuid5(uuid.NAMESPACE_URL, video.name).hex,
        "tags": [],
        "objects": objects,
        "frames": [{"index": f, "figures": by_frame[f]} for f in sorted(by_frame)],
        "framesCount": int(count),
    }


def _video_items(
    dataset: PoseDataset, framed: list[LabeledImage], title: str
) -> list[SuperviselyItem]:
    """The annotation files of a videos project, one per video (``framed``: the
    dataset's video frames)."""
    videos = {v.name: v for v in dataset.videos}
    for item in framed:
        if item.image.video not in videos:
            videos[item.image.video] = VideoRecord(  # type: ignore[index]
                item.image.video or "video", item.image.width, item.image.height
            )
    items = []
    for name, video in videos.items():
        ds_name, video_name = _split_name(video.name, f"video {video.name!r}")
        frames = [item for item in framed if item.image.video == name]
        ann = _video_annotation(dataset, video, frames, title)
        items.append(SuperviselyItem(ds_name, video_name, ann, "video"))
    return items
