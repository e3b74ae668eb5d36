"""Moving between per-frame instance lists and per-track views.

Example:
    >>> import numpy as np
    >>> from posekit.core import Instance
    >>> a = Instance(np.zeros((1, 2)), np.array([2]), track_id=4)
    >>> list(tracks_by_id({7: [a]}))
    [4]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from posekit.core import Instance

__all__ = ["TrackError", "frames_from_tracks", "tracks_by_id"]


class TrackError(ValueError):
    """Per-frame instances cannot be grouped into tracks; the message says why."""


def tracks_by_id(
    frames: Mapping[int, Sequence[Instance]],
) -> dict[int, dict[int, Instance]]:
    """``{track_id: {frame_index: Instance}}`` from ``{frame_index: [Instance, ...]}``.

    Instances without a ``track_id`` are left out; the same id twice in one frame
    raises :class:`TrackError`.
    """
    tracks: dict[int, dict[int, Instance]] = {}
    for frame in sorted(frames):
        for inst in frames[frame]:
            if inst.track_id is None:
                continue
            track = tracks.setdefault(int(inst.track_id), {})
            if int(frame) in track:
                raise TrackError(f"track {inst.track_id} appears twice in frame {frame}")
            track[int(frame)] = inst
    return dict(sorted(tracks.items()))


def frames_from_tracks(
    tracks: Mapping[int, Mapping[int, Instance]],
    untracked: Mapping[int, Sequence[Instance]] | None = None,
) -> dict[int, list[Instance]]:
    """The inverse of :func:`tracks_by_id`: ``{frame_index: [Instance, ...]}`` in frame
    order, each frame's instances by track id, then ``untracked`` ones."""
    frames: dict[int, list[Instance]] = {}
    for track_id in sorted(tracks):
        for frame, inst in tracks[track_id].items():
            frames.setdefault(int(frame), []).append(inst)
    for frame, instances in (untracked or {}).items():
        frames.setdefault(int(frame), []).extend(instances)
    return dict(sorted(frames.items()))
