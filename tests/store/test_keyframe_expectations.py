"""set_keyframe's expectations: the version read, "nothing stored" (0), or none."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posekit import get_preset
from posekit.core import Instance
from posekit.store import NotFoundError, StaleVersionError, Workspace
from posekit.store.video_imports import import_video
from video_fakes import square_frames, square_pose_keypoints, write_frame_folder


def walker(f: int) -> tuple[int, int]:
    return 6 + 2 * f, 30


@pytest.fixture
def video(tmp_path: Path):
    folder = write_frame_folder(tmp_path / "frames", square_frames(8, [walker]))
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    imported = import_video(ws, "p", "clips", folder, frames_folder=True, fps=10)
    yield ws, imported.video
    ws.close()


def _pose(x: float) -> Instance:
    return Instance(square_pose_keypoints(x, 30), np.full(17, 2))


def test_expecting_nothing_stored_adds_a_keyframe_once(video) -> None:
    ws, stored = video
    track = ws.create_track(stored).track_id
    first = ws.set_keyframe(stored, 3, track, _pose(10), expected_version=0)
    assert first.version == 1
    # Someone else's edit from the same interpolated view: refused, theirs shown.
    with pytest.raises(StaleVersionError) as caught:
        ws.set_keyframe(stored, 3, track, _pose(20), expected_version=0)
    assert caught.value.current.version == 1
    np.testing.assert_allclose(caught.value.current.instance.keypoints, _pose(10).keypoints)
    # With the version read, the overwrite goes through; without one, it always does.
    assert ws.set_keyframe(stored, 3, track, _pose(20), expected_version=1).version == 2
    with pytest.raises(StaleVersionError):
        ws.set_keyframe(stored, 3, track, _pose(30), expected_version=1)
    assert ws.set_keyframe(stored, 3, track, _pose(30)).version == 3
    (shown,) = [f for f in ws.frame_view(stored, 3) if f.track_id == track]
    np.testing.assert_allclose(shown.instance.keypoints, _pose(30).keypoints)


def test_a_version_read_before_a_deletion_is_not_found(video) -> None:
    ws, stored = video
    track = ws.create_track(stored).track_id
    made = ws.set_keyframe(stored, 2, track, _pose(10), expected_version=0)
    ws.delete_instance(made.id, made.version)
    with pytest.raises(NotFoundError, match=r"track \d+ has no stored instance there"):
        ws.set_keyframe(stored, 2, track, _pose(20), expected_version=made.version)
    assert ws.frame_view(stored, 2) == []  # nothing written
    assert ws.set_keyframe(stored, 2, track, _pose(20), expected_version=0).version == 1
