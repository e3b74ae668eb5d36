"""Label Studio JSON export/import of keypoints, and the labeling config for a template.

A Label Studio export is a list of tasks (``data`` naming the image, ``annotations``
and ``predictions`` holding ``result`` lists). posekit maps them as follows:

* one task is one image (``ImageRecord.id`` is the task id); the image URL in
  ``data`` becomes ``file_name`` (``/data/local-files/?d=a/b.jpg`` -> ``a/b.jpg``,
  ``/data/upload/3/x.jpg`` -> ``upload/3/x.jpg``, ``s3://bucket/k.jpg`` ->
  ``bucket/k.jpg``, a URL -> its path) and is kept in
  ``ImageRecord.extra["labelstudio_image"]`` so that export writes it back;
* a person is a ``rectanglelabels`` region (the person box) and the
  ``keypointlabels`` regions whose ``parentID`` is that box's ``id``; keypoint
  ``x``/``y`` and box values are percent of ``original_width``/``original_height``;
* keypoints without a ``parentID`` form one person per result list when each
  keypoint name appears at most once (else the error names the repeated one);
* occlusion: Label Studio has no visibility flag; posekit writes a per-region
  ``choices`` result ``occluded`` (the ``Choices name="visibility" perRegion``
  control of :func:`labelstudio_config`) on occluded points and reads it back;
* the latest non-cancelled annotation of a task gives its ``accepted`` instances;
  each prediction gives ``predicted`` instances with ``source`` ``model:<model_version>``;
  region ``score`` values become instance / keypoint scores.

Label Studio has no skeleton (edges, flip pairs, OKS sigmas): pass the template,
or the labeling config (its ``KeyPointLabels`` in ``model_index`` order must be the
names of a shipped preset). It has no tracks, no crowd regions, no ``rejected``
state and no instance ids: those are not written (rejected instances are skipped,
with a warning). An instance without a box is written with the box around its
points, marked in the region's ``meta.text``, and read back without a box.

Label Studio's own COCO exporter (label-studio-sdk) puts every keypoint of a task
into a single annotation, whatever person it belongs to; posekit groups keypoints
by ``parentID`` instead, one instance per person box (as the SDK's YOLO exporter does).

Example:
    >>> from posekit.skeleton import get_preset
    >>> xml = labelstudio_config(get_preset("coco17"))
    >>> '<Label value="nose" model_index="0"' in xml
    True
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from posekit.core import Instance, InstanceError
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, fill_missing_ids
from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.skeleton import Skeleton, SkeletonError, names_mapping, template_for_names

__all__ = [
    "DERIVED_BOX_NOTE",
    "LabelStudioFormatError",
    "from_labelstudio",
    "labelstudio_config",
    "parse_labelstudio_config",
    "read_labelstudio",
    "to_labelstudio",
    "write_labelstudio",
]

log = logging.getLogger(__name__)

#: ``meta.text`` note on a person box that posekit derived from the keypoints.
DERIVED_BOX_NOTE = "posekit: box around the keypoints"
#: ``ImageRecord.extra`` key of the task's image URL.
IMAGE_URL_KEY = "labelstudio_image"
OCCLUDED = "occluded"
LOCAL_FILES_PREFIX = "/data/local-files/?d="
_POINT_WIDTH_PX = 3.0  # drawn keypoint radius written in exports


class LabelStudioFormatError(ValueError):
    """A Label Studio export or config is malformed; the message names the task and region."""


# ------------------------------------------------------------------ config


def labelstudio_config(
    template: Skeleton,
    *,
    image_name: str = "image",
    keypoints_name: str = "keypoints",
    box_name: str = "bbox",
    visibility_name: str = "visibility",
) -> str:
    """The Label Studio labeling config (XML) for a posekit template.

    It has the ``Image``, a ``RectangleLabels`` with the template's category (the
    person box, parent of its keypoints), a ``KeyPointLabels`` with one ``Label``
    per keypoint (``model_index`` = its position in the template, colour from the
    template) and a per-region ``Choices`` to flag a point as occluded.
    """
    view = ET.Element("View")
    ET.SubElement(view, "Image", name=image_name, value=f"${image_name}")
    boxes = ET.SubElement(view, "RectangleLabels", name=box_name, toName=image_name)
    ET.SubElement(boxes, "Label", value=template.category)
    points = ET.SubElement(view, "KeyPointLabels", name=keypoints_name, toName=image_name)
    for index, (name, color) in enumerate(zip(template.keypoints, template.keypoint_colors)):
        ET.SubElement(
            points,
            "Label",
            value=name,
            model_index=str(index),
            background="#{:02x}{:02x}{:02x}".format(*(int(c) for c in color)),
        )
    choices = ET.SubElement(
        view,
        "Choices",
        name=visibility_name,
        toName=image_name,
        perRegion="true",
        whenTagName=keypoints_name,
        choice="single",
    )
    ET.SubElement(choices, "Choice", value=OCCLUDED)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def parse_labelstudio_config(xml: str) -> dict[str, Any]:
    """What posekit needs from a labeling config: ``keypoints`` (names in
    ``model_index`` order, else document order), ``image_key`` (the ``data`` field of
    the image) and ``box_labels`` (the ``RectangleLabels`` values).

    Raises:
        LabelStudioFormatError: not XML, or XML with a DTD or entities (refused).
    """
    import defusedxml.ElementTree as SafeET
    from defusedxml import DefusedXmlException

    try:
        root = SafeET.fromstring(xml)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise LabelStudioFormatError(f"labeling config: not valid XML: {exc}") from None
    names: list[tuple[int | None, int, str]] = []
    for position, label in enumerate(root.iter("KeyPointLabels")):
        for j, item in enumerate(label.iter("Label")):
            raw = item.get("model_index")
            index = int(raw) if raw is not None and raw.strip().isdigit() else None
            names.append((index, position * 10_000 + j, item.get("value", "")))
    if names and all(index is not None for index, _, _ in names):
        names.sort(key=lambda t: (t[0], t[1]))
    image = next(root.iter("Image"), None)
    image_key = None
    if image is not None and (image.get("value") or "").startswith("$"):
        image_key = image.get("value")[1:]
    box_labels = [
        item.get("value", "") for tag in root.iter("RectangleLabels") for item in tag.iter("Label")
    ]
    return {"keypoints": [n for _, _, n in names], "image_key": image_key, "box_labels": box_labels}


# ------------------------------------------------------------------ import


def _file_name_of(url: str) -> str:
    if url.startswith("/data/local-files/"):
        found = parse_qs(urlparse(url).query).get("d")
        if found:
            return found[0]
    parsed = urlparse(url)
    if parsed.scheme in ("s3", "gs", "azure-blob"):
        return f"{parsed.netloc}{unquote(parsed.path)}"
    if parsed.scheme in ("http", "https"):
        return unquote(parsed.path).lstrip("/")
    if url.startswith("/data/"):
        return url[len("/data/") :]
    return url


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


class _Task:
    """Reads one task's result lists into instances (errors name the task and region)."""

    def __init__(
        self, where: str, skeleton: Skeleton, box_labels: set[str], indices: dict[str, int]
    ):
        self.where = where
        self.skeleton = skeleton
        self.box_labels = box_labels
        self.indices = indices  # keypoint label -> template index (-1: unknown), shared
        self.size: tuple[int, int] | None = None

    def index_of(self, label: str) -> int:
        index = self.indices.get(label)
        if index is None:
            found = np.flatnonzero(names_mapping([label], self.skeleton) == 0)
            index = self.indices[label] = int(found[0]) if found.size else -1
        return index

    def fail(self, message: str) -> LabelStudioFormatError:
        return LabelStudioFormatError(f"{self.where}: {message}")

    def take_size(self, result: Mapping[str, Any], rid: str) -> None:
        width, height = result.get("original_width"), result.get("original_height")
        if width is None and height is None:
            return
        if not (type(width) is int and type(height) is int and width > 0 and height > 0):
            raise self.fail(
                f"{rid}: original_width/original_height must be positive integers, "
                f"got {width!r}/{height!r}"
            )
        if self.size is not None and self.size != (width, height):
            raise self.fail(
                f"{rid}: original size {width}x{height} differs from "
                f"{self.size[0]}x{self.size[1]} of other regions"
            )
        if result.get("image_rotation") not in (None, 0):
            raise self.fail(
                f"{rid}: image_rotation {result.get('image_rotation')!r} is not supported "
                "(rotate the image back in Label Studio first)"
            )
        self.size = (width, height)

    def percent(self, value: Mapping[str, Any], key: str, rid: str) -> float:
        number = value.get(key)
        if not _number(number):
            raise self.fail(f"{rid}: value.{key} must be a number, got {number!r}")
        if not 0.0 <= number <= 100.0:
            raise self.fail(f"{rid}: value.{key} {number!r} is outside 0-100 (percent)")
        return float(number)

    def scan(self, results: Any, what: str) -> None:
        """First pass: validate the result list and learn the image size."""
        if not isinstance(results, list):
            raise self.fail(f"{what}: 'result' must be a list")
        for r, result in enumerate(results):
            if not isinstance(result, dict):
                raise self.fail(f"{what}: result[{r}] is not an object")
            if result.get("type") in ("keypointlabels", "rectanglelabels", "choices"):
                rid = result.get("id")
                self.take_size(
                    result, f"{what} region {rid!r}" if rid is not None else f"{what} result[{r}]"
                )

    def instances(
        self, results: list[dict[str, Any]], what: str, status: str, source: str, score: Any
    ) -> list[Instance]:
        if self.size is None:
            raise self.fail(f"{what}: regions without original_width/original_height")
        width, height = self.size
        regions: dict[str, dict[str, Any]] = {}
        boxes: dict[str, dict[str, Any]] = {}
        keypoints: list[tuple[str, dict[str, Any]]] = []
        occluded: set[str] = set()
        for r, result in enumerate(results):
            kind = result.get("type")
            rid = result.get("id")
            name = f"{what} region {rid!r}" if rid is not None else f"{what} result[{r}]"
            if kind == "choices":
                choices = (result.get("value") or {}).get("choices") or []
                if OCCLUDED in choices and rid is not None:
                    occluded.add(str(rid))
                continue
            if rid is not None:
                regions.setdefault(str(rid), result)
            if kind == "rectanglelabels":
                if rid is None:
                    raise self.fail(f"{name}: a rectanglelabels region needs an 'id'")
                boxes[str(rid)] = result
            elif kind == "keypointlabels":
                keypoints.append((name, result))
        persons: dict[str | None, dict[int, tuple[str, dict[str, Any]]]] = {}
        for name, result in keypoints:
            value = result.get("value")
            if not isinstance(value, dict):
                raise self.fail(f"{name}: 'value' must be an object")
            labels = value.get("keypointlabels")
            if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
                raise self.fail(f"{name}: value.keypointlabels must be one name, got {labels!r}")
            label = labels[0]
            index = self.index_of(label)
            if index < 0:
                raise self.fail(
                    f"{name}: keypoint {label!r} is not in template {self.skeleton.name!r}"
                )
            parent = result.get("parentID")
            if parent is not None:
                parent = str(parent)
                if parent not in boxes:
                    if parent in regions:
                        raise self.fail(
                            f"{name}: parentID {parent!r} is a {regions[parent].get('type')} "
                            "region, not the person's rectanglelabels box"
                        )
                    raise self.fail(f"{name}: parentID {parent!r} points to no region")
            person = persons.setdefault(parent, {})
            if index in person:
                if parent is None:
                    raise self.fail(
                        f"{name}: keypoint {label!r} appears twice without a parentID; "
                        "group the keypoints under person boxes (parentID) to tell persons apart"
                    )
                raise self.fail(f"{name}: keypoint {label!r} appears twice in person {parent!r}")
            person[index] = (name, result)
        out: list[Instance] = []
        k = self.skeleton.num_keypoints
        order = [rid for rid in boxes if rid in persons or self._is_person(boxes[rid])]
        if None in persons:
            order.append(None)
        for parent in order:
            xy = np.zeros((k, 2), np.float64)
            vis = np.zeros(k, np.uint8)
            scores = np.zeros(k, np.float32)
            has_scores = False
            for index, (name, result) in persons.get(parent, {}).items():
                value = result["value"]
                xy[index] = (
                    self.percent(value, "x", name) / 100.0 * width,
                    self.percent(value, "y", name) / 100.0 * height,
                )
                vis[index] = 1 if str(result.get("id")) in occluded else 2
                if "score" in result:
                    if not _number(result["score"]):
                        raise self.fail(f"{name}: 'score' must be a number")
                    scores[index] = result["score"]
                    has_scores = True
            box = instance_score = None
            if parent is not None:
                box, instance_score, derived = self._box(boxes[parent], f"{what} region {parent!r}")
                if derived:
                    box = None
            elif len(order) == 1 and _number(score):
                instance_score = float(score)
            try:
                out.append(
                    Instance(
                        xy.astype(np.float32),
                        vis,
                        keypoint_scores=scores if has_scores else None,
                        box=box,
                        score=instance_score,
                        source=source,
                        status=status,
                    )
                )
            except InstanceError as exc:
                raise self.fail(f"{what} person {parent!r}: {exc}") from None
        return out

    def _is_person(self, result: Mapping[str, Any]) -> bool:
        labels = (result.get("value") or {}).get("rectanglelabels") or []
        return any(label in self.box_labels for label in labels)

    def _box(self, result: Mapping[str, Any], name: str) -> tuple[np.ndarray, float | None, bool]:
        value = result.get("value")
        if not isinstance(value, dict):
            raise self.fail(f"{name}: 'value' must be an object")
        width, height = self.size  # type: ignore[misc]
        x, y = self.percent(value, "x", name), self.percent(value, "y", name)
        w, h = value.get("width"), value.get("height")
        if not (_number(w) and _number(h) and w >= 0 and h >= 0):
            raise self.fail(f"{name}: value.width/height must be non-negative numbers")
        rotation = value.get("rotation") or 0
        if not _number(rotation):
            raise self.fail(f"{name}: value.rotation must be a number")
        if rotation == 0:
            if x + w > 100.0 + 1e-6 or y + h > 100.0 + 1e-6:
                raise self.fail(f"{name}: box reaches past 100% of the image")
            box = (
                np.array([x * width, y * height, (x + w) * width, (y + h) * height], np.float64)
                / 100.0
            )
        else:
            # Label Studio rotates a box clockwise about its top-left corner (in pixels);
            # posekit boxes are axis-aligned: take the box around the rotated corners.
            theta = math.radians(rotation)
            x0, y0 = x / 100.0 * width, y / 100.0 * height
            bw, bh = w / 100.0 * width, h / 100.0 * height
            corners = np.array([[0, 0], [bw, 0], [bw, bh], [0, bh]], np.float64)
            rot = np.array(
                [[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]]
            )
            pts = corners @ rot.T + (x0, y0)
            box = np.array([*pts.min(axis=0), *pts.max(axis=0)])
        score = result.get("score")
        if score is not None and not _number(score):
            raise self.fail(f"{name}: 'score' must be a number")
        derived = DERIVED_BOX_NOTE in ((result.get("meta") or {}).get("text") or [])
        return box.astype(np.float32), None if score is None else float(score), derived


def _latest_annotation(annotations: list[Any], where: str) -> Mapping[str, Any] | None:
    kept = []
    for a, annotation in enumerate(annotations):
        if not isinstance(annotation, dict):
            raise LabelStudioFormatError(f"{where}: annotations[{a}] is not an object")
        if annotation.get("was_cancelled") or annotation.get("skipped"):
            continue
        kept.append((str(annotation.get("updated_at") or annotation.get("created_at") or ""), a))
    if not kept:
        return None
    return annotations[max(kept)[1]]


def from_labelstudio(
    data: Any,
    skeleton: Skeleton | None = None,
    *,
    label_config: str | None = None,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    source: str = "Label Studio export",
) -> PoseDataset:
    """Read a Label Studio JSON export (a list of tasks, or one task) into a dataset.

    Args:
        data: The parsed JSON.
        skeleton: The project template; keypoint labels are matched to it by name.
            Without it, the labeling config's keypoints (else the labels used in the
            file) must be exactly those of a shipped preset.
        label_config: The project's labeling config (XML), for the template, the
            ``data`` field holding the image and the person box labels.
        image_sizes: ``(width, height)`` by file name, for tasks whose regions carry
            no ``original_width``/``original_height``. A task with no region and no
            known size holds no labels and is skipped (logged).
        source: What to call the input in error messages.

    Raises:
        LabelStudioFormatError: naming the task and region (a percent outside 0-100,
            a parentID pointing nowhere, a keypoint not in the template...).
    """
    config = parse_labelstudio_config(label_config) if label_config else None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise LabelStudioFormatError(f"{source}: expected a list of tasks")
    if data and all(
        isinstance(t, dict) and "result" in t and "data" not in t and "annotations" not in t
        for t in data
    ):
        raise LabelStudioFormatError(
            f"{source}: this is a list of predictions without their tasks (an ML backend "
            "response); put them in a task: {'data': {'image': ...}, 'predictions': [...]}"
        )
    if skeleton is None:
        names = config["keypoints"] if config and config["keypoints"] else None
        if names is None:
            names = list(dict.fromkeys(_labels_used(data)))
        try:
            skeleton = template_for_names(names)
        except SkeletonError as exc:
            raise LabelStudioFormatError(
                f"{source}: Label Studio files carry no skeleton; {exc}"
            ) from None
    # A box is a person when keypoints point at it or it has the template's category
    # (other RectangleLabels of the config are other objects, not carried).
    box_labels = {skeleton.category}
    image_key = config["image_key"] if config else None
    sizes = dict(image_sizes or {})
    indices: dict[str, int] = {}
    images: list[LabeledImage] = []
    seen: dict[str, str] = {}
    for t, task in enumerate(data):
        where = f"{source}: task[{t}]"
        if not isinstance(task, dict):
            raise LabelStudioFormatError(f"{where} is not an object")
        if task.get("id") is not None:
            where += f" (id {task.get('id')})"
        task_data = task.get("data")
        if not isinstance(task_data, dict):
            raise LabelStudioFormatError(f"{where}: 'data' must be an object")
        key = image_key or ("image" if "image" in task_data else None)
        if key is None:
            strings = [k for k, v in task_data.items() if isinstance(v, str)]
            if len(strings) != 1:
                raise LabelStudioFormatError(
                    f"{where}: cannot tell which 'data' field is the image (pass label_config)"
                )
            key = strings[0]
        url = task_data.get(key)
        if not isinstance(url, str) or not url:
            raise LabelStudioFormatError(f"{where}: data.{key} must be the image URL")
        meta = (task.get("meta") or {}).get("posekit") or {}
        file_name = meta.get("file_name") if isinstance(meta.get("file_name"), str) else None
        file_name = file_name or _file_name_of(url)
        try:
            file_name = safe_relative_name(file_name)
        except UnsafePathError as exc:
            raise LabelStudioFormatError(f"{where}: image {exc}") from None
        if file_name in seen:
            raise LabelStudioFormatError(
                f"{where}: image {file_name!r} is also the image of {seen[file_name]}"
            )
        seen[file_name] = where
        reader = _Task(where, skeleton, box_labels, indices)
        annotations = task.get("annotations") or []
        predictions = task.get("predictions") or []
        if not isinstance(annotations, list) or not isinstance(predictions, list):
            raise LabelStudioFormatError(f"{where}: 'annotations'/'predictions' must be lists")
        annotation = _latest_annotation(annotations, where)
        lists: list[tuple[list[Any], str, str, str, Any]] = []
        if annotation is not None:
            aid = annotation.get("id")
            what = "annotation" if aid is None else f"annotation {aid}"
            lists.append((annotation.get("result") or [], what, "accepted", "manual", None))
        for p, prediction in enumerate(predictions):
            if not isinstance(prediction, dict):
                raise LabelStudioFormatError(f"{where}: predictions[{p}] is not an object")
            version = prediction.get("model_version")
            origin = f"model:{version}" if isinstance(version, str) and version else "manual"
            lists.append(
                (
                    prediction.get("result") or [],
                    f"predictions[{p}]",
                    "predicted",
                    origin,
                    prediction.get("score"),
                )
            )
        for results, what, *_ in lists:
            reader.scan(results, what)
        if reader.size is None:
            size = meta.get("width"), meta.get("height")
            if all(type(v) is int and v > 0 for v in size):
                reader.size = size  # type: ignore[assignment]
            elif file_name in sizes:
                reader.size = tuple(int(v) for v in sizes[file_name])  # type: ignore[assignment]
        if reader.size is None:
            if any(
                r.get("type") in ("keypointlabels", "rectanglelabels") for x in lists for r in x[0]
            ):
                raise LabelStudioFormatError(
                    f"{where}: regions carry no original_width/original_height and the image "
                    "size is unknown (pass image_sizes)"
                )
            log.warning("%s: no labels and no image size; task skipped", where)
            continue
        instances: list[Instance] = []
        for results, what, status, origin, score in lists:
            instances.extend(reader.instances(results, what, status, origin, score))
        task_id = task.get("id") if type(task.get("id")) is int else None
        record = ImageRecord(file_name, reader.size[0], reader.size[1], task_id)
        if url != LOCAL_FILES_PREFIX + file_name:
            record.extra[IMAGE_URL_KEY] = url
        images.append(LabeledImage(record, instances))
    return PoseDataset(skeleton=skeleton, images=images)


def _labels_used(data: list[Any]) -> list[str]:
    names: list[str] = []
    for task in data:
        if not isinstance(task, dict):
            continue
        lists = [a.get("result") for a in task.get("annotations") or [] if isinstance(a, dict)]
        lists += [p.get("result") for p in task.get("predictions") or [] if isinstance(p, dict)]
        for results in lists:
            for result in results or []:
                if isinstance(result, dict) and result.get("type") == "keypointlabels":
                    labels = (result.get("value") or {}).get("keypointlabels") or []
                    names.extend(str(label) for label in labels)
    return names


# ------------------------------------------------------------------ export


def _results_of(
    instances: Sequence[Instance],
    skeleton: Skeleton,
    size: tuple[int, int],
    names: dict[str, str],
    first_region: int,
    where: str,
) -> list[dict[str, Any]]:
    width, height = size
    common = {
        "to_name": names["image"],
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
    }
    results: list[dict[str, Any]] = []
    for n, instance in enumerate(instances):
        box_id = f"p{first_region + n}"
        box = instance.box
        derived = box is None
        if derived:
            box = instance.bbox_or_keypoint_box()
            if box is None:
                log.warning(
                    "%s: an instance with no box and no labeled point is not written", where
                )
                continue
        clipped = np.clip(box.astype(np.float64), 0.0, [width, height, width, height])
        if not np.array_equal(clipped, box.astype(np.float64)):
            log.warning("%s: person %s: box clipped to the image", where, box_id)
        x1, y1, x2, y2 = clipped.tolist()
        region: dict[str, Any] = {
            "id": box_id,
            "type": "rectanglelabels",
            "from_name": names["box"],
            **common,
            "value": {
                "x": x1 / width * 100.0,
                "y": y1 / height * 100.0,
                "width": (x2 - x1) / width * 100.0,
                "height": (y2 - y1) / height * 100.0,
                "rotation": 0,
                "rectanglelabels": [skeleton.category],
            },
        }
        if instance.score is not None:
            region["score"] = float(instance.score)
        if derived:
            region["meta"] = {"text": [DERIVED_BOX_NOTE]}
        results.append(region)
        xy = instance.keypoints.astype(np.float64).tolist()
        for index in np.flatnonzero(instance.visibility > 0).tolist():
            x, y = xy[index]
            if not (0.0 <= x <= width and 0.0 <= y <= height):
                log.warning(
                    "%s: person %s: keypoint %r clipped to the image",
                    where,
                    box_id,
                    skeleton.keypoints[index],
                )
                x, y = min(max(x, 0.0), width), min(max(y, 0.0), height)
            point_id = f"{box_id}k{index}"
            point: dict[str, Any] = {
                "id": point_id,
                "type": "keypointlabels",
                "from_name": names["keypoints"],
                "parentID": box_id,
                **common,
                "value": {
                    "x": x / width * 100.0,
                    "y": y / height * 100.0,
                    "width": _POINT_WIDTH_PX / width * 100.0,
                    "keypointlabels": [skeleton.keypoints[index]],
                },
            }
            if instance.keypoint_scores is not None:
                point["score"] = float(instance.keypoint_scores[index])
            results.append(point)
            if instance.visibility[index] == 1:
                results.append(
                    {
                        "id": point_id,
                        "type": "choices",
                        "from_name": names["visibility"],
                        **common,
                        "value": {"choices": [OCCLUDED]},
                    }
                )
    return results


def to_labelstudio(
    dataset: PoseDataset,
    *,
    image_prefix: str = LOCAL_FILES_PREFIX,
    image_name: str = "image",
    keypoints_name: str = "keypoints",
    box_name: str = "bbox",
    visibility_name: str = "visibility",
) -> list[dict[str, Any]]:
    """The dataset as a Label Studio task list (importable into a project set up
    with :func:`labelstudio_config` and the same names).

    ``accepted`` instances become the task's annotation, ``predicted`` ones one
    prediction per ``source`` (``model_version`` = the model name); ``rejected``
    instances are not written. Image URLs are ``image_prefix + file_name`` (Label
    Studio's local-files URL by default) unless the image came from Label Studio.
    Each task's ``meta.posekit`` records the file name and size.
    """
    names = {
        "image": image_name,
        "keypoints": keypoints_name,
        "box": box_name,
        "visibility": visibility_name,
    }
    task_ids = fill_missing_ids([item.image.id for item in dataset.images])
    k = dataset.skeleton.num_keypoints
    tasks: list[dict[str, Any]] = []
    for item, task_id in zip(dataset.images, task_ids):
        record = item.image
        where = f"image {record.file_name!r}"
        size = (int(record.width), int(record.height))
        for instance in item.instances:
            if instance.num_keypoints != k:
                raise LabelStudioFormatError(
                    f"{where}: an instance has {instance.num_keypoints} keypoints, template "
                    f"{dataset.skeleton.name!r} has {k}"
                )
        accepted = [i for i in item.instances if i.status == "accepted"]
        rejected = sum(1 for i in item.instances if i.status == "rejected")
        if rejected:
            log.warning("%s: %d rejected instance(s) not written", where, rejected)
        by_source: dict[str, list[Instance]] = {}
        for instance in item.instances:
            if instance.status == "predicted":
                by_source.setdefault(instance.source, []).append(instance)
        url = record.extra.get(IMAGE_URL_KEY) or image_prefix + record.file_name
        task: dict[str, Any] = {
            "id": task_id,
            "data": {image_name: url},
            "meta": {
                "posekit": {"file_name": record.file_name, "width": size[0], "height": size[1]}
            },
            "annotations": [],
            "predictions": [],
        }
        region = 0
        if accepted:
            results = _results_of(accepted, dataset.skeleton, size, names, region, where)
            region += len(accepted)
            task["annotations"].append(
                {"result": results, "was_cancelled": False, "ground_truth": False}
            )
        for origin, instances in by_source.items():
            results = _results_of(instances, dataset.skeleton, size, names, region, where)
            region += len(instances)
            prediction: dict[str, Any] = {
                "model_version": origin.removeprefix("model:") if origin != "manual" else "",
                "result": results,
            }
            scores = [i.score for i in instances if i.score is not None]
            if scores:
                prediction["score"] = float(np.mean(scores))
            task["predictions"].append(prediction)
        tasks.append(task)
    return tasks


# ------------------------------------------------------------------ files


def read_labelstudio(
    path: str | os.PathLike[str],
    skeleton: Skeleton | None = None,
    *,
    label_config: str | os.PathLike[str] | None = None,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> PoseDataset:
    """Read a Label Studio JSON export file (see :func:`from_labelstudio`).

    ``label_config`` is the XML text or a path to it; by default a
    ``<stem>.label_config.xml`` next to the export (as :func:`write_labelstudio`
    writes it) is used when present.

    Raises:
        LabelStudioFormatError: invalid JSON or content (the message starts with the path).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LabelStudioFormatError(f"{path}: not valid JSON: {exc}") from None
    config_text = None
    if label_config is not None:
        candidate = Path(label_config) if not str(label_config).lstrip().startswith("<") else None
        config_text = candidate.read_text("utf-8") if candidate else str(label_config)
    else:
        sidecar = path.with_name(path.stem + ".label_config.xml")
        if sidecar.is_file():
            config_text = sidecar.read_text("utf-8")
    return from_labelstudio(
        data, skeleton, label_config=config_text, image_sizes=image_sizes, source=str(path)
    )


def _atomic_write(path: Path, payload: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_labelstudio(
    dataset: PoseDataset,
    path: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
    image_prefix: str = LOCAL_FILES_PREFIX,
    label_config: bool = True,
) -> Path:
    """Write the dataset as a Label Studio JSON task file (see :func:`to_labelstudio`),
    atomically, and (``label_config=True``) the labeling config for its template
    next to it as ``<stem>.label_config.xml``. ``media`` is not used (tasks name
    their images). Returns the JSON file."""
    del media
    path = Path(path)
    payload = json.dumps(
        to_labelstudio(dataset, image_prefix=image_prefix), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
    if label_config:
        sidecar = path.with_name(path.stem + ".label_config.xml")
        _atomic_write(sidecar, labelstudio_config(dataset.skeleton).encode("utf-8"))
    _atomic_write(path, payload)
    return path
