"""Project settings, template versions and persisted jobs.

* ``projects.template_version``: starts at 1, incremented by every template change
  (:mod:`posekit.store.template_change`); existing projects get 1.
* ``projects.settings``: JSON project settings (:mod:`posekit.store.project_settings`),
  e.g. the AI-assist model; NULL means the defaults.
* ``jobs``: an auto-label job's options and outcome, kept after a restart, so the
  predictions a job wrote (their ``extra`` names the job) can be traced to the models
  and thresholds that produced them.

Only columns are added to ``projects`` (no table rebuild), so the ``0004`` triggers
on ``datasets``, ``items`` and ``instances`` are untouched.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "projects",
        sa.Column("template_version", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column("projects", sa.Column("settings", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=4000), nullable=True),
        sa.Column("device", sa.String(length=200), nullable=True),
        sa.Column("processed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("instances", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failures", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_project_id", "jobs", ["project_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_project_id", table_name="jobs")
    op.drop_table("jobs")
    # Not batch_alter_table: rebuilding ``projects`` on SQLite drops the table, and with
    # foreign keys on that deletes every dataset of it. SQLite 3.35+ drops columns.
    for column in ("settings", "template_version"):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"ALTER TABLE projects DROP COLUMN {column}")
        else:
            op.drop_column("projects", column)
