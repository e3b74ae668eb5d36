"""Reading CVAT for images 1.1 and CVAT for video 1.1 XML into a :class:`PoseDataset`.

See :mod:`posekit.formats.cvat` for the layout and the mapping of CVAT's states;
:mod:`posekit.formats.cvat_tracks` for the track rule.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.cvat_tracks import PointKeyframes, element_states
from posekit.gc_pause import gc_paused
from posekit.skeleton import Skeleton, SkeletonError
from posekit.skeleton.inference import preset_for_names, skeleton_from_category
from posekit.skeleton.mapping import names_mapping

__all__ = [
    "CVAT_STASH_KEY",
    "DEFAULT_SIGMA",
    "VISIBILITY_ATTRIBUTE",
    "CvatFormatError",
    "frame_file_name",
    "from_cvat",
    "parse_cvat_xml",
]

logger = logging.getLogger(__name__)

#: ``TrackRecord.extra`` key holding a track's per-point CVAT keyframes, so that an
#: imported track is written back with exactly the same keyframes.
CVAT_STASH_KEY = "cvat"
#: Text attribute of a plain ``<points>`` shape with one visibility (0/1/2) per point.
VISIBILITY_ATTRIBUTE = "posekit_visibility"
#: OKS sigma given to every keypoint of a template built from a CVAT file whose
#: keypoint names match no shipped preset (CVAT files carry no sigmas); the
#: template says so in ``sigmas_source``. Pass ``skeleton=`` to use real ones.
DEFAULT_SIGMA = 0.07


class CvatFormatError(ValueError):
    """A CVAT XML file cannot be read or written; the message names the element."""


def frame_file_name(frame: int) -> str:
    """File name of a video frame, as in CVAT's own dataset exports (``frame_000012.png``)."""
    return f"frame_{frame:06d}.png"


def parse_cvat_xml(data: bytes | str, *, source: str = "CVAT XML") -> Element:
    """The root element of a CVAT XML document, parsed with defusedxml.

    Raises:
        CvatFormatError: malformed XML, or XML with entity declarations or
            external references (refused: they are how XML bombs and file
            disclosure attacks work, and CVAT never writes them).
    """
    from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except EntitiesForbidden as exc:
        raise CvatFormatError(
            f"{source}: the XML declares entity {exc.name!r}; entity declarations are "
            "refused (CVAT never writes them)"
        ) from None
    except ExternalReferenceForbidden as exc:
        raise CvatFormatError(
            f"{source}: the XML references an external resource ({exc.sysid or exc.pubid!r}); "
            "external references are refused"
        ) from None
    except DTDForbidden:  # pragma: no cover - forbid_dtd is False
        raise CvatFormatError(f"{source}: the XML has a DTD, which is refused") from None
    except ParseError as exc:
        raise CvatFormatError(f"{source}: malformed XML: {exc}") from None


class _Shape:
    """One shape (``<skeleton>``, ``<points>``, ``<box>``...) of an image or track."""

    __slots__ = ("attributes", "attrs", "points", "tag")

    def __init__(self, tag: str, attrs: dict[str, str]) -> None:
        self.tag = tag
        self.attrs = attrs
        self.points: list[dict[str, str]] = []  # a skeleton's <points> children
        self.attributes: list[list[Any]] = []  # [name, [text parts]] of <attribute>s

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.attrs.get(name, default)


class _Collector:
    """Streaming handler: ``<meta>`` as an element tree, images and tracks as plain
    records (an element tree of 100k skeletons costs more than the rest of the import)."""

    def __init__(self) -> None:
        self.root_tag: str | None = None
        self.meta: Element | None = None
        self.images: list[tuple[dict[str, str], list[_Shape]]] = []
        self.tracks: list[tuple[dict[str, str], list[_Shape]]] = []
        self._depth = 0
        self._builder: TreeBuilder | None = None
        self._shapes: list[_Shape] | None = None
        self._shape: _Shape | None = None
        self._text: list[str] | None = None
        self.parser: Any = None  # the expat parser, whose text handler is set only when needed

    def _want_text(self, on: bool) -> None:
        if self.parser is not None:
            self.parser.CharacterDataHandler = self.data if on else None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        depth = self._depth
        self._depth = depth + 1
        if self._builder is not None:
            self._builder.start(tag, attrs)
        elif depth == 0:
            self.root_tag = tag
        elif depth == 1:
            self._shapes = None
            if tag == "image":
                self._shapes = []
                self.images.append((attrs, self._shapes))
            elif tag == "track":
                self._shapes = []
                self.tracks.append((attrs, self._shapes))
            elif tag == "meta" and self.meta is None:
                self._builder = TreeBuilder()
                self._builder.start(tag, attrs)
                self._want_text(True)
        elif self._shapes is None:
            return
        elif depth == 2:
            self._shape = _Shape(tag, attrs)
            self._shapes.append(self._shape)
        elif depth == 3 and self._shape is not None:
            if tag == "points":
                self._shape.points.append(attrs)
            elif tag == "attribute":
                self._text = []
                self._shape.attributes.append([attrs.get("name"), self._text])
                self._want_text(True)

    def end(self, tag: str) -> None:
        self._depth -= 1
        if self._builder is not None:
            self._builder.end(tag)
            if self._depth == 1:
                self.meta = self._builder.close()
                self._builder = None
                self._want_text(False)
        elif self._depth == 3 and self._text is not None:
            self._text = None
            self._want_text(False)

    def data(self, text: str) -> None:
        if self._builder is not None:
            self._builder.data(text)
        elif self._text is not None:
            self._text.append(text)

    def walk(self, element: Element) -> None:
        """Feed an already parsed element tree."""
        self.start(element.tag, dict(element.attrib))
        if element.text:
            self.data(element.text)
        for child in element:
            self.walk(child)
            if child.tail:
                self.data(child.tail)
        self.end(element.tag)


def _collect(data: bytes | str | Element, source: str) -> _Collector:
    """Stream the document through expat with the handlers defusedxml installs (an
    entity declaration or an external entity reference raises defusedxml's own
    ``EntitiesForbidden`` / ``ExternalReferenceForbidden``, turned into
    :class:`CvatFormatError`); defusedxml's ElementTree parser is pure Python and
    three times slower on 100k-instance files."""
    import pyexpat

    from defusedxml import EntitiesForbidden, ExternalReferenceForbidden

    collector = _Collector()
    if isinstance(data, Element):
        collector.walk(data)
        return collector

    def entity_decl(name, is_parameter_entity, value, base, sysid, pubid, notation_name):
        raise EntitiesForbidden(name, value, base, sysid, pubid, notation_name)

    def unparsed_entity_decl(name, base, sysid, pubid, notation_name):
        raise EntitiesForbidden(name, None, base, sysid, pubid, notation_name)

    def external_entity_ref(context, base, sysid, pubid):
        raise ExternalReferenceForbidden(context, base, sysid, pubid)

    parser = pyexpat.ParserCreate()
    parser.buffer_text = True
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    collector.parser = parser
    parser.EntityDeclHandler = entity_decl
    parser.UnparsedEntityDeclHandler = unparsed_entity_decl
    parser.ExternalEntityRefHandler = external_entity_ref
    try:
        parser.Parse(data, True)
    except EntitiesForbidden as exc:
        raise CvatFormatError(
            f"{source}: the XML declares entity {exc.name!r}; entity declarations are "
            "refused (CVAT never writes them)"
        ) from None
    except ExternalReferenceForbidden as exc:
        raise CvatFormatError(
            f"{source}: the XML references an external resource ({exc.sysid or exc.pubid!r}); "
            "external references are refused"
        ) from None
    except pyexpat.ExpatError as exc:
        raise CvatFormatError(f"{source}: malformed XML: {exc}") from None
    return collector


# --------------------------------------------------------------------------- meta


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
    category = {
        "name": label,
        "keypoints": list(names),
        "skeleton": [[position[a] + 1, position[b] + 1] for a, b in edges],
    }
    return skeleton_from_category(
        category,
        [DEFAULT_SIGMA] * len(names),
        sigmas_source=f"uniform {DEFAULT_SIGMA}: CVAT files carry no OKS sigmas",
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


# ------------------------------------------------------------------------ shapes


def _parse_points(text: str | None, where: str) -> list[tuple[float, float]]:
    if text is None:
        raise CvatFormatError(f"{where}: missing 'points' attribute")
    out = []
    for pair in text.split(";"):
        pair = pair.strip()
        if not pair:
            continue
        parts = pair.split(",")
        if len(parts) != 2:
            raise CvatFormatError(f"{where}: points={text!r}: {pair!r} is not 'x,y'")
        try:
            x, y = float(parts[0]), float(parts[1])
        except ValueError:
            raise CvatFormatError(
                f"{where}: points={text!r}: {pair!r} is not a number pair"
            ) from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise CvatFormatError(f"{where}: points={text!r}: non-finite coordinate")
        out.append((x, y))
    return out


_FLAGS = {"0": False, "1": True, "false": False, "true": True, "False": False, "True": True,
          "": False}  # fmt: skip


def _flag(attrs: dict[str, str], name: str, default: str = "0", tag: str = "points") -> bool:
    value = attrs.get(name, default)
    try:
        return _FLAGS[value]
    except KeyError:
        raise CvatFormatError(f"<{tag}> {name}={value!r}: expected 0 or 1") from None


def _source(attrs: dict[str, str]) -> str:
    value = attrs.get("source", "manual")
    return "manual" if value in ("manual", "") else "model:cvat"


def _new_instance(keypoints: np.ndarray, visibility: np.ndarray, source: str) -> Instance:
    # Instance.__post_init__ costs ~100 us; the arrays here were validated in bulk
    # (shapes, finite coordinates, 0/1/2 visibility, zeroed unlabeled points), so the
    # object is built directly to keep 100k-instance imports fast (as the COCO reader).
    instance = object.__new__(Instance)
    instance.__dict__ = {
        "keypoints": keypoints, "visibility": visibility, "keypoint_scores": None,
        "box": None, "score": None, "source": source, "status": "accepted",
        "track_id": None, "iscrowd": False, "area": None, "segmentation": None, "id": None,
        "extra": {},
    }  # fmt: skip
    return instance


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
    points = [point for _, shape in owners for point in shape.points]
    point_owner = np.repeat(
        np.arange(len(owners), dtype=np.int64), [len(shape.points) for _, shape in owners]
    )
    point_slot = [slots.get(point.get("label", "")) for point in points]
    texts = [point.get("points") for point in points]
    outside = [point.get("outside", "0") for point in points]
    occluded = [point.get("occluded", "0") for point in points]

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
    if None in point_slot or None in texts:
        slow()
    try:
        values = np.array(",".join(texts).split(","), dtype=np.float64)  # type: ignore[arg-type]
        out_flags = np.array([_FLAGS[v] for v in outside], dtype=bool)
        occ_flags = np.array([_FLAGS[v] for v in occluded], dtype=bool)
    except (KeyError, ValueError):
        slow()
    if values.shape[0] != 2 * m or ";" in "".join(texts) or not np.all(np.isfinite(values)):  # type: ignore[arg-type]
        slow()
    owner = point_owner
    slot = np.asarray(point_slot, dtype=np.int64)
    if np.unique(owner * k + slot).shape[0] != m:
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


# ------------------------------------------------------------------------ tracks


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


# ----------------------------------------------------------------------- dataset


def from_cvat(
    xml: bytes | str | Element,
    skeleton: Skeleton | None = None,
    *,
    label: str | None = None,
    source: str = "CVAT XML",
) -> PoseDataset:
    """A CVAT for images / for video 1.1 document as a :class:`PoseDataset`.

    Args:
        xml: The XML text (bytes or str; entity declarations and external references
            are refused, see :func:`_collect`) or its root element.
        skeleton: Template to read into; keypoints are matched by name (skeleton
            sublabels) or by position (plain ``<points>``). None: the shipped
            preset with the file's sublabel names, else a template built from the
            file (names, SVG edges, uniform sigmas :data:`DEFAULT_SIGMA`).
        label: The CVAT label to read (default: the first skeleton label, else the
            label of the first ``<points>`` shape). Other labels' shapes are skipped.
        source: Name of the input for error messages.

    Returns:
        Images (``<image>`` elements) and, for tracks, one video whose frames with a
        visible track are images (``frame_000012.png``), every frame of a track
        computed by CVAT's rule (:mod:`posekit.formats.cvat_tracks`), with a
        :class:`TrackRecord` per track holding its keyframes.

    Raises:
        CvatFormatError: malformed XML, entities or external references, an unknown
            node, a points count that does not match the template, a frame outside
            the task; nothing is returned in part.
    """
    with gc_paused():
        return _from_cvat(xml, skeleton, label, source)


def _from_cvat(
    xml: bytes | str | Element, skeleton: Skeleton | None, label: str | None, source: str
) -> PoseDataset:
    doc = _collect(xml, source)
    if doc.root_tag != "annotations":
        raise CvatFormatError(f"{source}: root element is <{doc.root_tag}>, expected <annotations>")
    meta = _read_meta(doc.meta, source)
    layout = _layout(doc, meta, skeleton, label, source)
    template = layout.skeleton
    records: list[ImageRecord] = []
    owners: list[tuple[int, _Shape]] = []
    skipped = 0
    for number, (attrs, shapes) in enumerate(doc.images):
        name = attrs.get("name")
        where = f"{source}: <image id={attrs.get('id')!r} name={name!r}>"
        if not name:
            raise CvatFormatError(f"{where}: missing 'name'")
        try:
            width, height = int(attrs.get("width", "")), int(attrs.get("height", ""))
            image_id = int(attrs.get("id", number))
        except ValueError:
            raise CvatFormatError(f"{where}: width, height and id must be integers") from None
        records.append(ImageRecord(name, width, height, id=image_id))
        for shape in shapes:
            if shape.tag == layout.kind and shape.get("label") == layout.label:
                owners.append((number, shape))
            elif shape.tag != "tag":
                skipped += 1
    if layout.kind == "skeleton":
        found = _bulk_skeletons(owners, doc.images, layout, source)
    else:
        found = [
            _shape_instance(shape, layout, _image_where(source, doc.images[i][0], shape))
            for i, shape in owners
        ]
    per_image: list[list[Instance]] = [[] for _ in records]
    for (i, _), instance in zip(owners, found):
        per_image[i].append(instance)
    images = [LabeledImage(r, inst) for r, inst in zip(records, per_image)]
    videos: list[VideoRecord] = []
    tracks: list[TrackRecord] = []
    track_items = [(a, s) for a, s in doc.tracks if a.get("label") == layout.label]
    skipped += len(doc.tracks) - len(track_items)
    if track_items or meta.mode == "interpolation":
        start, step, n = _track_frames(doc, meta)
        video_name = meta.name or meta.source or "video"
        width = meta.width if meta.width is not None else 0
        height = meta.height if meta.height is not None else 0
        video = VideoRecord(
            name=video_name,
            width=width,
            height=height,
            frame_count=start + (n - 1) * step + 1 if n else 0,
            file_name=meta.source,
            # a task on part of a video (start_frame, frame_filter step) keeps its grid
            extra={"cvat": {"start_frame": start, "step": step, "size": n}}
            if start or step != 1
            else {},
        )
        by_frame: dict[int, list[Instance]] = {}
        for number, (attrs, shapes) in enumerate(track_items):
            result = _read_track(attrs, shapes, number, layout, (start, step, n), source)
            if result is None:
                continue
            result.record.video = video_name
            tracks.append(result.record)
            for frame, instance in zip(result.frames, result.instances):
                by_frame.setdefault(frame, []).append(instance)
        ids = [t.track_id for t in tracks]
        if len(set(ids)) != len(ids):
            raise CvatFormatError(f"{source}: two tracks have the same id")
        videos.append(video)
        for frame in sorted(by_frame):
            record = ImageRecord(
                frame_file_name(frame), width, height, video=video_name, frame_index=frame
            )
            images.append(LabeledImage(record, by_frame[frame]))
    if skipped:
        logger.info("%s: skipped %d shapes/tracks that are not label %r", source, skipped,
                    layout.label)  # fmt: skip
    return PoseDataset(skeleton=template, images=images, videos=videos, tracks=tracks)
