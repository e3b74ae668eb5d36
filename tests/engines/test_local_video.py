"""Tracked auto-labeling of a project's videos and propagation (engines.local_video)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posekit import get_preset
from posekit.core import Instance
from posekit.engines.local import autolabel
from posekit.engines.local_video import propagate
from posekit.pipeline.options import AutolabelOptions
from posekit.store import StoreError, Workspace
from posekit.store.video_imports import import_video
from video_fakes import (
    SquareDetector,
    SquarePose,
    square_frames,
    square_pose_keypoints,
    write_frame_folder,
)


def walker(f: int) -> tuple[int, int]:
    return 6 + 2 * f, 30


def late_comer(f: int) -> tuple[int, int]:
    return (120, 20) if f >= 4 else (-100, -100)


@pytest.fixture
def ws(tmp_path: Path):
    frames = square_frames(10, [walker])
    for f in range(4, 10):
        frames[f][20:36, 120:136] = 255
    folder = write_frame_folder(tmp_path / "frames", frames)
    workspace = Workspace(tmp_path / "ws")
    workspace.create_project("p", get_preset("coco17"))
    import_video(workspace, "p", "clips", folder, frames_folder=True, fps=10)
    yield workspace
    workspace.close()


def test_autolabel_videos_tracks_and_resumes(ws) -> None:
    options = AutolabelOptions(tracker_options={"min_hits": 2})
    report = autolabel(ws, "p", options, detector=SquareDetector(), pose=SquarePose())
    assert report.processed == 10 and not report.failures
    (video,) = ws.list_videos("p")
    assert video.status == "predicted"
    tracks = ws.list_tracks(video)
    assert [t.track_id for t in tracks] == [1, 2]
    assert tracks[0].frames == tuple(range(10)) and tracks[0].keyframes == ()
    assert tracks[1].frames == tuple(range(4, 10))  # born at 4, backfilled from its first frame
    (at3,) = ws.frame_view(video, 3)
    np.testing.assert_array_equal(at3.instance.keypoints, square_pose_keypoints(*walker(3)))
    assert at3.instance.status == "predicted" and at3.instance.source == "model:squarepose"
    # Frames are items of the video, not images to auto-label again.
    again = autolabel(ws, "p", options, detector=SquareDetector(), pose=SquarePose())
    assert again.processed == 0 and again.skipped == 1


def test_overwrite_keeps_keyframes(ws) -> None:
    options = AutolabelOptions(tracker_options={"min_hits": 1})
    autolabel(ws, "p", options, detector=SquareDetector(), pose=SquarePose())
    (video,) = ws.list_videos("p")
    mine = Instance(square_pose_keypoints(0, 0), np.full(17, 2))
    ws.set_keyframe(video, 2, 1, mine)
    autolabel(
        ws, "p", AutolabelOptions(overwrite=True, tracker_options={"min_hits": 1}),
        detector=SquareDetector(), pose=SquarePose(),
    )  # fmt: skip
    track = ws.get_track(video, 1)
    assert track.keyframes == (2,) and track.frames == tuple(range(10))
    at2 = [fi for fi in ws.frame_view(video, 2) if fi.track_id == 1]
    np.testing.assert_array_equal(at2[0].instance.keypoints, mine.keypoints)


def test_propagate_forward_from_a_keyframe(ws) -> None:
    (video,) = ws.list_videos("p")
    start = Instance(square_pose_keypoints(*walker(1)), np.full(17, 2))
    ws.set_keyframe(video, 1, 5, start)
    ws.set_keyframe(video, 6, 5, Instance(square_pose_keypoints(*walker(6)), np.full(17, 2)))
    found = propagate(ws, video, 5, 1, 10, SquarePose())
    assert sorted(found) == [2, 3, 4, 5]  # stops before the next keyframe
    track = ws.get_track(video, 5)
    assert track.keyframes == (1, 6) and track.frames == (1, 2, 3, 4, 5, 6)
    for f in range(2, 6):
        (stored,) = [fi for fi in ws.frame_view(video, f) if fi.track_id == 5]
        assert stored.stored and not stored.keyframe and stored.instance.status == "predicted"
        np.testing.assert_array_equal(stored.instance.keypoints, square_pose_keypoints(*walker(f)))
    with pytest.raises(StoreError, match="no instance on frame 0"):
        propagate(ws, video, 5, 0, 3, SquarePose())
