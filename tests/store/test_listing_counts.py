"""Migration 0004 (dataset_counts): the backfill on upgrade and the triggers that keep
the listing counts equal to a recount through every kind of write."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, insert, inspect, text, update

from posekit import get_preset
from posekit.store import Workspace
from posekit.store.queries import dataset_item_counts, project_counts
from posekit.store.schema import alembic_config, head_revision
from posekit.store.tables import InstanceRow, ItemRow

from .store_factories import make_person, make_prediction


def _recount(ws: Workspace) -> dict[int, tuple[int, int]]:
    """What project_counts must say, counted row by row."""
    with ws.engine.connect() as conn:
        projects = conn.execute(text("SELECT id FROM projects")).scalars().all()
        items = dict(
            conn.execute(
                text(
                    "SELECT d.project_id, count(*) FROM items i "
                    "JOIN datasets d ON d.id = i.dataset_id GROUP BY 1"
                )
            ).all()
        )
        instances = dict(
            conn.execute(
                text(
                    "SELECT d.project_id, count(*) FROM instances n JOIN items i "
                    "ON i.id = n.item_id JOIN datasets d ON d.id = i.dataset_id GROUP BY 1"
                )
            ).all()
        )
    return {p: (items.get(p, 0), instances.get(p, 0)) for p in projects}


def _add_items(ws: Workspace, dataset_id: int, names: list[str]) -> list[int]:
    with ws.transaction() as conn:
        rows = [
            {"dataset_id": dataset_id, "file_name": n, "width": 64, "height": 48, "kind": "image"}
            for n in names
        ]
        conn.execute(insert(ItemRow), rows)
        ids = conn.execute(
            text("SELECT id FROM items WHERE dataset_id = :d ORDER BY id"), {"d": dataset_id}
        ).scalars()
        return list(ids)


def _filled(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "ws")
    people = ws.create_project("people", get_preset("coco17"))
    other = ws.create_project("other", get_preset("coco17"))
    ws.create_project("empty", get_preset("coco17"))
    train = ws.create_dataset(people, "train")
    val = ws.create_dataset(people, "val")
    side = ws.create_dataset(other, "default")
    train_items = _add_items(ws, train.id, [f"t{i}.jpg" for i in range(6)])
    val_items = _add_items(ws, val.id, ["v0.jpg", "v1.jpg"])
    side_items = _add_items(ws, side.id, ["s0.jpg"])
    for n, item in enumerate(train_items):
        for k in range(n % 3):
            ws.add_instance(item, make_person(n * 10 + k))
    ws.add_instance(val_items[0], make_prediction(1))
    ws.write_predictions({side_items[0]: [make_prediction(2), make_prediction(3)]}, overwrite=False)
    return ws


def test_counts_follow_every_write(tmp_path: Path) -> None:
    ws = _filled(tmp_path)
    try:
        assert project_counts(ws) == _recount(ws)
        people = ws.get_project("people")
        assert sorted(dataset_item_counts(ws, people.id).values()) == [2, 6]

        record = ws.get_instance_records(ws.list_items(people)[1].id)[0]
        ws.delete_instance(record.id)
        assert project_counts(ws) == _recount(ws)

        with ws.transaction() as conn:
            first = conn.execute(text("SELECT min(id) FROM items")).scalar_one()
            # An item and an instance moving to another dataset / item.
            target = conn.execute(text("SELECT id FROM datasets WHERE name = 'val'")).scalar_one()
            conn.execute(update(ItemRow).where(ItemRow.id == first + 2).values(dataset_id=target))
            conn.execute(
                update(InstanceRow)
                .where(InstanceRow.item_id == first + 2)
                .values(item_id=first + 7)
            )
        assert project_counts(ws) == _recount(ws)

        with ws.transaction() as conn:  # an item with instances: cascaded delete
            conn.execute(delete(ItemRow).where(ItemRow.id == first + 5))
        assert project_counts(ws) == _recount(ws)

        ws.delete_project("other")
        counts = project_counts(ws)
        assert counts == _recount(ws) and counts[ws.get_project("empty").id] == (0, 0)
        assert len(counts) == 2
    finally:
        ws.close()


def _trigger_count(conn) -> int:
    if conn.dialect.name == "sqlite":
        query = "SELECT count(*) FROM sqlite_master WHERE type='trigger'"
    else:
        query = "SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal"
    return int(conn.execute(text(query)).scalar_one())


def test_upgrade_from_0003_fills_the_counts(tmp_path: Path) -> None:
    from alembic import command

    ws = _filled(tmp_path)
    expected = _recount(ws)
    with ws.engine.begin() as conn:
        config = alembic_config(conn)
        command.downgrade(config, "0003")
        assert "dataset_counts" not in inspect(conn).get_table_names()
        assert _trigger_count(conn) == 0
        command.upgrade(config, "head")
    try:
        assert head_revision() == "0004" or head_revision() > "0004"
        assert project_counts(ws) == expected
        ws.add_instance(ws.list_items("people")[0].id, make_person(99))
        assert project_counts(ws) == _recount(ws) != expected
    finally:
        ws.close()
