"""Backend protocols, the error every backend raises, and the input checks they share.

A detector finds people (:class:`~posekit.core.Detections` per image); a pose
estimator puts keypoints on them (:class:`~posekit.core.Instance` per box).
Backends are created by name through :mod:`posekit.models.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from posekit.core import Detections, Instance
from posekit.skeleton import Skeleton

__all__ = ["Detector", "ModelError", "PoseEstimator", "check_images", "check_pairs"]


class ModelError(RuntimeError):
    """A model cannot be created, loaded or run; the message says what to do."""


@runtime_checkable
class Detector(Protocol):
    """Finds people. Lifecycle: create (loads weights once), call many times, close."""

    name: str
    device: str

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Person detections for a batch of ``(H, W, 3) uint8`` RGB images."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class PoseEstimator(Protocol):
    """Estimates keypoints of people given their boxes (top-down)."""

    name: str
    device: str

    def estimate(
        self,
        images: Sequence[np.ndarray],
        detections: Sequence[Detections],
        skeleton: Skeleton,
    ) -> list[list[Instance]]:
        """For each image, one :class:`Instance` per detection, on ``skeleton``'s
        keypoints (mapped by name; keypoints the model lacks are not labeled),
        with ``keypoint_scores``, ``score``, ``box`` and ``source='model:<name>'``,
        ``status='predicted'``."""
        ...

    def close(self) -> None: ...


def check_images(images: Sequence[Any], who: str) -> None:
    """Raise ``ValueError`` naming ``who`` and the image unless every image is an
    ``(H, W, 3) uint8`` RGB numpy array."""
    for i, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", type(image).__name__)
            raise ValueError(f"{who}: image #{i} must be (H, W, 3) uint8 RGB, got {shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"{who}: image #{i} must be uint8, got {image.dtype}")


def check_pairs(images: Sequence[Any], detections: Sequence[Any], who: str) -> None:
    """Raise ``ValueError`` unless there is one detections entry per image and every
    image is RGB uint8 (what each pose estimator checks first)."""
    if len(images) != len(detections):
        raise ValueError(f"{who}: {len(images)} images but {len(detections)} detections")
    check_images(images, who)
