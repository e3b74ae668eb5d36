"""Reading a Label Studio JSON export (a list of tasks) into a
:class:`~posekit.dataset.PoseDataset` (see :mod:`posekit.formats.labelstudio` for
the mapping): the generic reader.

:func:`from_labelstudio` reads parsed JSON task by task, region by region
(:class:`_Task`): it holds every check and every error message (naming the task
and region), and reads everything the format allows. Files are read through the
fast path of :mod:`posekit.formats.labelstudio_fast`, which gives the same
dataset and comes back here for anything it does not take.

Integers beyond 64 bits: orjson reads them as floats, so a task id such as
``2**70`` is no image id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.labelstudio_config import (
    DERIVED_BOX_NOTE,
    IMAGE_URL_KEY,
    LOCAL_FILES_PREFIX,
    OCCLUDED,
    LabelStudioFormatError,
    parse_labelstudio_config,
)
from posekit.formats.numbers import is_finite_number
from posekit.gc_pause import gc_paused
from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.skeleton import Skeleton, SkeletonError, names_mapping, template_for_names

__all__ = ["from_labelstudio"]

log = logging.getLogger(__name__)


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


_NUMBER_TYPES = (int, float)


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
        if not is_finite_number(number):
            raise self.fail(f"{rid}: value.{key} must be a number, got {number!r}")
        if not 0.0 <= number <= 100.0:
            raise self.fail(f"{rid}: value.{key} {number!r} is outside 0-100 (percent)")
        return float(number)

    def scan(self, results: Any, what: str) -> None:
        """First pass: validate the result list and learn the image size."""
        if not isinstance(results, list):
            raise self.fail(f"{what}: 'result' must be a list")
        kinds = ("keypointlabels", "rectanglelabels", "choices")
        for r, result in enumerate(results):
            if type(result) is not dict:
                raise self.fail(f"{what}: result[{r}] is not an object")
            size = self.size
            if (
                size is not None
                and result.get("original_width") == size[0]
                and result.get("original_height") == size[1]
                and not result.get("image_rotation")
                and type(result.get("original_width")) is int
            ):
                continue  # the common case: the size seen before
            if result.get("type") in kinds:
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
        keypoints: list[tuple[int, dict[str, Any]]] = []
        occluded: set[str] = set()
        for r, result in enumerate(results):
            kind = result.get("type")
            if kind == "keypointlabels":
                keypoints.append((r, result))
                continue
            rid = result.get("id")
            if kind == "choices":
                if OCCLUDED in self._choices(result, r, what) and rid is not None:
                    occluded.add(str(rid))
                continue
            if kind == "rectanglelabels":
                if rid is None:
                    raise self.fail(f"{what} result[{r}]: a rectanglelabels region needs an 'id'")
                boxes[str(rid)] = result
            elif rid is not None:
                regions.setdefault(str(rid), result)
        # person -> keypoint index -> (x percent, y percent, result)
        persons: dict[str | None, dict[int, tuple[float, float, dict[str, Any]]]] = {}
        indices = self.indices
        for r, result in keypoints:
            value = result.get("value")
            try:
                labels, x, y = value["keypointlabels"], value["x"], value["y"]
                label = labels[0] if type(labels) is list and len(labels) == 1 else None
            except (TypeError, KeyError, IndexError):
                label = x = y = None
            index = indices.get(label) if type(label) is str else None
            if index is None and type(label) is str:
                index = self.index_of(label)
            if (
                index is None
                or index < 0
                or type(x) not in _NUMBER_TYPES
                or type(y) not in _NUMBER_TYPES
                or not (0.0 <= x <= 100.0 and 0.0 <= y <= 100.0)
            ):
                self._bad_keypoint(result, r, what)  # raises, naming the problem
            parent = result.get("parentID")
            if parent is not None:
                parent = str(parent)
                if parent not in boxes:
                    name = self._name(result, r, what)
                    if parent in regions or any(str(k.get("id")) == parent for _, k in keypoints):
                        kind = (
                            regions[parent].get("type") if parent in regions else "keypointlabels"
                        )
                        raise self.fail(
                            f"{name}: parentID {parent!r} is a {kind} region, not the person's "
                            "rectanglelabels box"
                        )
                    raise self.fail(f"{name}: parentID {parent!r} points to no region")
            person = persons.get(parent)
            if person is None:
                person = persons[parent] = {}
            if index in person:
                name, label = self._name(result, r, what), labels[0]
                if parent is None:
                    raise self.fail(
                        f"{name}: keypoint {label!r} appears twice without a parentID; "
                        "group the keypoints under person boxes (parentID) to tell persons apart"
                    )
                raise self.fail(f"{name}: keypoint {label!r} appears twice in person {parent!r}")
            person[index] = (x, y, result)
        out: list[Instance] = []
        k = self.skeleton.num_keypoints
        order = [
            rid
            for rid in boxes
            if rid in persons or self._is_person(boxes[rid], f"{what} region {rid!r}")
        ]
        if None in persons:
            order.append(None)
        scale = np.array([width / 100.0, height / 100.0])
        for parent in order:
            points = persons.get(parent, {})
            xy = np.zeros((k, 2), np.float64)
            vis = np.zeros(k, np.uint8)
            scores = None
            if points:
                idx = np.fromiter(points, dtype=np.int64, count=len(points))
                entries = list(points.values())
                xy[idx] = np.array([(e[0], e[1]) for e in entries], np.float64) * scale
                vis[idx] = [1 if str(e[2].get("id")) in occluded else 2 for e in entries]
                raw_scores = [e[2].get("score") for e in entries]
                if any(v is not None for v in raw_scores):
                    for v, e in zip(raw_scores, entries):
                        if v is not None and not is_finite_number(v):
                            raise self.fail(
                                f"{self._name(e[2], 0, what)}: 'score' must be a number"
                            )
                    scores = np.zeros(k, np.float32)
                    scores[idx] = [0.0 if v is None else v for v in raw_scores]
            box = instance_score = None
            if parent is not None:
                box, instance_score, derived = self._box(boxes[parent], f"{what} region {parent!r}")
                if derived:
                    box = None
            elif len(order) == 1 and is_finite_number(score):
                instance_score = float(score)
            # Every field was checked above (percent in 0-100, so finite; 0/1/2 flags;
            # boxes with non-negative size; finite scores): build without re-validating,
            # which keeps 100k-instance exports fast.
            instance = Instance.trusted(
                xy.astype(np.float32),
                vis,
                keypoint_scores=scores,
                box=box,
                score=instance_score,
                source=source,
                status=status,
            )
            out.append(instance)
        return out

    @staticmethod
    def _name(result: Mapping[str, Any], r: int, what: str) -> str:
        rid = result.get("id")
        return f"{what} region {rid!r}" if rid is not None else f"{what} result[{r}]"

    def _bad_keypoint(self, result: Mapping[str, Any], r: int, what: str) -> None:
        name = self._name(result, r, what)
        value = result.get("value")
        if not isinstance(value, dict):
            raise self.fail(f"{name}: 'value' must be an object")
        labels = value.get("keypointlabels")
        if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
            raise self.fail(f"{name}: value.keypointlabels must be one name, got {labels!r}")
        if self.index_of(labels[0]) < 0:
            raise self.fail(
                f"{name}: keypoint {labels[0]!r} is not in template {self.skeleton.name!r}"
            )
        self.percent(value, "x", name)
        self.percent(value, "y", name)
        raise self.fail(f"{name}: not a valid keypoint region")

    def _choices(self, result: Mapping[str, Any], r: int, what: str) -> list[Any]:
        return self._value_list(result, "choices", self._name(result, r, what))

    def _is_person(self, result: Mapping[str, Any], name: str) -> bool:
        labels = self._value_list(result, "rectanglelabels", name)
        return any(label in self.box_labels for label in labels)

    def _value_list(self, result: Mapping[str, Any], field: str, name: str) -> list[Any]:
        """``value[field]`` of a region (absent: empty); a ``value`` that is not an
        object, or a field that is not a list, is an error naming the region."""
        value = result.get("value") or {}
        if not isinstance(value, dict):
            raise self.fail(f"{name}: 'value' must be an object")
        items = value.get(field) or []
        if not isinstance(items, list):
            raise self.fail(f"{name}: value.{field} must be a list")
        return items

    def _box(self, result: Mapping[str, Any], name: str) -> tuple[np.ndarray, float | None, bool]:
        value = result.get("value")
        if not isinstance(value, dict):
            raise self.fail(f"{name}: 'value' must be an object")
        width, height = self.size  # type: ignore[misc]
        x, y = self.percent(value, "x", name), self.percent(value, "y", name)
        w, h = value.get("width"), value.get("height")
        if not (is_finite_number(w) and is_finite_number(h) and w >= 0 and h >= 0):
            raise self.fail(f"{name}: value.width/height must be non-negative numbers")
        rotation = value.get("rotation") or 0
        if not is_finite_number(rotation):
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
        if score is not None and not is_finite_number(score):
            raise self.fail(f"{name}: 'score' must be a number")
        meta = result.get("meta") or {}
        if not isinstance(meta, dict):
            raise self.fail(f"{name}: 'meta' must be an object")
        text = meta.get("text") or []
        if not isinstance(text, list):
            raise self.fail(f"{name}: meta.text must be a list")
        derived = DERIVED_BOX_NOTE in text
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
        label_config: The project's labeling config (XML), for the template and the
            ``data`` field holding the image.
        image_sizes: ``(width, height)`` by file name, for tasks whose regions carry
            no ``original_width``/``original_height``. A task with no region and no
            known size holds no labels and is skipped (logged).
        source: What to call the input in error messages.

    Raises:
        LabelStudioFormatError: naming the task and region (a percent outside 0-100,
            a parentID pointing nowhere, a keypoint not in the template...).
    """
    with gc_paused():  # millions of small dicts: the cyclic GC would rescan them
        return _from_labelstudio(data, skeleton, label_config, image_sizes, source)


def _from_labelstudio(
    data: Any,
    skeleton: Skeleton | None,
    label_config: str | None,
    image_sizes: Mapping[str, tuple[int, int]] | None,
    source: str,
) -> PoseDataset:
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
        meta = task.get("meta") or {}
        if not isinstance(meta, dict):
            raise LabelStudioFormatError(f"{where}: 'meta' must be an object")
        meta = meta.get("posekit") or {}
        if not isinstance(meta, dict):
            raise LabelStudioFormatError(f"{where}: meta.posekit must be an object")
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
                    value = result.get("value")
                    labels = value.get("keypointlabels") if isinstance(value, dict) else None
                    if isinstance(labels, list):  # else reading the region names the problem
                        names.extend(str(label) for label in labels)
    return names
