"""The name -> factory tables of detectors and pose estimators.

A *model spec* is a string ``name`` or ``name:argument`` (e.g. ``blazepose``,
``vitpose:usyd-community/vitpose-base-simple``). :data:`DETECTORS` and
:data:`POSE_ESTIMATORS` map the name to a small factory ``factory(argument,
**options)`` that imports its backend module only when called, so importing
this module (or :mod:`posekit`) loads no backend and no heavy library. The
catalog of backends and checkpoints (:mod:`posekit.models.catalog`) says which
extra each backend needs.

Adding a backend is one module plus one line per table here. A user can add
their own at run time:

Example:
    >>> from posekit.models.registry import DETECTORS, spec_factory
    >>> class MyDetector:  # doctest: +SKIP
    ...     name, device = "mine", "cpu"
    ...     def __init__(self, weights=None): ...
    >>> DETECTORS["mine"] = spec_factory(MyDetector, "weights")  # doctest: +SKIP
    >>> create_detector("mine:/path/to/weights")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from posekit.models.base import Detector, ModelError, PoseEstimator
from posekit.models.catalog import BACKENDS

__all__ = [
    "DETECTORS",
    "POSE_ESTIMATORS",
    "DetectorFactory",
    "PoseEstimatorFactory",
    "create_detector",
    "create_pose_estimator",
    "parse_spec",
    "spec_factory",
]

#: ``factory(argument, **options)``: ``argument`` is the part after ``name:`` or None.
DetectorFactory = Callable[..., Detector]
PoseEstimatorFactory = Callable[..., PoseEstimator]


def spec_factory(backend: Callable[..., Any], argument: str) -> Callable[..., Any]:
    """A registry factory that passes a spec's argument (``name:ARG``) to ``backend``
    as the keyword ``argument`` (unless the caller gave that keyword explicitly)."""

    def factory(arg: str | None, **options: Any) -> Any:
        return backend(**_with_argument(options, argument, arg))

    factory.__name__ = f"create_{getattr(backend, '__name__', 'backend')}"
    return factory


def _with_argument(options: dict[str, Any], keyword: str, arg: str | None) -> dict[str, Any]:
    if arg:
        options.setdefault(keyword, arg)
    return options


# ------------------------------------------------------------------ built-in factories
# Each imports its backend module when called; the backend module in turn imports
# its heavy library (mediapipe runtime, torch, ultralytics) only when a model loads.
def _blazepose_detector(arg: str | None, **options: Any) -> Detector:
    from posekit.models.blazepose import BlazePoseDetector

    return BlazePoseDetector(**_with_argument(options, "model_dir", arg))


def _blazepose_estimator(arg: str | None, **options: Any) -> PoseEstimator:
    from posekit.models.blazepose import BlazePoseEstimator

    return BlazePoseEstimator(**_with_argument(options, "model_dir", arg))


def _rtdetr_detector(arg: str | None, **options: Any) -> Detector:
    from posekit.models.rtdetr import RTDetrDetector

    return RTDetrDetector(**_with_argument(options, "model", arg))


def _vitpose_estimator(arg: str | None, **options: Any) -> PoseEstimator:
    from posekit.models.vitpose import VitPoseEstimator

    return VitPoseEstimator(**_with_argument(options, "model", arg))


def _yolo_detector(arg: str | None, **options: Any) -> Detector:
    from posekit.models.ultralytics_yolo import YoloDetector

    return YoloDetector(**_with_argument(options, "weights", arg))


def _yolo_estimator(arg: str | None, **options: Any) -> PoseEstimator:
    from posekit.models.ultralytics_yolo import YoloPoseEstimator

    return YoloPoseEstimator(**_with_argument(options, "weights", arg))


DETECTORS: dict[str, DetectorFactory] = {
    "blazepose": _blazepose_detector,
    "rtdetr": _rtdetr_detector,
    "yolo": _yolo_detector,
}
POSE_ESTIMATORS: dict[str, PoseEstimatorFactory] = {
    "blazepose": _blazepose_estimator,
    "vitpose": _vitpose_estimator,
    "yolo": _yolo_estimator,
}


# ----------------------------------------------------------------------- creation
def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"vitpose:org/model"`` -> ``("vitpose", "org/model")``; ``"blazepose"`` ->
    ``("blazepose", None)``."""
    name, sep, arg = spec.partition(":")
    return name.strip().lower(), (arg if sep else None)


def _create(kind: str, table: dict[str, Callable[..., Any]], spec: str, **options: Any) -> Any:
    name, arg = parse_spec(spec)
    factory = table.get(name)
    if factory is None:
        raise ModelError(
            f"unknown {kind} {name!r}; available: {', '.join(sorted(table)) or 'none'}"
        )
    try:
        return factory(arg, **options)
    except ImportError as exc:
        # Backends explain their own missing libraries; this catches the rest.
        extra = next((b.extra for b in BACKENDS if b.name == name), None)
        hint = f"pip install 'posekit[{extra}]'" if extra else "install its dependencies"
        missing = exc.name or str(exc)
        raise ModelError(f"the {name!r} {kind} needs {missing!r}: {hint}") from None


def create_detector(spec: str, **options: Any) -> Detector:
    """Create a person detector from a spec such as ``"blazepose"`` or
    ``"rtdetr:PekingU/rtdetr_r50vd_coco_o365"``.

    Raises:
        ModelError: unknown name (the message lists the known ones), missing extra
            (the message names it) or a model that cannot be loaded.
    """
    return _create("detector", DETECTORS, spec, **options)


def create_pose_estimator(spec: str, **options: Any) -> PoseEstimator:
    """Create a pose estimator from a spec such as ``"blazepose"`` or
    ``"vitpose:usyd-community/vitpose-base-simple"``.

    Raises:
        ModelError: as :func:`create_detector`.
    """
    return _create("pose estimator", POSE_ESTIMATORS, spec, **options)
