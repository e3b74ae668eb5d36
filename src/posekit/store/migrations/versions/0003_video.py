"""Video: a videos table, frames as items of a video, tracks, keyframe flags.

* ``videos``: one row per imported video (a file, or a folder of numbered frames),
  with its frame rate, frame count, duration, size after rotation, rotation, the
  stored media path and the frame index (:meth:`posekit.media.video.VideoIndex.to_dict`,
  JSON) so that reopening a video never re-scans the file.
* ``items`` of kind ``frame``: one item per frame that holds instances, with
  ``video_id`` and ``frame_index`` (columns posekit 0.1.0 already had, unused); the
  frame's pixels are decoded from the video on demand, never written as images. One
  item per (video, frame): a unique index.
* ``tracks``: a person track of a video (``track_id`` is the ``instances.track_id``
  of its instances on that video's frames), its label and its *outside* frames (JSON
  list of frame indices where a segment of the track ends).
* ``instances.keyframe``: the instance was set by a person (a keyframe); predicted
  and interpolated instances are not. Accepted instances count as keyframes too
  (see :mod:`posekit.store.videos`). Existing rows get ``false``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "videos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("file_name", sa.String(length=1000), nullable=False),
        sa.Column("media_path", sa.String(length=1000), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("frame_count", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("rotation", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decode_index", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("extra", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dataset_id", "file_name", name="uq_video_dataset_file_name"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_videos_dataset_id", "videos", ["dataset_id"])
    op.create_table(
        "tracks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("outside", sa.JSON(), nullable=False),
        sa.Column("extra", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("video_id", "track_id", name="uq_track_video_track_id"),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], ondelete="CASCADE"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_tracks_project_id", "tracks", ["project_id"])
    op.create_index("ix_items_video_frame", "items", ["video_id", "frame_index"], unique=True)
    op.add_column(
        "instances",
        sa.Column("keyframe", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("keyframe")
    op.drop_index("ix_items_video_frame", table_name="items")
    op.drop_index("ix_tracks_project_id", table_name="tracks")
    op.drop_table("tracks")
    op.drop_index("ix_videos_dataset_id", table_name="videos")
    op.drop_table("videos")
