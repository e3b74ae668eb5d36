"""PostgreSQL as the workspace database: the migrations online, the counting triggers,
orderings, isolation and retries, and 20 clients saving the same instances at once
(on SQLite too). Each PostgreSQL test gets a fresh empty database
(``postgres_database``, tests/db_backends.py); they skip, saying why, when no server
can be reached or started."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool

from posekit import get_preset
from posekit.store import SchemaVersionError, StaleVersionError, Workspace, import_images
from posekit.store import database as database_module
from posekit.store import instances as instances_module
from posekit.store.database import (
    DatabaseUnavailableError,
    WriteConflictError,
    is_retryable,
    parse_database_url,
    retrying,
)
from posekit.store.queries import item_summaries, project_counts
from posekit.store.schema import alembic_config, head_revision, upgrade_database
from posekit.store.tables import Base, InstanceRow

from .store_factories import make_person, make_prediction

CLIENTS = 20


# ------------------------------------------------------------------ helpers
def _images(folder: Path, count: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        Image.new("RGB", (64, 48), (index * 20 % 255, 90, 160)).save(folder / f"im{index}.png")
    return folder


def _recount(ws: Workspace) -> dict[int, tuple[int, int]]:
    with ws.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.id, (SELECT count(*) FROM items i JOIN datasets d ON d.id = "
                "i.dataset_id WHERE d.project_id = p.id), (SELECT count(*) FROM instances n "
                "JOIN items i ON i.id = n.item_id JOIN datasets d ON d.id = i.dataset_id "
                "WHERE d.project_id = p.id) FROM projects p"
            )
        ).all()
    return {int(a): (int(b), int(c)) for a, b, c in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Workspace]]:
    """Opens another Workspace (its own engine) on one shared database and folder."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ws' / 'posekit.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
    opened: list[Workspace] = []

    def open_workspace() -> Workspace:
        ws = Workspace(tmp_path / "ws", database_url=url)
        opened.append(ws)
        return ws

    yield open_workspace
    for ws in opened:
        ws.close()


# ------------------------------------------------------------------ migrations online
def test_migrations_upgrade_an_empty_database_to_exactly_the_tables(
    postgres_database: str, tmp_path: Path
) -> None:
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    assert upgrade_database(postgres_database) is None  # no file: no backup
    engine = create_engine(postgres_database, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == (
                head_revision()
            )
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
            columns = {c["name"]: c["type"] for c in inspect(conn).get_columns("instances")}
            assert type(columns["keypoints"]).__name__ == "BYTEA"
            assert type(columns["keyframe"]).__name__ == "BOOLEAN"
            triggers = conn.execute(
                text("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal")
            ).scalar()
            assert triggers == 4
        with engine.begin() as conn:  # all the way down and up again, online
            config = alembic_config(conn)
            command.downgrade(config, "base")
            assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
            command.upgrade(config, "head")
    finally:
        engine.dispose()
    with Workspace(tmp_path / "ws", database_url=postgres_database) as ws:
        assert ws.db_path is None and ws.schema_backup is None


def test_two_workspaces_opening_a_new_database_at_once_upgrade_it_once(
    postgres_database: str, tmp_path: Path
) -> None:
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it(index: int) -> None:
        try:
            barrier.wait()
            Workspace(tmp_path / f"w{index}", database_url=postgres_database).close()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    ws = Workspace(tmp_path / "w0", database_url=postgres_database)
    with ws, ws.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_database_of_a_newer_posekit_is_refused(postgres_database: str, tmp_path: Path) -> None:
    Workspace(tmp_path / "ws", database_url=postgres_database).close()
    engine = create_engine(postgres_database, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=r"9999_from_the_future.*newer"):
        Workspace(tmp_path / "ws", database_url=postgres_database)


# ------------------------------------------------------------------ triggers, types, order
def test_counting_triggers_follow_imports_and_deletes(
    postgres_database: str, tmp_path: Path
) -> None:
    with Workspace(tmp_path / "ws", database_url=postgres_database) as ws:
        project = ws.create_project("people", get_preset("coco17"))
        import_images(ws, project, "train", [_images(tmp_path / "a", 4)])
        import_images(ws, project, "val", [_images(tmp_path / "b", 2)])
        assert project_counts(ws) == {project.id: (6, 0)}
        items = ws.list_items(project)
        predictions = {items[0].id: [make_prediction(1), make_prediction(2)]}
        ws.write_predictions(predictions, overwrite=False)
        record = ws.add_instance(items[1], make_person(3))
        assert project_counts(ws) == {project.id: (6, 3)} == _recount(ws)
        ws.delete_instance(record.id)
        with ws.transaction() as conn:  # an item deleted with its instances (cascade)
            conn.execute(text("DELETE FROM items WHERE id = :i"), {"i": items[0].id})
        assert project_counts(ws) == {project.id: (5, 0)} == _recount(ws)
        total, page = item_summaries(ws, project.id)
        assert total == 5 and len(page) == 5
        ws.delete_project(project)
        assert project_counts(ws) == {}


def test_values_round_trip_exactly(postgres_database: str, tmp_path: Path) -> None:
    with Workspace(tmp_path / "ws", database_url=postgres_database) as ws:
        project = ws.create_project("people", get_preset("coco17"))
        import_images(ws, project, "train", [_images(tmp_path / "a", 1)])
        item = ws.list_items(project)[0]
        person = make_prediction(5, score=0.125, extra={"note": "ü", "n": [1, 2]}, track_id=7)
        stored = ws.add_instance(item, person).instance
        np.testing.assert_array_equal(stored.keypoints, person.keypoints)  # BYTEA, bit-exact
        np.testing.assert_array_equal(stored.visibility, person.visibility)
        assert stored.keypoint_scores is not None and stored.keypoint_scores.dtype == np.float32
        assert stored.extra == {"note": "ü", "n": [1, 2]} and stored.track_id == 7
        assert stored.score == pytest.approx(0.125)


def test_names_are_ordered_by_code_point_on_both(opener: Callable[[], Workspace]) -> None:
    """The test databases sort with an ICU en-US collation (a < B < b); posekit orders
    names by code point on every database, as SQLite does (B < a < b)."""
    ws = opener()
    names = ["b", "B", "a", "A", "_x", "é", "Z"]
    for name in names:
        ws.create_project(name, get_preset("coco17"))
        ws.create_dataset(names[0], name)
    assert [p.name for p in ws.list_projects()] == sorted(names)
    assert [d.name for d in ws.list_datasets("b")] == sorted(names)


# ------------------------------------------------------------------ isolation and retries
def _wait_until_blocked(watch: Any, pid: int, by: int, timeout_s: float = 30) -> None:
    """Return once backend ``pid`` waits for a lock that backend ``by`` holds."""
    blocked = text("SELECT CAST(:by AS integer) = ANY(pg_blocking_pids(:pid))")
    deadline = time.monotonic() + timeout_s
    while not watch.execute(blocked, {"by": by, "pid": pid}).scalar():
        if time.monotonic() > deadline:
            raise AssertionError(f"backend {pid} never waited for a lock of backend {by}")
        time.sleep(0.01)


def test_a_deadlocked_write_is_retried_as_a_whole(
    postgres_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """patch_instance locks the instance, then its item; a rival transaction holds the
    item and then wants the instance: PostgreSQL aborts patch_instance (deadlock,
    40P01), which runs again, as a whole, after the rival committed, and succeeds.

    Ordered by events, not by timing (a loaded machine may be slow anywhere): the
    rival asks for the instance first, and its own deadlock check is put off
    (``deadlock_timeout``) past its ``lock_timeout``, so the one check that can find
    the cycle is patch_instance's, once it asks for the item and closes it. The retry
    starts once the rival has committed: the rival's write changes no version, so a
    retry reading the instance before that commit would write over it."""
    ws = Workspace(tmp_path / "ws", database_url=postgres_database)
    rival_engine = create_engine(
        postgres_database,
        poolclass=NullPool,
        connect_args={"options": "-c deadlock_timeout=10min -c lock_timeout=60s"},
    )
    may_update = threading.Event()
    thread = threading.Thread()
    try:
        try:
            rival_engine.connect().close()
        except OperationalError as exc:
            if "deadlock_timeout" not in str(exc):
                raise
            pytest.skip(f"the test's PostgreSQL role may not set deadlock_timeout: {exc.orig}")
        project = ws.create_project("people", get_preset("coco17"))
        import_images(ws, project, "train", [_images(tmp_path / "a", 1)])
        item = ws.list_items(project)[0]
        record = ws.add_instance(item, make_prediction(1))
        attempts: list[int] = []
        aborted: list[str | None] = []  # SQLSTATEs of patch_instance's aborted attempts
        rival_pid: list[int] = []
        rival_errors: list[BaseException] = []
        holds_item = threading.Event()

        def rival() -> None:
            try:
                with rival_engine.begin() as conn:
                    rival_pid.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                    # NO KEY UPDATE, as lock_rows takes: patch_instance's history row (a
                    # foreign key to the item) is written, its own lock of the item waits.
                    conn.execute(text("SELECT id FROM items WHERE id = :i FOR NO KEY UPDATE"),
                                 {"i": item.id})  # fmt: skip
                    holds_item.set()
                    may_update.wait(60)
                    conn.execute(text("UPDATE instances SET score = 0.25 WHERE id = :i"),
                                 {"i": record.id})  # fmt: skip
            except BaseException as exc:
                rival_errors.append(exc)
            finally:
                holds_item.set()

        thread = threading.Thread(target=rival)
        transaction = ws.transaction

        def attempt() -> Any:  # each run of patch_instance opens one transaction
            attempts.append(len(attempts) + 1)
            if len(attempts) == 1:
                thread.start()
                assert holds_item.wait(30) and not rival_errors, rival_errors
            else:
                thread.join(90)  # the rival committed: the retry reads its write
            return transaction()

        settle = instances_module.settle_item_statuses

        def settle_once_the_rival_waits(conn: Any, item_ids: Any, **options: Any) -> None:
            if len(attempts) == 1:  # patch_instance holds the instance (its UPDATE is done)
                may_update.set()
                own_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
                with rival_engine.connect() as watch:
                    _wait_until_blocked(watch, rival_pid[0], by=own_pid)
            try:
                settle(conn, item_ids, **options)  # locks the item: closes the cycle
            except DBAPIError as exc:
                aborted.append(getattr(exc.orig, "sqlstate", None))
                raise

        ws.transaction = attempt  # type: ignore[method-assign]
        monkeypatch.setattr(instances_module, "settle_item_statuses", settle_once_the_rival_waits)
        done = ws.patch_instance(record.id, {"status": "accepted"}, record.version)
        thread.join(90)
        assert rival_errors == []
        assert attempts == [1, 2] and aborted == ["40P01"]
        assert done.version == 2 and done.instance.status == "accepted"
        assert done.instance.score == pytest.approx(0.25)  # the rival's write is kept
        assert ws.get_item(item.id).status == "reviewed"
    finally:
        may_update.set()
        if thread.is_alive():
            thread.join(90)
        ws.close()
        rival_engine.dispose()


def test_conflicts_at_version_level_are_refused_not_retried(
    postgres_database: str, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws", database_url=postgres_database)
    try:
        project = ws.create_project("people", get_preset("coco17"))
        import_images(ws, project, "train", [_images(tmp_path / "a", 1)])
        record = ws.add_instance(ws.list_items(project)[0], make_person(1))
        ws.patch_instance(record.id, {"score": 0.5}, 1)
        with pytest.raises(StaleVersionError) as info:
            ws.patch_instance(record.id, {"score": 0.7}, 1)
        assert info.value.current.version == 2
    finally:
        ws.close()


class _Aborted(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"aborted ({sqlstate})")
        self.sqlstate = sqlstate


def _wrapped(sqlstate: str) -> OperationalError:
    return OperationalError("UPDATE ...", {}, _Aborted(sqlstate))


def test_retrying_is_bounded_outermost_only_and_only_for_aborts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(database_module.time, "sleep", sleeps.append)
    assert is_retryable(_wrapped("40001")) and is_retryable(_wrapped("40P01"))
    assert not is_retryable(_wrapped("23505")) and not is_retryable(ValueError("x"))
    calls = Counter()

    @retrying
    def flaky(failures: int, sqlstate: str = "40001") -> str:
        calls["flaky"] += 1
        if calls["flaky"] <= failures:
            raise _wrapped(sqlstate)
        return "done"

    assert flaky(3, "40P01") == "done" and calls["flaky"] == 4
    assert len(sleeps) == 3 and sleeps[0] < sleeps[2] <= 0.3
    calls.clear()
    with pytest.raises(WriteConflictError, match="flaky: aborted by concurrent writes 10 times"):
        flaky(99)
    assert calls["flaky"] == database_module.RETRY_ATTEMPTS
    calls.clear()
    with pytest.raises(OperationalError):
        flaky(1, "23505")  # not an abort: raised at once
    assert calls["flaky"] == 1

    @retrying
    def outer() -> str:
        calls["outer"] += 1
        return flaky(1)

    calls.clear()
    assert outer() == "done"  # the inner failure re-runs the outer operation
    assert calls == {"outer": 2, "flaky": 2}
    assert getattr(Workspace.patch_instance, "__posekit_retrying__", False)
    assert getattr(Workspace.create_project, "__posekit_retrying__", False)
    assert getattr(import_images, "__posekit_retrying__", False)


# ------------------------------------------------------------------ URLs
def test_urls_are_checked_and_passwords_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert parse_database_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert parse_database_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    with pytest.raises(DatabaseUnavailableError, match="not valid"):
        parse_database_url("not a url")
    with pytest.raises(DatabaseUnavailableError, match=r"mysql://u:\*\*\*@h/db.*'mysql'"):
        parse_database_url("mysql://u:p@h/db")
    with pytest.raises(DatabaseUnavailableError, match="names no database"):
        parse_database_url("postgresql://u:p@h")
    refused = "postgresql://bob:s3cr3t@127.0.0.1:1/pk"
    with (
        caplog.at_level(logging.DEBUG, logger="posekit"),
        pytest.raises(DatabaseUnavailableError) as info,
    ):
        Workspace(tmp_path / "ws", database_url=refused)
    message = str(info.value)
    assert "cannot connect to the database postgresql+psycopg://bob:***@127.0.0.1:1/pk" in message
    assert "s3cr3t" not in message and "s3cr3t" not in caplog.text


def test_opening_logs_the_url_without_its_password(
    postgres_database: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy.engine import make_url

    with_password = make_url(postgres_database).set(password="pw-secret")
    url = with_password.render_as_string(hide_password=False)
    # trust authentication: any password is accepted, and must never be shown
    with caplog.at_level(logging.DEBUG, logger="posekit"):
        Workspace(tmp_path / "ws", database_url=url).close()
    assert "opened workspace" in caplog.text and "***" in caplog.text
    assert "pw-secret" not in caplog.text


# ------------------------------------------------------------------ 20 clients at once
def test_20_clients_saving_the_same_instances_lose_nothing_one_winner_per_version(
    opener: Callable[[], Workspace], tmp_path: Path
) -> None:
    """20 clients, each with its own Workspace (engine), repeatedly read the same
    instances and save them with the version they read, all at the same moment:
    per version exactly one save wins, every other one gets StaleVersionError
    carrying the winner's version, and every winning save is in the history."""
    setup = opener()
    project = setup.create_project("people", get_preset("coco17"))
    import_images(setup, project, "train", [_images(tmp_path / "img", 2)])
    items = setup.list_items(project)
    shared = [setup.add_instance(items[0], make_person(i)).id for i in range(2)]
    own = [setup.add_instance(items[1], make_person(100 + k)).id for k in range(CLIENTS)]
    rounds = 3
    clients = [opener() for _ in range(CLIENTS)]
    barrier = threading.Barrier(CLIENTS, timeout=120)
    wins: dict[tuple[int, int], list[int]] = defaultdict(list)
    refusals: dict[tuple[int, int], list[int]] = defaultdict(list)
    own_saves: dict[int, list[float]] = defaultdict(list)
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        ws = clients[k]
        try:
            for round_ in range(rounds):
                for instance_id in shared:
                    barrier.wait()
                    version = ws.get_instance(instance_id).version
                    barrier.wait()  # everybody has read it before anybody writes
                    score = k + round_ / 10
                    try:
                        saved = ws.patch_instance(instance_id, {"score": score}, version)
                    except StaleVersionError as exc:
                        with lock:
                            refusals[instance_id, version].append(exc.current.version)
                    else:
                        assert saved.version == version + 1
                        with lock:
                            wins[instance_id, version].append(k)
                    # and its own instance, unopposed: every save must land
                    mine = ws.get_instance(own[k])
                    ws.patch_instance(own[k], {"score": score}, mine.version)
                    own_saves[k].append(score)
            ws.add_instance(items[1], make_person(1000 + k))  # counted by the triggers
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors, errors[:3]
    check = opener()
    for instance_id in shared:
        history = check.instance_history(instance_id)
        assert [v.version for v in history] == list(range(1, rounds + 2))
        for version in range(1, rounds + 1):
            (winner,) = wins[instance_id, version]  # exactly one winner per version
            assert refusals[instance_id, version] == [version + 1] * (CLIENTS - 1)
            saved = history[version].instance.score  # what the winner wrote, kept
            assert saved == pytest.approx(winner + (version - 1) / 10)
    for k, instance_id in enumerate(own):  # nothing lost
        history = check.instance_history(instance_id)
        assert len(history) == 1 + len(own_saves[k]) == 1 + rounds * len(shared)
        assert [v.instance.score for v in history[1:]] == pytest.approx(own_saves[k])
    assert project_counts(check) == _recount(check) == {project.id: (2, 2 + 2 * CLIENTS)}
    with check.engine.connect() as conn:
        versions = conn.execute(select(InstanceRow.version).where(InstanceRow.id.in_(shared)))
        assert set(versions.scalars()) == {rounds + 1}
