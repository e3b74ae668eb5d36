"""Tracked prediction on video (posekit.pipeline.video): frame source, tracking sink,
interpolation between sampled frames, smoothing, propagation; exact keypoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posekit import get_preset
from posekit.core import Instance
from posekit.media.video import open_frame_folder
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.video import (
    VideoFrameSource,
    carried_box,
    predict_video,
    propagate_track,
)
from video_fakes import (
    SquareDetector,
    SquarePose,
    square_frames,
    square_pose_keypoints,
    write_frame_folder,
)

COCO = get_preset("coco17")


def walker(f: int) -> tuple[int, int]:
    return 4 + 2 * f, 30


def stander(f: int) -> tuple[int, int]:
    return 120, 10 + f


@pytest.fixture
def two_people(tmp_path: Path):
    folder = write_frame_folder(tmp_path / "two", square_frames(12, [walker, stander]))
    with open_frame_folder(folder, fps=10) as video:
        yield video


def _by_track(dataset) -> dict[int, dict[int, Instance]]:
    tracks: dict[int, dict[int, Instance]] = {}
    for labeled in dataset.images:
        for inst in labeled.instances:
            tracks.setdefault(inst.track_id, {})[labeled.image.frame_index] = inst
    return tracks


def test_frame_source_streams_every_nth_frame(two_people) -> None:
    source = VideoFrameSource(two_people, every=5)
    units = list(source)
    assert len(source) == 3 and [u.key for u in units] == [0, 5, 10]
    frames = [u.load() for u in units]
    np.testing.assert_array_equal(frames[1], two_people.frame(5))


def test_every_frame_one_track_per_person_exact(two_people) -> None:
    result = predict_video(
        two_people, SquareDetector(), SquarePose(), COCO,
        AutolabelOptions(batch_size=4, tracker_options={"min_hits": 3}),
    )  # fmt: skip
    data = result.dataset
    assert result.tracks == 2 and len(data.images) == 12
    assert [im.image.frame_index for im in data.images] == list(range(12))
    first = data.images[0].image
    assert first.video == "two" and first.file_name == "two/000000.jpg"
    assert first.timestamp == 0.0 and data.images[3].image.timestamp == pytest.approx(0.3)
    tracks = _by_track(data)
    # One track per person from its first frame (tentative detections backfilled).
    assert sorted(tracks) == [1, 2] and all(sorted(t) == list(range(12)) for t in tracks.values())
    walking = next(t for t in tracks.values() if t[0].keypoints[0, 0] < 60)
    for f, inst in walking.items():
        np.testing.assert_array_equal(inst.keypoints, square_pose_keypoints(*walker(f)))
    assert data.videos[0].frame_count == 12 and data.tracks[0].outside == set()


def test_every_nth_frame_interpolates_linearly(two_people) -> None:
    pose = SquarePose()
    result = predict_video(
        two_people, SquareDetector(), pose, COCO,
        AutolabelOptions(every=4, tracker_options={"min_hits": 1}),
    )  # fmt: skip
    assert len(pose.boxes) == 6  # two people on frames 0, 4, 8 only
    tracks = _by_track(result.dataset)
    walking = next(t for t in tracks.values() if t[0].keypoints[0, 0] < 60)
    # Sampled at 0, 4, 8; interpolated between; after the last sample the track ends.
    assert sorted(walking) == list(range(9))
    for f in range(9):
        np.testing.assert_allclose(
            walking[f].keypoints, square_pose_keypoints(*walker(f)), rtol=0, atol=1e-5
        )
    assert result.dataset.tracks[0].outside == {9}


def test_smoothing_keeps_linear_motion(two_people) -> None:
    for method in ("savgol", "one-euro"):
        result = predict_video(
            two_people, SquareDetector(), SquarePose(), COCO,
            AutolabelOptions(smoothing=method, tracker_options={"min_hits": 1}),
        )  # fmt: skip
        tracks = _by_track(result.dataset)
        assert sorted(tracks) == [1, 2], method
    walking = next(t for t in tracks.values() if t[0].keypoints[0, 0] < 60)
    assert walking[0].keypoints[0, 0] == pytest.approx(4.0)  # One Euro starts on the data


def test_propagation_follows_the_person_exactly(two_people) -> None:
    start = Instance(square_pose_keypoints(*walker(2)), np.full(17, 2), track_id=7)
    pose = SquarePose()
    found = propagate_track(two_people, 2, start, 5, pose, COCO)
    assert sorted(found) == [3, 4, 5, 6, 7]
    for f, inst in found.items():
        np.testing.assert_array_equal(inst.keypoints, square_pose_keypoints(*walker(f)))
        assert inst.track_id == 7 and inst.status == "predicted"
        assert inst.source == "model:squarepose"
    # The box of frame 3 is the one carried from frame 2: the keypoints' box grown by 10%.
    x0, y0 = walker(2)
    np.testing.assert_allclose(pose.boxes[0], [x0 - 1.2, y0 - 1.6, x0 + 13.2, y0 + 17.6], atol=1e-5)
    # To the end of the video at most.
    late = start.copy(keypoints=square_pose_keypoints(*walker(9)))
    assert sorted(propagate_track(two_people, 9, late, 10, SquarePose(), COCO)) == [10, 11]
    # Lost: nothing bright in the carried box, propagation stops.
    assert propagate_track(two_people, 9, start, 3, SquarePose(), COCO) == {}


def test_carried_box_falls_back_to_the_box() -> None:
    inst = Instance(np.zeros((17, 2)), np.zeros(17), box=[1, 2, 3, 4])
    np.testing.assert_array_equal(carried_box(inst, 100, 100), [1, 2, 3, 4])
    assert carried_box(Instance(np.zeros((17, 2)), np.zeros(17)), 100, 100) is None
