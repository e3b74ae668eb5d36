"""Supervisely images projects: one annotation file per image, its graph objects read
in bulk (numpy) and written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain, repeat
from operator import is_, itemgetter, methodcaller
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.supervisely_graph import (
    _FLOAT32_LIMIT,
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

#: An image's graph objects of the template's class: the file (``where``), the objects
#: and their positions in the file's ``objects`` list.
_Graphs = tuple[str, list[Mapping[str, Any]], list[int]]

_get_nodes = methodcaller("get", "nodes")
_get_tags = methodcaller("get", "tags")
_get_loc = itemgetter("loc")


def _where(pending: Sequence[_Graphs], n: int) -> str:
    """The ``where`` of the ``n``-th graph object of all images (for error messages)."""
    for where, objects, positions in pending:
        if n < len(objects):
            return f"{where}: objects[{positions[n]}]"
        n -= len(objects)
    raise IndexError(n)  # pragma: no cover - callers pass a valid index


def _bulk_graphs(pending: Sequence[_Graphs], template: _Template) -> list[Instance]:
    """The instances of all images' graph objects, validated in bulk (column-wise,
    C-level passes over the 1.7M nodes of 100k objects); on any problem the objects
    are read one by one (:func:`_graph_instance`), so that the error names the file
    and object and every result is the one-by-one reading's."""
    k = template.skeleton.num_keypoints
    objects = list(chain.from_iterable(objs for _, objs, _ in pending))

    def slow() -> list[Instance]:
        out = []
        for n, obj in enumerate(objects):
            where = _where(pending, n)
            out.append(
                _graph_instance(obj.get("nodes"), _occluded_names(obj.get("tags"), where),
                                template, where)
            )  # fmt: skip
        return out

    n_objects = len(objects)
    node_maps = list(map(_get_nodes, objects))
    if not set(map(type, node_maps)) <= {dict}:
        return slow()
    counts = list(map(len, node_maps))
    keys = list(chain.from_iterable(node_maps))
    slots = list(map(template.slots.get, keys))
    if None in slots:
        return slow()
    values = list(chain.from_iterable(map(dict.values, node_maps)))
    if not set(map(type, values)) <= {dict}:
        return slow()
    try:
        locs_in = list(map(_get_loc, values))
    except KeyError:
        return slow()
    if not set(map(type, locs_in)) <= {list, tuple} or not set(map(len, locs_in)) <= {2}:
        return slow()
    flat = list(chain.from_iterable(locs_in))
    if not set(map(type, flat)) <= {int, float}:
        return slow()  # also refuses JSON true/false as coordinates
    try:
        locs = np.array(flat, dtype=np.float64).reshape(len(values), 2)
    except (OverflowError, ValueError):  # an int beyond float64
        return slow()
    if not np.all(np.abs(locs) < _FLOAT32_LIMIT):  # also NaN (Python input)
        return slow()
    disabled = np.fromiter(map(is_, map(dict.get, values, repeat("disabled")), repeat(True)),
                           dtype=bool, count=len(values))  # fmt: skip
    owner = np.repeat(np.arange(n_objects, dtype=np.intp), counts)
    cell = owner * k + np.array(slots, dtype=np.intp)
    # a node twice in one object (np.unique costs 20x more than counting here)
    if slots and np.bincount(cell, minlength=n_objects * k).max() > 1:
        return slow()
    enabled = cell[~disabled]
    keypoints = np.zeros((n_objects * k, 2), dtype=np.float32)
    visibility = np.zeros(n_objects * k, dtype=np.uint8)
    keypoints[enabled] = locs[~disabled]
    visibility[enabled] = 2
    occluded: list[int] = []
    labels = template.labels
    for n, tags in enumerate(map(_get_tags, objects)):
        if tags:
            try:
                names = _occluded_names(tags, "")
            except SuperviselyFormatError:
                names = _occluded_names(tags, _where(pending, n))  # raises, naming the object
            for name in names:
                t = labels.get(name)
                if t is None:
                    return slow()
                occluded.append(n * k + t)
    if occluded:
        cells = np.array(occluded, dtype=np.intp)
        cells = cells[visibility[cells] != 0]
        visibility[cells] = 1
    # validated in bulk above (shapes, finite, 0/1/2, zeroed unlabeled points)
    return list(map(Instance.trusted, keypoints.reshape(n_objects, k, 2),
                    visibility.reshape(n_objects, k)))  # fmt: skip


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
    graphs: list[Mapping[str, Any]] = []
    positions: list[int] = []
    title = template.title
    for o, obj in enumerate(objects):
        if not isinstance(obj, Mapping):
            raise SuperviselyFormatError(f"{where}: objects[{o}] is not an object")
        if obj.get("classTitle") != title or obj.get("geometryType") != "graph":
            skipped += 1
            continue
        graphs.append(obj)
        positions.append(o)
    record = ImageRecord(_file_name(item.dataset, item.name), width, height)
    return record, (where, graphs, positions), skipped


def _labeled_images(
    records: Sequence[ImageRecord], pending: Sequence[_Graphs], template: _Template
) -> list[LabeledImage]:
    """The images with their instances, all images' objects read in one bulk pass."""
    found = _bulk_graphs(pending, template)
    images = []
    start = 0
    for record, (_, objects, _) in zip(records, pending):
        end = start + len(objects)
        images.append(LabeledImage(record, found[start:end]))
        start = end
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
