"""Supervisely images projects: one annotation file per image, its graph objects read
in bulk (numpy) and written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
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

#: An image's graph objects of the template's class: ``(where, object)`` pairs.
_Graphs = list[tuple[str, Mapping[str, Any]]]


def _bulk_graphs(
    graphs: Sequence[tuple[str, Mapping[str, Any]]], template: _Template
) -> list[Instance]:
    """The instances of many graph objects, validated in bulk; on any problem the
    objects are read one by one so that the error names the file and object."""
    k = template.skeleton.num_keypoints

    def slow() -> list[Instance]:
        return [
            _graph_instance(obj.get("nodes"), _occluded_names(obj.get("tags"), where),
                            template, where)
            for where, obj in graphs
        ]  # fmt: skip

    node_maps = [obj.get("nodes") for _, obj in graphs]
    if not all(isinstance(nodes, dict) for nodes in node_maps):
        return slow()
    counts = [len(nodes) for nodes in node_maps]
    keys = [key for nodes in node_maps for key in nodes]
    values = [value for nodes in node_maps for value in nodes.values()]
    slots = [template.slots.get(key) for key in keys]
    if None in slots or not all(isinstance(v, dict) for v in values):
        return slow()
    try:
        flat = [c for v in values for c in v["loc"]]
    except (KeyError, TypeError):
        return slow()
    if len(flat) != 2 * len(values) or not set(map(type, flat)) <= {int, float}:
        return slow()  # also refuses JSON true/false as coordinates
    locs = np.array(flat, dtype=np.float64).reshape(len(values), 2)
    if not np.all(np.isfinite(locs)):
        return slow()
    enabled = np.array([v.get("disabled", False) is not True for v in values], dtype=bool)
    owner = np.repeat(np.arange(len(graphs), dtype=np.int64), counts)
    slot = np.asarray(slots, dtype=np.int64)
    # a node twice in one object (np.unique costs 20x more than counting here)
    if slots and np.bincount(owner * k + slot, minlength=len(graphs) * k).max() > 1:
        return slow()
    keypoints = np.zeros((len(graphs), k, 2), dtype=np.float32)
    visibility = np.zeros((len(graphs), k), dtype=np.uint8)
    keypoints[owner[enabled], slot[enabled]] = locs[enabled]
    visibility[owner[enabled], slot[enabled]] = 2
    out = []
    for n, (where, obj) in enumerate(graphs):
        if obj.get("tags"):
            for name in _occluded_names(obj["tags"], where):
                t = template.labels.get(name)
                if t is None:
                    return slow()
                if visibility[n, t]:
                    visibility[n, t] = 1
        # validated in bulk above (shapes, finite, 0/1/2, zeroed unlabeled points)
        out.append(Instance.trusted(keypoints[n], visibility[n]))
    return out


def _image_objects(
    item: SuperviselyItem, template: _Template, where: str
) -> tuple[ImageRecord, _Graphs, int]:
    """An image annotation's record, its graph objects of the template's class, and
    the number of other objects (skipped)."""
    skipped = 0
    width, height = _size(item.annotation, where)
    objects = item.annotation.get("objects") or []
    if not isinstance(objects, list):
        raise SuperviselyFormatError(f"{where}: 'objects' is not a list")
    graphs: _Graphs = []
    for o, obj in enumerate(objects):
        if not isinstance(obj, Mapping):
            raise SuperviselyFormatError(f"{where}: objects[{o}] is not an object")
        if obj.get("classTitle") != template.title or obj.get("geometryType") != "graph":
            skipped += 1
            continue
        graphs.append((f"{where}: objects[{o}]", obj))
    return ImageRecord(_file_name(item.dataset, item.name), width, height), graphs, skipped


def _labeled_images(
    records: Sequence[ImageRecord], pending: Sequence[_Graphs], template: _Template
) -> list[LabeledImage]:
    """The images with their instances, all images' objects read in one bulk pass."""
    images = []
    found = iter(_bulk_graphs([g for graphs in pending for g in graphs], template))
    for record, graphs in zip(records, pending):
        images.append(LabeledImage(record, [next(found) for _ in graphs]))
    return images


def _image_items(dataset: PoseDataset, title: str) -> list[SuperviselyItem]:
    """The annotation files of an images project, one per image."""
    skeleton = dataset.skeleton
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
            vis = inst.visibility.tolist()
            value = _occluded_value(skeleton.keypoints, vis)
            objects.append(
                {
                    "classTitle": title,
                    "description": "",
                    "geometryType": "graph",
                    "tags": [{"name": OCCLUDED_TAG, "value": value}] if value else [],
                    "nodes": _nodes(skeleton.keypoints, vis, locs[n]),
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
    return items
