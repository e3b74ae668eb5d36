"""Instance history: every write path keeps the previous value with its author, listing,
restore as a new version, stale restores refused, deleted instances' history, the 0006
upgrade of an older workspace, COCO export with authors."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from posekit import get_preset
from posekit.core import Instance
from posekit.skeleton import Skeleton
from posekit.store import (
    NotFoundError,
    StaleVersionError,
    StoreError,
    Workspace,
    export,
    import_dataset,
)
from posekit.store.history import StaleRestoreError
from posekit.store.tables import InstanceVersionRow

from .store_factories import make_person, make_prediction

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_0_1_0"


@pytest.fixture
def team(people):
    """The ``people`` workspace with two users, ``ann`` and ``rev``."""
    ws, items = people
    return ws, items, ws.create_user("ann").id, ws.create_user("rev").id


def _trail(ws: Workspace, instance_id: int) -> list[tuple]:
    return [
        (v.version, v.author, v.replaced_by_action, v.replaced_by_name, v.current)
        for v in ws.instance_history(instance_id)
    ]


def test_every_instance_write_keeps_the_previous_value_and_its_author(team) -> None:
    ws, items, ann, rev = team
    first = make_person(1)
    record = ws.add_instance(items[0], first, author_id=ann)
    assert record.author_id == ann and record.version == 1
    moved = ws.patch_instance(
        record.id, {"keypoints": first.keypoints + 1}, 1, author_id=rev
    ).instance.keypoints
    second = make_person(2)
    assert ws.update_instance(record.id, second, 2, author_id=ann) == 3
    ws.review(items[0].id, {record.id: "reject"}, author_id=rev)
    history = ws.instance_history(record.id)
    assert _trail(ws, record.id) == [
        (1, "ann", "update", "rev", False),
        (2, "rev", "update", "ann", False),
        (3, "ann", "review", "rev", False),
        (4, "rev", None, None, True),
    ]
    np.testing.assert_array_equal(history[0].instance.keypoints, first.keypoints)
    np.testing.assert_array_equal(history[0].instance.visibility, first.visibility)
    np.testing.assert_array_equal(history[1].instance.keypoints, moved)
    np.testing.assert_array_equal(history[2].instance.keypoints, second.keypoints)
    assert [v.instance.status for v in history] == ["accepted"] * 3 + ["rejected"]
    assert all(v.instance.id == record.id and v.item_id == items[0].id for v in history)
    # Each version's time is when it was written; the next one replaced it after that.
    for older, newer in itertools.pairwise(history):
        assert older.written_at <= older.replaced_at == newer.written_at
    assert ws.get_instance(record.id).author_id == rev


def test_a_stale_write_records_nothing(team) -> None:
    ws, items, ann, rev = team
    record = ws.add_instance(items[0], make_person(1), author_id=ann)
    ws.patch_instance(record.id, {"score": 0.5}, 1, author_id=rev)
    with pytest.raises(StaleVersionError):
        ws.patch_instance(record.id, {"score": 0.7}, 1, author_id=ann)
    with pytest.raises(StaleVersionError):
        ws.delete_instance(record.id, 1, author_id=ann)
    assert [v.version for v in ws.instance_history(record.id)] == [1, 2]


def test_delete_keeps_the_history_and_restore_recreates_the_same_id(team) -> None:
    ws, items, ann, rev = team
    person = make_person(3, score=0.9)
    record = ws.add_instance(items[1], person, author_id=ann)
    ws.delete_instance(record.id, 1, author_id=rev)
    assert ws.get_instances(items[1]) == []
    assert _trail(ws, record.id) == [(1, "ann", "delete", "rev", False)]
    with pytest.raises(StaleRestoreError, match="deleted at version 1"):
        ws.restore_instance_version(record.id, 1, author_id=ann, expected_version=2)
    restored = ws.restore_instance_version(record.id, 1, author_id=ann, expected_version=1)
    assert (restored.id, restored.version, restored.author_id) == (record.id, 2, ann)
    np.testing.assert_array_equal(restored.instance.keypoints, person.keypoints)
    assert restored.instance.score == pytest.approx(0.9)
    assert restored.created_at == record.created_at
    assert [r.id for r in ws.get_instance_records(items[1])] == [record.id]
    assert ws.get_item(items[1].id).status == "reviewed"
    assert _trail(ws, record.id) == [
        (1, "ann", "delete", "rev", False),
        (2, "ann", None, None, True),
    ]
    # A new instance never takes a deleted one's id.
    other = ws.add_instance(items[1], make_person(4))
    assert other.id > record.id


def test_restore_writes_a_new_version_and_refuses_stale_ones(team) -> None:
    ws, items, ann, rev = team
    original = make_person(5)
    record = ws.add_instance(items[0], original, author_id=ann)
    ws.patch_instance(record.id, {"score": 0.1}, 1, author_id=rev)
    with pytest.raises(StaleVersionError) as stale:
        ws.restore_instance_version(record.id, 1, author_id=ann, expected_version=1)
    assert stale.value.current.version == 2
    assert [v.version for v in ws.instance_history(record.id)] == [1, 2]
    restored = ws.restore_instance_version(record.id, 1, author_id=ann, expected_version=2)
    assert (restored.version, restored.author_id) == (3, ann)
    np.testing.assert_array_equal(restored.instance.keypoints, original.keypoints)
    assert _trail(ws, record.id) == [
        (1, "ann", "update", "rev", False),
        (2, "rev", "restore", "ann", False),
        (3, "ann", None, None, True),
    ]
    with pytest.raises(StoreError, match="is the current version"):
        ws.restore_instance_version(record.id, 3, author_id=ann, expected_version=3)
    with pytest.raises(NotFoundError, match="has no version 9"):
        ws.restore_instance_version(record.id, 9, author_id=ann, expected_version=3)
    with pytest.raises(NotFoundError, match="instance 999"):
        ws.restore_instance_version(999, 1, author_id=ann, expected_version=1)
    with pytest.raises(NotFoundError, match="instance 999"):
        ws.instance_history(999)


def test_predictions_replaced_by_a_new_run_stay_in_the_history(team) -> None:
    ws, items, _, rev = team
    first = ws.write_predictions({items[0].id: [make_prediction(1)]}, overwrite=True)
    (old_id,) = first[items[0].id]
    assert ws.get_instance(old_id).author_id is None
    second = ws.write_predictions(
        {items[0].id: [make_prediction(2)]}, overwrite=True, author_id=rev
    )
    (new_id,) = second[items[0].id]
    assert ws.get_instance(new_id).author_id == rev
    assert _trail(ws, old_id) == [(1, None, "delete", "rev", False)]
    assert ws.instance_history(old_id)[0].instance.source == "model:test"


def test_imports_set_the_author_and_record_no_history(tmp_path: Path, team) -> None:
    ws, _, ann, _ = team
    coco = {
        "images": [{"id": 1, "file_name": "x.png", "width": 64, "height": 48}],
        "annotations": [
            {"id": 5, "image_id": 1, "category_id": 1, "keypoints": [10, 10, 2] * 17,
             "num_keypoints": 17, "bbox": [1, 1, 20, 20], "area": 400, "iscrowd": 0,
             "segmentation": [[1, 1, 20, 1, 20, 20]]}
        ],
        "categories": [dict(id=1, name="person", **_coco17_lists())],
    }  # fmt: skip
    path = tmp_path / "in.json"
    path.write_text(json.dumps(coco))
    import_dataset(ws, "people", "imported", path, copy_media=False, author_id=ann)
    (item,) = ws.list_items("people", dataset="imported")
    (record,) = ws.get_instance_records(item)
    assert record.author_id == ann
    assert _trail(ws, record.id) == [(1, "ann", None, None, True)]
    assert _version_rows(ws) == 0
    # Deleted and restored, it comes back whole: segmentation, area, its COCO id.
    ws.delete_instance(record.id, author_id=ann)
    back = ws.restore_instance_version(record.id, 1, author_id=ann, expected_version=1)
    assert back.instance.segmentation == [[1, 1, 20, 1, 20, 20]]
    assert back.instance.area == pytest.approx(400) and back.instance.iscrowd is False
    out = tmp_path / "out.json"
    export(ws, "people", out, format="coco", dataset="imported")
    assert [a["id"] for a in json.loads(out.read_text())["annotations"]] == [5]


def _coco17_lists() -> dict:
    template = get_preset("coco17")
    return {
        "keypoints": list(template.keypoints),
        "skeleton": [[int(a) + 1, int(b) + 1] for a, b in template.edge_index],
    }


def _version_rows(ws: Workspace) -> int:
    from sqlalchemy import func, select

    with ws.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(InstanceVersionRow)).scalar())


def test_a_template_change_keeps_every_previous_version(team) -> None:
    ws, items, ann, rev = team
    ids = [ws.add_instance(item, make_person(n), author_id=ann).id for n, item in enumerate(items)]
    old = ws.get_project("people").template
    data = old.to_dict()
    data["keypoints"] = [*data["keypoints"], "extra_point"]
    data["sigmas"] = [*data["sigmas"], 0.05]
    data["keypoint_colors"] = [*data["keypoint_colors"], data["keypoint_colors"][0]]
    ws.change_template("people", Skeleton.from_dict(data), author_id=rev)
    for instance_id in ids:
        assert _trail(ws, instance_id) == [
            (1, "ann", "update", "rev", False),
            (2, "rev", None, None, True),
        ]
        history = ws.instance_history(instance_id)
        assert history[0].instance.num_keypoints == 17
        assert history[1].instance.num_keypoints == 18
    # A version of the old layout cannot come back into the new template.
    with pytest.raises(StoreError, match="before a template change"):
        ws.restore_instance_version(ids[0], 1, author_id=ann, expected_version=2)
    assert ws.get_instance(ids[0]).version == 2


def test_deleting_the_project_deletes_its_history(team) -> None:
    ws, items, ann, rev = team
    record = ws.add_instance(items[0], make_person(1), author_id=ann)
    ws.delete_instance(record.id, author_id=rev)
    assert _version_rows(ws) == 1
    ws.delete_project("people")
    assert _version_rows(ws) == 0


# ------------------------------------------------------------------ video tracks
@pytest.fixture
def video_team(tmp_path: Path):
    pytest.importorskip("av")
    from posekit.render.video import write_video
    from posekit.store.video_imports import import_video

    clip = tmp_path / "clip.mp4"
    write_video(clip, [np.full((48, 64, 3), 10 * i, np.uint8) for i in range(8)], 10)
    ws = Workspace(tmp_path / "ws")
    ws.create_project("people", get_preset("coco17"))
    video = import_video(ws, "people", "clips", clip).video
    yield ws, video, ws.create_user("ann").id, ws.create_user("rev").id
    ws.close()


def _pose(x: float) -> Instance:
    kps = np.stack([np.full(17, x), np.arange(17, dtype=np.float32)], axis=1)
    return Instance(kps.astype(np.float32), np.full(17, 2, np.uint8))


def test_track_edits_keep_the_previous_versions(video_team) -> None:
    ws, video, ann, rev = video_team
    key = ws.set_keyframe(video, 2, 1, _pose(10), author_id=ann)
    assert key.author_id == ann
    edited = ws.set_keyframe(video, 2, 1, _pose(12), expected_version=1, author_id=rev)
    with pytest.raises(StaleVersionError):
        ws.set_keyframe(video, 2, 1, _pose(14), expected_version=1, author_id=ann)
    later = ws.set_keyframe(video, 6, 1, _pose(20), author_id=ann)
    new_track = ws.split_track(video, 1, 5, author_id=rev)
    assert _trail(ws, key.id) == [
        (1, "ann", "update", "rev", False),
        (2, "rev", None, None, True),
    ]
    assert ws.instance_history(key.id)[0].instance.keypoints[0, 0] == 10
    # The split moved frame 6 to the new track (a new version by rev).
    moved = ws.instance_history(later.id)
    assert [(v.version, v.instance.track_id, v.author) for v in moved] == [
        (1, 1, "ann"),
        (2, new_track.track_id, "rev"),
    ]
    ws.merge_tracks(video, 1, new_track.track_id, author_id=ann)
    assert [v.instance.track_id for v in ws.instance_history(later.id)][-1] == 1
    ws.set_outside(video, 1, 2, True, author_id=ann)
    assert _trail(ws, edited.id)[-1] == (2, "rev", "delete", "ann", False)


def test_video_predictions_replaced_stay_in_the_history(video_team) -> None:
    ws, video, ann, rev = video_team
    ws.write_frame_predictions(video, {3: [_pose(5).copy(status="predicted", source="model:m")]})
    (first,) = [f for f in ws.frame_view(video, 3) if f.stored]
    ws.write_frame_predictions(
        video, {3: [_pose(6).copy(status="predicted", source="model:m")]}, author_id=rev
    )
    assert _trail(ws, first.instance_id) == [(1, None, "delete", "rev", False)]
    (second,) = [f for f in ws.frame_view(video, 3) if f.stored]
    assert ws.get_instance(second.instance_id).author_id == rev
    assert ws.clear_video_predictions(video, author_id=ann) == 1
    assert _trail(ws, second.instance_id) == [(1, "rev", "delete", "ann", False)]


# ------------------------------------------------------------------ upgrade 0006
@pytest.mark.sqlite_only(reason="upgrades the 0.1.0 SQLite fixture")
def test_an_upgraded_workspace_keeps_its_instances_with_no_author(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(FIXTURE / "workspace", folder)
    ws = Workspace(folder)
    try:
        item = next(i for p in ws.list_projects() for i in ws.list_items(p) if ws.get_instances(i))
        record = ws.get_instance_records(item)[0]
        assert record.author_id is None
        (only,) = ws.instance_history(record.id)
        assert (only.version, only.author_id, only.author, only.current) == (
            record.version, None, None, True,
        )  # fmt: skip
        user = ws.create_user("ann").id
        ws.patch_instance(record.id, {"score": 0.25}, record.version, author_id=user)
        before, now = ws.instance_history(record.id)
        assert (before.author, before.replaced_by_name, now.author) == (None, "ann", "ann")
        assert before.written_at == record.updated_at
    finally:
        ws.close()


# ------------------------------------------------------------------ COCO export
def test_coco_export_carries_authors_and_reads_back(tmp_path: Path, team) -> None:
    ws, items, ann, rev = team
    a = ws.add_instance(items[0], make_person(1), author_id=ann)
    ws.add_instance(items[1], make_person(2), author_id=rev)
    ws.add_instance(items[2], make_person(3))  # a script without a user
    ws.patch_instance(a.id, {"score": 0.5}, 1, author_id=rev)
    out = tmp_path / "authors.json"
    export(ws, "people", out, format="coco", with_authors=True)
    data = json.loads(out.read_text())
    by_file = {img["id"]: img["file_name"] for img in data["images"]}
    authors = {by_file[ann_["image_id"]]: ann_.get("author") for ann_ in data["annotations"]}
    assert authors == {"img0.png": "rev", "img1.png": "rev", "img2.png": None}
    assert sum("author" in x for x in data["annotations"]) == 2  # none where unknown
    plain = tmp_path / "plain.json"
    export(ws, "people", plain, format="coco")
    assert all("author" not in x for x in json.loads(plain.read_text())["annotations"])

    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        loaded = COCO(str(out))
    assert len(loaded.getAnnIds()) == 3
    assert {loaded.anns[i].get("author") for i in loaded.getAnnIds()} == {"rev", None}

    # The import keeps it as an unknown field: exported again (without the option) it
    # is written back unchanged.
    other = Workspace(tmp_path / "other")
    other.create_project("people", get_preset("coco17"))
    import_dataset(other, "people", "in", out, copy_media=False)
    again = tmp_path / "again.json"
    export(other, "people", again, format="coco")
    written = json.loads(again.read_text())["annotations"]
    assert sorted(str(x.get("author")) for x in written) == ["None", "rev", "rev"]
    other.close()

    with pytest.raises(StoreError, match="with_authors: only the COCO format"):
        export(ws, "people", tmp_path / "yolo", format="yolo", with_authors=True)
