"""ORM tables of the project database (SQLAlchemy 2, typed ``Mapped[...]``).

Portable to PostgreSQL: only generic column types, no SQLite-only SQL.

Keypoint arrays are stored as ``LargeBinary`` holding the raw little-endian
bytes of the numpy array (keypoints ``(K, 2) float32``, visibility ``(K,) uint8``,
keypoint scores ``(K,) float32``, box ``(4,) float32``). Why not JSON lists:
encoding/decoding is a single ``tobytes``/``frombuffer`` call (about 30x faster
than building and parsing JSON lists of floats, which dominates bulk imports
and exports of 100k annotations), values round-trip bit-exactly (no decimal
printing of float32), rows are ~3x smaller, and ``BLOB``/``BYTEA`` exist in
every database. Nobody filters on individual keypoint coordinates in SQL; what
the web app filters on (instance status, source, score; item status) are
ordinary indexed columns.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AccessTokenRow",
    "Base",
    "CommentRow",
    "DatasetRow",
    "InstanceRow",
    "InstanceVersionRow",
    "ItemRow",
    "JobRow",
    "LoginLinkRow",
    "MemberRow",
    "ProjectRow",
    "SessionRow",
    "TrackRow",
    "UserRow",
    "VideoRow",
    "utcnow",
]


def utcnow() -> datetime:
    """Timezone-aware current UTC time (stored naive-UTC portable via ``DateTime``)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base of all posekit tables."""


class ProjectRow(Base):
    """A project: a name and the keypoint template it was created with.

    The template is stored as its full dict (JSON) so a project keeps its exact
    template even if the shipped presets change later.
    """

    __tablename__ = "projects"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    template: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    #: Incremented by every template change (:mod:`posekit.store.template_change`,
    #: migration ``0005``): a client holding an older number edits the old layout.
    template_version: Mapped[int] = mapped_column(Integer, nullable=False, server_default="1")
    #: Project settings (:mod:`posekit.store.project_settings`), e.g. the AI-assist model.
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class DatasetRow(Base):
    """A named set of items inside a project."""

    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("project_id", "name", name="uq_dataset_project_name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    #: File-level metadata of imports (COCO ``info``, ``licenses``, category id),
    #: written back on export.
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class DatasetCountRow(Base):
    """Items and instances of one dataset, kept current by database triggers
    (migration ``0004``): what the project listing shows, without counting rows."""

    __tablename__ = "dataset_counts"

    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True
    )
    num_items: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    num_instances: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")


class ItemRow(Base):
    """One image (``kind='image'``) or, later, one video frame (``video_id``,
    ``frame_index``).

    ``media_path`` is relative to the workspace ``media/`` folder (POSIX
    separators) or NULL for items registered without media (``copy_media=False``).
    ``external_id`` keeps the image id of an imported COCO file so that export
    can write the same ids back.
    """

    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("dataset_id", "file_name", name="uq_item_dataset_file_name"),
        Index("ix_items_dataset_status", "dataset_id", "status"),
        Index("ix_items_dataset_sha256", "dataset_id", "sha256"),
        # One item per frame of a video (frames of kind "frame", see VideoRow).
        Index("ix_items_video_frame", "video_id", "frame_index", unique=True),
        # Queues and grid filters of the team workflow (migration 0006).
        Index("ix_items_dataset_stage", "dataset_id", "stage"),
        Index("ix_items_assignee_stage", "assignee_id", "stage"),
        # Never reuse ids of deleted rows (SQLite would by default): a client
        # holding an old id must get "not found", not someone else's row.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="image")
    file_name: Mapped[str] = mapped_column(String(1000), nullable=False)
    media_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="new")
    video_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    frame_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    external_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: Team workflow (migration ``0006``): ``annotation`` -> ``review`` -> ``done``.
    stage: Mapped[str] = mapped_column(String(16), nullable=False, server_default="annotation")
    #: The annotator the item is assigned to (``users.id``; users are never deleted).
    assignee_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: The reviewer who took the item for review.
    reviewer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stage_changed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class InstanceRow(Base):
    """One annotated or predicted person on an item.

    ``version`` starts at 1 and is incremented by every update; writers send
    the version they read and the update is refused if it changed meanwhile
    (optimistic concurrency).
    """

    __tablename__ = "instances"
    __table_args__ = (
        # (item_id, status) also serves lookups by item_id alone. Few indexes on
        # purpose: each one costs time on every bulk import. No index on score: the
        # review queue orders items by the minimum score of their own predictions
        # (an aggregate per item through this index), never by a global score scan.
        Index("ix_instances_item_status", "item_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), nullable=False)
    keypoints: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    visibility: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    keypoint_scores: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    box: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(200), nullable=False, default="manual")
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="accepted")
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    iscrowd: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    area: Mapped[float | None] = mapped_column(Float, nullable=True)
    segmentation: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    external_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: Set by a person on a video frame (a keyframe of its track); predicted and
    #: interpolated instances are not keyframes (accepted ones count as keyframes).
    #: (No Python-side default: bulk inserts that do not name it get the server's.)
    keyframe: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    #: Who wrote this version (``users.id``; NULL: written before teams, or by a script
    #: without a user). Migration ``0006``.
    author_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class VideoRow(Base):
    """A video of a dataset: a stored file (``kind='file'``) or a folder of numbered
    frames (``kind='frames'``). Its frames are items of kind ``frame`` (created when a
    frame gets instances) addressed by ``frame_index``; pixels are decoded on demand.

    ``decode_index`` is :meth:`posekit.media.video.VideoIndex.to_dict` (None for frame
    folders), handed back to ``open_video(index=...)`` so the file is never re-scanned.
    ``status``: ``new`` until a model or a person labeled it.
    """

    __tablename__ = "videos"
    __table_args__ = (
        UniqueConstraint("dataset_id", "file_name", name="uq_video_dataset_file_name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="file")
    file_name: Mapped[str] = mapped_column(String(1000), nullable=False)
    media_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    fps: Mapped[float] = mapped_column(Float, nullable=False)
    frame_count: Mapped[int] = mapped_column(Integer, nullable=False)
    duration: Mapped[float] = mapped_column(Float, nullable=False)
    width: Mapped[int] = mapped_column(Integer, nullable=False)
    height: Mapped[int] = mapped_column(Integer, nullable=False)
    rotation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="new")
    decode_index: Mapped[dict[str, Any] | None] = mapped_column(
        JSON(none_as_null=True), nullable=True
    )
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class TrackRow(Base):
    """A person track in a video: the instances on the video's frames whose
    ``instances.track_id`` is ``track_id``. ``outside``: sorted frame indices where a
    segment of the track ends (nothing is interpolated from there to the next
    keyframe)."""

    __tablename__ = "tracks"
    __table_args__ = (
        UniqueConstraint("video_id", "track_id", name="uq_track_video_track_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    video_id: Mapped[int] = mapped_column(
        ForeignKey("videos.id", ondelete="CASCADE"), nullable=False
    )
    track_id: Mapped[int] = mapped_column(Integer, nullable=False)
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outside: Mapped[list[int]] = mapped_column(JSON, nullable=False, default=list)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class JobRow(Base):
    """An auto-label job as it was submitted and how it ended (migration ``0005``):
    ``options`` is :meth:`posekit.pipeline.options.AutolabelOptions.to_dict`, so a
    reviewer can see what produced a prediction (the predictions carry the job id in
    their ``extra``)."""

    __tablename__ = "jobs"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(40), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    error: Mapped[str | None] = mapped_column(String(4000), nullable=True)
    device: Mapped[str | None] = mapped_column(String(200), nullable=True)
    processed: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    instances: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    skipped: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    failures: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


# ------------------------------------------------------------- teams (migration 0006)
class UserRow(Base):
    """A person who logs in. Users are never deleted (history names them), only
    disabled. ``password_hash`` is an Argon2 hash (PHC string); NULL: no password
    login (e.g. the demo admin, who logs in by one-time link)."""

    __tablename__ = "users"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(String(500), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class SessionRow(Base):
    """A browser login. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "sessions"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


class AccessTokenRow(Base):
    """A personal access token for scripts (``Authorization: Bearer ...``); stored as
    its SHA-256, shown once. ``prefix``: its first characters, to tell tokens apart."""

    __tablename__ = "access_tokens"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class LoginLinkRow(Base):
    """A one-time login link (printed in the console by ``posekit demo``/``serve``)."""

    __tablename__ = "login_links"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class MemberRow(Base):
    """A user's role in a project: ``manager``, ``annotator``, ``reviewer`` or ``viewer``."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)


class CommentRow(Base):
    """A review comment on an item, optionally on one instance and one keypoint of it.
    Replies have ``parent_id`` (the thread's first comment); a thread is resolved on
    its first comment."""

    __tablename__ = "comments"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    #: The instance commented on (no foreign key: the comment outlives a deleted instance).
    instance_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keypoint: Mapped[int | None] = mapped_column(Integer, nullable=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), nullable=True, index=True
    )
    author_id: Mapped[int] = mapped_column(Integer, nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class InstanceVersionRow(Base):
    """A version of an instance that a later write replaced (or a delete removed):
    the previous value, who wrote it and when, and who replaced it. The current
    version is the ``instances`` row itself. No foreign key to ``instances``: the
    history of a deleted instance stays (until its item is deleted)."""

    __tablename__ = "instance_versions"
    __table_args__ = (
        UniqueConstraint("instance_id", "version", name="uq_instance_version"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(Integer, nullable=False)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), nullable=False, index=True
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    keypoints: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    visibility: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    keypoint_scores: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    box: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    keyframe: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    iscrowd: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=false())
    area: Mapped[float | None] = mapped_column(Float, nullable=True)
    segmentation: Mapped[Any | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    external_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    #: Author and time of this version (the instance's ``author_id``/``updated_at`` then).
    author_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    written_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    #: What ended it: ``update``, ``review``, ``restore`` or ``delete``; by whom and when.
    replaced_by_action: Mapped[str] = mapped_column(String(16), nullable=False)
    replaced_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    replaced_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, nullable=False)
