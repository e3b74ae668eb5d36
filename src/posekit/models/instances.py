"""Model keypoints -> :class:`~posekit.core.Instance` on a project template.

Every pose backend ends the same way: its keypoints (in the model's own order)
are mapped onto the template by name, template keypoints the model lacks are
not labeled, and each mapped keypoint is labeled visible (2) when it lies in the
image and the model is confident enough, else occluded (1).
"""

from __future__ import annotations

import numpy as np

from posekit.core import NOT_LABELED, OCCLUDED, VISIBLE, Instance

__all__ = ["inside_image", "predicted_instance"]


def inside_image(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(K,) bool``: which ``(K, 2)`` points lie in a ``width`` x ``height`` image
    (pixel-centre convention: the image covers [-0.5, W - 0.5] x [-0.5, H - 0.5])."""
    return (
        (points[:, 0] >= -0.5)
        & (points[:, 0] <= width - 0.5)
        & (points[:, 1] >= -0.5)
        & (points[:, 1] <= height - 0.5)
    )


def predicted_instance(
    points: np.ndarray,
    scores: np.ndarray,
    mapping: np.ndarray,
    *,
    image_size: tuple[int, int],
    visible_threshold: float,
    box: np.ndarray | None,
    score: float,
    source: str,
    visibility_scores: np.ndarray | None = None,
    labeled: np.ndarray | None = None,
) -> Instance:
    """A ``status='predicted'`` :class:`Instance` on a template from model outputs.

    Args:
        points: ``(M, 2)`` model keypoints in image pixels, model order.
        scores: ``(M,)`` keypoint confidences (become ``keypoint_scores``).
        mapping: ``(K,) int`` template <- model index, -1 where the model lacks the
            template keypoint (:func:`posekit.skeleton.names_mapping`).
        image_size: ``(width, height)`` of the image.
        visible_threshold: a labeled point inside the image whose visibility score
            is at least this gets visibility 2, else 1.
        box: ``(4,)`` xyxy instance box, or None.
        score: instance score.
        source: ``"model:<name>"``.
        visibility_scores: ``(M,)`` scores that decide visible vs occluded, if the
            model has its own (BlazePose); default ``scores``.
        labeled: ``(M,) bool`` model points that were predicted at all (default
            all); the others are not labeled but keep their score.

    Returns:
        An instance with ``(K, 2)`` keypoints, ``(K,)`` visibility in {0, 1, 2} and
        ``(K,)`` keypoint scores (0 where the model lacks the keypoint).
    """
    mapping = np.asarray(mapping)
    valid = mapping >= 0
    safe = np.where(valid, mapping, 0)
    xy = points[safe]
    kp_scores = scores[safe]
    decisive = kp_scores if visibility_scores is None else visibility_scores[safe]
    is_labeled = valid if labeled is None else valid & labeled[safe]
    width, height = image_size
    confident = inside_image(xy, width, height) & (decisive >= visible_threshold)
    visibility = np.where(is_labeled, np.where(confident, VISIBLE, OCCLUDED), NOT_LABELED)
    return Instance(
        keypoints=np.where(is_labeled[:, None], xy, 0.0),
        visibility=visibility.astype(np.uint8),
        keypoint_scores=np.where(valid, kp_scores, 0.0).astype(np.float32),
        box=box,
        score=score,
        source=source,
        status="predicted",
    )
