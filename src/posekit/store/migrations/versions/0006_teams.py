"""Teams: users, sessions, access tokens, login links, project members, the review
workflow of items, comments and instance history.

* ``users``, ``sessions``, ``access_tokens``, ``login_links``: accounts and their
  credentials (tokens stored as SHA-256, passwords as Argon2 hashes).
* ``project_members``: a user's role in a project.
* ``items.stage`` (``annotation``/``review``/``done``; existing items start in
  ``annotation``), ``items.assignee_id``, ``items.reviewer_id``,
  ``items.stage_changed_at``.
* ``instances.author_id``: who wrote the current version (NULL for older rows).
* ``comments``: threaded review comments on an item, instance or keypoint.
* ``instance_versions``: the previous values replaced by writes.

Only columns are added to ``items`` and ``instances`` (``ALTER TABLE ... ADD
COLUMN``, no table rebuild), so the ``0004`` triggers on them stay. The new user
columns carry no foreign key for the same reason (users are never deleted).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=True),
        sa.Column("password_hash", sa.String(length=500), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
        sqlite_autoincrement=True,
    )
    for table, extra in (
        (
            "sessions",
            [
                sa.Column("expires_at", sa.DateTime(), nullable=False),
                sa.Column("last_seen_at", sa.DateTime(), nullable=False),
                sa.Column("user_agent", sa.String(length=300), nullable=True),
            ],
        ),
        (
            "access_tokens",
            [
                sa.Column("name", sa.String(length=200), nullable=False),
                sa.Column("prefix", sa.String(length=16), nullable=False),
                sa.Column("last_used_at", sa.DateTime(), nullable=True),
                sa.Column("expires_at", sa.DateTime(), nullable=True),
                sa.Column("revoked_at", sa.DateTime(), nullable=True),
            ],
        ),
        (
            "login_links",
            [
                sa.Column("expires_at", sa.DateTime(), nullable=False),
                sa.Column("used_at", sa.DateTime(), nullable=True),
            ],
        ),
    ):
        op.create_table(
            table,
            _id(),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.DateTime(), nullable=False),
            *extra,
            sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("token_hash"),
            sqlite_autoincrement=True,
        )
        op.create_index(f"ix_{table}_user_id", table, ["user_id"])

    op.create_table(
        "project_members",
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("project_id", "user_id"),
    )
    op.create_index("ix_project_members_user_id", "project_members", ["user_id"])

    # Plain ADD COLUMN on items/instances (not batch mode: a rebuild would drop the
    # 0004 triggers, and on SQLite with foreign keys on, cascade-delete children).
    op.add_column(
        "items",
        sa.Column("stage", sa.String(length=16), nullable=False, server_default="annotation"),
    )
    op.add_column("items", sa.Column("assignee_id", sa.Integer(), nullable=True))
    op.add_column("items", sa.Column("reviewer_id", sa.Integer(), nullable=True))
    op.add_column("items", sa.Column("stage_changed_at", sa.DateTime(), nullable=True))
    op.create_index("ix_items_dataset_stage", "items", ["dataset_id", "stage"])
    op.create_index("ix_items_assignee_stage", "items", ["assignee_id", "stage"])
    op.add_column("instances", sa.Column("author_id", sa.Integer(), nullable=True))

    op.create_table(
        "comments",
        _id(),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("keypoint", sa.Integer(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["parent_id"], ["comments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_comments_item_id", "comments", ["item_id"])
    op.create_index("ix_comments_parent_id", "comments", ["parent_id"])

    op.create_table(
        "instance_versions",
        _id(),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("keypoints", sa.LargeBinary(), nullable=False),
        sa.Column("visibility", sa.LargeBinary(), nullable=False),
        sa.Column("keypoint_scores", sa.LargeBinary(), nullable=True),
        sa.Column("box", sa.LargeBinary(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("track_id", sa.Integer(), nullable=True),
        sa.Column("keyframe", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("iscrowd", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("area", sa.Float(), nullable=True),
        sa.Column("segmentation", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("external_id", sa.Integer(), nullable=True),
        sa.Column("extra", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("written_at", sa.DateTime(), nullable=False),
        sa.Column("replaced_by_action", sa.String(length=16), nullable=False),
        sa.Column("replaced_by", sa.Integer(), nullable=True),
        sa.Column("replaced_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id", "version", name="uq_instance_version"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_instance_versions_item_id", "instance_versions", ["item_id"])


def downgrade() -> None:
    op.drop_table("instance_versions")
    op.drop_table("comments")
    for index in ("ix_items_assignee_stage", "ix_items_dataset_stage"):
        op.drop_index(index, table_name="items")
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table, column in (
        ("instances", "author_id"),
        ("items", "stage_changed_at"),
        ("items", "reviewer_id"),
        ("items", "assignee_id"),
        ("items", "stage"),
    ):
        if sqlite:  # no rebuild (see upgrade); SQLite 3.35+ drops columns
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)
    op.drop_table("project_members")
    for table in ("login_links", "access_tokens", "sessions"):
        op.drop_table(table)
    op.drop_table("users")
