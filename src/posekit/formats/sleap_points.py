"""The points of many SLEAP instances as posekit arrays, computed for all instances at
once (one numpy pass instead of a dozen small operations per instance).

Values, dtypes and rules are those of reading instances one by one: NaN -> not labeled
(0), ``visible`` -> 2, else 1; coordinates of unlabeled points are 0; point scores of
predicted instances with non-finite values (or at unlabeled points) are 0; template
keypoints the file lacks are not labeled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["PointArrays", "point_arrays"]


@dataclass
class PointArrays:
    """``keypoints (N, K, 2) float32``, ``visibility (N, K) uint8``, ``scores (N, K)
    float32`` (meaningful for predicted instances) and ``overflow (N,) bool`` (a value
    beyond float32 range) of N instances on a K-keypoint template."""

    keypoints: np.ndarray
    visibility: np.ndarray
    scores: np.ndarray
    overflow: np.ndarray


def point_arrays(
    instances: list[tuple[Any, bool]], valid: np.ndarray, safe: np.ndarray
) -> PointArrays:
    """The arrays of ``(sleap instance, predicted)`` pairs, all with the file skeleton's
    node count; ``valid`` / ``safe`` map template keypoints to file nodes (``safe[t]``
    is the node of keypoint ``t`` where ``valid[t]``)."""
    n, k = len(instances), valid.shape[0]
    if n == 0:
        return PointArrays(np.zeros((0, k, 2), np.float32), np.zeros((0, k), np.uint8),
                           np.zeros((0, k), np.float32), np.zeros(0, bool))  # fmt: skip
    xy = np.concatenate(
        [np.asarray(inst.points["xy"], dtype=np.float64).reshape(-1, 2) for inst, _ in instances]
    ).reshape(n, -1, 2)
    visible = np.concatenate(
        [np.asarray(inst.points["visible"], dtype=bool).reshape(-1) for inst, _ in instances]
    ).reshape(n, -1)
    finite = np.isfinite(xy).all(axis=2)
    vis_file = np.where(finite, np.where(visible, 2, 1), 0).astype(np.uint8)
    xy = np.where(finite[:, :, None], xy, 0.0)
    keypoints = np.where(valid[None, :, None], xy[:, safe], 0.0).astype(np.float32)
    visibility = np.where(valid[None, :], vis_file[:, safe], 0).astype(np.uint8)
    scores = np.zeros((n, k), np.float32)
    predicted = np.array([p for _, p in instances], dtype=bool)
    if predicted.any():
        raw = np.concatenate(
            [np.asarray(inst.points["score"], dtype=np.float64).reshape(-1)
             for inst, p in instances if p]
        ).reshape(int(predicted.sum()), -1)  # fmt: skip
        raw = np.where(np.isfinite(raw) & finite[predicted], raw, 0.0)
        scores[predicted] = np.where(valid[None, :], raw[:, safe], 0.0).astype(np.float32)
    overflow = ~np.isfinite(keypoints).all(axis=(1, 2)) | (
        predicted & ~np.isfinite(scores).all(axis=1)
    )
    return PointArrays(keypoints, visibility, scores, overflow)
