"""The ``<meta>`` of a CVAT XML document: the task's labels and frames, the skeleton
label's SVG (node names, edges), and the template a document is read into (which label,
how its points map onto the template's keypoints).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from posekit.formats.cvat_xml import (
    CvatFormatError,
    _Collector,
    _parse_points,
    _Shape,
    parse_cvat_xml,
)
from posekit.skeleton import Skeleton, SkeletonError
from posekit.skeleton.inference import preset_for_names, uniform_sigma_template
from posekit.skeleton.mapping import names_mapping

__all__ = ["DEFAULT_SIGMA"]

logger = logging.getLogger(__name__)

#: OKS sigma given to every keypoint of a template built from a CVAT file whose
#: keypoint names match no shipped preset (CVAT files carry no sigmas); the
#: template says so in ``sigmas_source``. Pass ``skeleton=`` to use real ones.
DEFAULT_SIGMA = 0.07


@dataclass
class _Label:
    name: str
    type: str = ""
    parent: str | None = None
    svg: str = ""


@dataclass
class _Meta:
    labels: list[_Label] = field(default_factory=list)
    size: int | None = None
    start_frame: int = 0
    stop_frame: int | None = None
    step: int = 1
    width: int | None = None
    height: int | None = None
    name: str | None = None
    source: str | None = None
    mode: str | None = None


def _text(element: Element | None, tag: str) -> str | None:
    if element is None:
        return None
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _int_text(element: Element | None, tag: str, where: str) -> int | None:
    value = _text(element, tag)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise CvatFormatError(f"{where}: <{tag}> is {value!r}, not an integer") from None


def _read_meta(meta_el: Element | None, where: str) -> _Meta:
    meta = _Meta()
    if meta_el is None:
        return meta
    # CVAT writes <task> for task exports, <job> for job exports and <project> (with
    # <tasks><task>...) for project exports.
    containers = [el for el in (meta_el.find("task"), meta_el.find("job")) if el is not None]
    project = meta_el.find("project")
    if project is not None:
        containers.append(project)
        tasks = project.find("tasks")
        if tasks is not None:
            containers.extend(tasks.findall("task"))
    seen_labels: set[str] = set()
    for container in containers:
        labels = container.find("labels")
        if labels is None:
            continue
        for label_el in labels.findall("label"):
            name = _text(label_el, "name")
            if not name or name in seen_labels:
                continue
            seen_labels.add(name)
            meta.labels.append(
                _Label(
                    name=name,
                    type=_text(label_el, "type") or "",
                    parent=_text(label_el, "parent") or None,
                    svg=(label_el.findtext("svg") or ""),
                )
            )
    for container in containers:
        size = _int_text(container, "size", f"{where}: <meta><{container.tag}>")
        if size is None:
            continue
        meta.size = size
        meta.start_frame = _int_text(container, "start_frame", where) or 0
        meta.stop_frame = _int_text(container, "stop_frame", where)
        step = re.search(r"step\s*=\s*(\d+)", _text(container, "frame_filter") or "")
        meta.step = max(1, int(step.group(1))) if step else 1
        meta.name = _text(container, "name")
        meta.mode = _text(container, "mode")
        original = container.find("original_size")
        if original is not None:
            meta.width = _int_text(original, "width", where)
            meta.height = _int_text(original, "height", where)
        break
    meta.source = _text(meta_el, "source") or None
    return meta


def _svg_graph(label: _Label, where: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Node names (by node id order) and edges (by node name) of a skeleton's SVG."""
    if not label.svg.strip():
        return [], []
    svg = parse_cvat_xml(f"<svg>{label.svg}</svg>", source=f"{where}: SVG of label {label.name!r}")
    if svg.find("svg") is not None:  # the text already had its own <svg> root
        svg = svg.find("svg")
    nodes: dict[str, str] = {}
    for circle in svg.iter("circle"):
        node_id = circle.get("data-node-id") or circle.get("data-element-id")
        name = circle.get("data-label-name")
        if node_id is None or not name:
            continue
        nodes[node_id] = name
    edges: list[tuple[str, str]] = []
    for line in svg.iter("line"):
        if line.get("data-type", "edge") != "edge":
            continue
        ends = (line.get("data-node-from"), line.get("data-node-to"))
        if None in ends:
            raise CvatFormatError(
                f"{where}: SVG of label {label.name!r}: an edge <line> lacks data-node-from/to"
            )
        missing = [e for e in ends if e not in nodes]
        if missing:
            raise CvatFormatError(
                f"{where}: SVG of label {label.name!r}: edge <line data-node-from="
                f"{ends[0]!r} data-node-to={ends[1]!r}> names node {missing[0]!r}, which has "
                "no <circle data-node-id ... data-label-name>"
            )
        edges.append((nodes[ends[0]], nodes[ends[1]]))  # type: ignore[index]
    ordered = [nodes[k] for k in sorted(nodes, key=lambda k: (not k.isdigit(), int(k) if
                                                               k.isdigit() else 0, k))]  # fmt: skip
    return ordered, edges


# ----------------------------------------------------------------------- template


@dataclass
class _Layout:
    """Which CVAT label is read and how its points map onto the template."""

    label: str
    kind: str  # "skeleton" or "points"
    skeleton: Skeleton
    slots: dict[str, int]  # skeleton kind: CVAT sublabel name -> template index
    num_points: int  # points kind: points per shape


def _built_template(label: str, names: Sequence[str], edges: Sequence[tuple[str, str]]) -> Skeleton:
    position = {n: i for i, n in enumerate(names)}
    return uniform_sigma_template(
        label,
        names,
        [(position[a], position[b]) for a, b in edges],
        sigma=DEFAULT_SIGMA,
        why="CVAT files carry no OKS sigmas",
    )


def _first_shape_label(doc: _Collector, tag: str) -> str | None:
    for _, shapes in doc.images:
        for shape in shapes:
            if shape.tag == tag:
                return shape.get("label")
    for attrs, shapes in doc.tracks:
        if any(shape.tag == tag for shape in shapes):
            return attrs.get("label")
    return None


def _layout(
    doc: _Collector, meta: _Meta, skeleton: Skeleton | None, label: str | None, where: str
) -> _Layout:
    by_name = {lab.name: lab for lab in meta.labels}
    skeleton_labels = [
        lab.name
        for lab in meta.labels
        if lab.parent is None
        and (lab.type == "skeleton" or lab.svg or any(o.parent == lab.name for o in meta.labels))
    ]
    if label is None:
        label = skeleton_labels[0] if skeleton_labels else _first_shape_label(doc, "skeleton")
    kind = "skeleton"
    if label is None or (label not in skeleton_labels and _first_shape_label(doc, "skeleton")
                         != label):  # fmt: skip
        points_label = label if label is not None else _first_shape_label(doc, "points")
        if points_label is None:
            if skeleton is None:
                raise CvatFormatError(
                    f"{where}: no skeleton label and no <points> shape to read keypoints from"
                )
            return _Layout(skeleton.category, "points", skeleton, {}, skeleton.num_keypoints)
        label, kind = points_label, "points"
    if kind == "points":
        counts = set()
        for shape in _iter_points_shapes(doc, label):
            counts.add(len(_parse_points(shape.get("points"), f"{where}: <points>")))
        if skeleton is not None:
            k = skeleton.num_keypoints
            bad = sorted(c for c in counts if c != k)
            if bad:
                raise CvatFormatError(
                    f"{where}: <points label={label!r}> has {bad[0]} points, but template "
                    f"{skeleton.name!r} has {k} keypoints (points count mismatch)"
                )
            return _Layout(label, kind, skeleton, {}, k)
        if len(counts) > 1:
            raise CvatFormatError(
                f"{where}: <points label={label!r}> shapes have different numbers of points "
                f"({sorted(counts)}); pass skeleton=... with the keypoint layout"
            )
        k = counts.pop() if counts else 0
        if k == 0:
            raise CvatFormatError(f"{where}: <points label={label!r}> has no points")
        names = [f"point_{i + 1}" for i in range(k)]
        return _Layout(label, kind, _built_template(label, names, []), {}, k)
    # skeleton label
    lab = by_name.get(label, _Label(label, "skeleton"))
    svg_names, edges = _svg_graph(lab, where)
    names = [o.name for o in meta.labels if o.parent == label] or svg_names
    if not names:  # no meta: take the points of the first skeleton shape
        first = next(
            (
                shape
                for _, shapes in doc.images + doc.tracks
                for shape in shapes
                if shape.tag == "skeleton" and shape.get("label") == label
            ),
            None,
        )
        names = [] if first is None else [p.get("label") or "" for p in first.points]
    if not names:
        raise CvatFormatError(f"{where}: skeleton label {label!r} has no sublabels (points)")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise CvatFormatError(f"{where}: skeleton label {label!r} has sublabel {dup!r} twice")
    edges = [(a, b) for a, b in edges if a in names and b in names]
    if skeleton is None:
        skeleton = preset_for_names(names)
        if skeleton is None:
            try:
                skeleton = _built_template(label, names, edges)
            except SkeletonError as exc:
                raise CvatFormatError(f"{where}: skeleton label {label!r}: {exc}") from None
            logger.warning(
                "%s: no shipped template has the keypoints of skeleton %r; using one built "
                "from the file with uniform OKS sigmas %.2f (pass skeleton=... for real ones)",
                where, label, DEFAULT_SIGMA,
            )  # fmt: skip
    try:
        index = names_mapping(names, skeleton, strict=True)
    except SkeletonError as exc:
        raise CvatFormatError(
            f"{where}: skeleton label {label!r}: {exc} (a node of the file's skeleton that "
            "the template does not have)"
        ) from None
    slots = {names[int(s)]: t for t, s in enumerate(index.tolist()) if s >= 0}
    return _Layout(label, kind, skeleton, slots, skeleton.num_keypoints)


def _iter_points_shapes(doc: _Collector, label: str) -> Iterator[_Shape]:
    for _, shapes in doc.images:
        for shape in shapes:
            if shape.tag == "points" and shape.get("label") == label:
                yield shape
    for attrs, shapes in doc.tracks:
        if attrs.get("label") == label:
            yield from (shape for shape in shapes if shape.tag == "points")
