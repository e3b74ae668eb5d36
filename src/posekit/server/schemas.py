"""Request and response schemas of the HTTP API (separate from the database rows).

Conversions between these and the library types (:class:`posekit.core.Instance`,
:class:`posekit.skeleton.Skeleton`, store records) live here too, so routes stay
one call deep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from posekit.core import Instance
from posekit.skeleton import Skeleton

__all__ = [
    "AssistRequest",
    "ConflictOut",
    "DatasetCreate",
    "DatasetOut",
    "ErrorOut",
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
    "ProjectCreate",
    "ProjectDetailOut",
    "ProjectOut",
    "ReviewOut",
    "ReviewRequest",
    "TemplateOut",
    "TemplateSummaryOut",
]

ReviewStatus = Literal["predicted", "accepted", "rejected"]
Visibility = Literal[0, 1, 2]


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
    datasets: list[DatasetOut]


# ------------------------------------------------------------------ items
class ItemOut(BaseModel):
    """An item summary. ``status`` is the review filter it matches: ``unlabeled`` (no
    instance), ``predicted`` (some instance waits for review), ``accepted`` (has
    instances, none predicted). ``min_score``: lowest predicted-instance score."""

    id: int
    dataset: str
    dataset_id: int
    file_name: str
    width: int
    height: int
    status: Literal["unlabeled", "predicted", "accepted"]
    num_instances: int
    num_predicted: int
    min_score: float | None
    has_media: bool
    thumbnail_url: str
    image_url: str


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


class InstanceIn(InstanceFields):
    """A new instance (the server assigns ``id`` and ``version`` 1)."""

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


class InstanceUpdate(BaseModel):
    """An update: ``version`` as read, plus the fields to change (omitted fields keep
    their stored value, so ``{"version": 3, "status": "accepted"}`` accepts)."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1)
    keypoints: list[tuple[float, float]] | None = None
    visibility: list[Visibility] | None = None
    keypoint_scores: list[float] | None = None
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    source: str | None = None
    status: ReviewStatus | None = None
    track_id: int | None = None

    def apply_to(self, current: Instance) -> Instance:
        """``current`` with the fields this update sets (validated anew)."""
        changes: dict[str, Any] = {}
        for name in self.model_fields_set - {"version"}:
            value = getattr(self, name)
            if name in ("keypoints", "visibility") and value is None:
                continue  # cannot be removed, only replaced
            if name == "keypoints":
                value = np.asarray(value, dtype=np.float32).reshape(-1, 2)
            elif name == "visibility":
                value = np.asarray(value, dtype=np.uint8)
            elif name in ("keypoint_scores", "box") and value is not None:
                value = np.asarray(value, dtype=np.float32)
            changes[name] = value
        if "source" in changes and changes["source"] is None:
            del changes["source"]
        if "status" in changes and changes["status"] is None:
            del changes["status"]
        data = {
            "keypoints": current.keypoints,
            "visibility": current.visibility,
            "keypoint_scores": current.keypoint_scores,
            "box": current.box,
            "score": current.score,
            "source": current.source,
            "status": current.status,
            "track_id": current.track_id,
            "iscrowd": current.iscrowd,
            "area": current.area,
            "segmentation": current.segmentation,
            "extra": current.extra,
            "id": current.id,
        }
        data.update(changes)
        return Instance(**data)  # re-validates shapes and values


class InstanceOut(InstanceFields):
    """A stored instance (or, from assist, an unsaved one: ``id`` null, ``version`` 0)."""

    model_config = ConfigDict(extra="ignore")

    id: int | None
    item_id: int
    version: int

    @classmethod
    def of(cls, instance: Instance, item_id: int, version: int) -> InstanceOut:
        return cls.model_construct(
            id=None if instance.id is None else int(instance.id),
            item_id=int(item_id),
            version=int(version),
            keypoints=[(float(x), float(y)) for x, y in instance.keypoints.tolist()],
            visibility=[int(v) for v in instance.visibility.tolist()],
            keypoint_scores=None
            if instance.keypoint_scores is None
            else [float(s) for s in instance.keypoint_scores.tolist()],
            box=None if instance.box is None else tuple(float(v) for v in instance.box.tolist()),
            score=instance.score,
            source=instance.source,
            status=instance.status,
            track_id=instance.track_id,
        )


class ConflictOut(BaseModel):
    """409 on a stale version: nothing was written; ``current`` is the stored state."""

    detail: str
    current: InstanceOut


class ItemDetailOut(BaseModel):
    item: ItemOut
    instances: list[InstanceOut]


class AssistRequest(BaseModel):
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in image pixels")
    model: str = Field("blazepose", description="pose estimator spec", max_length=300)


class ReviewRequest(BaseModel):
    action: Literal["accept", "reject"]
    instance_ids: list[int] = Field(min_length=1, max_length=10_000)


class ReviewOut(BaseModel):
    instances: list[InstanceOut]


# ------------------------------------------------------------------ jobs
class JobCreate(BaseModel):
    kind: Literal["autolabel"] = "autolabel"
    dataset: str | None = Field(None, description="only this dataset (name); default all")
    detector: str = Field("blazepose", max_length=300)
    pose: str = Field("blazepose", max_length=300)
    overwrite: bool = False
    batch_size: int = Field(8, ge=1, le=256)


class JobOut(BaseModel):
    """A job. Jobs are kept in the server's memory only (lost on restart; finished
    ones are forgotten after the newest few hundred)."""

    id: int
    project_id: int
    kind: str
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
class ImportReportOut(BaseModel):
    dataset: str
    added: int
    instances: int
    skipped: list[tuple[str, str]]
    failures: list[tuple[str, str]]
    renamed: list[tuple[str, str]]
    missing_media: list[str]
