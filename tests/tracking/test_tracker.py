"""PoseTracker: crossing people, occlusion gaps, birth, death, two-stage association."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.core import Instance
from posekit.tracking import (
    BackfillingTracker,
    PoseTracker,
    Tracker,
    TrackerError,
    TrackerOptions,
    detection_score,
    track_video,
)

from .tracking_factories import person, template


def ids_by_x(frame: list[Instance]) -> dict[float, int | None]:
    return {float(inst.keypoints[0, 0]): inst.track_id for inst in frame}


def test_pose_tracker_satisfies_both_protocols():
    tracker = PoseTracker(template())
    assert isinstance(tracker, Tracker)
    assert isinstance(tracker, BackfillingTracker)


def test_crossing_people_keep_their_ids():
    # A walks right from x=0, B walks left from x=200; they coincide at frame 10.
    frames = {}
    for f in range(21):
        a, b = person(10.0 * f, 100.0), person(200.0 - 10.0 * f, 100.0)
        frames[f] = [a, b] if f % 2 == 0 else [b, a]  # detection order must not matter
    out = track_video(PoseTracker(template()), frames)
    for f in range(21):
        assert len(out[f]) == 2
        if f == 10:
            assert sorted(i.track_id for i in out[f]) == [1, 2]
            continue
        ids = ids_by_x(out[f])
        assert ids[10.0 * f] == 1, f"frame {f}: A changed identity"
        assert ids[200.0 - 10.0 * f] == 2, f"frame {f}: B changed identity"


def test_crossing_with_different_heights_static_motion():
    frames = {f: [person(10.0 * f, 100.0), person(200.0 - 10.0 * f, 130.0)] for f in range(21)}
    out = track_video(PoseTracker(template(), TrackerOptions(motion="static")), frames)
    for f in range(21):
        by_y = {float(i.keypoints[0, 1]): i.track_id for i in out[f]}
        assert by_y == {60.0: 1, 90.0: 2}


def test_short_occlusion_is_reidentified():
    frames = {f: [person(100.0 + 5 * f, 200.0)] for f in range(25) if not 10 <= f < 15}
    out = track_video(PoseTracker(template(), TrackerOptions(max_age=10)), frames)
    assert {i.track_id for f in out for i in out[f]} == {1}
    assert all(len(out[f]) == 1 for f in out)


def test_gap_longer_than_max_age_starts_a_new_track():
    frames = {f: [person(100.0 + 5 * f, 200.0)] for f in range(30) if not 10 <= f < 22}
    out = track_video(PoseTracker(template(), TrackerOptions(max_age=10)), frames)
    assert [out[f][0].track_id for f in range(10)] == [1] * 10
    # frame 22 is 13 frames after the last match (frame 9) > max_age: a new person,
    # whose tentative frames 22 and 23 are back-filled once frame 24 confirms it.
    assert [out[f][0].track_id for f in range(22, 30)] == [2] * 8


def test_birth_after_min_hits_and_backfill():
    tracker = PoseTracker(template(), TrackerOptions(min_hits=3))
    assert tracker.update(0, [person(50, 50)]) == []
    assert tracker.update(1, [person(52, 50)]) == []
    emitted = tracker.update(2, [person(54, 50)])
    assert [i.track_id for i in emitted] == [1]
    assert tracker.drain_backfill() == {0: {0: 1}, 1: {0: 1}}
    assert tracker.drain_backfill() == {}
    assert [i.track_id for i in tracker.update(3, [person(56, 50)])] == [1]


def test_one_frame_false_positive_never_gets_an_id():
    frames = {f: [person(50.0 + f, 50.0)] for f in range(8)}
    frames[4] = [*frames[4], person(400.0, 400.0)]
    tracker = PoseTracker(template())
    out = track_video(tracker, frames)
    assert [len(out[f]) for f in range(8)] == [1] * 8
    assert {i.track_id for f in out for i in out[f]} == {1}
    kept = track_video(tracker, frames, keep_unconfirmed=True)
    assert [i.track_id for i in kept[4]] == [1, None]


def test_min_hits_one_confirms_at_once():
    tracker = PoseTracker(template(), TrackerOptions(min_hits=1))
    out = tracker.update(0, [person(0, 0), person(300, 0)])
    assert [i.track_id for i in out] == [1, 2]


def test_track_dies_after_max_age():
    tracker = PoseTracker(template(), TrackerOptions(min_hits=1, max_age=3))
    for f in range(3):
        tracker.update(f, [person(100.0, 100.0)])
    assert tracker.num_tracks == 1
    tracker.update(5, [])  # 3 frames after the last match: still lost, not dead
    assert tracker.num_tracks == 1
    tracker.update(6, [])  # 4 frames: dead
    assert tracker.num_tracks == 0
    assert [i.track_id for i in tracker.update(7, [person(100.0, 100.0)])] == [2]


def test_low_score_detection_continues_a_track_but_never_starts_one():
    tracker = PoseTracker(template(), TrackerOptions(min_hits=1))
    tracker.update(0, [person(100, 100)])
    tracker.update(1, [person(102, 100)])
    out = tracker.update(2, [person(104, 100, score=0.3), person(500, 500, score=0.3)])
    assert len(out) == 1 and out[0].track_id == 1
    assert out[0].keypoints[0, 0] == 104.0
    assert tracker.num_tracks == 1


def test_low_score_detection_does_not_revive_a_lost_track():
    tracker = PoseTracker(template(), TrackerOptions(min_hits=1))
    tracker.update(0, [person(100, 100)])
    tracker.update(1, [])
    assert tracker.update(2, [person(100, 100, score=0.3)]) == []
    assert [i.track_id for i in tracker.update(3, [person(100, 100)])] == [1]


def test_detections_under_low_score_are_ignored():
    tracker = PoseTracker(template(), TrackerOptions(min_hits=1))
    assert tracker.update(0, [person(100, 100, score=0.05)]) == []
    assert tracker.num_tracks == 0


def test_iou_fallback_with_few_labeled_keypoints():
    def sparse(x: float) -> Instance:
        vis = np.array([2, 0, 0, 0, 0])
        return person(x, 100.0).copy(visibility=vis)

    frames = {f: [sparse(10.0 * f), sparse(300.0 - 10.0 * f)] for f in range(5)}
    out = track_video(PoseTracker(template()), frames)
    for f in range(5):
        by_x = {float(i.box[0]): i.track_id for i in out[f]}
        assert by_x == {10.0 * f - 20.0: 1, 280.0 - 10.0 * f: 2}


def test_every_nth_frame_counts_frames_for_motion_and_age():
    frames = {f: [person(3.0 * f, 100.0)] for f in range(0, 60, 5)}
    out = track_video(PoseTracker(template(), TrackerOptions(max_age=10)), frames)
    assert {i.track_id for f in out for i in out[f]} == {1}


def test_inputs_are_not_modified():
    inst = person(10, 10)
    PoseTracker(template(), TrackerOptions(min_hits=1)).update(0, [inst])
    assert inst.track_id is None


def test_frame_index_must_increase():
    tracker = PoseTracker(template())
    tracker.update(3, [])
    with pytest.raises(TrackerError, match="must increase"):
        tracker.update(3, [])
    tracker.reset()
    tracker.update(0, [])


def test_wrong_keypoint_count_is_rejected():
    tracker = PoseTracker(template())
    with pytest.raises(TrackerError, match="3 keypoints"):
        tracker.update(0, [Instance(np.zeros((3, 2)), np.full(3, 2))])


@pytest.mark.parametrize(
    "changes",
    [
        {"min_hits": 0},
        {"max_age": -1},
        {"low_score": 0.8, "high_score": 0.5},
        {"min_similarity": 0.0},
        {"motion": "kalman"},
        {"velocity_smoothing": 0.0},
    ],
)
def test_invalid_options(changes):
    with pytest.raises(TrackerError):
        TrackerOptions(**changes)


def test_detection_score_fallbacks():
    inst = person(0, 0)
    assert detection_score(inst) == pytest.approx(0.9)
    assert detection_score(inst.copy(score=None)) == pytest.approx(0.9)
    manual = Instance(np.zeros((5, 2)), np.full(5, 2))
    assert detection_score(manual) == 1.0


class PositionTracker:
    """A plain Tracker (no back-fill): id = position + 1."""

    def update(self, frame_index, instances):
        return [inst.copy(track_id=n + 1) for n, inst in enumerate(instances)]

    def reset(self):
        pass


def test_track_video_with_a_plain_tracker():
    frames = {0: [person(0, 0), person(0, 0)], 1: [person(5, 0)]}
    out = track_video(PositionTracker(), frames)
    assert [i.track_id for i in out[0]] == [1, 2]
    assert [i.track_id for i in out[1]] == [1]


def test_crowd_with_missed_detections_and_false_positives():
    """8 people on random straight paths, 10% missed detections, 30% low-score ones,
    noisy keypoints and random false positives: one track per person, no switch."""
    from posekit.evaluation.tracking import evaluate_tracking_video

    rng = np.random.default_rng(0)
    start = rng.uniform(0, 800, (8, 2))
    velocity = rng.normal(0, 3, (8, 2))
    truth, detections = {}, {}
    for f in range(120):
        truth[f], frame = [], []
        for p in range(8):
            x, y = start[p] + velocity[p] * f
            truth[f].append(person(x, y, track_id=p + 1, extra={"bbox_head": [x, y, 20, 20]}))
            if rng.random() < 0.1:
                continue
            low = rng.random() < 0.3
            score = float(rng.uniform(0.2, 1.0) if low else rng.uniform(0.6, 1.0))
            d = person(x, y, score=score)
            frame.append(d.copy(keypoints=d.keypoints + rng.normal(0, 2.0, (5, 2))))
        for _ in range(rng.poisson(0.2)):
            frame.append(person(*rng.uniform(0, 800, 2), score=float(rng.uniform(0.3, 0.7))))
        rng.shuffle(frame)
        detections[f] = frame
    out = track_video(PoseTracker(template()), detections)
    result = evaluate_tracking_video(truth, out, template())
    assert len({i.track_id for f in out for i in out[f]}) == 8
    assert result.total.num_switches == 0
    assert result.precision > 0.99
    assert result.mota > 0.85
