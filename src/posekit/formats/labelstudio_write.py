"""Writing a :class:`~posekit.dataset.PoseDataset` as a Label Studio task list (see
:mod:`posekit.formats.labelstudio` for the mapping)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, PoseDataset, fill_missing_ids
from posekit.formats.labelstudio_config import (
    DERIVED_BOX_NOTE,
    IMAGE_URL_KEY,
    LOCAL_FILES_PREFIX,
    OCCLUDED,
    LabelStudioFormatError,
)
from posekit.gc_pause import gc_paused
from posekit.skeleton import Skeleton

__all__ = ["to_labelstudio"]

log = logging.getLogger(__name__)

_POINT_WIDTH_PX = 3.0  # drawn keypoint radius written in exports


def _results_of(
    instances: Sequence[Instance],
    skeleton: Skeleton,
    size: tuple[int, int],
    names: dict[str, str],
    first_region: int,
    where: str,
    clipped: list[int],
) -> list[dict[str, Any]]:
    """Result regions of ``instances``; counts clipped points and boxes in ``clipped``
    (Label Studio stores percent of the image, 0-100)."""
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
        inside_box = np.clip(box.astype(np.float64), 0.0, [width, height, width, height])
        if not np.array_equal(inside_box, box.astype(np.float64)):
            clipped[1] += 1
        x1, y1, x2, y2 = inside_box.tolist()
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
        labeled = np.flatnonzero(instance.visibility > 0)
        if not labeled.size:
            continue
        xy = instance.keypoints[labeled].astype(np.float64)
        inside = np.clip(xy, 0.0, [width, height])
        if not np.array_equal(inside, xy):
            clipped[0] += int(np.count_nonzero((inside != xy).any(axis=1)))
        percent = (inside / [width, height] * 100.0).tolist()
        point_width = _POINT_WIDTH_PX / width * 100.0
        from_name, image_name = names["keypoints"], names["image"]
        keypoint_names = skeleton.keypoints
        scores = (
            instance.keypoint_scores[labeled].astype(np.float64).tolist()
            if instance.keypoint_scores is not None
            else None
        )
        occluded = (instance.visibility[labeled] == 1).tolist()
        for j, index in enumerate(labeled.tolist()):
            point_id = f"{box_id}k{index}"
            point: dict[str, Any] = {
                "id": point_id,
                "type": "keypointlabels",
                "from_name": from_name,
                "parentID": box_id,
                "to_name": image_name,
                "original_width": width,
                "original_height": height,
                "image_rotation": 0,
                "value": {
                    "x": percent[j][0],
                    "y": percent[j][1],
                    "width": point_width,
                    "keypointlabels": [keypoint_names[index]],
                },
            }
            if scores is not None:
                point["score"] = scores[j]
            results.append(point)
            if occluded[j]:
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
    with gc_paused():  # millions of small dicts: the cyclic GC would rescan them
        return _to_labelstudio(dataset, image_prefix, image_name, keypoints_name, box_name,
                               visibility_name)  # fmt: skip


@dataclass
class _TaskPlan:
    """One task to write: the image, its id and size, and its result groups (the
    annotation, then one prediction per source) with their first region number."""

    record: ImageRecord
    task_id: int
    size: tuple[int, int]
    where: str
    url: str
    accepted: list[Instance]
    by_source: dict[str, list[Instance]]

    def groups(self) -> list[tuple[str | None, list[Instance], int]]:
        """``(origin or None for the annotation, instances, first region number)``."""
        out: list[tuple[str | None, list[Instance], int]] = []
        region = 0
        if self.accepted:
            out.append((None, self.accepted, region))
            region += len(self.accepted)
        for origin, instances in self.by_source.items():
            out.append((origin, instances, region))
            region += len(instances)
        return out


def _plan(dataset: PoseDataset, image_prefix: str) -> list[_TaskPlan]:
    """The tasks in file order, checked (instances fit the template; rejected ones are
    left out with a warning)."""
    task_ids = fill_missing_ids([item.image.id for item in dataset.images])
    k = dataset.skeleton.num_keypoints
    plans: list[_TaskPlan] = []
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
        plans.append(_TaskPlan(record, task_id, size, where, url, accepted, by_source))
    return plans


def _task_head(plan: _TaskPlan, image_name: str) -> dict[str, Any]:
    record, size = plan.record, plan.size
    return {
        "id": plan.task_id,
        "data": {image_name: plan.url},
        "meta": {"posekit": {"file_name": record.file_name, "width": size[0], "height": size[1]}},
        "annotations": [],
        "predictions": [],
    }


def _model_version(origin: str) -> str:
    return origin.removeprefix("model:") if origin != "manual" else ""


def _prediction_score(instances: Sequence[Instance]) -> float | None:
    scores = [i.score for i in instances if i.score is not None]
    return float(np.mean(scores)) if scores else None


def _warn_clipped(clipped: list[int]) -> None:
    if clipped[0] or clipped[1]:
        log.warning(
            "%d keypoint(s) and %d box(es) outside their image were clipped to it "
            "(Label Studio stores percent of the image, 0-100)",
            *clipped,
        )


def _to_labelstudio(
    dataset: PoseDataset,
    image_prefix: str,
    image_name: str,
    keypoints_name: str,
    box_name: str,
    visibility_name: str,
) -> list[dict[str, Any]]:
    names = {
        "image": image_name,
        "keypoints": keypoints_name,
        "box": box_name,
        "visibility": visibility_name,
    }
    tasks: list[dict[str, Any]] = []
    clipped = [0, 0]  # points, boxes outside their image
    for plan in _plan(dataset, image_prefix):
        task = _task_head(plan, image_name)
        for origin, instances, region in plan.groups():
            results = _results_of(
                instances, dataset.skeleton, plan.size, names, region, plan.where, clipped
            )
            if origin is None:
                task["annotations"].append(
                    {"result": results, "was_cancelled": False, "ground_truth": False}
                )
                continue
            prediction: dict[str, Any] = {"model_version": _model_version(origin),
                                          "result": results}  # fmt: skip
            score = _prediction_score(instances)
            if score is not None:
                prediction["score"] = score
            task["predictions"].append(prediction)
        tasks.append(task)
    _warn_clipped(clipped)
    return tasks
