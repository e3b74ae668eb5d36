"""Tests for posekit.store.schema and the Alembic migrations: a 0.1.0 workspace upgrades
in place, the migrations build exactly the ORM schema, newer databases are refused."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from posekit import get_preset
from posekit.statuses import INSTANCE_STATUSES
from posekit.store import SchemaVersionError, Workspace, export_coco
from posekit.store.schema import BASELINE_REVISION, alembic_config, head_revision
from posekit.store.tables import Base

pytestmark = pytest.mark.sqlite_only(
    reason="upgrades of SQLite files (the 0.1.0 fixture, backups next to the file); "
    "the migrations on PostgreSQL: tests/store/test_postgres.py"
)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_0_1_0"

#: Item statuses 0.1.0 left unsettled, and what the upgrade settles them to.
SETTLED = {  # item id -> (status 0.1.0 wrote, status after the upgrade)
    2: ("reviewed", "predicted"),  # a prediction next to ground truth
    4: ("new", "reviewed"),  # an instance added by hand
    5: ("new", "reviewed"),  # instances added by hand (custom template project)
}


def _connect(db: Path) -> sqlite3.Connection:
    """A connection; the committed fixture is opened immutable (no -wal/-shm files)."""
    if db.is_relative_to(FIXTURE):
        return sqlite3.connect(f"file:{db}?immutable=1", uri=True)
    return sqlite3.connect(db)


def _rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of the posekit tables, by id."""
    with _connect(db) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("projects", "datasets", "items", "instances")
        }


def _ddl(db: Path) -> list[tuple[str, str]]:
    with _connect(db) as conn:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT IN ('alembic_version', 'sqlite_sequence') ORDER BY name"
        ).fetchall()
    return [(name, " ".join(sql.split())) for name, sql in rows]


@pytest.fixture
def old_workspace(tmp_path: Path) -> Path:
    """A copy of the workspace written by posekit 0.1.0."""
    target = tmp_path / "ws"
    shutil.copytree(FIXTURE / "workspace", target)
    return target


def test_0_1_0_workspace_is_backed_up_and_upgraded_in_place(
    old_workspace: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = old_workspace / "posekit.db"
    before = _rows(db)
    with caplog.at_level(logging.WARNING, logger="posekit.store.schema"):
        ws = Workspace(old_workspace)
    try:
        # The backup: next to the database, named in the log, the old file unchanged.
        backup = ws.schema_backup
        assert backup is not None and backup.parent == old_workspace
        assert backup.name.startswith("posekit.db.backup-0.1.0-")
        assert str(backup) in caplog.text
        assert _rows(backup) == before and _ddl(backup) == _ddl(FIXTURE / "workspace/posekit.db")

        # Every row is still there; only the unsettled item statuses changed.
        after = _rows(db)
        for table in ("projects", "datasets", "instances"):
            # Later revisions add columns at the end (0005: projects.template_version,
            # projects.settings); the columns 0.1.0 wrote keep their values.
            kept = [row[: len(old)] for row, old in zip(after[table], before[table])]
            assert kept == before[table], table
        status_column = 8
        for old, new in zip(before["items"], after["items"]):
            expected = SETTLED.get(old[0], (old[status_column],) * 2)
            assert (old[status_column], new[status_column]) == expected, old[3]
            # 0006 adds the workflow columns at the end (stage starts at "annotation").
            assert old[:status_column] + old[status_column + 1 :] == (
                new[:status_column] + new[status_column + 1 : len(old)]
            )
            assert new[len(old) :] == ("annotation", None, None, None)

        # ... and reads back through the library.
        assert [p.name for p in ws.list_projects()] == ["empty", "paws", "people"]
        assert ws.get_project("people").template == get_preset("coco17")
        paws = ws.get_project("paws").template
        assert paws.keypoints == ("nose", "left_ear", "right_ear", "tail")
        assert list(paws.sigmas) == [0.026, 0.035, 0.035, 0.089]
        val = ws.get_dataset("people", "val")
        meta = val.extra["coco"]
        assert meta["info"]["version"] == "fixture" and meta["licenses"]
        assert [c["name"] for c in meta["extra_categories"]] == ["sports ball"]
        assert [a["id"] for a in meta["extra_annotations"]] == [900001]
        assert meta["extra"] == {"posekit_fixture": {"made_by": "make_workspace_0_1_0.py"}}
        items = {i.file_name: i for i in ws.list_items("people")}
        assert items["000000196141.jpg"].path.is_file()
        records = [r for item in items.values() for r in ws.get_instance_records(item)]
        assert {r.instance.status for r in records} == set(INSTANCE_STATUSES)
        assert max(r.version for r in records) == 3
        prediction = next(r.instance for r in records if r.instance.track_id == 11)
        assert prediction.status == "predicted" and prediction.keypoint_scores is not None
        assert prediction.score is not None and prediction.box is not None
        assert {r.instance.track_id for r in records} >= {1, 2, 3, 7, 11}

        # The COCO files are identical to what 0.1.0 exported.
        cases = [
            ("people.coco.json", {"statuses": INSTANCE_STATUSES}),  # 0.1.0 default: all
            ("people-accepted.coco.json", {}),  # the default now: accepted only
            ("people-val.coco.json", {"dataset": "val", "statuses": INSTANCE_STATUSES}),
        ]
        for name, options in cases:
            out = tmp_path / name
            export_coco(ws, "people", out, **options)
            assert out.read_bytes() == (FIXTURE / name).read_bytes(), name
        out = tmp_path / "paws.coco.json"
        export_coco(ws, "paws", out, statuses=INSTANCE_STATUSES)
        assert out.read_bytes() == (FIXTURE / "paws.coco.json").read_bytes()
    finally:
        ws.close()

    # Opening it again upgrades nothing and backs up nothing.
    with Workspace(old_workspace) as again:
        assert again.schema_backup is None
    assert len(list(old_workspace.glob("posekit.db.backup-*"))) == 1


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_new_workspace_is_at_head(tmp_path: Path) -> None:
    with Workspace(tmp_path / "ws") as ws:
        assert ws.schema_backup is None
    assert _revision(tmp_path / "ws" / "posekit.db") == head_revision()
    assert not list((tmp_path / "ws").glob("*.backup-*"))


def test_database_of_a_newer_posekit_is_refused_untouched(tmp_path: Path) -> None:
    Workspace(tmp_path / "ws").close()
    db = tmp_path / "ws" / "posekit.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    before = db.read_bytes()
    with pytest.raises(SchemaVersionError, match=r"9999_from_the_future.*newer"):
        Workspace(tmp_path / "ws")
    assert db.read_bytes() == before
    assert not list(db.parent.glob("*.backup-*"))


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    with sqlite3.connect(tmp_path / "ws" / "posekit.db") as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY)")
    with pytest.raises(SchemaVersionError, match=r"not a posekit database.*notes"):
        Workspace(tmp_path / "ws")


def test_baseline_revision_is_exactly_the_0_1_0_schema(tmp_path: Path) -> None:
    from alembic import command

    db = tmp_path / "baseline.db"
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), BASELINE_REVISION)
    engine.dispose()
    assert _ddl(db) == _ddl(FIXTURE / "workspace" / "posekit.db")


def test_upgrade_head_on_an_empty_database_equals_the_tables(tmp_path: Path) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = create_engine(f"sqlite:///{tmp_path / 'head.db'}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_migrations_downgrade_to_base_and_up_again(tmp_path: Path) -> None:
    from alembic import command

    engine = create_engine(f"sqlite:///{tmp_path / 'cycle.db'}")
    with engine.begin() as conn:
        config = alembic_config(conn)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        command.upgrade(config, "head")
    engine.dispose()
    assert _revision(tmp_path / "cycle.db") == head_revision()


def test_migrations_render_on_postgresql() -> None:
    """Offline (SQL script) mode runs every migration on the PostgreSQL dialect."""
    import contextlib
    import io

    from alembic import command

    config = alembic_config(url="postgresql://user@localhost/posekit")
    config.output_buffer = buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        command.upgrade(config, "head", sql=True)
    sql = buffer.getvalue()
    assert "CREATE TABLE instances" in sql and "BYTEA" in sql
    assert "UPDATE items SET status" in sql


def test_two_processes_opening_an_old_workspace_upgrade_it_once(old_workspace: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def open_and_close(_: int) -> Path | None:
        ws = Workspace(old_workspace)
        ws.close()
        return ws.schema_backup

    with ThreadPoolExecutor(2) as pool:
        backups = list(pool.map(open_and_close, range(2)))
    assert sum(b is not None for b in backups) == 1
    assert len(list(old_workspace.glob("posekit.db.backup-*"))) == 1
    assert _revision(old_workspace / "posekit.db") == head_revision()
