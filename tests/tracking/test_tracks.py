"""Per-track views of per-frame instances, and whole-video smoothing and jitter."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.tracking import (
    TrackError,
    frames_from_tracks,
    smooth_video,
    track_jitter,
    tracks_by_id,
    video_jitter,
)

from .tracking_factories import person


def noisy_video(seed: int = 0):
    rng = np.random.default_rng(seed)
    frames = {}
    for f in range(40):
        frame = []
        for tid, (x0, y) in ((1, (0.0, 100.0)), (2, (400.0, 300.0))):
            p = person(x0 + 3.0 * f, y, track_id=tid)
            frame.append(p.copy(keypoints=p.keypoints + rng.normal(0, 2.0, (5, 2))))
        frame.append(person(700.0, 700.0))  # untracked
        frames[f] = frame
    return frames


def test_tracks_by_id_and_back():
    frames = {3: [person(0, 0, track_id=2), person(5, 5)], 1: [person(1, 1, track_id=2)]}
    tracks = tracks_by_id(frames)
    assert list(tracks) == [2] and sorted(tracks[2]) == [1, 3]
    back = frames_from_tracks(tracks)
    assert sorted(back) == [1, 3] and back[3][0] is frames[3][0]
    with pytest.raises(TrackError, match="twice"):
        tracks_by_id({0: [person(0, 0, track_id=1), person(9, 9, track_id=1)]})


def test_smooth_video_reduces_jitter_and_keeps_locked_and_untracked():
    frames = noisy_video()
    locked = {(0, 1), (20, 1), (39, 2)}
    out = smooth_video(frames, locked=locked)
    assert sorted(out) == sorted(frames)
    assert video_jitter(out) < 0.5 * video_jitter(frames)
    by_track = tracks_by_id(out)
    original = tracks_by_id(frames)
    for f, tid in locked:
        assert by_track[tid][f] is original[tid][f]
    assert all(any(i.track_id is None for i in out[f]) for f in out)


def test_smooth_video_one_euro_with_timestamps():
    frames = noisy_video(1)
    stamps = {f: f / 25.0 for f in frames}
    out = smooth_video(frames, method="one_euro", timestamps=stamps)
    assert video_jitter(out) < video_jitter(frames)


def test_video_jitter_pools_tracks():
    frames = {f: [person(f * f, 0.0, track_id=1)] for f in range(4)}
    assert video_jitter(frames) == pytest.approx(track_jitter(tracks_by_id(frames)[1]))
    assert np.isnan(video_jitter({}))
