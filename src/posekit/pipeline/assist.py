"""AI assist: poses for people the user has boxed in one image."""

from __future__ import annotations

import numpy as np

from posekit.core import Detections, Instance
from posekit.models.base import PoseEstimator
from posekit.models.registry import create_pose_estimator
from posekit.skeleton import Skeleton

__all__ = ["assist"]


def assist(
    image: np.ndarray,
    boxes: np.ndarray,
    skeleton: Skeleton,
    pose_estimator: PoseEstimator | str = "blazepose",
) -> list[Instance]:
    """Estimate one pose per box in ``image``.

    Args:
        image: ``(H, W, 3) uint8`` RGB image.
        boxes: ``(N, 4)`` xyxy boxes in pixels (a single ``(4,)`` box is accepted).
        skeleton: target template.
        pose_estimator: an estimator, or a model spec such as ``"blazepose"`` (the
            model is then created for this call and closed afterwards; pass an
            estimator to reuse a loaded model across calls).

    Returns:
        One predicted :class:`Instance` per box, in box order, with the box kept.

    Raises:
        ValueError: ``boxes`` is not ``(N, 4)`` or a box has x2 < x1 or y2 < y1.
    """
    boxes_arr = np.asarray(boxes, dtype=np.float32)
    if boxes_arr.ndim == 1:
        boxes_arr = boxes_arr.reshape(1, -1)
    if boxes_arr.ndim != 2 or boxes_arr.shape[1] != 4:
        raise ValueError(f"assist: boxes must have shape (N, 4) xyxy, got {boxes_arr.shape}")
    bad = np.flatnonzero(
        ~np.isfinite(boxes_arr).all(axis=1)
        | (boxes_arr[:, 2] < boxes_arr[:, 0])
        | (boxes_arr[:, 3] < boxes_arr[:, 1])
    )
    if bad.size:
        raise ValueError(
            f"assist: box #{int(bad[0])} {boxes_arr[bad[0]].tolist()} is not a finite "
            "x1, y1, x2, y2 box with x1 <= x2 and y1 <= y2"
        )
    if boxes_arr.shape[0] == 0:
        return []
    detections = Detections(boxes_arr, np.ones(len(boxes_arr), np.float32))
    if isinstance(pose_estimator, str):
        estimator = create_pose_estimator(pose_estimator)
        try:
            return estimator.estimate([image], [detections], skeleton)[0]
        finally:
            estimator.close()
    return pose_estimator.estimate([image], [detections], skeleton)[0]
