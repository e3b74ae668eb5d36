"""Supervisely projects (images and videos) with keypoint graphs: pure
``dict <-> PoseDataset`` functions (:func:`from_supervisely`, :func:`to_supervisely`),
thin folder I/O on top (:func:`read_supervisely`, :func:`write_supervisely`).

Layout (Supervisely's documented project format)::

    project/
      meta.json                    classes (one with "shape": "graph" holds the template:
                                   geometry_config.nodes {key: {label, loc, color}},
                                   geometry_config.edges [{src, dst, color}]), tag metas,
                                   "projectType": "images" | "videos"
      <dataset>/ann/<image>.json   {"size", "tags", "objects": [{"classTitle",
                                   "geometryType": "graph", "nodes": {key: {"loc": [x, y],
                                   "disabled": true?}}, "tags"}]}
      <dataset>/img/<image>        the images (written when ``media`` is given)
      <dataset>/ann/<video>.json   {"size", "framesCount", "objects": [{"key", "classTitle",
                                   "tags"}], "frames": [{"index", "figures": [{"key",
                                   "objectKey", "geometryType": "graph",
                                   "geometry": {"nodes": ...}}]}]}
      <dataset>/video/<video>      the videos (written when ``media`` is given)

Node keys map onto template keypoints through the class's node labels (names);
posekit writes the keypoint names as node keys.

States: a ``disabled`` node or a node missing from an object -> not labeled (0).
Supervisely has no occlusion flag; posekit writes the names of the occluded
keypoints of an object, comma separated, as the value of an ``any_string`` tag
``posekit_occluded`` (declared in ``meta.json``): on the object for images, and
as a video-object tag with ``frameRange [f, f]`` for each video frame that has
occluded points. Reading gives occluded (1) for those, visible (2) for the other
enabled nodes; files without the tag read as all visible.

Tracks: a video object is a track (``track_id`` from the object key when posekit
wrote it: ``uuid.UUID(int=track_id)``, else the object's position); every stored
figure is a keyframe (Supervisely stores each frame's figure; it has no keyframe
flag), a frame after a run of figures is an outside frame.

What it cannot carry (lost on export): boxes, scores and review status (rejected
instances and crowd regions are not written), instance ids and ``extra``;
keyframes of tracks (every frame with a figure comes back as a keyframe).
Image names are ``<dataset>/<image>``; names without a folder go to dataset
``ds0`` and read back without it. The Supervisely SDK floors node locations to
integer pixels when it loads them; the files keep posekit's float32 values.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.numbers import shortest_decimals
from posekit.gc_pause import gc_paused
from posekit.media.paths import UnsafePathError, safe_relative_path
from posekit.skeleton import Skeleton, SkeletonError
from posekit.skeleton.inference import preset_for_names, skeleton_from_category
from posekit.skeleton.mapping import names_mapping

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_SIGMA",
    "OCCLUDED_TAG",
    "SuperviselyFormatError",
    "SuperviselyItem",
    "from_supervisely",
    "read_supervisely",
    "to_supervisely",
    "write_supervisely",
]

logger = logging.getLogger(__name__)

#: Tag whose value lists an object's occluded keypoint names (comma separated).
OCCLUDED_TAG = "posekit_occluded"
#: Dataset folder of images whose file names have no folder.
DEFAULT_DATASET = "ds0"
#: OKS sigma of every keypoint of a template built from a project whose node labels
#: match no shipped preset (Supervisely carries no sigmas); pass ``skeleton=``.
DEFAULT_SIGMA = 0.07


class SuperviselyFormatError(ValueError):
    """A Supervisely project cannot be read or written; the message names the file
    and element."""


@dataclass
class SuperviselyItem:
    """One annotation file of a project.

    Attributes:
        dataset: Dataset folder name.
        name: Image or video name (the annotation file is ``<name>.json``).
        annotation: The parsed annotation JSON.
        kind: ``"image"`` or ``"video"``.
    """

    dataset: str
    name: str
    annotation: dict[str, Any]
    kind: Literal["image", "video"] = "image"


@dataclass
class _Template:
    title: str
    skeleton: Skeleton
    slots: dict[str, int]  # node key -> template index
    labels: dict[str, int] = field(default_factory=dict)  # node label -> template index


# --------------------------------------------------------------------- template


def _graph_class(meta: Mapping[str, Any], title: str | None, where: str) -> dict[str, Any]:
    classes = meta.get("classes") if isinstance(meta, Mapping) else None
    if not isinstance(classes, list):
        raise SuperviselyFormatError(f"{where}: meta.json has no 'classes' list")
    graphs = [c for c in classes if isinstance(c, Mapping) and c.get("shape") == "graph"]
    if title is not None:
        graphs = [c for c in graphs if c.get("title") == title]
    if not graphs:
        raise SuperviselyFormatError(
            f"{where}: meta.json has no class with shape 'graph'"
            + (f" titled {title!r}" if title else "")
        )
    return dict(graphs[0])


def _template(
    meta: Mapping[str, Any], skeleton: Skeleton | None, title: str | None, where: str
) -> _Template:
    cls = _graph_class(meta, title, where)
    title = str(cls.get("title") or "person")
    where = f"{where}: meta.json class {title!r}"
    config = cls.get("geometry_config") or {}
    nodes = config.get("nodes") if isinstance(config, Mapping) else None
    if not isinstance(nodes, Mapping) or not nodes:
        raise SuperviselyFormatError(f"{where}: geometry_config.nodes is missing or empty")
    keys = [str(k) for k in nodes]
    labels = []
    for key in keys:
        node = nodes[key]
        label = node.get("label") if isinstance(node, Mapping) else None
        labels.append(str(label) if label else key)
    if len(set(labels)) != len(labels):
        dup = next(n for n in labels if labels.count(n) > 1)
        raise SuperviselyFormatError(f"{where}: two nodes are labelled {dup!r}")
    position = {k: i for i, k in enumerate(keys)}
    edges = []
    for e, edge in enumerate(config.get("edges") or []):
        if (
            not isinstance(edge, Mapping)
            or edge.get("src") not in position
            or edge.get("dst") not in position
        ):
            raise SuperviselyFormatError(
                f"{where}: geometry_config.edges[{e}] {edge!r} does not join two node keys"
            )
        edges.append((position[edge["src"]], position[edge["dst"]]))
    if skeleton is None:
        skeleton = preset_for_names(labels)
        if skeleton is None:
            try:
                skeleton = skeleton_from_category(
                    {"name": title, "keypoints": labels,
                     "skeleton": [[a + 1, b + 1] for a, b in edges]},
                    [DEFAULT_SIGMA] * len(labels),
                    sigmas_source=f"uniform {DEFAULT_SIGMA}: Supervisely carries no OKS sigmas",
                )  # fmt: skip
            except SkeletonError as exc:
                raise SuperviselyFormatError(f"{where}: {exc}") from None
            logger.warning(
                "%s: no shipped template has these keypoints; using one built from the "
                "project with uniform OKS sigmas %.2f (pass skeleton=... for real ones)",
                where, DEFAULT_SIGMA,
            )  # fmt: skip
    try:
        index = names_mapping(labels, skeleton, strict=True)
    except SkeletonError as exc:
        raise SuperviselyFormatError(
            f"{where}: {exc} (a node of the project's template that the template lacks)"
        ) from None
    slots = {keys[int(s)]: t for t, s in enumerate(index.tolist()) if s >= 0}
    by_label = {labels[int(s)]: t for t, s in enumerate(index.tolist()) if s >= 0}
    return _Template(title, skeleton, slots, by_label)


# --------------------------------------------------------------------- reading


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _occluded_names(tags: Any, where: str) -> list[str]:
    names: list[str] = []
    for tag in tags or []:
        if isinstance(tag, Mapping) and tag.get("name") == OCCLUDED_TAG:
            value = tag.get("value")
            if not isinstance(value, str):
                raise SuperviselyFormatError(
                    f"{where}: tag {OCCLUDED_TAG!r} value {value!r} is not a string"
                )
            names += [n.strip() for n in value.split(",") if n.strip()]
    return names


def _graph_instance(
    nodes: Any, occluded: Sequence[str], template: _Template, where: str
) -> Instance:
    k = template.skeleton.num_keypoints
    keypoints = np.zeros((k, 2), dtype=np.float32)
    visibility = np.zeros(k, dtype=np.uint8)
    if not isinstance(nodes, Mapping):
        raise SuperviselyFormatError(f"{where}: 'nodes' is not an object of node keys")
    for key, node in nodes.items():
        slot = template.slots.get(key)
        if slot is None:
            raise SuperviselyFormatError(
                f"{where}: node key {key!r} is not in the template of class "
                f"{template.title!r} (meta.json geometry_config.nodes)"
            )
        loc = node.get("loc") if isinstance(node, Mapping) else None
        if not (isinstance(loc, list | tuple) and len(loc) == 2 and all(map(_number, loc))):
            raise SuperviselyFormatError(
                f"{where}: node {key!r}: 'loc' {loc!r} is not [x, y] (two finite numbers)"
            )
        if node.get("disabled", False) is True:
            continue
        keypoints[slot] = loc
        visibility[slot] = 2
    for name in occluded:
        slot = template.labels.get(name)
        if slot is None:
            raise SuperviselyFormatError(
                f"{where}: tag {OCCLUDED_TAG!r} names {name!r}, which is not a node label of "
                f"class {template.title!r}"
            )
        if visibility[slot]:
            visibility[slot] = 1
    return Instance(keypoints, visibility)


def _size(annotation: Mapping[str, Any], where: str) -> tuple[int, int]:
    size = annotation.get("size")
    if (
        not isinstance(size, Mapping)
        or not isinstance(size.get("width"), int)
        or not isinstance(size.get("height"), int)
    ):
        raise SuperviselyFormatError(f"{where}: 'size' must be {{'width': int, 'height': int}}")
    return size["width"], size["height"]


def _file_name(dataset: str, name: str) -> str:
    return name if dataset == DEFAULT_DATASET else f"{dataset}/{name}"


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


def from_supervisely(
    meta: Mapping[str, Any],
    items: Sequence[SuperviselyItem],
    skeleton: Skeleton | None = None,
    *,
    class_title: str | None = None,
    source: str = "Supervisely project",
) -> PoseDataset:
    """A Supervisely project (its ``meta.json`` and annotation files) as a dataset.

    Args:
        meta: The parsed ``meta.json``.
        items: The annotation files, in the order to read them.
        skeleton: Template to read into (node labels matched by name); None: the
            shipped preset with the node labels, else a template built from the
            graph class (uniform sigmas :data:`DEFAULT_SIGMA`).
        class_title: The graph class to read (default: the first one).
        source: Name of the input for error messages.

    Raises:
        SuperviselyFormatError: no graph class, a node key not in the template, a
            malformed ``loc``, size or frame; nothing is returned in part.
    """
    template = _template(meta, skeleton, class_title, source)
    images: list[LabeledImage] = []
    videos: list[VideoRecord] = []
    tracks: list[TrackRecord] = []
    skipped = 0
    for item in items:
        where = f"{source}: {item.dataset}/ann/{item.name}.json"
        if not isinstance(item.annotation, Mapping):
            raise SuperviselyFormatError(f"{where}: not a JSON object")
        if item.kind == "video":
            video, frames, video_tracks = _read_video(item, template, where)
            videos.append(video)
            images += frames
            tracks += video_tracks
            continue
        width, height = _size(item.annotation, where)
        instances = []
        for o, obj in enumerate(item.annotation.get("objects") or []):
            if not isinstance(obj, Mapping):
                raise SuperviselyFormatError(f"{where}: objects[{o}] is not an object")
            if obj.get("classTitle") != template.title or obj.get("geometryType") != "graph":
                skipped += 1
                continue
            owhere = f"{where}: objects[{o}]"
            occluded = _occluded_names(obj.get("tags"), owhere)
            instances.append(_graph_instance(obj.get("nodes"), occluded, template, owhere))
        record = ImageRecord(_file_name(item.dataset, item.name), width, height)
        images.append(LabeledImage(record, instances))
    if skipped:
        logger.info("%s: skipped %d objects that are not graphs of class %r", source, skipped,
                    template.title)  # fmt: skip
    return PoseDataset(skeleton=template.skeleton, images=images, videos=videos, tracks=tracks)


# --------------------------------------------------------------------- writing


def _hex(color: Any) -> str:
    r, g, b = (int(c) for c in color)
    return f"#{r:02X}{g:02X}{b:02X}"


def meta_json(skeleton: Skeleton, title: str, project_type: str = "images") -> dict[str, Any]:
    """``meta.json`` of a project with ``skeleton`` as its graph class ``title``."""
    k = skeleton.num_keypoints
    nodes = {}
    for i, name in enumerate(skeleton.keypoints):
        angle = 2 * math.pi * i / k
        nodes[name] = {
            "label": name,
            "loc": [round(50 + 40 * math.cos(angle), 2), round(50 + 40 * math.sin(angle), 2)],
            "color": _hex(skeleton.keypoint_colors[i]),
        }
    edges = [
        {"src": a, "dst": b, "color": _hex(skeleton.edge_colors[e])}
        for e, (a, b) in enumerate(skeleton.edges)
    ]
    return {
        "classes": [
            {
                "title": title,
                "shape": "graph",
                "color": "#FF8000",
                "geometry_config": {"nodes": nodes, "edges": edges},
                "hotkey": "",
            }
        ],
        "tags": [
            {
                "name": OCCLUDED_TAG,
                "value_type": "any_string",
                "color": "#808080",
                "applicable_type": "all",
                "classes": [],
            }
        ],
        "projectType": project_type,
    }


def _locations(instances: Sequence[Instance]) -> list[list[Any]]:
    if not instances:
        return []
    values = shortest_decimals(np.stack([inst.keypoints for inst in instances]))
    integral = values == np.trunc(values)
    flat = [
        [int(v) if i else v for v, i in zip(row, flags)]
        for row, flags in zip(values.reshape(len(instances), -1).tolist(),
                              integral.reshape(len(instances), -1).tolist())
    ]  # fmt: skip
    return flat


def _nodes(skeleton: Skeleton, instance: Instance, loc: list[Any]) -> dict[str, Any]:
    out = {}
    for s, name in enumerate(skeleton.keypoints):
        if instance.visibility[s]:
            out[name] = {"loc": [loc[2 * s], loc[2 * s + 1]]}
        else:
            out[name] = {"loc": [0, 0], "disabled": True}
    return out


def _occluded_value(skeleton: Skeleton, instance: Instance) -> str | None:
    names = [skeleton.keypoints[s] for s in np.flatnonzero(instance.visibility == 1).tolist()]
    return ",".join(names) if names else None


def _exported(instances: Sequence[Instance]) -> list[Instance]:
    return [i for i in instances if i.status != "rejected" and not i.iscrowd]


def _split_name(file_name: str, where: str) -> tuple[str, str]:
    try:
        parts = safe_relative_path(file_name).parts
    except UnsafePathError as exc:
        raise SuperviselyFormatError(f"{where}: {exc}") from None
    if len(parts) == 1:
        return DEFAULT_DATASET, parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise SuperviselyFormatError(
        f"{where}: {file_name!r} is nested deeper than <dataset>/<image>, which a Supervisely "
        "project cannot hold"
    )


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
            value = _occluded_value(skeleton, inst)
            if value:
                tags.append({"name": OCCLUDED_TAG, "value": value, "frameRange": [f, f]})
            by_frame.setdefault(f, []).append(
                {
                    "key": uuid.UUID(int=(track_id << 32) + f + 1).hex,
                    "objectKey": key,
                    "geometryType": "graph",
                    "geometry": {"nodes": _nodes(skeleton, inst, loc)},
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


def to_supervisely(
    dataset: PoseDataset, *, class_title: str | None = None
) -> tuple[dict[str, Any], list[SuperviselyItem]]:
    """``dataset`` as a Supervisely project: ``(meta.json, annotation files)``.

    Still images give an images project (``<dataset>/<image>`` names: the folder of
    a file name is its dataset, :data:`DEFAULT_DATASET` when it has none); a dataset
    with videos gives a videos project, one annotation per video.

    Raises:
        SuperviselyFormatError: still images mixed with video frames, an image name
            nested deeper than one folder or unsafe, two instances of a track on one frame.
    """
    skeleton = dataset.skeleton
    title = class_title or skeleton.category or "person"
    stills = [item for item in dataset.images if item.image.video is None]
    framed = [item for item in dataset.images if item.image.video is not None]
    if dataset.videos or framed:
        if stills:
            raise SuperviselyFormatError(
                f"image {stills[0].image.file_name!r} is a still image in a dataset with "
                "videos; a Supervisely project holds either images or videos"
            )
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
        return meta_json(skeleton, title, "videos"), items
    items = []
    seen: set[tuple[str, str]] = set()
    exported = [_exported(item.instances) for item in dataset.images]
    locs = _locations([inst for group in exported for inst in group])
    n = 0
    for item, group in zip(dataset.images, exported):
        image = item.image
        ds_name, name = _split_name(image.file_name, f"image {image.file_name!r}")
        if (ds_name, name) in seen:
            raise SuperviselyFormatError(f"image {image.file_name!r} appears twice")
        seen.add((ds_name, name))
        objects = []
        for inst in group:
            value = _occluded_value(skeleton, inst)
            objects.append(
                {
                    "classTitle": title,
                    "description": "",
                    "geometryType": "graph",
                    "tags": [{"name": OCCLUDED_TAG, "value": value}] if value else [],
                    "nodes": _nodes(skeleton, inst, locs[n]),
                }
            )
            n += 1
        ann = {
            "description": "",
            "tags": [],
            "size": {"height": int(image.height), "width": int(image.width)},
            "objects": objects,
        }
        items.append(SuperviselyItem(ds_name, name, ann, "image"))
    return meta_json(skeleton, title, "images"), items


# ------------------------------------------------------------------------ files


def _load_json(path: Path) -> Any:
    import orjson

    raw = path.read_bytes()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SuperviselyFormatError(f"{path}: not valid JSON: {exc}") from None


def read_supervisely(
    path: str | os.PathLike[str],
    skeleton: Skeleton | None = None,
    *,
    class_title: str | None = None,
) -> PoseDataset:
    """Read a Supervisely project folder (see :func:`from_supervisely`).

    Raises:
        SuperviselyFormatError: no ``meta.json``, invalid JSON or content (the
            message names the file).
    """
    root = Path(path)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise SuperviselyFormatError(f"{root}: no meta.json (not a Supervisely project folder)")
    with gc_paused():
        meta = _load_json(meta_path)
        kind: Literal["image", "video"] = (
            "video" if isinstance(meta, Mapping) and meta.get("projectType") == "videos"
            else "image"
        )  # fmt: skip
        items = []
        for dataset_dir in sorted(p for p in root.iterdir() if (p / "ann").is_dir()):
            for ann in sorted((dataset_dir / "ann").glob("*.json")):
                items.append(
                    SuperviselyItem(dataset_dir.name, ann.name[: -len(".json")],
                                    _load_json(ann), kind)
                )  # fmt: skip
        return from_supervisely(meta, items, skeleton, class_title=class_title, source=str(root))


def write_supervisely(
    dataset: PoseDataset,
    destination: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
    class_title: str | None = None,
    link: bool = True,
) -> Path:
    """Write a Supervisely project folder (the format table's writer).

    Args:
        dataset: What to write (see :func:`to_supervisely`).
        destination: Project folder (created; files of the same names are replaced).
        media: ``file_name`` (or video name) -> file on disk; when given, images go to
            ``<dataset>/img/`` (videos to ``<dataset>/video/``), symlinked or copied.
        class_title: Graph class title (default: the template's category).
        link: Symlink media (default) instead of copying.

    Returns:
        The written ``meta.json``.

    Raises:
        SuperviselyFormatError: see :func:`to_supervisely`, or a ``media`` file that
            does not exist; raised before anything is written.
    """
    import orjson

    meta, items = to_supervisely(dataset, class_title=class_title)
    for name, path in (media or {}).items():
        if not Path(path).is_file():
            raise SuperviselyFormatError(f"media {name!r}: file {path} does not exist")
    root = Path(destination)
    root.mkdir(parents=True, exist_ok=True)
    sources: dict[tuple[str, str], str] = {}
    for item in dataset.images:
        if item.image.video is None:
            sources[_split_name(item.image.file_name, "")] = item.image.file_name
    for video in dataset.videos:
        sources[_split_name(video.name, "")] = video.name
    for item in items:
        ann_dir = root / item.dataset / "ann"
        ann_dir.mkdir(parents=True, exist_ok=True)
        (ann_dir / f"{item.name}.json").write_bytes(orjson.dumps(item.annotation))
        original = sources.get((item.dataset, item.name))
        if media is not None and original is not None and original in media:
            folder = root / item.dataset / ("video" if item.kind == "video" else "img")
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / item.name
            if target.is_symlink() or target.exists():
                target.unlink()
            if link:
                os.symlink(Path(media[original]).resolve(), target)
            else:
                shutil.copy2(media[original], target)
    meta_path = root / "meta.json"
    meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta_path
