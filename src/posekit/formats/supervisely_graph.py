"""The parts of a Supervisely project that images and videos share: the graph class
of ``meta.json`` (the template, both ways), graph nodes and the occlusion tag of one
object, image sizes and ``<dataset>/<name>`` names.

See :mod:`posekit.formats.supervisely` for the layout and the mapping of states.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from posekit.core import Instance
from posekit.formats.numbers import shortest_decimals
from posekit.media.paths import UnsafePathError, safe_relative_path
from posekit.skeleton import Skeleton, SkeletonError
from posekit.skeleton.inference import preset_for_names, uniform_sigma_template
from posekit.skeleton.mapping import names_mapping

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_SIGMA",
    "OCCLUDED_TAG",
    "SuperviselyFormatError",
    "SuperviselyItem",
    "meta_json",
]

logger = logging.getLogger(__name__)

#: Tag whose value lists an object's occluded keypoint names (comma separated).
OCCLUDED_TAG = "posekit_occluded"
#: Dataset folder of images whose file names have no folder.
DEFAULT_DATASET = "ds0"
#: OKS sigma of every keypoint of a template built from a project whose node labels
#: match no shipped preset (Supervisely carries no sigmas); pass ``skeleton=``.
DEFAULT_SIGMA = 0.07
#: Magnitude from which a number rounds to an infinite float32 (2**128 - 2**103).
_FLOAT32_LIMIT = 2.0**128 - 2.0**103


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
                skeleton = uniform_sigma_template(
                    title,
                    labels,
                    edges,
                    sigma=DEFAULT_SIGMA,
                    why="Supervisely carries no OKS sigmas",
                )
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


# ------------------------------------------------------------------ graph objects


def _number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float64
        return False


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
        if not (abs(loc[0]) < _FLOAT32_LIMIT and abs(loc[1]) < _FLOAT32_LIMIT):
            raise SuperviselyFormatError(
                f"{where}: node {key!r}: 'loc' {loc!r} is beyond the range of float32 keypoints"
            )
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


def _locations(instances: Sequence[Instance]) -> list[list[float]]:
    """Per instance, its x, y values as the shortest decimals reading back as the float32."""
    if not instances:
        return []
    values = shortest_decimals(np.stack([inst.keypoints for inst in instances]))
    return values.reshape(len(instances), -1).tolist()


def _nodes(names: Sequence[str], visibility: list[int], loc: list[Any]) -> dict[str, Any]:
    return {
        name: {"loc": [loc[2 * s], loc[2 * s + 1]]} if visibility[s]
        else {"loc": [0, 0], "disabled": True}
        for s, name in enumerate(names)
    }  # fmt: skip


def _occluded_value(names: Sequence[str], visibility: list[int]) -> str | None:
    occluded = [name for name, v in zip(names, visibility) if v == 1]
    return ",".join(occluded) if occluded else None
