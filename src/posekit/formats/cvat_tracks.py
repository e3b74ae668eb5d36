"""CVAT's track rule for the points of a skeleton track (pure numpy, no XML).

CVAT keeps a skeleton track as one sub-track per point ("element"), each with
its own keyframes, and fills the frames between them by this rule, which is
what :func:`element_states` computes for one point over the task's frames:

* A point is absent (not labeled) before its first keyframe.
* At a keyframe the point is that keyframe: absent when the keyframe is
  ``outside``, else at its position, occluded when the keyframe is ``occluded``.
* After a keyframe ``a`` that is ``outside`` the point stays absent up to its
  next keyframe (nothing is interpolated after outside).
* Between a keyframe ``a`` that is not outside and the next keyframe ``b`` (at
  any frame ``f``, ``a < f < b``) the position is linear in the task's frame
  numbering: ``p_a + (p_b - p_a) * ((f - a) / (b - a))``, computed in float64 —
  also when ``b`` is ``outside`` (CVAT moves the point towards the position the
  outside keyframe carries). ``occluded`` is ``a``'s.
* After the last keyframe, when it is not outside, the point is held at that
  keyframe to the end of the task (a track not closed by an outside keyframe
  runs to the task's last frame).

How this differs from :mod:`posekit.tracking.interpolation`: that rule works on
whole instances (one keyframe set for all points) and holds a point labeled in
the previous keyframe only; here every point has its own keyframes and moves
towards the position stored in an outside keyframe. The CVAT writer stores the
held position in the outside keyframes it writes, so that both rules give the
same frames for tracks made in posekit.

Multi-point ``<points>`` tracks (no skeleton, several points in one shape) are
held at the previous keyframe rather than interpolated: CVAT interpolates only
single-point ``points`` shapes linearly and copies the previous keyframe of
multi-point ones (``hold=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["PointKeyframes", "element_states"]


@dataclass
class PointKeyframes:
    """The keyframes of one point (one CVAT element sub-track), sorted by frame.

    Attributes:
        frames: ``(N,) int64`` task-relative frame indices (0 = the task's first
            frame), strictly increasing.
        xy: ``(N, 2) float64`` positions (also stored for outside keyframes).
        outside: ``(N,) bool``.
        occluded: ``(N,) bool``.
    """

    frames: np.ndarray
    xy: np.ndarray
    outside: np.ndarray
    occluded: np.ndarray

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, float, float, bool, bool]]) -> PointKeyframes:
        """From ``(frame, x, y, outside, occluded)`` rows, sorted by frame by the caller."""
        if not rows:
            return cls(
                np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros(0, bool), np.zeros(0, bool)
            )
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
        return cls(arr[:, 0].astype(np.int64), arr[:, 1:3].copy(), arr[:, 3] > 0, arr[:, 4] > 0)

    def to_rows(self) -> list[list[float]]:
        """JSON-ready ``[frame, x, y, outside, occluded]`` rows."""
        return [
            [int(f), float(x), float(y), int(o), int(c)]
            for f, (x, y), o, c in zip(
                self.frames.tolist(), self.xy.tolist(), self.outside.tolist(),
                self.occluded.tolist(),
            )
        ]  # fmt: skip


def element_states(
    keys: PointKeyframes, num_frames: int, *, hold: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """One point's state on every task frame ``0 .. num_frames - 1`` by CVAT's rule.

    Args:
        keys: The point's keyframes (task-relative frames in ``0 .. num_frames - 1``).
        num_frames: Number of frames of the task.
        hold: Hold the previous keyframe instead of interpolating (multi-point
            ``points`` tracks).

    Returns:
        ``xy: (num_frames, 2) float64`` (0 where absent) and
        ``visibility: (num_frames,) uint8`` (0 absent, 1 occluded, 2 visible).
    """
    frames = np.arange(num_frames, dtype=np.int64)
    xy = np.zeros((num_frames, 2), dtype=np.float64)
    visibility = np.zeros(num_frames, dtype=np.uint8)
    n = keys.frames.shape[0]
    if n == 0 or num_frames == 0:
        return xy, visibility
    prev = np.searchsorted(keys.frames, frames, side="right") - 1
    started = prev >= 0
    prev_safe = np.where(started, prev, 0)
    present = started & ~keys.outside[prev_safe]
    a = keys.frames[prev_safe]
    pa = keys.xy[prev_safe]
    nxt = prev_safe + 1
    has_next = nxt < n
    moving = present & has_next & (frames != a)
    if hold:
        moving[:] = False
    out = pa.copy()
    if np.any(moving):
        idx = np.flatnonzero(moving)
        b_index = nxt[idx]
        fa = a[idx].astype(np.float64)
        fb = keys.frames[b_index].astype(np.float64)
        offset = (frames[idx].astype(np.float64) - fa) / (fb - fa)
        out[idx] = pa[idx] + (keys.xy[b_index] - pa[idx]) * offset[:, None]
    xy[present] = out[present]
    visibility[present] = np.where(keys.occluded[prev_safe[present]], 1, 2)
    return xy, visibility
