"""Smoothing: constants unchanged, keyframes untouched, gaps respected, jitter reduced."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posekit.tracking import (
    OneEuroFilter,
    OneEuroOptions,
    OneEuroSmoother,
    SmoothingError,
    mean_acceleration,
    one_euro_smooth,
    savgol_smooth,
    smooth_track,
    track_jitter,
)

from .tracking_factories import person


def noisy_track(n: int = 60, seed: int = 0):
    """A person walking right at 4 px/frame with 3 px keypoint noise."""
    rng = np.random.default_rng(seed)
    track = []
    for f in range(n):
        p = person(100.0 + 4.0 * f, 200.0)
        track.append(p.copy(keypoints=p.keypoints + rng.normal(0.0, 3.0, p.keypoints.shape)))
    return track


def test_constant_signal_unchanged():
    xy = np.tile(np.array([[12.5, -3.0], [100.0, 7.25]]), (20, 1, 1))
    vis = np.full((20, 2), 2)
    np.testing.assert_allclose(savgol_smooth(xy, vis), xy, rtol=0, atol=1e-9)
    np.testing.assert_allclose(
        one_euro_smooth(xy, vis, np.full(20, 50.0), fps=30.0), xy, rtol=0, atol=1e-9
    )


def test_linear_motion_is_kept_by_savgol():
    t = np.arange(15, dtype=np.float64)
    xy = np.stack([np.stack([3.0 * t, 1.0 - 2.0 * t], axis=-1)], axis=1)
    np.testing.assert_allclose(savgol_smooth(xy, np.full((15, 1), 2)), xy, atol=1e-9)


@pytest.mark.parametrize("method", ["savgol", "one_euro"])
def test_locked_frames_are_never_moved(method):
    track = noisy_track()
    locked = [f % 10 == 0 for f in range(len(track))]
    out = smooth_track(track, locked, method=method, fps=30.0)
    for f, flag in enumerate(locked):
        if flag:
            assert out[f] is track[f]
        else:
            assert not np.array_equal(out[f].keypoints, track[f].keypoints)
            assert np.array_equal(out[f].visibility, track[f].visibility)


def test_savgol_pins_locked_frames_in_arrays():
    rng = np.random.default_rng(1)
    xy = rng.normal(0.0, 5.0, (30, 3, 2))
    vis = np.full((30, 3), 2)
    locked = np.zeros(30, bool)
    locked[[0, 7, 8, 20]] = True
    out = savgol_smooth(xy, vis, locked)
    assert np.array_equal(out[locked], xy[locked])


@pytest.mark.parametrize(("method", "factor"), [("savgol", 0.5), ("one_euro", 0.75)])
def test_jitter_is_reduced(method, factor):
    # One Euro lets fast motion through (this person moves 2 sizes per second), so
    # it removes less jitter than the offline filter.
    track = noisy_track()
    before = track_jitter(track)
    after = track_jitter(smooth_track(track, method=method, fps=30.0))
    assert after < factor * before


def test_gaps_are_not_smoothed_across():
    rng = np.random.default_rng(2)
    xy = rng.normal(0.0, 5.0, (20, 1, 2))
    vis = np.full((20, 1), 2)
    vis[10] = 0
    other = xy.copy()
    other[11:] += 1000.0  # what follows the gap must not leak into what precedes it
    for smooth in (
        lambda a: savgol_smooth(a, vis, window_length=5),
        lambda a: one_euro_smooth(a, vis, np.full(20, 50.0), fps=30.0),
    ):
        first, second = smooth(xy), smooth(other)
        np.testing.assert_array_equal(first[:10], second[:10])
        assert np.array_equal(first[10], xy[10])  # unlabeled entries unchanged


def test_one_euro_restarts_after_a_gap():
    xy = np.array([[[0.0, 0.0]], [[0.0, 0.0]], [[5.0, 5.0]], [[90.0, 90.0]]])
    vis = np.array([[2], [2], [0], [2]])
    out = one_euro_smooth(xy, vis, np.full(4, 50.0), fps=30.0)
    assert out[3, 0].tolist() == [90.0, 90.0]  # first sample of a new run passes through


def test_short_runs_are_left_alone():
    xy = np.array([[[0.0, 0.0]], [[5.0, 1.0]], [[1.0, 9.0]]])
    out = savgol_smooth(xy, np.full((3, 1), 2), window_length=9, polyorder=2)
    assert np.array_equal(out, xy)


def test_one_euro_filter_step_exactly():
    opts = OneEuroOptions(min_cutoff=1.0, beta=0.0, d_cutoff=1.0)
    f = OneEuroFilter(opts)
    assert f(np.array([0.0, 0.0]), t=0.0, size=100.0).tolist() == [0.0, 0.0]
    dt = 1.0 / 30.0
    alpha = 1.0 / (1.0 + (1.0 / (2.0 * math.pi)) / dt)
    got = f(np.array([10.0, 0.0]), t=dt, size=100.0)
    assert got[0] == pytest.approx(alpha * 10.0, rel=1e-12)
    with pytest.raises(SmoothingError, match="increase"):
        f(np.array([1.0, 1.0]), t=0.0, size=100.0)


def test_one_euro_speed_is_normalised_by_person_size():
    # The same motion in a person twice as large (coordinates doubled) is filtered
    # the same way, relative to the size.
    track_small = noisy_track(seed=3)
    xy = np.stack([p.keypoints for p in track_small]).astype(np.float64)
    vis = np.full(xy.shape[:2], 2)
    sizes = np.full(len(track_small), 56.57)
    small = one_euro_smooth(xy, vis, sizes, fps=30.0)
    large = one_euro_smooth(2.0 * xy, vis, 2.0 * sizes, fps=30.0)
    np.testing.assert_allclose(large, 2.0 * small, rtol=1e-9, atol=1e-9)


def test_online_smoother_per_track_with_gap_and_lock():
    smoother = OneEuroSmoother(fps=30.0)
    a0 = person(0.0, 0.0, track_id=1)
    assert np.array_equal(smoother.update(0, [a0])[0].keypoints, a0.keypoints)
    a1 = person(10.0, 0.0, track_id=1)
    moved = smoother.update(1, [a1])[0]
    assert 0.0 < moved.keypoints[0, 0] < 10.0  # lags behind the measurement
    # Frame 2 missing: at frame 3 the track restarts and passes through.
    a3 = person(50.0, 0.0, track_id=1)
    assert np.array_equal(smoother.update(3, [a3])[0].keypoints, a3.keypoints)
    a4 = person(55.0, 0.0, track_id=1)
    assert smoother.update(4, [a4], locked=[True])[0] is a4
    untracked = person(5.0, 5.0)
    assert smoother.update(5, [untracked])[0] is untracked


def test_mean_acceleration_exactly():
    xy = np.array([[[0.0, 0.0]], [[1.0, 0.0]], [[4.0, 0.0]], [[9.0, 0.0]]])
    vis = np.full((4, 1), 2)
    # second differences: 2 and 2; divided by sizes at t=1 (2) and t=2 (4)
    assert mean_acceleration(xy, vis, np.array([1.0, 2.0, 4.0, 1.0])) == 0.75
    assert mean_acceleration(xy, vis) == 2.0
    vis[2] = 0
    assert math.isnan(mean_acceleration(xy, vis))


def test_track_jitter_from_mapping_counts_missing_frames_as_absent():
    track = {0: person(0, 0), 1: person(1, 0), 2: person(3, 0), 4: person(5, 0)}
    size = math.sqrt(40.0 * 80.0)
    assert track_jitter(track) == pytest.approx(1.0 / size)


@pytest.mark.parametrize("kwargs", [{"window_length": 4}, {"window_length": 5, "polyorder": 5}])
def test_invalid_savgol_parameters(kwargs):
    with pytest.raises(SmoothingError):
        savgol_smooth(np.zeros((5, 1, 2)), np.full((5, 1), 2), **kwargs)


def test_invalid_one_euro_options():
    with pytest.raises(SmoothingError):
        OneEuroOptions(min_cutoff=0.0)
    with pytest.raises(SmoothingError, match="fps"):
        one_euro_smooth(np.zeros((2, 1, 2)), np.full((2, 1), 2), np.ones(2))
    with pytest.raises(SmoothingError, match="method"):
        smooth_track([person(0, 0)], method="kalman")
