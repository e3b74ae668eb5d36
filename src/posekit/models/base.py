"""Backend protocols and the name -> factory registry.

A *model spec* is a string ``name`` or ``name:argument`` (e.g. ``blazepose``,
``vitpose:usyd-community/vitpose-base-simple``). The registry maps the name
to a factory taking the argument (or None) and keyword options.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from posekit.core import Instance
from posekit.skeleton import Skeleton

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


class ModelError(RuntimeError):
    """A model cannot be created, loaded or run; the message says what to do."""


@dataclass
class Detections:
    """Person boxes found in one image.

    Attributes:
        boxes: ``(N, 4) float32`` xyxy in absolute pixels.
        scores: ``(N,) float32`` in [0, 1].
        keypoints: optional ``(N, M, 2) float32`` detector-specific points
            (BlazePose's detector gives hip centre and a point above the head,
            which the landmark model uses to align its crop), else None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if self.scores.shape[0] != self.boxes.shape[0]:
            raise ValueError(
                f"Detections: {self.boxes.shape[0]} boxes but {self.scores.shape[0]} scores"
            )
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
            if self.keypoints.ndim != 3 or self.keypoints.shape[0] != self.boxes.shape[0]:
                raise ValueError(
                    f"Detections: keypoints shape {self.keypoints.shape} does not match "
                    f"{self.boxes.shape[0]} boxes"
                )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def subset(self, index: np.ndarray | Sequence[int] | Sequence[bool]) -> Detections:
        """The detections selected by integer positions or by a boolean mask."""
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(
                    f"Detections.subset: mask has shape {index.shape}, expected ({len(self)},)"
                )
            index = np.flatnonzero(index)
        index = index.astype(np.int64)
        kps = None if self.keypoints is None else self.keypoints[index]
        return Detections(self.boxes[index], self.scores[index], kps)


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


DetectorFactory = Callable[..., Detector]
PoseEstimatorFactory = Callable[..., PoseEstimator]

DETECTORS: dict[str, DetectorFactory] = {}
POSE_ESTIMATORS: dict[str, PoseEstimatorFactory] = {}


def register_detector(name: str, factory: DetectorFactory) -> None:
    DETECTORS[name] = factory


def register_pose_estimator(name: str, factory: PoseEstimatorFactory) -> None:
    POSE_ESTIMATORS[name] = factory


def spec_factory(backend: Callable[..., Any], argument: str) -> Callable[..., Any]:
    """A registry factory that passes a spec's argument (``name:ARG``) to ``backend``
    as the keyword ``argument`` (unless the caller gave that keyword explicitly)."""

    def factory(arg: str | None, **options: Any) -> Any:
        if arg:
            options.setdefault(argument, arg)
        return backend(**options)

    factory.__name__ = f"create_{getattr(backend, '__name__', 'backend')}"
    return factory


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"vitpose:org/model"`` -> ``("vitpose", "org/model")``; ``"blazepose"`` ->
    ``("blazepose", None)``."""
    name, sep, arg = spec.partition(":")
    return name.strip().lower(), (arg if sep else None)


def _create(kind: str, registry: dict[str, Callable[..., Any]], spec: str, **options: Any) -> Any:
    from posekit.models import _ensure_builtin_backends

    _ensure_builtin_backends()
    name, arg = parse_spec(spec)
    if name not in registry:
        raise ModelError(
            f"unknown {kind} {name!r}; available: {', '.join(sorted(registry)) or 'none'}"
        )
    return registry[name](arg, **options)


def create_detector(spec: str, **options: Any) -> Detector:
    """Create a person detector from a spec such as ``"blazepose"``."""
    return _create("detector", DETECTORS, spec, **options)


def create_pose_estimator(spec: str, **options: Any) -> PoseEstimator:
    """Create a pose estimator from a spec such as ``"blazepose"``."""
    return _create("pose estimator", POSE_ESTIMATORS, spec, **options)
