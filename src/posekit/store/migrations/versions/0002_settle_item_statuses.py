"""Settle item statuses: "no prediction left => reviewed" for every item.

posekit 0.1.0 updated the item status only in some write paths (an instance
added by hand left its item ``new``; new predictions on a reviewed item left it
``reviewed``). The store now keeps the status settled on every write
(:mod:`posekit.statuses`); this brings existing rows to the same rule:

* an item with a ``predicted`` instance is ``predicted``;
* an item with instances, none ``predicted``, is ``reviewed``;
* an item without instances keeps its status.

Data only; the statuses stay within the 0.1.0 vocabulary, so downgrading is a
no-op.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

items = sa.table("items", sa.column("id", sa.Integer), sa.column("status", sa.String))
instances = sa.table("instances", sa.column("item_id", sa.Integer), sa.column("status", sa.String))


def upgrade() -> None:
    of_item = instances.c.item_id == items.c.id
    has_prediction = sa.exists().where(of_item, instances.c.status == "predicted")
    has_instance = sa.exists().where(of_item)
    op.execute(
        items.update()
        .where(items.c.status != "predicted", has_prediction)
        .values(status="predicted")
    )
    op.execute(
        items.update()
        .where(items.c.status != "reviewed", has_instance, ~has_prediction)
        .values(status="reviewed")
    )


def downgrade() -> None:
    pass
