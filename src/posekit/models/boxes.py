"""Box overlap and non-maximum suppression shared by the detector backends.

Boxes are ``(N, 4)`` xyxy arrays in absolute pixels.
"""

from __future__ import annotations

import numpy as np

from posekit.core import Detections

__all__ = ["box_area", "box_iou", "filter_person_boxes", "match_boxes", "nms", "weighted_nms"]


def box_area(boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` areas of ``(N, 4)`` xyxy boxes (0 for inverted boxes)."""
    # np.maximum(x, 0) is np.clip(x, 0, None) without its Python-level wrapper
    return np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)


def box_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union ``(N, M)`` of ``(N, 4)`` and ``(M, 4)`` boxes.

    Computed in the inputs' floating dtype; pairs with an empty union get 0.

    Example:
        >>> box_iou(np.array([[0.0, 0, 10, 10]]), np.array([[5.0, 0, 15, 10]])).round(3)
        array([[0.333]])
    """
    x1 = np.maximum(boxes[:, None, 0], others[None, :, 0])
    y1 = np.maximum(boxes[:, None, 1], others[None, :, 1])
    x2 = np.minimum(boxes[:, None, 2], others[None, :, 2])
    y2 = np.minimum(boxes[:, None, 3], others[None, :, 3])
    inter = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    union = box_area(boxes)[:, None] + box_area(others)[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        iou_threshold: a box overlapping a kept, higher-scoring box by more than
            this IoU is dropped.

    Returns:
        ``(M,) int64`` indices of kept boxes, best first.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        iou = box_iou(boxes[best : best + 1], boxes[rest])[0]
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


#: Up to this many candidates :func:`weighted_nms` computes every pairwise IoU at once.
_PAIRWISE_MAX = 512


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    Candidates overlapping the best remaining one by more than ``iou_threshold`` are
    merged into it: box and keypoints become their score-weighted mean (steadier than
    keeping the single best anchor), the score stays the best one's.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        points: ``(N, M, 2)`` keypoints carried along.

    Returns:
        Merged ``(K, 4)`` boxes, ``(K,)`` scores and ``(K, M, 2)`` points, float32,
        best first.
    """
    if len(scores) == 0:  # most detector views of a photo: nothing above the threshold
        return _no_boxes(points)
    order = np.argsort(-scores, kind="stable")
    boxes, scores, points = boxes[order], scores[order], points[order]
    # All pairwise overlaps at once (for up to a few hundred candidates; beyond, a row
    # per kept box): the same element-wise arithmetic either way, so the clusters and
    # the merged values do not depend on it.
    overlaps = box_iou(boxes, boxes) > iou_threshold if len(scores) <= _PAIRWISE_MAX else None
    remaining = np.ones(len(scores), dtype=bool)
    out_boxes, out_scores, out_points = [], [], []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        if overlaps is not None:
            members = remaining & overlaps[i]
        else:
            members = remaining & (box_iou(boxes[i : i + 1], boxes)[0] > iou_threshold)
        members[i] = True
        cluster = np.flatnonzero(members)
        weights = scores[cluster][:, None]
        total = float(weights.sum())
        out_boxes.append((boxes[cluster] * weights).sum(axis=0) / total)
        out_points.append((points[cluster] * weights[:, :, None]).sum(axis=0) / total)
        out_scores.append(scores[i])
        remaining[cluster] = False
    if not out_scores:
        return _no_boxes(points)
    return (
        np.asarray(out_boxes, np.float32),
        np.asarray(out_scores, np.float32),
        np.asarray(out_points, np.float32),
    )


def _no_boxes(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.zeros((0, 4), np.float32),
        np.zeros((0,), np.float32),
        np.zeros((0, *points.shape[1:]), np.float32),
    )


def match_boxes(boxes: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each box, the best-IoU candidate index (-1 if there are no candidates) and
    that IoU."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, 4)
    if candidates.shape[0] == 0:
        return np.full(boxes.shape[0], -1, np.int64), np.zeros(boxes.shape[0])
    iou = box_iou(boxes, candidates)
    best = iou.argmax(axis=1)
    return best.astype(np.int64), iou[np.arange(boxes.shape[0]), best]


def filter_person_boxes(
    boxes: np.ndarray,
    scores: np.ndarray,
    *,
    score_threshold: float,
    iou_threshold: float,
    min_box_size: float,
    width: int,
    height: int,
) -> Detections:
    """Threshold, clip to the image, drop small boxes, NMS -> :class:`Detections`."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    keep = scores >= score_threshold
    boxes, scores = boxes[keep], scores[keep]
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    big = ((boxes[:, 2] - boxes[:, 0]) >= min_box_size) & (
        (boxes[:, 3] - boxes[:, 1]) >= min_box_size
    )
    boxes, scores = boxes[big], scores[big]
    order = nms(boxes, scores, iou_threshold)
    return Detections(boxes[order], scores[order])
