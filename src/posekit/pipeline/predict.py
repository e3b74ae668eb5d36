"""Top-down prediction: detect people (or take given boxes), then estimate poses."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from posekit.core import Detections, Instance
from posekit.models.base import Detector, PoseEstimator
from posekit.skeleton import Skeleton

__all__ = ["predict"]

log = logging.getLogger(__name__)


def predict(
    images: Sequence[np.ndarray],
    skeleton: Skeleton,
    detector: Detector | None,
    pose_estimator: PoseEstimator,
    detections: Sequence[Detections] | None = None,
) -> list[list[Instance]]:
    """Poses of every person in each image.

    Either runs ``detector`` on the images or uses the given ``detections`` (boxes
    from a file, ground truth, a user), then runs ``pose_estimator`` on them.

    Args:
        images: ``(H, W, 3) uint8`` RGB images.
        skeleton: target template; the estimator maps its keypoints onto it by name.
        detector: person detector, used when ``detections`` is None.
        pose_estimator: top-down pose estimator.
        detections: one :class:`Detections` per image, or None to detect.

    Returns:
        For each image, one :class:`Instance` per detected person.

    Raises:
        ValueError: neither a detector nor detections are given, or the number of
            detections differs from the number of images.

    Example:
        >>> from posekit.models import create_detector, create_pose_estimator
        >>> people = predict([image], get_preset("coco17"),  # doctest: +SKIP
        ...                  create_detector("blazepose"), create_pose_estimator("blazepose"))
    """
    if detections is None:
        if detector is None:
            raise ValueError("predict: give a detector or detections")
        detections = detector.detect(images)
    if len(detections) != len(images):
        raise ValueError(f"predict: {len(images)} images but {len(detections)} detections entries")
    if not images:
        return []
    return pose_estimator.estimate(images, detections, skeleton)
