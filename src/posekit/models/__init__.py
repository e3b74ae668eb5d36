"""Detector and pose-estimator backends behind small protocols.

Backend modules register themselves on import; heavy libraries are imported
only inside the backend that needs them, when a model is created.
"""

from posekit.models.base import (
    DETECTORS,
    POSE_ESTIMATORS,
    Detections,
    Detector,
    ModelError,
    PoseEstimator,
    create_detector,
    create_pose_estimator,
    parse_spec,
    register_detector,
    register_pose_estimator,
    spec_factory,
)

__all__ = [
    "DETECTORS",
    "POSE_ESTIMATORS",
    "Detections",
    "Detector",
    "ModelError",
    "PoseEstimator",
    "create_detector",
    "create_pose_estimator",
    "parse_spec",
    "register_detector",
    "register_pose_estimator",
    "spec_factory",
]

_LOADED = False


def _ensure_builtin_backends() -> None:
    """Import the built-in backend modules (cheap: they import heavy libraries lazily)."""
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    from posekit.models import blazepose, rtdetr, ultralytics_yolo, vitpose  # noqa: F401
