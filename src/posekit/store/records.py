"""The plain records crossing the store's API: projects, datasets, items, instances.

ORM rows never leave the store; these frozen dataclasses (and
:class:`posekit.core.Instance`) do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from posekit.core import Instance
from posekit.skeleton import Skeleton
from posekit.store.codec import decode_instance

__all__ = [
    "AccessToken",
    "Dataset",
    "InstanceRecord",
    "Item",
    "Member",
    "Project",
    "User",
    "dataset_from_row",
    "record_from_row",
]


@dataclass(frozen=True)
class Project:
    """A project, the keypoint template stored with it and its settings."""

    id: int
    name: str
    template: Skeleton
    created_at: datetime
    #: Incremented by every :meth:`Workspace.change_template` (starts at 1).
    template_version: int = 1
    #: Project settings (:mod:`posekit.store.project_settings`), e.g. the assist model.
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """A named set of items in a project (``extra``: file-level import metadata)."""

    id: int
    project_id: int
    name: str
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One image (or, later, one video frame) of a dataset.

    Attributes:
        file_name: Original relative name (POSIX), unique within the dataset.
        path: Absolute path of the stored media file, or None when the item was
            registered without media (``copy_media=False`` imports) or the media
            storage keeps no local files (read ``media_path`` through
            ``Workspace.storage`` then).
        media_path: ``path`` relative to the workspace ``media/`` folder.
        status: One of :data:`ITEM_STATUSES`.
        external_id: Image id in the file it was imported from (COCO), if any.
        extra: Unknown per-image fields of the imported file, kept for export.
        stage, assignee_id, reviewer_id, stage_changed_at: the team workflow
            (:mod:`posekit.store.workflow`).
    """

    id: int
    dataset_id: int
    file_name: str
    width: int
    height: int
    kind: str
    status: str
    media_path: str | None
    path: Path | None
    sha256: str | None
    video_id: int | None
    frame_index: int | None
    external_id: int | None
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)
    #: Team workflow stage (:data:`posekit.store.workflow.STAGES`): ``annotation``,
    #: ``review`` or ``done``.
    stage: str = "annotation"
    #: The annotator the item is assigned to (user id), or None.
    assignee_id: int | None = None
    #: The reviewer who took the item for review (user id), or None.
    reviewer_id: int | None = None
    #: When the item last changed stage (naive UTC), or None.
    stage_changed_at: datetime | None = None


@dataclass(frozen=True)
class InstanceRecord:
    """An instance with its storage metadata.

    ``instance.id`` is the database id; send ``version`` back to
    :meth:`Workspace.update_instance`.
    """

    instance: Instance
    item_id: int
    version: int
    created_at: datetime
    updated_at: datetime
    #: Who wrote this version (``users.id``; None: before teams or a script).
    author_id: int | None = None

    @property
    def id(self) -> int:
        return int(self.instance.id)  # type: ignore[arg-type]


def dataset_from_row(row: Any) -> Dataset:
    """A :class:`Dataset` of a ``datasets`` row."""
    return Dataset(row.id, row.project_id, row.name, row.created_at, dict(row.extra or {}))


def record_from_row(row: Any) -> InstanceRecord:
    """An :class:`InstanceRecord` of an ``instances`` row."""
    return InstanceRecord(
        instance=decode_instance(row),
        item_id=row.item_id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        author_id=getattr(row, "author_id", None),
    )


# ------------------------------------------------------------------ teams (issue 12)
@dataclass(frozen=True)
class User:
    """A person who logs in (:mod:`posekit.store.users`); never carries a credential.

    Attributes:
        is_admin: A workspace admin may do everything in every project.
        is_active: False once disabled: cannot log in, sessions and tokens stop working.
        last_login_at: Last password or login-link login (naive UTC), None if never.
    """

    id: int
    username: str
    display_name: str | None
    is_admin: bool
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class Member:
    """A user's role in a project (one of ``posekit.store.users.PROJECT_ROLES``)."""

    project_id: int
    user_id: int
    username: str
    role: str


@dataclass(frozen=True)
class AccessToken:
    """A personal access token's metadata; the token itself is shown once and never
    stored (only its SHA-256). ``prefix``: its first 10 characters, to tell tokens apart."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
