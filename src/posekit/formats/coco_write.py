"""Writing a :class:`~posekit.dataset.PoseDataset` as a COCO keypoints dict or a
COCO results list (see :mod:`posekit.formats.coco` for the round-trip rules)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
    geometry_crc_arrays,
    is_int,
)
from posekit.formats.numbers import encode_xywh_boxes, rows_to_lists, shortest_decimals
from posekit.gc_pause import gc_paused
from posekit.skeleton import SkeletonError, names_mapping

__all__ = [
    "AnnotationColumns",
    "coco_annotations",
    "coco_document",
    "coco_images",
    "to_coco",
    "to_coco_results",
]


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
    columns = AnnotationColumns(
        ids=fill_missing_ids([i.id for i in instances], reserved),
        image_ids=[image_ids[position] for position in owners],
        xy=xy,
        vis=vis,
        boxes=[inst.box for inst in instances],
        iscrowd=[inst.iscrowd for inst in instances],
        area=[inst.area for inst in instances],
        score=[inst.score for inst in instances],
        track_id=[inst.track_id for inst in instances],
        segmentation=[inst.segmentation for inst in instances],
        extra=[inst.extra for inst in instances],
        status=[inst.status for inst in instances],
        source=[inst.source for inst in instances],
        keypoint_scores=[inst.keypoint_scores for inst in instances],
    )
    annotations = coco_annotations(columns, dataset.category_id)
    annotations.extend(dataset.extra_annotations)
    images = coco_images(
        (image_id, item.image.file_name, item.image.width, item.image.height, item.image.extra)
        for item, image_id in zip(dataset.images, image_ids)
    )
    return coco_document(dataset, images, annotations)


@dataclass
class AnnotationColumns:
    """The instances of a COCO file column by column (one entry per annotation), as
    :func:`coco_annotations` writes them: from :class:`Instance` objects
    (:func:`to_coco`) or straight from a store's rows."""

    ids: list[int]
    image_ids: list[int]
    xy: np.ndarray  #: ``(N, K, 2) float32``
    vis: np.ndarray  #: ``(N, K) uint8``
    boxes: list[np.ndarray | None]  #: ``(4,) float32`` xyxy
    iscrowd: list[bool]
    area: list[float | None]
    score: list[float | None]
    track_id: list[int | None]
    segmentation: list[Any]
    extra: list[dict[str, Any]]
    status: list[str]
    source: list[str]
    keypoint_scores: list[np.ndarray | None]


def coco_annotations(columns: AnnotationColumns, category_id: int) -> list[dict[str, Any]]:
    """COCO annotation dicts of instances given column by column (see :func:`to_coco`)."""
    xy, vis, boxes = columns.xy, columns.vis, columns.boxes
    n = len(columns.ids)
    keypoint_lists = _keypoint_lists(xy, vis)
    counts = np.count_nonzero(vis, axis=1).tolist() if n else []
    box_index = [j for j, box in enumerate(boxes) if box is not None]
    box_lists: list[Any] = [None] * n
    if box_index:
        encoded = rows_to_lists(encode_xywh_boxes(np.stack([boxes[j] for j in box_index])))
        for j, values in zip(box_index, encoded):
            box_lists[j] = values
    annotations: list[dict[str, Any]] = []
    rows = zip(
        range(n), columns.ids, columns.image_ids, columns.extra, columns.iscrowd, columns.area,
        columns.score, columns.track_id, columns.segmentation, columns.status, columns.source,
        columns.keypoint_scores,
    )  # fmt: skip
    for (
        j,
        ann_id,
        image_id,
        extra,
        crowd,
        area,
        score,
        track,
        seg,
        status,
        source,
        kps,
    ) in rows:
        if not extra:
            # No stash and no unknown fields (most instances): the branches below
            # with nothing absent, null or raw to restore; the same dict, key order
            # included.
            ann = {
                "id": ann_id,
                "image_id": image_id,
                "category_id": category_id,
                "keypoints": keypoint_lists[j],
                "num_keypoints": counts[j],
            }
            if box_lists[j] is not None:
                ann["bbox"] = box_lists[j]
            ann["iscrowd"] = int(crowd)
            if area is not None:
                ann["area"] = area
            if score is not None:
                ann["score"] = score
            if track is not None:
                ann["track_id"] = track
            if seg is not None:
                ann["segmentation"] = seg
            if status != "accepted" or source != "manual" or kps is not None:
                review: dict[str, Any] = {"status": status, "source": source}
                if kps is not None:
                    review["keypoint_scores"] = _scores_list(kps)
                ann[POSEKIT_FIELD] = review
            annotations.append(ann)
            continue
        stash = extra.get(STASH_KEY)
        unchanged = (
            bool(stash)
            and "crc" in stash
            and stash["crc"] == geometry_crc_arrays(xy[j], vis[j], boxes[j])
        )
        absent = stash.get("absent", ()) if stash else ()
        null = stash.get("null", ()) if stash else ()
        ann: dict[str, Any] = {"id": ann_id, "image_id": image_id}
        ann["category_id"] = category_id
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
        if not ("iscrowd" in absent and not crowd):
            ann["iscrowd"] = _raw(stash, "iscrowd", int(crowd), int)
        for key, value, kind in (
            ("area", area, float),
            ("score", score, float),
            ("track_id", track, int),
        ):
            if value is not None:
                ann[key] = _raw(stash, key, value, kind)
            elif key in null:
                ann[key] = None
        if seg is not None or "segmentation" in null:
            ann["segmentation"] = seg
        if extra:
            for key, value in extra.items():
                if key != STASH_KEY and key not in ANNOTATION_KEYS:
                    ann[key] = value
        if status != "accepted" or source != "manual" or kps is not None:
            review = {"status": status, "source": source}
            if kps is not None:
                review["keypoint_scores"] = _scores_list(kps)
            ann[POSEKIT_FIELD] = review
        annotations.append(ann)
    return annotations


def coco_images(
    entries: Iterable[tuple[int, str, int, int, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """COCO image dicts of ``(id, file_name, width, height, extra fields)``."""
    images = []
    for image_id, file_name, width, height, extra in entries:
        entry = {"id": image_id, "file_name": file_name, "width": int(width), "height": int(height)}
        entry.update((k, v) for k, v in extra.items() if k not in IMAGE_KEYS)
        images.append(entry)
    return images


def coco_document(
    dataset: PoseDataset, images: list[dict[str, Any]], annotations: list[dict[str, Any]]
) -> dict[str, Any]:
    """The COCO keypoints dict of ``images`` and ``annotations`` with the file-level
    parts (info, licenses, categories, unknown fields) of ``dataset``; its
    ``images`` are not used."""
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
