"""Listing counts: items and instances per dataset, kept by the database itself.

``GET /api/projects`` counted every instance of the workspace on each call (190 ms
at 300k instances). ``dataset_counts`` holds one row per dataset with its number of
items and instances, filled from the existing rows here and kept current by
triggers on ``datasets``, ``items`` and ``instances`` (insert, delete, and an item or
instance moving to another dataset or item). Triggers see every writer: the store's
bulk imports, the server, other processes, cascaded deletes. A project's counts are
the sum over its few datasets (:func:`posekit.store.queries.project_counts`).

Deleting an item subtracts its instances in a BEFORE trigger; the instances the
foreign key then deletes find no item any more and change nothing (SQLite and
PostgreSQL both run the cascade after the parent row is gone).

A later migration that rebuilds ``datasets``, ``items`` or ``instances`` with
``batch_alter_table`` on SQLite (copy and rename) drops their triggers: it must
create them again (:data:`SQLITE_TRIGGERS`).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ITEM_DATASET = "(SELECT dataset_id FROM items WHERE id = {row}.item_id)"

SQLITE_TRIGGERS = {
    "trg_counts_dataset_insert": """
        CREATE TRIGGER trg_counts_dataset_insert AFTER INSERT ON datasets BEGIN
            INSERT INTO dataset_counts (dataset_id, num_items, num_instances)
            VALUES (NEW.id, 0, 0);
        END""",
    "trg_counts_item_insert": """
        CREATE TRIGGER trg_counts_item_insert AFTER INSERT ON items BEGIN
            UPDATE dataset_counts SET num_items = num_items + 1
            WHERE dataset_id = NEW.dataset_id;
        END""",
    "trg_counts_item_delete": """
        CREATE TRIGGER trg_counts_item_delete BEFORE DELETE ON items BEGIN
            UPDATE dataset_counts SET num_items = num_items - 1,
                num_instances = num_instances
                    - (SELECT count(*) FROM instances WHERE item_id = OLD.id)
            WHERE dataset_id = OLD.dataset_id;
        END""",
    "trg_counts_item_move": """
        CREATE TRIGGER trg_counts_item_move AFTER UPDATE OF dataset_id ON items
        WHEN NEW.dataset_id IS NOT OLD.dataset_id BEGIN
            UPDATE dataset_counts SET num_items = num_items - 1,
                num_instances = num_instances
                    - (SELECT count(*) FROM instances WHERE item_id = NEW.id)
            WHERE dataset_id = OLD.dataset_id;
            UPDATE dataset_counts SET num_items = num_items + 1,
                num_instances = num_instances
                    + (SELECT count(*) FROM instances WHERE item_id = NEW.id)
            WHERE dataset_id = NEW.dataset_id;
        END""",
    "trg_counts_instance_insert": f"""
        CREATE TRIGGER trg_counts_instance_insert AFTER INSERT ON instances BEGIN
            UPDATE dataset_counts SET num_instances = num_instances + 1
            WHERE dataset_id = {_ITEM_DATASET.format(row="NEW")};
        END""",
    "trg_counts_instance_delete": f"""
        CREATE TRIGGER trg_counts_instance_delete AFTER DELETE ON instances BEGIN
            UPDATE dataset_counts SET num_instances = num_instances - 1
            WHERE dataset_id = {_ITEM_DATASET.format(row="OLD")};
        END""",
    "trg_counts_instance_move": f"""
        CREATE TRIGGER trg_counts_instance_move AFTER UPDATE OF item_id ON instances
        WHEN NEW.item_id IS NOT OLD.item_id BEGIN
            UPDATE dataset_counts SET num_instances = num_instances - 1
            WHERE dataset_id = {_ITEM_DATASET.format(row="OLD")};
            UPDATE dataset_counts SET num_instances = num_instances + 1
            WHERE dataset_id = {_ITEM_DATASET.format(row="NEW")};
        END""",
}

# PostgreSQL: one trigger function per table, the same rules.
_PG_FUNCTIONS = {
    "posekit_counts_dataset": """
        BEGIN
            INSERT INTO dataset_counts (dataset_id, num_items, num_instances)
            VALUES (NEW.id, 0, 0);
            RETURN NEW;
        END""",
    "posekit_counts_item": """
        DECLARE n integer;
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE dataset_counts SET num_items = num_items + 1
                WHERE dataset_id = NEW.dataset_id;
                RETURN NEW;
            END IF;
            IF TG_OP = 'DELETE' THEN
                SELECT count(*) INTO n FROM instances WHERE item_id = OLD.id;
                UPDATE dataset_counts SET num_items = num_items - 1,
                    num_instances = num_instances - n WHERE dataset_id = OLD.dataset_id;
                RETURN OLD;
            END IF;
            IF NEW.dataset_id IS DISTINCT FROM OLD.dataset_id THEN
                SELECT count(*) INTO n FROM instances WHERE item_id = NEW.id;
                UPDATE dataset_counts SET num_items = num_items - 1,
                    num_instances = num_instances - n WHERE dataset_id = OLD.dataset_id;
                UPDATE dataset_counts SET num_items = num_items + 1,
                    num_instances = num_instances + n WHERE dataset_id = NEW.dataset_id;
            END IF;
            RETURN NEW;
        END""",
    "posekit_counts_instance": f"""
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                IF TG_OP = 'UPDATE' AND NEW.item_id IS NOT DISTINCT FROM OLD.item_id THEN
                    RETURN NEW;
                END IF;
                UPDATE dataset_counts SET num_instances = num_instances - 1
                WHERE dataset_id = {_ITEM_DATASET.format(row="OLD")};
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                UPDATE dataset_counts SET num_instances = num_instances + 1
                WHERE dataset_id = {_ITEM_DATASET.format(row="NEW")};
                RETURN NEW;
            END IF;
            RETURN OLD;
        END""",
}
_PG_TRIGGERS = (
    "CREATE TRIGGER trg_counts_dataset AFTER INSERT ON datasets "
    "FOR EACH ROW EXECUTE FUNCTION posekit_counts_dataset()",
    "CREATE TRIGGER trg_counts_item_insert AFTER INSERT OR UPDATE OF dataset_id ON items "
    "FOR EACH ROW EXECUTE FUNCTION posekit_counts_item()",
    "CREATE TRIGGER trg_counts_item_delete BEFORE DELETE ON items "
    "FOR EACH ROW EXECUTE FUNCTION posekit_counts_item()",
    "CREATE TRIGGER trg_counts_instance AFTER INSERT OR DELETE OR UPDATE OF item_id "
    "ON instances FOR EACH ROW EXECUTE FUNCTION posekit_counts_instance()",
)
_PG_DROP = (
    "DROP TRIGGER IF EXISTS trg_counts_dataset ON datasets",
    "DROP TRIGGER IF EXISTS trg_counts_item_insert ON items",
    "DROP TRIGGER IF EXISTS trg_counts_item_delete ON items",
    "DROP TRIGGER IF EXISTS trg_counts_instance ON instances",
)

_BACKFILL = """
    INSERT INTO dataset_counts (dataset_id, num_items, num_instances)
    SELECT d.id,
        (SELECT count(*) FROM items i WHERE i.dataset_id = d.id),
        (SELECT count(*) FROM instances n JOIN items i ON i.id = n.item_id
         WHERE i.dataset_id = d.id)
    FROM datasets d
"""


def _dialect() -> str:
    return op.get_context().dialect.name


def upgrade() -> None:
    op.create_table(
        "dataset_counts",
        sa.Column("dataset_id", sa.Integer(), nullable=False),
        sa.Column("num_items", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("num_instances", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("dataset_id"),
        sa.ForeignKeyConstraint(["dataset_id"], ["datasets.id"], ondelete="CASCADE"),
    )
    # Counts first, triggers after: in one transaction, nothing writes in between.
    op.execute(_BACKFILL)
    if _dialect() == "postgresql":
        for name, body in _PG_FUNCTIONS.items():
            op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $${body}\n$$")
        for statement in _PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS.values():
            op.execute(statement)


def downgrade() -> None:
    if _dialect() == "postgresql":
        for statement in _PG_DROP:
            op.execute(statement)
        for name in _PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("dataset_counts")
