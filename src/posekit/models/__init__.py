"""Detector and pose-estimator backends behind small protocols.

Create one by name with :func:`create_detector` / :func:`create_pose_estimator`;
the name -> factory tables live in :mod:`posekit.models.registry`. Heavy
libraries are imported only inside the backend that needs them, when a model is
created. Shared pieces for writing a backend: :mod:`~posekit.models.boxes` (IoU,
NMS), :mod:`~posekit.models.instances` (model keypoints -> Instance),
:mod:`~posekit.models.torch_kit` (device, dtype, batching, Hugging Face loading),
:mod:`~posekit.models.heatmap_codec` (UDP crops, DARK decoding) and
:mod:`~posekit.models.geometry` (rotated crops).
"""

from posekit.models.base import Detector, ModelError, PoseEstimator
from posekit.models.registry import (
    DETECTORS,
    POSE_ESTIMATORS,
    create_detector,
    create_pose_estimator,
    parse_spec,
    spec_factory,
)

__all__ = [
    "DETECTORS",
    "POSE_ESTIMATORS",
    "Detector",
    "ModelError",
    "PoseEstimator",
    "create_detector",
    "create_pose_estimator",
    "parse_spec",
    "spec_factory",
]
