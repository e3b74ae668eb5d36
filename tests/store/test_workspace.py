"""Tests for posekit.store.workspace: CRUD, versions, concurrency, transactions."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from posekit import Instance, get_preset
from posekit.store import (
    AlreadyExistsError,
    NotFoundError,
    StaleVersionError,
    StoreError,
    Workspace,
    import_images,
)

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
COCO_IMAGES = DATA / "coco-val2017-sample" / "images"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "ws")
    yield workspace
    workspace.close()


@pytest.fixture
def item(ws: Workspace):
    if not COCO_IMAGES.is_dir():
        pytest.skip(f"sample data not found at {COCO_IMAGES}")
    ws.create_project("people", get_preset("coco17"))
    report = import_images(ws, "people", "train", [COCO_IMAGES / "000000000785.jpg"])
    assert report.added == 1
    return ws.list_items("people")[0]


def person(seed: int = 0, **kw) -> Instance:
    rng = np.random.default_rng(seed)
    vis = rng.integers(0, 3, 17)
    return Instance(rng.uniform(0, 400, (17, 2)), vis, **kw)


@pytest.mark.sqlite_only(reason="the SQLite file and its pragmas")
def test_workspace_layout_and_sqlite_settings(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "w")
    assert ws.db_path == (tmp_path / "w" / "posekit.db").resolve()
    assert ws.media_root.is_dir()
    with ws.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    ws.close()


@pytest.mark.sqlite_only(reason="the SQLite file in the default folder")
def test_default_path_comes_from_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POSEKIT_WORKSPACE", str(tmp_path / "from-env"))
    ws = Workspace.open()
    assert ws.root == (tmp_path / "from-env").resolve()
    assert (tmp_path / "from-env" / "posekit.db").is_file()
    ws.close()
    monkeypatch.delenv("POSEKIT_WORKSPACE")
    monkeypatch.chdir(tmp_path)
    ws = Workspace()
    assert ws.root == (tmp_path / "posekit-data").resolve()
    ws.close()


def test_projects_keep_their_template_and_errors_list_names(ws: Workspace) -> None:
    coco = get_preset("coco17")
    custom = coco.from_dict({**coco.to_dict(), "name": "custom17"})
    ws.create_project("b-project", custom)
    ws.create_project("a-project", coco)
    assert [p.name for p in ws.list_projects()] == ["a-project", "b-project"]
    # A fresh Workspace reads the template back from the database.
    other = Workspace(ws.root)
    assert other.get_project("b-project").template == custom
    assert other.get_project("b-project").template.name == "custom17"
    other.close()
    with pytest.raises(AlreadyExistsError, match="'a-project' already exists"):
        ws.create_project("a-project", coco)
    with pytest.raises(NotFoundError, match=r"no project named 'nope'.*a-project, b-project"):
        ws.get_project("nope")
    with pytest.raises(StoreError, match="non-empty"):
        ws.create_project("  ", coco)


def test_datasets(ws: Workspace) -> None:
    project = ws.create_project("p", get_preset("coco17"))
    train = ws.create_dataset(project, "train")
    assert ws.get_or_create_dataset("p", "train") == train
    val = ws.get_or_create_dataset("p", "val")
    assert [d.name for d in ws.list_datasets("p")] == ["train", "val"]
    assert val.id != train.id
    with pytest.raises(AlreadyExistsError, match="already has a dataset 'train'"):
        ws.create_dataset("p", "train")
    with pytest.raises(NotFoundError, match="no dataset 'test'; existing datasets: train, val"):
        ws.get_dataset("p", "test")
    # Same dataset name in another project is fine.
    ws.create_project("q", get_preset("coco17"))
    assert ws.create_dataset("q", "train").id not in (train.id, val.id)


def test_instance_round_trip_is_exact(ws: Workspace, item) -> None:
    inst = person(
        1,
        keypoint_scores=np.linspace(0, 1, 17),
        box=[1.5, 2.25, 300.125, 400.0],
        score=0.875,
        source="model:blazepose",
        status="predicted",
        track_id=7,
        area=1234.5,
        segmentation=[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]],
        extra={"note": "hello", "nested": {"a": [1, 2]}},
    )
    record = ws.add_instance(item, inst)
    assert record.version == 1 and record.item_id == item.id
    stored = ws.get_instances(item.id)
    assert len(stored) == 1
    assert stored[0] == inst.copy(id=record.id)
    assert stored[0].keypoints.flags.writeable  # callers may edit the arrays in place
    crowd = Instance(np.zeros((17, 2)), np.zeros(17), iscrowd=True)
    ws.add_instance(item, crowd)
    got = ws.get_instances(item)
    assert got[1].iscrowd and got[1].box is None and got[1].keypoint_scores is None


def test_wrong_keypoint_count_is_refused(ws: Workspace, item) -> None:
    bad = Instance(np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(StoreError, match="5 keypoints but template 'coco17' has 17"):
        ws.add_instance(item, bad)
    with pytest.raises(NotFoundError, match="item 999999"):
        ws.add_instance(999999, person())


def test_update_increments_version_and_stale_update_is_refused(ws: Workspace, item) -> None:
    record = ws.add_instance(item, person(1))
    v2 = ws.update_instance(record.id, person(2), expected_version=1)
    assert v2 == 2
    v3 = ws.update_instance(record.id, person(3, status="rejected"), expected_version=2)
    assert v3 == 3
    current = ws.get_instance(record.id)
    assert current.version == 3 and current.instance.status == "rejected"
    assert current.updated_at >= current.created_at
    with pytest.raises(StaleVersionError) as info:
        ws.update_instance(record.id, person(4), expected_version=2)
    err = info.value
    assert err.instance_id == record.id and err.expected_version == 2
    assert err.current.version == 3
    assert err.current.instance == person(3, status="rejected").copy(id=record.id)
    # Nothing was overwritten.
    assert ws.get_instance(record.id) == current
    with pytest.raises(NotFoundError, match="instance 424242"):
        ws.update_instance(424242, person(), expected_version=1)


def test_delete_instance(ws: Workspace, item) -> None:
    a = ws.add_instance(item, person(1))
    b = ws.add_instance(item, person(2))
    ws.update_instance(b.id, person(3), 1)
    with pytest.raises(StaleVersionError):
        ws.delete_instance(b.id, expected_version=1)
    ws.delete_instance(b.id, expected_version=2)
    ws.delete_instance(a.id)
    assert ws.get_instances(item) == []
    with pytest.raises(NotFoundError):
        ws.delete_instance(a.id)


def test_two_workspaces_on_the_same_folder(ws: Workspace, item) -> None:
    record = ws.add_instance(item, person(1))
    other = Workspace(ws.root)
    mine = ws.get_instance(record.id)
    theirs = other.get_instance(record.id)
    assert mine.version == theirs.version == 1
    assert other.update_instance(record.id, person(2), theirs.version) == 2
    with pytest.raises(StaleVersionError) as info:
        ws.update_instance(record.id, person(3), mine.version)
    assert info.value.current.instance == person(2).copy(id=record.id)
    other.close()


def test_concurrent_writers_exactly_one_wins(ws: Workspace, item) -> None:
    record = ws.add_instance(item, person(0))
    workspaces = [Workspace(ws.root) for _ in range(4)]
    barrier = threading.Barrier(len(workspaces))
    outcomes: list[str] = []
    lock = threading.Lock()

    def save(index: int) -> None:
        barrier.wait()
        try:
            workspaces[index].update_instance(record.id, person(10 + index), expected_version=1)
            result = f"ok{index}"
        except StaleVersionError:
            result = "stale"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(len(workspaces))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if o.startswith("ok")]
    assert len(winners) == 1 and outcomes.count("stale") == len(workspaces) - 1
    winner = int(winners[0][2:])
    final = ws.get_instance(record.id)
    assert final.version == 2 and final.instance == person(10 + winner).copy(id=record.id)
    for other in workspaces:
        other.close()


def test_write_predictions_overwrite_keeps_manual_and_accepted(ws: Workspace, item) -> None:
    manual = ws.add_instance(item, person(1))  # manual, accepted
    accepted_model = ws.add_instance(
        item, person(2, source="model:old", status="accepted", score=0.9)
    )
    old_pred = ws.add_instance(item, person(3, source="model:old", status="predicted"))
    new = [person(4, source="model:new", status="predicted", score=0.5)]
    # Without overwrite an item that has instances is left alone.
    assert ws.write_predictions({item.id: new}, overwrite=False) == {}
    ids = ws.replace_predictions(item, new)
    remaining = {i.id for i in ws.get_instances(item)}
    assert remaining == {manual.id, accepted_model.id, *ids}
    assert old_pred.id not in remaining
    assert ws.get_item(item.id).status == "predicted"


def test_item_status_and_listing(ws: Workspace, item) -> None:
    assert ws.count_items("people", status="new") == 1
    ws.set_item_status(item, "reviewed")
    assert ws.list_items("people", status=["reviewed"])[0].id == item.id
    assert ws.count_items("people", dataset="train", status="new") == 0
    with pytest.raises(StoreError, match="'done' is not one of new, predicted, reviewed"):
        ws.set_item_status(item, "done")


def test_media_paths_outside_the_workspace_are_refused(ws: Workspace) -> None:
    with pytest.raises(StoreError, match="outside"):
        ws.media_file("../../etc/passwd")
    with pytest.raises(StoreError, match="outside"):
        ws.media_file("/etc/passwd")


def test_delete_project_removes_rows_and_media(ws: Workspace, item) -> None:
    ws.add_instance(item, person(1))
    assert item.path is not None and item.path.is_file()
    ws.create_project("kept", get_preset("coco17"))
    ws.delete_project("people")
    assert ws.row_counts() == {"projects": 1, "datasets": 0, "items": 0, "instances": 0}
    assert not item.path.exists()


def test_foreign_key_cascade_deletes_instances_with_their_item(ws: Workspace, item) -> None:
    ws.add_instance(item, person(1))
    # Another client (any SQL tool) deleting an item must not leave orphans.
    if ws.db_path is not None:
        conn = sqlite3.connect(ws.db_path)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("DELETE FROM items WHERE id = ?", (item.id,))
        conn.commit()
        conn.close()
    else:
        other = create_engine(ws.database_url, poolclass=NullPool)
        with other.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM items WHERE id = {int(item.id)}")
        other.dispose()
    assert ws.row_counts()["instances"] == 0
