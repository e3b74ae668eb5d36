"""Request and response schemas of the team workflow API: assignment, queues, review
decisions and comments (issue 12; routes in :mod:`posekit.server.routes.workflow` and
:mod:`posekit.server.routes.comments`)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from posekit.server.schemas import LibraryModel
from posekit.store.comments import MAX_COMMENT_CHARS

__all__ = [
    "AssignOut",
    "AssignRequest",
    "CommentIn",
    "CommentOut",
    "CommentPatch",
    "DecisionRequest",
    "WorkflowCountsOut",
]

#: Most items one assignment request may name.
MAX_ASSIGN_ITEMS = 10_000


class AssignRequest(BaseModel):
    """Give exactly one of ``item_ids``, ``first_item_id`` + ``last_item_id`` (a range
    of item ids, inclusive) or ``next_unlabeled`` (that many unassigned unlabeled
    items, by id). ``assignee``: a username, or null to unassign."""

    model_config = ConfigDict(extra="forbid")

    item_ids: list[int] | None = Field(None, min_length=1, max_length=MAX_ASSIGN_ITEMS)
    first_item_id: int | None = Field(None, ge=1, le=2**63 - 1)
    last_item_id: int | None = Field(None, ge=1, le=2**63 - 1)
    next_unlabeled: int | None = Field(None, ge=1, le=MAX_ASSIGN_ITEMS)
    assignee: str | None = Field(..., max_length=100, examples=["alice"])

    @model_validator(mode="after")
    def _one_selection(self) -> AssignRequest:
        ranged = self.first_item_id is not None or self.last_item_id is not None
        if ranged and (self.first_item_id is None or self.last_item_id is None):
            raise ValueError("a range needs both first_item_id and last_item_id")
        given = [self.item_ids is not None, ranged, self.next_unlabeled is not None]
        if sum(given) != 1:
            raise ValueError(
                "give exactly one of item_ids, first_item_id + last_item_id, next_unlabeled"
            )
        if self.next_unlabeled is not None and self.assignee is None:
            raise ValueError("next_unlabeled needs an assignee")
        return self


class AssignOut(BaseModel):
    item_ids: list[int] = Field(description="the items assigned (or unassigned), by id")
    assignee: str | None


class DecisionRequest(BaseModel):
    """``reject`` needs ``comment``; it may point at ``instance_id`` and its
    ``keypoint`` (an index in the project's template)."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["accept", "reject"]
    comment: str | None = Field(None, max_length=MAX_COMMENT_CHARS)
    instance_id: int | None = Field(None, ge=1, le=2**63 - 1)
    keypoint: int | None = Field(None, ge=0, le=10_000)


class CommentIn(BaseModel):
    """A new thread (optionally on ``instance_id`` and its ``keypoint``), or a reply
    (``parent_id``; a reply to a reply joins the root's thread)."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=MAX_COMMENT_CHARS)
    instance_id: int | None = Field(None, ge=1, le=2**63 - 1)
    keypoint: int | None = Field(None, ge=0, le=10_000)
    parent_id: int | None = Field(None, ge=1, le=2**63 - 1)


class CommentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolved: bool = Field(description="resolve (true) or reopen (false) the whole thread")


class CommentOut(LibraryModel):
    """A comment; a thread root carries its ``replies`` (oldest first)."""

    id: int
    item_id: int
    instance_id: int | None
    keypoint: int | None
    parent_id: int | None
    author_id: int
    author: str | None
    body: str
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: int | None
    resolved_by_name: str | None
    replies: list[CommentOut] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved(self) -> bool:
        return self.resolved_at is not None


class WorkflowCountsOut(BaseModel):
    """Items per stage of a project, and the calling user's queue."""

    annotation: int
    review: int
    done: int
    unassigned: int = Field(description="in annotation, assigned to nobody")
    open_comments: int = Field(description="items with an unresolved comment thread")
    mine: int = Field(description="the caller's items in annotation")
    to_fix: int = Field(description="the caller's items in annotation with open comments")
    my_reviews: int = Field(description="items in review the caller took")
