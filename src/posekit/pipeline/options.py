"""The one options object for auto-labeling, and the one place its defaults live.

The CLI (``posekit autolabel``), the server's job queue and the engines all build
an :class:`AutolabelOptions`; none of them writes a default of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "DEFAULT_MIN_INSTANCE_SCORE",
    "DEFAULT_OKS_NMS_THRESHOLD",
    "EXISTING_LABELS",
    "SMOOTHING_METHODS",
    "AutolabelOptions",
]

#: Default minimum instance score. The backends' scores are a pose-quality product in
#: [0, 1] (see the pose estimators); on every shared sample set all instances below
#: 0.05 were junk (no ground-truth person within OKS 0.5), none a real person.
DEFAULT_MIN_INSTANCE_SCORE = 0.05
#: Default OKS from which two predicted poses on one image are the same person
#: (:mod:`posekit.pipeline.postprocess`), the value top-down COCO evaluations use.
DEFAULT_OKS_NMS_THRESHOLD = 0.5

#: What auto-labeling does with images a person already labeled
#: (:attr:`AutolabelOptions.existing`).
EXISTING_LABELS = ("skip", "beside", "replace-predictions")

#: Temporal smoothing of video tracks (:attr:`AutolabelOptions.smoothing`).
SMOOTHING_METHODS = ("none", "one-euro", "savgol")


@dataclass(frozen=True)
class AutolabelOptions:
    """What to run and on what: models, thresholds, batching, item selection.

    Plain values only (strings, numbers, tuples), so the object can be stored
    with a job, sent to a worker process or written to JSON.

    Attributes:
        detector: Person detector spec, e.g. ``"blazepose"`` or ``"rtdetr"``.
        pose: Pose estimator spec, e.g. ``"blazepose"`` or
            ``"vitpose:usyd-community/vitpose-base-simple"``.
        batch_size: Images per model call (and per database transaction when the
            results go to a project).
        min_box_score: Person boxes scoring below this are dropped before pose
            estimation (0 keeps every box).
        min_instance_score: Predicted instances scoring below this are dropped
            (0 keeps every instance; instances without a score are kept). Default
            :data:`DEFAULT_MIN_INSTANCE_SCORE`.
        oks_nms_threshold: Of two predicted poses on one image with an OKS at least
            this (either one as the reference), the lower-scoring one is dropped:
            duplicates from overlapping boxes, tiles or refinement passes, whatever
            the models (:func:`posekit.pipeline.postprocess.postprocess_instances`).
            0 disables it. Default :data:`DEFAULT_OKS_NMS_THRESHOLD`.
        overwrite: Also process items that already have instances, replacing
            their ``predicted`` model instances (manual, accepted and rejected
            ones are kept).
        existing: Images holding labels a person made or reviewed (an instance
            that is not a ``predicted`` one): ``"skip"`` leaves them alone (even
            with ``overwrite``: only images without such labels are redone);
            ``"beside"`` also predicts on them, once, adding the predictions next
            to the labels; ``"replace-predictions"`` predicts on every image,
            replacing earlier predictions (person labels are always kept). None
            (default): ``"replace-predictions"`` with ``overwrite``, else
            ``"skip"`` (images that already have anything are not redone).
        device: Device for backends that take one (``"cpu"``, ``"cuda"``,
            ``"cuda:1"``, ``"mps"``); None lets each backend choose.
        detector_options: Extra keyword arguments for the detector factory.
        pose_options: Extra keyword arguments for the pose estimator factory.
        dataset: Only items of this dataset (by name); None for all datasets.
        item_ids: Only these items (ids), e.g. one shard of a distributed run;
            None for all items (of ``dataset``).
        engine: Which engine runs the job (a name in :data:`posekit.engines.ENGINES`):
            ``"local"`` (in this process) or ``"ray"`` (a Ray cluster, ``[ray]`` extra).
        address: Ray cluster to connect to (``"auto"``, ``"ray://HOST:10001"``); None
            starts a local Ray instance (or uses ``RAY_ADDRESS``). Ray engine only.
        workers: Model workers (Ray actors, each loading the models once). Ray only.
        gpus_per_worker: GPUs each Ray worker reserves (0: CPU workers; fractions
            share a GPU). Ray only.
        every: On videos, run the models on every n-th frame and interpolate each
            track linearly in between (1: every frame).
        smoothing: On videos, temporal smoothing per track and joint: ``"none"``,
            ``"one-euro"`` (online) or ``"savgol"`` (offline, keeps the whole video's
            predictions in memory). Keyframes a person set are never moved.
        tracker_options: Keyword arguments of :class:`posekit.tracking.TrackerOptions`
            (e.g. ``{"min_hits": 3, "max_age": 30}``).

    Example:
        >>> options = AutolabelOptions(batch_size=16, overwrite=True)
        >>> options.detector, options.batch_size
        ('blazepose', 16)
        >>> AutolabelOptions.from_mapping({"pose": "blazepose", "dataset": None}).pose
        'blazepose'
    """

    detector: str = "blazepose"
    pose: str = "blazepose"
    batch_size: int = 8
    min_box_score: float = 0.0
    min_instance_score: float = DEFAULT_MIN_INSTANCE_SCORE
    oks_nms_threshold: float = DEFAULT_OKS_NMS_THRESHOLD
    overwrite: bool = False
    existing: str | None = None
    device: str | None = None
    detector_options: Mapping[str, Any] = field(default_factory=dict)
    pose_options: Mapping[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    item_ids: tuple[int, ...] | None = None
    engine: str = "local"
    address: str | None = None
    workers: int = 1
    gpus_per_worker: float = 0.0
    every: int = 1
    smoothing: str = "none"
    tracker_options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("detector", "pose"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(
                    f"{name}: expected a model spec such as 'blazepose', got {value!r}"
                )
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int):
            raise ValueError(f"batch_size must be an integer, got {self.batch_size!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        for name in ("min_box_score", "min_instance_score", "oks_nms_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not isinstance(self.overwrite, bool):
            raise ValueError(f"overwrite must be True or False, got {self.overwrite!r}")
        if self.existing is not None and self.existing not in EXISTING_LABELS:
            raise ValueError(
                f"existing must be one of {', '.join(EXISTING_LABELS)}, got {self.existing!r}"
            )
        if self.device is not None and (not isinstance(self.device, str) or not self.device):
            raise ValueError(f"device must be a name such as 'cpu' or 'cuda', got {self.device!r}")
        for name in ("detector_options", "pose_options"):
            if not isinstance(getattr(self, name), Mapping):
                raise ValueError(f"{name} must be a mapping of keyword arguments")
            object.__setattr__(self, name, dict(getattr(self, name)))
        if self.dataset is not None and not isinstance(self.dataset, str):
            raise ValueError(f"dataset must be a dataset name, got {self.dataset!r}")
        if self.item_ids is not None:
            ids = tuple(self.item_ids)
            if any(isinstance(i, bool) or not isinstance(i, int) for i in ids):
                raise ValueError("item_ids must be integers")
            object.__setattr__(self, "item_ids", ids)
        if not isinstance(self.engine, str) or not self.engine:
            raise ValueError(f"engine must be an engine name such as 'local', got {self.engine!r}")
        if self.address is not None and (not isinstance(self.address, str) or not self.address):
            raise ValueError(f"address must be a Ray address such as 'auto', got {self.address!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be an integer of at least 1, got {self.workers!r}")
        gpus = self.gpus_per_worker
        if isinstance(gpus, bool) or not isinstance(gpus, (int, float)) or not math.isfinite(gpus):
            raise ValueError(f"gpus_per_worker must be a number, got {gpus!r}")
        if gpus < 0:
            raise ValueError(f"gpus_per_worker must be 0 or more, got {gpus}")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise ValueError(f"every must be an integer of at least 1, got {self.every!r}")
        if self.smoothing not in SMOOTHING_METHODS:
            raise ValueError(
                f"smoothing must be one of {', '.join(SMOOTHING_METHODS)}, got {self.smoothing!r}"
            )
        if not isinstance(self.tracker_options, Mapping):
            raise ValueError("tracker_options must be a mapping of TrackerOptions fields")
        object.__setattr__(self, "tracker_options", dict(self.tracker_options))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> AutolabelOptions:
        """Options from a plain mapping (a request body, a job record, JSON).

        Keys that are absent take the defaults; an unknown key raises
        ``ValueError`` naming the known ones.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown auto-label option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        """Plain ``dict`` of every option (JSON-serialisable)."""
        data = asdict(self)
        if data["item_ids"] is not None:
            data["item_ids"] = list(data["item_ids"])
        return data

    @property
    def existing_labels(self) -> str:
        """:attr:`existing` with its default resolved (one of :data:`EXISTING_LABELS`)."""
        if self.existing is not None:
            return self.existing
        return "replace-predictions" if self.overwrite else "skip"

    @property
    def replaces_predictions(self) -> bool:
        """Whether a processed item's earlier ``predicted`` model instances are replaced
        (and its person labels kept): also true for ``"beside"``, which writes on
        labeled items that hold no model instance yet."""
        return self.overwrite or self.existing in ("beside", "replace-predictions")

    def model_options(self, kind: str) -> dict[str, Any]:
        """Keyword arguments for the ``"detector"`` or ``"pose"`` factory: the extra
        options, plus ``device`` when one is set."""
        if kind not in ("detector", "pose"):
            raise ValueError(f"kind must be 'detector' or 'pose', got {kind!r}")
        extra = dict(self.detector_options if kind == "detector" else self.pose_options)
        if self.device is not None:
            extra.setdefault("device", self.device)
        return extra
