"""Request and response schemas of the HTTP API (separate from the database rows).

Response schemas are read from library records (store records, job snapshots,
reports: dataclasses) by attribute name through one generic reader,
:class:`LibraryModel`, which also turns numpy arrays and scalars into plain
values; ``Model.model_validate(record)`` is the whole mapping. Status words come
from :mod:`posekit.statuses`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

from posekit.core import Instance
from posekit.pipeline.options import EXISTING_LABELS, AutolabelOptions
from posekit.skeleton import Skeleton
from posekit.statuses import INSTANCE_STATUSES, ITEM_STATUSES

__all__ = [
    "AssistRequest",
    "ConflictOut",
    "DatasetCreate",
    "DatasetOut",
    "ErrorOut",
    "FormatCapabilitiesOut",
    "FormatOut",
    "HealthOut",
    "ImportReportOut",
    "InstanceIn",
    "InstanceOut",
    "InstanceUpdate",
    "ItemDetailOut",
    "ItemOut",
    "ItemPageOut",
    "JobCreate",
    "JobOut",
    "LibraryModel",
    "ProjectCreate",
    "ProjectDetailOut",
    "ProjectOut",
    "ReviewOut",
    "ReviewRequest",
    "TemplateOut",
    "TemplateSummaryOut",
]

ReviewStatus = Literal[INSTANCE_STATUSES]  # type: ignore[valid-type]
ItemStatus = Literal[ITEM_STATUSES]  # type: ignore[valid-type]
Visibility = Literal[0, 1, 2]
_AUTOLABEL_DEFAULTS = AutolabelOptions()


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as plain Python values (lists, int, float)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class LibraryModel(BaseModel):
    """A response schema read from a library object by attribute name.

    ``Model.model_validate(obj)`` takes each field from the attribute of the same
    name (or a name in the field's ``validation_alias`` choices) of ``obj``, else
    of the objects named in :attr:`nested` (e.g. an instance record's
    ``instance``); numpy values become plain ones. Mappings validate as usual.
    """

    #: Attributes of the source whose own attributes are fields too.
    nested: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _read_attributes(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value
        sources = [value, *(getattr(value, n) for n in cls.nested if hasattr(value, n))]
        data: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            names = alias.choices if isinstance(alias, AliasChoices) else [name]
            for source in sources:
                found = next((n for n in names if isinstance(n, str) and hasattr(source, n)), None)
                if found is not None:
                    data[name] = _plain(getattr(source, found))
                    break
        return data


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer: a message that names the bad element."""

    detail: str


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


# ------------------------------------------------------------------ templates
class TemplateSummaryOut(BaseModel):
    name: str
    display_name: str
    num_keypoints: int


class TemplateOut(BaseModel):
    """A keypoint template; edges and flip pairs as keypoint indices."""

    name: str
    display_name: str
    keypoints: list[str]
    edges: list[tuple[int, int]]
    flip_index: list[int] = Field(description="flip_index[k]: the keypoint k becomes when mirrored")
    keypoint_colors: list[tuple[int, int, int]]
    edge_colors: list[tuple[int, int, int]]
    sigmas: list[float]

    @classmethod
    def of(cls, skeleton: Skeleton) -> TemplateOut:
        return cls(
            name=skeleton.name,
            display_name=skeleton.display_name,
            keypoints=list(skeleton.keypoints),
            edges=[(int(a), int(b)) for a, b in skeleton.edge_index],
            flip_index=[int(i) for i in skeleton.flip_index],
            keypoint_colors=[tuple(int(v) for v in c) for c in skeleton.keypoint_colors],
            edge_colors=[tuple(int(v) for v in c) for c in skeleton.edge_colors],
            sigmas=[float(s) for s in skeleton.sigmas],
        )


# ------------------------------------------------------------------ projects
class ProjectCreate(BaseModel):
    """Give ``template`` (a preset name) or ``template_definition`` (the YAML/JSON
    template layout as an object), not both."""

    name: str = Field(min_length=1, max_length=200)
    template: str | None = Field(None, examples=["coco17"])
    template_definition: dict[str, Any] | None = None


class DatasetCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class DatasetOut(BaseModel):
    id: int
    name: str
    num_items: int


class ProjectOut(BaseModel):
    id: int
    name: str
    template_name: str
    num_items: int
    num_instances: int


class ProjectDetailOut(ProjectOut):
    template: TemplateOut
    template_version: int = Field(
        1, description="incremented by every template change; send it with instance writes"
    )
    assist_model: str = Field("blazepose", description="the project's AI-assist model")
    datasets: list[DatasetOut]


# ------------------------------------------------------------------ items
class ItemOut(LibraryModel):
    """An item summary. ``status`` is the item status (:data:`posekit.statuses.ITEM_STATUSES`:
    ``new``, ``predicted``: some instance waits for review, ``reviewed``), the word
    the item filter takes. ``min_score``: lowest predicted-instance score."""

    id: int
    dataset: str
    dataset_id: int
    file_name: str
    width: int
    height: int
    status: ItemStatus
    num_instances: int
    num_predicted: int
    num_rejected: int = Field(0, description="rejected instances (not counted as labeled)")
    min_score: float | None
    has_media: bool
    stage: Literal["annotation", "review", "done"] = Field(
        "annotation", description="team workflow stage: annotation -> review -> done"
    )
    assignee: str | None = Field(None, description="username of the assigned annotator")
    assignee_id: int | None = None
    reviewer: str | None = Field(None, description="username of the reviewer who took it")
    reviewer_id: int | None = None
    open_comments: int = Field(0, description="unresolved comment threads on the item")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def thumbnail_url(self) -> str:
        return f"/api/items/{self.id}/thumbnail"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def image_url(self) -> str:
        return f"/api/items/{self.id}/image"


class ItemPageOut(BaseModel):
    total: int
    items: list[ItemOut]


# ------------------------------------------------------------------ instances
class InstanceFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keypoints: list[tuple[float, float]] = Field(
        description="K x [x, y] in image pixels; values at not-labeled points are ignored"
    )
    visibility: list[Visibility] = Field(
        description="K values: 0 not labeled, 1 occluded, 2 visible"
    )
    keypoint_scores: list[float] | None = None
    box: tuple[float, float, float, float] | None = Field(None, description="x1, y1, x2, y2")
    score: float | None = None
    source: str = Field("manual", description="'manual' or 'model:<name>'")
    status: ReviewStatus = "accepted"
    track_id: int | None = None


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _finite_float32(value: Any, where: str = "") -> Any:
    """Refuse numbers that are not finite once stored as float32 (1e39, inf, NaN)."""
    if value is None:
        return value
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _finite_float32(item, f"{where}[{index}]")
        return value
    if not (abs(value) <= _FLOAT32_MAX):  # also false for NaN
        raise ValueError(
            f"value{where} {value!r} is not a finite float32 number (|x| <= {_FLOAT32_MAX:.4g})"
        )
    return value


class _Float32Checked(BaseModel):
    """Coordinates, boxes and scores must stay finite as float32 (else 422 naming them)."""

    @field_validator("keypoints", "keypoint_scores", "box", "score", check_fields=False)
    @classmethod
    def _check_float32(cls, value: Any) -> Any:
        return _finite_float32(value)


class InstanceIn(_Float32Checked, InstanceFields):
    """A new instance (the server assigns ``id`` and ``version`` 1)."""

    template_version: int | None = Field(
        None,
        ge=1,
        description="the project's template version the keypoints are laid out for; a "
        "stale one is refused (409)",
    )
    produced_by: dict[str, Any] | None = Field(
        None, description="read-only in answers; ignored here (an echoed answer is accepted)"
    )
    author_id: int | None = Field(
        None, description="read-only in answers; ignored here (the caller is the author)"
    )

    def to_instance(self) -> Instance:
        return Instance(
            keypoints=np.asarray(self.keypoints, dtype=np.float32).reshape(-1, 2),
            visibility=np.asarray(self.visibility, dtype=np.uint8),
            keypoint_scores=None
            if self.keypoint_scores is None
            else np.asarray(self.keypoint_scores, dtype=np.float32),
            box=None if self.box is None else np.asarray(self.box, dtype=np.float32),
            score=self.score,
            source=self.source,
            status=self.status,
            track_id=self.track_id,
        )


class InstanceUpdate(_Float32Checked):
    """An update: ``version`` as read, plus the fields to change (omitted fields keep
    their stored value, so ``{"version": 3, "status": "accepted"}`` accepts)."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    template_version: int | None = Field(
        None, ge=1, description="as in InstanceIn: a stale one is refused (409, with current)"
    )
    keypoints: list[tuple[float, float]] | None = None
    visibility: list[Visibility] | None = None
    keypoint_scores: list[float] | None = None
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    source: str | None = None
    status: ReviewStatus | None = None
    track_id: int | None = None

    def changes(self) -> dict[str, Any]:
        """The fields this update sets (for :meth:`posekit.store.Workspace.patch_instance`);
        a null ``keypoints``, ``visibility``, ``source`` or ``status`` changes nothing."""
        changes = self.model_dump(include=self.model_fields_set - {"version", "template_version"})
        for name in ("keypoints", "visibility", "source", "status"):
            if name in changes and changes[name] is None:
                del changes[name]
        return changes


class InstanceOut(LibraryModel, InstanceFields):
    """A stored instance (or, from assist, an unsaved one: ``id`` null, ``version`` 0).

    Validates from a :class:`posekit.store.InstanceRecord`:
    ``InstanceOut.model_validate(record)``.
    """

    model_config = ConfigDict(extra="ignore")
    nested: ClassVar[tuple[str, ...]] = ("instance",)

    id: int | None
    item_id: int
    version: int
    extra: dict[str, Any] | None = Field(None, exclude=True)
    author_id: int | None = Field(None, description="who wrote this version (users.id)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def produced_by(self) -> dict[str, Any] | None:
        """What produced a prediction: the auto-label run's models and options
        (``extra["autolabel"]``), or the AI-assist model and its latency."""
        extra = self.extra or {}
        found = extra.get("autolabel") or extra.get("assist")
        return dict(found) if isinstance(found, dict) else None

    @classmethod
    def unsaved(cls, instance: Instance, item_id: int) -> InstanceOut:
        """An instance that is not stored (``id`` null, ``version`` 0)."""
        data = cls._read_attributes(instance)
        return cls.model_validate({**data, "id": None, "item_id": item_id, "version": 0})


class ConflictOut(BaseModel):
    """409 on a stale version: nothing was written; ``current`` is the stored state."""

    detail: str
    current: InstanceOut


class ItemDetailOut(BaseModel):
    item: ItemOut
    instances: list[InstanceOut]


class AssistRequest(_Float32Checked):
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in image pixels")
    model: str | None = Field(
        None,
        description="pose estimator spec; default: the project's assist model (its "
        "assist_model setting, else blazepose)",
        max_length=300,
    )


class ReviewRequest(BaseModel):
    action: Literal["accept", "reject"]
    instance_ids: list[int] = Field(min_length=1, max_length=10_000)


class ReviewOut(BaseModel):
    instances: list[InstanceOut]


# ------------------------------------------------------------------ jobs
class JobCreate(BaseModel):
    """An auto-label job; the defaults are :class:`posekit.pipeline.options.AutolabelOptions`'s."""

    kind: Literal["autolabel"] = "autolabel"
    dataset: str | None = Field(None, description="only this dataset (name); default all")
    detector: str = Field(_AUTOLABEL_DEFAULTS.detector, max_length=300)
    pose: str = Field(_AUTOLABEL_DEFAULTS.pose, max_length=300)
    overwrite: bool = _AUTOLABEL_DEFAULTS.overwrite
    existing: Literal[EXISTING_LABELS] | None = Field(  # type: ignore[valid-type]
        _AUTOLABEL_DEFAULTS.existing,
        description="images a person already labeled: skip (default), beside (add "
        "predictions next to the labels) or replace-predictions",
    )
    min_instance_score: float = Field(_AUTOLABEL_DEFAULTS.min_instance_score, ge=0, le=1)
    min_box_score: float = Field(
        _AUTOLABEL_DEFAULTS.min_box_score, ge=0, le=1, description="person boxes below are dropped"
    )
    oks_nms_threshold: float = Field(
        _AUTOLABEL_DEFAULTS.oks_nms_threshold,
        ge=0,
        le=1,
        description="of two poses with at least this OKS the lower-scoring is dropped (0: off)",
    )
    device: str | None = Field(
        _AUTOLABEL_DEFAULTS.device, max_length=40, description="cpu, cuda, cuda:1, mps; null: auto"
    )
    item_ids: list[int] | None = Field(
        None, max_length=100_000, description="only these items (e.g. the selected ones)"
    )
    batch_size: int = Field(_AUTOLABEL_DEFAULTS.batch_size, ge=1, le=256)
    engine: str = Field(
        _AUTOLABEL_DEFAULTS.engine,
        max_length=40,
        description="where the models run: local (this process) or ray (the Ray cluster of "
        "the server's RAY_ADDRESS, or a local Ray instance)",
    )
    workers: int = Field(_AUTOLABEL_DEFAULTS.workers, ge=1, le=1024, description="Ray workers")
    gpus_per_worker: float = Field(
        _AUTOLABEL_DEFAULTS.gpus_per_worker, ge=0, le=64, description="GPUs per Ray worker"
    )

    def options(self) -> AutolabelOptions:
        """The job's :class:`AutolabelOptions`."""
        values = self.model_dump(exclude={"kind"})
        if values["item_ids"] is not None:
            values["item_ids"] = tuple(values["item_ids"])
        return AutolabelOptions.from_mapping(values)


class JobOut(LibraryModel):
    """A job: its options (what produced its predictions), progress and outcome. Jobs
    are stored in the workspace; progress is kept in the server's memory."""

    id: int
    project_id: int
    kind: str
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("options", mode="before")
    @classmethod
    def _options_dict(cls, value: Any) -> Any:
        return value.to_dict() if isinstance(value, AutolabelOptions) else value

    status: Literal["queued", "running", "done", "failed", "cancelled"]
    done: int
    total: int | None
    failures: list[tuple[str, str]]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    device: str | None
    processed: int = 0
    instances: int = 0
    skipped: int = 0


# ------------------------------------------------------------------ import
class ImportReportOut(LibraryModel):
    dataset: str
    added: int
    instances: int
    skipped: list[tuple[str, str]]
    failures: list[tuple[str, str]]
    renamed: list[tuple[str, str]]
    missing_media: list[str]
    attached: int = Field(0, description="images already there that got the file's annotations")
    matched: list[tuple[str, str]] = Field(
        default_factory=list,
        description="(name in the file, item name) of images matched to an image of the "
        "dataset by base name (photo.jpg for upload/18/photo.jpg)",
    )
    box_only: int = Field(0, description="instances without any labeled point (box only)")


# ------------------------------------------------------------------ formats
class FormatCapabilitiesOut(LibraryModel):
    """What a format can carry."""

    visibility_states: list[int] = Field(description="visibility values it keeps (0, 1, 2)")
    scores: bool
    tracks: bool
    boxes: bool
    video: bool


class FormatOut(LibraryModel):
    """A file format of the format registry (:mod:`posekit.formats.registry`)."""

    name: str = Field(examples=["coco"])
    title: str
    extensions: list[str]
    kind: Literal["file", "folder"]
    capabilities: FormatCapabilitiesOut
    can_read: bool = Field(validation_alias=AliasChoices("can_read", "read"))
    can_write: bool = Field(validation_alias=AliasChoices("can_write", "write"))
    default_statuses: list[ReviewStatus] = Field(
        description="instance statuses an export writes when the request names none"
    )

    @field_validator("can_read", "can_write", mode="before")
    @classmethod
    def _has_function(cls, value: Any) -> bool:
        """A reader/writer function (or None) of the format table means yes (no)."""
        return bool(value) if isinstance(value, bool) else value is not None
