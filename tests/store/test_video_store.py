"""Videos in the store: import, frames as items, tracks, keyframes, interpolated views,
outside, split/merge, prediction writes, export/import round trip, the 0003 upgrade."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from posekit import get_preset
from posekit.core import Instance
from posekit.store import NotFoundError, StoreError, Workspace, export, import_dataset
from posekit.store.schema import head_revision
from posekit.store.video_imports import import_video, is_video_path

pytest.importorskip("av")

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "workspace_0_1_0"
K = 17


def _frames(count: int = 12, width: int = 64, height: int = 48) -> list[np.ndarray]:
    return [np.full((height, width, 3), 10 * i, np.uint8) for i in range(count)]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    from posekit.render.video import write_video

    path = tmp_path / "clip.mp4"
    write_video(path, _frames(), 10)
    return path


@pytest.fixture
def video_ws(tmp_path: Path, clip: Path):
    ws = Workspace(tmp_path / "ws")
    ws.create_project("people", get_preset("coco17"))
    report = import_video(ws, "people", "clips", clip)
    yield ws, report.video
    ws.close()


def _pose(x: float, y: float, visibility: int = 2, **fields) -> Instance:
    kps = np.stack([np.full(K, x), np.full(K, y) + np.arange(K)], axis=1)
    return Instance(kps, np.full(K, visibility), **fields)


def test_import_video_stores_metadata_and_index(video_ws, clip: Path) -> None:
    ws, video = video_ws
    assert (video.frame_count, video.width, video.height, video.rotation) == (12, 64, 48, 0)
    assert video.fps == pytest.approx(10.0) and video.duration == pytest.approx(1.2)
    assert video.decode_index is not None and video.path is not None and video.path.is_file()
    assert video.timestamps()[3] == pytest.approx(0.3)
    with ws.open_video(video) as opened:
        assert opened.frame(5).shape == (48, 64, 3)
    # No frame was written as an image, and no item exists yet.
    assert ws.frame_items(video) == {} and ws.count_items("people") == 0
    again = import_video(ws, "people", "clips", clip)
    assert again.video is None and "already" in again.summary()
    assert is_video_path(clip) and not is_video_path(clip.with_suffix(".png"))


def test_frame_folder_import(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(_frames(4)):
        Image.fromarray(frame).save(folder / f"f{i + 1}.png")
    with Workspace(tmp_path / "ws") as ws:
        ws.create_project("p", get_preset("coco17"))
        with pytest.raises(StoreError, match="fps"):
            import_video(ws, "p", "d", folder, frames_folder=True)
        video = import_video(ws, "p", "d", folder, frames_folder=True, fps=5).video
        assert (video.kind, video.frame_count, video.fps) == ("frames", 4, 5.0)
        with ws.open_video(video) as opened:
            assert int(opened.frame(2)[0, 0, 0]) == 20


def test_interpolated_view_between_keyframes_is_exact(video_ws) -> None:
    ws, video = video_ws
    ws.set_keyframe(video, 2, 1, _pose(10, 20))
    ws.set_keyframe(video, 6, 1, _pose(30, 40))
    (view,) = ws.frame_view(video, 3)
    assert not view.stored and not view.keyframe and view.track_id == 1
    assert (view.previous_keyframe, view.next_keyframe) == (2, 6)
    # t = 1/4 of the way from (10, 20) to (30, 40), keypoint j at y + j.
    expected = np.stack([np.full(K, 15.0), 25.0 + np.arange(K)], axis=1)
    np.testing.assert_array_equal(view.instance.keypoints, expected.astype(np.float32))
    (key,) = ws.frame_view(video, 6)
    assert key.stored and key.keyframe and key.version == 1
    # Open track: held after the last keyframe up to the end; absent before the first.
    (held,) = ws.frame_view(video, 11)
    np.testing.assert_array_equal(held.instance.keypoints, key.instance.keypoints)
    assert ws.frame_view(video, 1) == []
    track = ws.get_track(video, 1)
    assert track.keyframes == (2, 6) and track.outside == ()
    # Only the keyframes are stored: two frame items, with timestamps.
    items = ws.frame_items(video)
    assert sorted(items) == [2, 6] and items[6].file_name == "clip.mp4/000006.jpg"
    assert items[6].extra["timestamp"] == pytest.approx(0.6)


def test_editing_a_keyframe_is_versioned(video_ws) -> None:
    from posekit.store import StaleVersionError

    ws, video = video_ws
    first = ws.set_keyframe(video, 4, 1, _pose(1, 1))
    second = ws.set_keyframe(video, 4, 1, _pose(2, 2), expected_version=1)
    assert second.id == first.id and second.version == 2
    with pytest.raises(StaleVersionError):
        ws.set_keyframe(video, 4, 1, _pose(3, 3), expected_version=1)
    with pytest.raises(StoreError, match="out of range"):
        ws.set_keyframe(video, 12, 1, _pose(3, 3))


def test_outside_ends_a_segment_and_split_merge(video_ws) -> None:
    ws, video = video_ws
    ws.set_keyframe(video, 0, 1, _pose(0, 0))
    ws.set_keyframe(video, 8, 1, _pose(80, 80))
    track = ws.set_outside(video, 1, 5)
    assert track.outside == (5,)
    assert ws.frame_view(video, 4)[0].instance.keypoints[0, 0] == pytest.approx(0.0)  # held
    assert ws.frame_view(video, 5) == [] and ws.frame_view(video, 7) == []
    assert ws.set_outside(video, 1, 5, False).outside == ()
    assert ws.frame_view(video, 4)[0].instance.keypoints[0, 0] == pytest.approx(40.0)

    new = ws.split_track(video, 1, 4)  # interpolated at 4: stored as the new first keyframe
    assert new.track_id == 2 and new.keyframes == (4, 8)
    assert ws.get_track(video, 1).outside == (4,) and ws.get_track(video, 1).keyframes == (0,)
    (at4,) = ws.frame_view(video, 4)
    assert at4.track_id == 2 and at4.keyframe and at4.instance.keypoints[0, 0] == 40.0
    with pytest.raises(StoreError, match="both have an instance on frame"):
        ws.set_keyframe(video, 4, 1, _pose(1, 1))
        ws.merge_tracks(video, 1, 2)
    ws.delete_instance(ws.frame_view(video, 4)[0].instance_id)  # track 1's new keyframe
    merged = ws.merge_tracks(video, 1, 2)
    assert merged.keyframes == (0, 4, 8) and [t.track_id for t in ws.list_tracks(video)] == [1]


def test_prediction_writes_keep_keyframes(video_ws) -> None:
    ws, video = video_ws
    ws.set_keyframe(video, 3, 1, _pose(5, 5))
    preds = {
        f: [_pose(f, f, source="model:m", status="predicted", score=0.9, track_id=1)]
        for f in (3, 4, 5)
    }
    written = ws.write_frame_predictions(video, preds, outside={1: [6]})
    assert written == {4: 1, 5: 1}  # frame 3's keyframe is not written over
    track = ws.get_track(video, 1)
    assert track.keyframes == (3,) and track.frames == (3, 4, 5) and track.outside == (6,)
    (at4,) = ws.frame_view(video, 4)
    assert at4.stored and not at4.keyframe and at4.instance.status == "predicted"
    assert ws.frame_item(video, 4, create=False).status == "predicted"
    # Replacing predictions: the old ones go, the keyframe stays.
    ws.write_frame_predictions(video, {4: [_pose(9, 9, source="model:m", status="predicted")]})
    assert ws.get_track(video, 1).frames == (3, 5)


def test_export_coco_with_video_fields_round_trips(video_ws, tmp_path: Path) -> None:
    ws, video = video_ws
    ws.set_keyframe(video, 2, 1, _pose(10, 20))
    ws.set_keyframe(video, 4, 1, _pose(30, 40))
    ws.set_outside(video, 1, 6)
    ws.get_track(video, 1)
    out = tmp_path / "out.json"
    report = export(ws, "people", out, format="coco")
    data = json.loads(out.read_text())
    images = {im["frame_index"] if "frame_index" in im else im["id"]: im for im in data["images"]}
    assert report.images == 4  # frames 2, 3 (interpolated), 4, 5 (held)
    first = data["images"][0]
    assert first["vid_id"] == "clip.mp4" and first["nframes"] == 12 and "frame_id" in first
    assert all("is_labeled" in im and "timestamp" in im for im in data["images"])
    assert {a["track_id"] for a in data["annotations"]} == {1}
    interpolated = [a for a in data["annotations"] if a.get("posekit_interpolated")]
    assert len(interpolated) == 2
    assert data["posekit_tracks"][0]["keyframes"] == [2, 4]
    assert data["posekit_tracks"][0]["outside"] == [6]
    del images

    with Workspace(tmp_path / "ws2") as ws2:
        ws2.create_project("people", get_preset("coco17"))
        import_dataset(ws2, "people", "back", out, format="coco", copy_media=False)
        (back,) = ws2.list_videos("people")
        assert back.frame_count == 12 and back.file_name == "clip.mp4"
        track = ws2.get_track(back, 1)
        assert track.keyframes == (2, 4) and track.frames == (2, 4) and track.outside == (6,)
        np.testing.assert_array_equal(
            ws2.frame_view(back, 3)[0].instance.keypoints,
            ws.frame_view(video, 3)[0].instance.keypoints,
        )
        again = tmp_path / "again.json"
        export(ws2, "people", again, format="coco")
        assert json.loads(again.read_text()) == data


def test_delete_project_removes_videos_and_tracks(video_ws) -> None:
    ws, video = video_ws
    ws.set_keyframe(video, 1, 1, _pose(1, 1))
    ws.delete_project("people")
    counts = ws.row_counts()
    assert counts["items"] == 0 and counts["instances"] == 0
    with pytest.raises(NotFoundError):
        ws.get_video(video.id)


@pytest.mark.sqlite_only(reason="upgrades the 0.1.0 SQLite fixture")
def test_0_1_0_workspace_upgrades_to_video_schema(tmp_path: Path, clip: Path) -> None:
    target = tmp_path / "old"
    shutil.copytree(FIXTURE / "workspace", target)
    with sqlite3.connect(target / "posekit.db") as conn:
        before = conn.execute("SELECT id, item_id, track_id FROM instances ORDER BY id").fetchall()
    with Workspace(target) as ws:
        assert ws.schema_backup is not None
        project = ws.list_projects()[0]
        import_video(ws, project, "clips", clip)
        (video,) = ws.list_videos(project)
        ws.set_keyframe(
            video,
            0,
            1,
            Instance(
                np.zeros((project.template.num_keypoints, 2)),
                np.full(project.template.num_keypoints, 2),
            ),
        )
    with sqlite3.connect(target / "posekit.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"videos", "tracks"} <= tables
        after = conn.execute("SELECT id, item_id, track_id FROM instances ORDER BY id").fetchall()
        flags = conn.execute("SELECT keyframe FROM instances ORDER BY id").fetchall()
        assert (
            conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
        )
    assert after[: len(before)] == before
    assert [f for (f,) in flags[: len(before)]] == [0] * len(before) and flags[-1] == (1,)
