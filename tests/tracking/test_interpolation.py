"""Keyframe interpolation: exact values, hold rule, visibility rules, outside, run to end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.tracking import (
    InterpolationError,
    instance_at,
    interpolate_between,
    interpolate_track,
    track_segments,
)


def inst(points, visibility, **fields) -> Instance:
    return Instance(np.asarray(points, dtype=np.float64), np.asarray(visibility), **fields)


# kp0 visible in both, kp1 occluded -> visible, kp2 only in A, kp3 only in B,
# kp4 visible -> occluded, kp5 labeled in neither.
A = inst(
    [[0, 0], [10, 10], [20, 20], [0, 0], [40, 40], [0, 0]],
    [2, 1, 2, 0, 2, 0],
    box=[0, 0, 10, 10],
    keypoint_scores=[1.0, 0.5, 0.25, 0.0, 1.0, 0.0],
    score=0.5,
    track_id=3,
    status="accepted",
    id=11,
)
B = inst(
    [[4, 8], [14, 10], [0, 0], [30, 30], [48, 44], [0, 0]],
    [2, 2, 0, 2, 1, 0],
    box=[4, 4, 18, 22],
    keypoint_scores=[0.0, 0.5, 0.0, 1.0, 0.0, 0.0],
    score=1.0,
    track_id=3,
    id=12,
)
KEYS = {0: A, 4: B}


def test_linear_values_exactly():
    tf = instance_at(KEYS, 1, frame_count=10)
    assert tf is not None and not tf.keyframe and tf.interpolated
    assert (tf.previous_keyframe, tf.next_keyframe) == (0, 4)
    kps = tf.instance.keypoints
    assert kps[0].tolist() == [1.0, 2.0]
    assert kps[1].tolist() == [11.0, 10.0]
    assert kps[4].tolist() == [42.0, 41.0]
    mid = instance_at(KEYS, 2, frame_count=10).instance
    assert mid.keypoints[0].tolist() == [2.0, 4.0]
    assert mid.keypoints[4].tolist() == [44.0, 42.0]


def test_hold_rule_and_not_invented():
    for f in (1, 2, 3):
        got = instance_at(KEYS, f, frame_count=10).instance
        assert got.keypoints[2].tolist() == [20.0, 20.0]  # held from A
        assert got.visibility[2] == 2
        assert got.visibility[3] == 0  # only labeled in B: not before B
        assert got.keypoints[3].tolist() == [0.0, 0.0]
        assert got.visibility[5] == 0


def test_visibility_rules():
    for f in (1, 2, 3):
        vis = instance_at(KEYS, f, frame_count=10).instance.visibility
        assert vis[1] == 1  # occluded stays occluded until B says visible
        assert vis[4] == 2  # visible in A, occluded in B: A's state
    assert instance_at(KEYS, 4, frame_count=10).instance.visibility.tolist() == [2, 2, 0, 2, 1, 0]


def test_box_scores_and_fields():
    got = instance_at(KEYS, 1, frame_count=10).instance
    assert got.box.tolist() == [1.0, 1.0, 12.0, 13.0]
    assert got.keypoint_scores.tolist() == [0.75, 0.5, 0.25, 0.0, 0.75, 0.0]
    assert got.score == 0.625
    assert got.track_id == 3 and got.status == "accepted" and got.id is None


def test_keyframe_returned_exactly():
    tf = instance_at(KEYS, 4, frame_count=10)
    assert tf.keyframe and tf.instance is B
    assert (tf.previous_keyframe, tf.next_keyframe) == (4, None)


def test_absent_before_first_keyframe():
    assert instance_at({3: A}, 2, frame_count=10) is None


def test_open_track_runs_to_the_end():
    frames = interpolate_track({5: A}, frame_count=8)
    assert sorted(frames) == [5, 6, 7]
    held = frames[7]
    assert held.next_keyframe is None and held.previous_keyframe == 5
    assert np.array_equal(held.instance.keypoints, A.keypoints)
    assert np.array_equal(held.instance.visibility, A.visibility)
    with pytest.raises(InterpolationError, match="outside the video"):
        instance_at({5: A}, 8, frame_count=8)


def test_outside_ends_a_segment():
    keys = {0: A, 10: B}
    # outside at 5: 1..4 hold A (no interpolation towards B), 5..9 absent, 10 is B
    for f in range(1, 5):
        tf = instance_at(keys, f, frame_count=12, outside={5})
        assert tf.next_keyframe is None
        assert np.array_equal(tf.instance.keypoints, A.keypoints)
    for f in range(5, 10):
        assert instance_at(keys, f, frame_count=12, outside={5}) is None
    assert instance_at(keys, 10, frame_count=12, outside={5}).instance is B
    assert sorted(interpolate_track(keys, frame_count=12, outside={5})) == [0, 1, 2, 3, 4, 10, 11]


def test_outside_after_last_keyframe():
    frames = interpolate_track({2: A}, frame_count=10, outside={4})
    assert sorted(frames) == [2, 3]


def test_outside_before_first_keyframe_is_harmless():
    assert sorted(interpolate_track({3: A}, frame_count=5, outside={1})) == [3, 4]


def test_track_segments():
    keys = {2: A, 5: A, 9: B}
    assert track_segments(keys, frame_count=12, outside={7}) == [(2, 7), (9, 12)]
    assert track_segments({}, frame_count=12) == []


def test_interpolate_track_selected_frames():
    frames = interpolate_track(KEYS, frame_count=10, frames=[3, 2, 100 - 95])
    assert sorted(frames) == [2, 3, 5]


@pytest.mark.parametrize(
    ("keys", "outside", "match"),
    [
        ({2: A}, {2}, "both a keyframe and an outside"),
        ({12: A}, (), "outside the video"),
        ({0: A, 3: inst([[0, 0]], [2])}, (), "different numbers of keypoints"),
    ],
)
def test_inconsistent_input(keys, outside, match):
    with pytest.raises(InterpolationError, match=match):
        instance_at(keys, 1, frame_count=10, outside=outside)


def test_interpolate_between_rejects_t_out_of_range():
    with pytest.raises(InterpolationError):
        interpolate_between(A, B, 1.0)


def test_inputs_untouched():
    before = A.keypoints.copy()
    interpolate_track(KEYS, frame_count=10)
    assert np.array_equal(A.keypoints, before)


coords = st.floats(min_value=-1000, max_value=1000, allow_nan=False, width=32)


@st.composite
def keyframed_tracks(draw):
    k = draw(st.integers(1, 4))
    frames = draw(st.lists(st.integers(0, 30), min_size=1, max_size=5, unique=True))
    keys = {}
    for f in frames:
        points = draw(st.lists(st.tuples(coords, coords), min_size=k, max_size=k))
        vis = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=k, max_size=k))
        keys[f] = inst(points, vis)
    return keys


@settings(max_examples=60, deadline=None)
@given(keyframed_tracks())
def test_property_keyframes_returned_exactly(keys):
    frames = interpolate_track(keys, frame_count=31)
    for f, keyframe in keys.items():
        assert frames[f].keyframe and frames[f].instance is keyframe


@settings(max_examples=60, deadline=None)
@given(keyframed_tracks(), st.integers(0, 30))
def test_property_interpolated_points_between_their_keyframes(keys, frame):
    tf = instance_at(keys, frame, frame_count=31)
    if tf is None or tf.keyframe or tf.next_keyframe is None:
        return
    a, b = keys[tf.previous_keyframe], keys[tf.next_keyframe]
    got = tf.instance
    labeled = got.visibility > 0
    assert np.array_equal(labeled, a.visibility > 0)
    lo = np.minimum(a.keypoints, b.keypoints) - 1e-3
    hi = np.maximum(a.keypoints, b.keypoints) + 1e-3
    both = labeled & (b.visibility > 0)
    assert np.all((got.keypoints >= lo)[both]) and np.all((got.keypoints <= hi)[both])
    assert np.array_equal(got.keypoints[labeled & ~both], a.keypoints[labeled & ~both])
