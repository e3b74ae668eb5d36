"""Request and response schemas of the instance history routes (issue 12)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from posekit.server.schemas import InstanceFields, LibraryModel

__all__ = ["InstanceHistoryOut", "InstanceVersionOut", "RestoreRequest"]


class InstanceVersionOut(LibraryModel, InstanceFields):
    """One version of an instance: its values, who wrote it when, and how it ended.

    Validates from a :class:`posekit.store.history.InstanceVersion`.
    """

    model_config = ConfigDict(extra="ignore")
    nested: ClassVar[tuple[str, ...]] = ("instance",)

    version: int
    current: bool = Field(description="the instance as stored now")
    item_id: int
    author_id: int | None = Field(description="who wrote it (users.id); null: unknown")
    author: str | None = Field(description="their username; null: unknown")
    written_at: datetime = Field(description="when it was written (UTC)")
    replaced_by_action: Literal["update", "review", "restore", "delete"] | None = Field(
        description="what ended it; null for the current version"
    )
    replaced_by: int | None = Field(description="who ended it (users.id)")
    replaced_by_name: str | None = Field(description="their username")
    replaced_at: datetime | None = Field(description="when it ended (UTC)")
    keyframe: bool = False


class InstanceHistoryOut(BaseModel):
    """Every version of an instance, oldest first; the current one last unless the
    instance was deleted (``deleted``: restore a version to bring it back)."""

    instance_id: int
    deleted: bool
    versions: list[InstanceVersionOut]


class RestoreRequest(BaseModel):
    """The version of the instance the caller holds (for a deleted instance: the
    version that was deleted, the last one of its history)."""

    model_config = ConfigDict(extra="forbid")

    expected_version: int = Field(ge=1, le=2**31 - 1)
