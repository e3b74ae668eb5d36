"""Known backends and checkpoints, with published accuracies, for ``posekit models``.

Nothing here imports a heavy library: whether an extra is installed is checked
with :func:`importlib.util.find_spec`.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

__all__ = [
    "BACKENDS",
    "CHECKPOINTS",
    "PIPELINES",
    "VITPOSE_PUBLISHED_AP",
    "Backend",
    "Checkpoint",
    "Pipeline",
    "list_backends",
    "list_checkpoints",
    "pipeline_licenses",
]


@dataclass(frozen=True)
class Backend:
    """A model backend and what it needs.

    Attributes:
        name: spec prefix (``vitpose``).
        kind: ``"pose"``, ``"detector"`` or ``"detector+pose"``.
        extra: pip extra that provides it (``posekit[<extra>]``).
        modules: import names that must be present.
        license: licence of the library the backend runs on.
        spec: how to write the spec.
        installed: whether every module in ``modules`` can be imported.
    """

    name: str
    kind: str
    extra: str
    modules: tuple[str, ...]
    license: str
    spec: str
    installed: bool = False


@dataclass(frozen=True)
class Checkpoint:
    """A known checkpoint and its published accuracy.

    Attributes:
        spec: full model spec, e.g. ``vitpose:usyd-community/vitpose-base-simple``.
        backend: backend name.
        task: ``"pose"`` or ``"detector"``.
        metric: what ``value`` measures.
        value: published figure (None if none is published for this exact model).
        reference: where the figure comes from.
    """

    spec: str
    backend: str
    task: str
    metric: str
    value: float | None
    reference: str


BACKENDS: tuple[Backend, ...] = (
    Backend(
        "blazepose",
        "detector+pose",
        "mediapipe",
        ("mediapipe", "ai_edge_litert"),
        "Apache-2.0",
        "blazepose",
    ),
    Backend(
        "vitpose",
        "pose",
        "transformers",
        ("torch", "transformers", "safetensors"),
        "Apache-2.0",
        "vitpose:<hub id or folder>",
    ),
    Backend(
        "rtdetr",
        "detector",
        "transformers",
        ("torch", "transformers", "safetensors"),
        "Apache-2.0",
        "rtdetr[:<hub id or folder>]",
    ),
    Backend(
        "yolo",
        "detector+pose",
        "ultralytics",
        ("ultralytics",),
        "AGPL-3.0",
        "yolo:<weights name or path>",
    ),
)

_VITPOSE_REF = (
    "Xu et al., ViTPose, NeurIPS 2022, Table (COCO val2017, 256x192, "
    "person detector with 56.4 AP, flip test)"
)
_VITPOSE_PP_REF = "Xu et al., ViTPose++, TPAMI 2023 (COCO val2017, 256x192, 56 AP detector)"
_RTDETR_REF = "Zhao et al., RT-DETR, CVPR 2024 / PekingU model cards (COCO val2017 box AP)"
_YOLO_REF = "Ultralytics model documentation (COCO val2017)"

CHECKPOINTS: tuple[Checkpoint, ...] = (
    Checkpoint(
        "vitpose:usyd-community/vitpose-base-simple",
        "vitpose",
        "pose",
        "COCO val AP",
        None,
        "ViTPose-B with the simple decoder; the paper's 75.8 is for the classic decoder",
    ),
    Checkpoint(
        "vitpose:usyd-community/vitpose-base",
        "vitpose",
        "pose",
        "COCO val AP",
        75.8,
        _VITPOSE_REF + "; classic decoder",
    ),
    Checkpoint(
        "vitpose:usyd-community/vitpose-base-coco-aic-mpii",
        "vitpose",
        "pose",
        "COCO val AP",
        None,
        "trained on COCO+AIC+MPII; no single published figure",
    ),
    Checkpoint(
        "vitpose:usyd-community/vitpose-plus-small",
        "vitpose",
        "pose",
        "COCO val AP",
        75.8,
        _VITPOSE_PP_REF,
    ),
    Checkpoint(
        "vitpose:usyd-community/vitpose-plus-base",
        "vitpose",
        "pose",
        "COCO val AP",
        77.0,
        _VITPOSE_PP_REF,
    ),
    Checkpoint(
        "vitpose:usyd-community/vitpose-plus-large",
        "vitpose",
        "pose",
        "COCO val AP",
        78.6,
        _VITPOSE_PP_REF,
    ),
    Checkpoint(
        "vitpose:usyd-community/vitpose-plus-huge",
        "vitpose",
        "pose",
        "COCO val AP",
        79.4,
        _VITPOSE_PP_REF,
    ),
    Checkpoint(
        "rtdetr:PekingU/rtdetr_r18vd_coco_o365",
        "rtdetr",
        "detector",
        "COCO val box AP",
        49.2,
        _RTDETR_REF,
    ),
    Checkpoint(
        "rtdetr:PekingU/rtdetr_r50vd_coco_o365",
        "rtdetr",
        "detector",
        "COCO val box AP",
        55.3,
        _RTDETR_REF,
    ),
    Checkpoint(
        "rtdetr:PekingU/rtdetr_r101vd_coco_o365",
        "rtdetr",
        "detector",
        "COCO val box AP",
        56.2,
        _RTDETR_REF,
    ),
    Checkpoint("yolo:yolov8n.pt", "yolo", "detector", "COCO val box AP", 37.3, _YOLO_REF),
    Checkpoint("yolo:yolo11n.pt", "yolo", "detector", "COCO val box AP", 39.5, _YOLO_REF),
    Checkpoint("yolo:yolov8n-pose.pt", "yolo", "pose", "COCO val pose AP50-95", 50.4, _YOLO_REF),
    Checkpoint("yolo:yolo11n-pose.pt", "yolo", "pose", "COCO val pose AP50-95", 50.0, _YOLO_REF),
)

#: Published ViTPose (single-dataset, COCO 256x192) accuracies by model size, from the
#: ViTPose paper: COCO val2017 AP with person boxes from a detector with 56 AP.
#: Reproduce with ``benchmarks``' COCO evaluation command in BENCHMARKS.md.
VITPOSE_PUBLISHED_AP: dict[str, float] = {
    "ViTPose-S": 73.8,
    "ViTPose-B": 75.8,
    "ViTPose-L": 78.3,
    "ViTPose-H": 79.1,
}


def _installed(modules: tuple[str, ...]) -> bool:
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                return False
        except (ImportError, ValueError):
            return False
    return True


def list_backends() -> list[Backend]:
    """Every backend, with ``installed`` telling whether its extra is present.

    Nothing is imported: presence is checked with ``importlib.util.find_spec``.

    Example:
        >>> [b.name for b in list_backends()]
        ['blazepose', 'vitpose', 'rtdetr', 'yolo']
    """
    return [
        Backend(b.name, b.kind, b.extra, b.modules, b.license, b.spec, _installed(b.modules))
        for b in BACKENDS
    ]


def list_checkpoints(backend: str | None = None) -> list[Checkpoint]:
    """Known checkpoints (optionally of one backend) with their published figures."""
    return [c for c in CHECKPOINTS if backend is None or c.backend == backend]


@dataclass(frozen=True)
class Pipeline:
    """A named detector + pose combination, as ``--detector`` / ``--pose`` spell it.

    Attributes:
        name: Short name.
        detector: Detector spec (a checkpoint to use).
        pose: Pose estimator spec.
        note: What it is for.
    """

    name: str
    detector: str
    pose: str
    note: str


#: The documented pipelines. "YOLO finds the people, ViTPose estimates their poses" is
#: the seed platform's; RT-DETR + ViTPose is the same top-down pipeline with
#: Apache-2.0 code end to end.
PIPELINES: tuple[Pipeline, ...] = (
    Pipeline("offline-default", "blazepose", "blazepose", "bundled, CPU, no download"),
    Pipeline(
        "rtdetr-vitpose",
        "rtdetr:PekingU/rtdetr_r50vd_coco_o365",
        "vitpose:usyd-community/vitpose-base-simple",
        "top-down, Apache-2.0 end to end",
    ),
    Pipeline(
        "yolo-vitpose",
        "yolo:yolov8n.pt",
        "vitpose:usyd-community/vitpose-base-simple",
        "the seed pipeline; the detector is AGPL-3.0",
    ),
    Pipeline("yolo-pose", "yolo:yolov8n-pose.pt", "yolo:yolov8n-pose.pt", "one-stage, AGPL-3.0"),
)

#: Licences that bind software distributed with the library (copyleft).
_COPYLEFT = ("AGPL", "GPL")


def pipeline_licenses(pipeline: Pipeline) -> tuple[tuple[str, ...], bool]:
    """The licences of a pipeline's backends, and whether it is licence-clean (no
    copyleft code: usable in a closed product).

    Example:
        >>> pipeline_licenses(PIPELINES[1])
        (('Apache-2.0',), True)
        >>> pipeline_licenses(PIPELINES[2])[1]
        False
    """
    by_name = {b.name: b.license for b in BACKENDS}
    names = {spec.split(":", 1)[0] for spec in (pipeline.detector, pipeline.pose)}
    licenses = tuple(sorted({by_name[n] for n in names}))
    clean = not any(lic.startswith(c) or f"-{c}" in lic for lic in licenses for c in _COPYLEFT)
    return licenses, clean
