"""Writing a :class:`~posekit.dataset.PoseDataset` as a COCO keypoints dict or a
COCO results list (see :mod:`posekit.formats.coco` for the round-trip rules)."""

from __future__ import annotations

from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import PoseDataset, fill_missing_ids
from posekit.formats.coco_schema import (
    ABSENT,
    ANNOTATION_KEYS,
    IMAGE_KEYS,
    POSEKIT_FIELD,
    STASH_KEY,
    TOP_KEYS,
    CocoFormatError,
    geometry_crc,
    is_int,
)
from posekit.formats.numbers import encode_xywh_boxes, rows_to_lists, shortest_decimals
from posekit.gc_pause import gc_paused
from posekit.skeleton import SkeletonError, names_mapping

__all__ = ["to_coco", "to_coco_results"]


def _category_entry(dataset: PoseDataset) -> dict[str, Any]:
    skeleton = dataset.skeleton
    original = dataset.category
    if original is not None:
        names = original.get("keypoints")
        if isinstance(names, list) and len(names) == skeleton.num_keypoints:
            try:
                mapping = names_mapping(names, skeleton)
            except SkeletonError:
                mapping = None
            if mapping is not None and np.array_equal(mapping, np.arange(len(names))):
                entry = dict(original)
                entry["id"] = dataset.category_id
                return entry
    return skeleton.coco_category(dataset.category_id)


def _image_ids(dataset: PoseDataset) -> list[int]:
    return fill_missing_ids([item.image.id for item in dataset.images])


def _gather(dataset: PoseDataset) -> tuple[list[Instance], list[int], np.ndarray, np.ndarray]:
    k = dataset.skeleton.num_keypoints
    instances: list[Instance] = []
    owners: list[int] = []
    for position, item in enumerate(dataset.images):
        instances.extend(item.instances)
        owners.extend([position] * len(item.instances))
    for instance, position in zip(instances, owners):
        if instance.keypoints.shape != (k, 2) or instance.visibility.shape != (k,):
            raise CocoFormatError(
                f"image {dataset.images[position].image.file_name!r}: instance "
                f"{instance.id} has {instance.keypoints.shape[0]} keypoints, but template "
                f"{dataset.skeleton.name!r} has {k}"
            )
    if not instances:
        return instances, owners, np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.uint8)
    xy = np.concatenate([i.keypoints for i in instances]).reshape(-1, k, 2)
    vis = np.concatenate([i.visibility for i in instances]).reshape(-1, k)
    xy = xy.astype(np.float32, copy=False)
    vis = vis.astype(np.uint8, copy=False)
    return instances, owners, xy, vis


def _keypoint_lists(xy: np.ndarray, vis: np.ndarray) -> list[list[Any]]:
    n, k = vis.shape
    triplets = np.empty((n, k, 3), dtype=np.float64)
    triplets[:, :, :2] = shortest_decimals(xy)
    triplets[:, :, :2][vis == 0] = 0.0
    triplets[:, :, 2] = vis
    return rows_to_lists(triplets.reshape(n, 3 * k))


def _scores_list(scores: np.ndarray) -> list[Any]:
    return rows_to_lists(shortest_decimals(scores).reshape(1, -1))[0]


def _raw(stash: dict[str, Any], key: str, value: Any, kind: type) -> Any:
    raw = stash.get("raw", {}).get(key, ABSENT) if stash else ABSENT
    if raw is not ABSENT and value is not None and kind(raw) == value:
        return raw
    return value


def to_coco(dataset: PoseDataset) -> dict[str, Any]:
    """Write a :class:`PoseDataset` as a COCO keypoints dict (ready for ``json.dump``).

    Image and annotation ids that are None are assigned after the largest
    used id. Not-labeled points are written as ``0, 0, 0``; ``num_keypoints``
    is the number of labeled points.

    Raises:
        CocoFormatError: if an instance does not have the template's number of keypoints.
    """
    with gc_paused():
        return _to_coco(dataset)


def _to_coco(dataset: PoseDataset) -> dict[str, Any]:
    image_ids = _image_ids(dataset)
    instances, owners, xy, vis = _gather(dataset)
    reserved = {a.get("id") for a in dataset.extra_annotations if is_int(a.get("id"))}
    ann_ids = fill_missing_ids([i.id for i in instances], reserved)
    keypoint_lists = _keypoint_lists(xy, vis)
    counts = np.count_nonzero(vis, axis=1).tolist() if instances else []
    box_index = [j for j, inst in enumerate(instances) if inst.box is not None]
    box_lists: list[Any] = [None] * len(instances)
    if box_index:
        encoded = rows_to_lists(encode_xywh_boxes(np.stack([instances[j].box for j in box_index])))
        for j, values in zip(box_index, encoded):
            box_lists[j] = values
    cat_id = dataset.category_id

    annotations: list[dict[str, Any]] = []
    for j, inst in enumerate(instances):
        stash = inst.extra.get(STASH_KEY) if inst.extra else None
        unchanged = bool(stash) and "crc" in stash and stash["crc"] == geometry_crc(inst)
        absent = stash.get("absent", ()) if stash else ()
        null = stash.get("null", ()) if stash else ()
        ann: dict[str, Any] = {"id": ann_ids[j], "image_id": image_ids[owners[j]]}
        ann["category_id"] = cat_id
        if not ("keypoints" in absent and counts[j] == 0):
            ann["keypoints"] = (
                stash["keypoints"] if unchanged and "keypoints" in stash else (keypoint_lists[j])
            )
        if "num_keypoints" not in absent:
            ann["num_keypoints"] = (
                stash["num_keypoints"] if unchanged and "num_keypoints" in stash else counts[j]
            )
        if box_lists[j] is not None:
            ann["bbox"] = stash["bbox"] if unchanged and "bbox" in stash else box_lists[j]
        elif "bbox" in null:
            ann["bbox"] = None
        if not ("iscrowd" in absent and not inst.iscrowd):
            ann["iscrowd"] = _raw(stash, "iscrowd", int(inst.iscrowd), int)
        for key, value, kind in (
            ("area", inst.area, float),
            ("score", inst.score, float),
            ("track_id", inst.track_id, int),
        ):
            if value is not None:
                ann[key] = _raw(stash, key, value, kind)
            elif key in null:
                ann[key] = None
        if inst.segmentation is not None or "segmentation" in null:
            ann["segmentation"] = inst.segmentation
        if inst.extra:
            for key, value in inst.extra.items():
                if key != STASH_KEY and key not in ANNOTATION_KEYS:
                    ann[key] = value
        if inst.status != "accepted" or inst.source != "manual" or inst.keypoint_scores is not None:
            review: dict[str, Any] = {"status": inst.status, "source": inst.source}
            if inst.keypoint_scores is not None:
                review["keypoint_scores"] = _scores_list(inst.keypoint_scores)
            ann[POSEKIT_FIELD] = review
        annotations.append(ann)
    annotations.extend(dataset.extra_annotations)

    images = []
    for item, image_id in zip(dataset.images, image_ids):
        record = item.image
        entry = {
            "id": image_id,
            "file_name": record.file_name,
            "width": int(record.width),
            "height": int(record.height),
        }
        entry.update((k, v) for k, v in record.extra.items() if k not in IMAGE_KEYS)
        images.append(entry)

    out: dict[str, Any] = {}
    if dataset.info is not None:
        out["info"] = dataset.info
    if dataset.licenses is not None:
        out["licenses"] = dataset.licenses
    out["images"] = images
    out["annotations"] = annotations
    out["categories"] = [_category_entry(dataset), *dataset.extra_categories]
    out.update((k, v) for k, v in dataset.extra.items() if k not in TOP_KEYS)
    return out


def to_coco_results(dataset: PoseDataset) -> list[dict[str, Any]]:
    """COCO keypoint *results* list (what ``COCO.loadRes`` and ``COCOeval`` read).

    One entry per instance with at least one labeled keypoint that is neither a
    crowd region nor ``rejected``: ``image_id``, ``category_id``, ``keypoints``
    (``x, y, v`` triplets), ``score`` (the instance score, 1.0 if it has none)
    and ``bbox`` (the box, else the box around the labeled points).
    """
    image_ids = _image_ids(dataset)
    instances, owners, xy, vis = _gather(dataset)
    keep = [
        j
        for j, inst in enumerate(instances)
        if not inst.iscrowd and inst.status != "rejected" and inst.num_labeled > 0
    ]
    if not keep:
        return []
    keypoint_lists = _keypoint_lists(xy[keep], vis[keep])
    boxes = np.stack([instances[j].bbox_or_keypoint_box() for j in keep])
    box_lists = rows_to_lists(encode_xywh_boxes(boxes))
    return [
        {
            "image_id": image_ids[owners[j]],
            "category_id": dataset.category_id,
            "keypoints": keypoint_lists[r],
            "score": 1.0 if instances[j].score is None else float(instances[j].score),
            "bbox": box_lists[r],
        }
        for r, j in enumerate(keep)
    ]
