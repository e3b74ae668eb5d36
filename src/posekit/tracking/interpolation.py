"""Keyframe interpolation for one pose track (pure functions, no store).

A track is given as its keyframes ``{frame_index: Instance}`` (instances a person
set or accepted), a set of *outside* frames and the video's frame count. These
rules decide what the track holds at any frame ``f`` (``0 <= f < frame_count``):

Presence
    * Before the first keyframe the track is absent.
    * A keyframe frame returns that keyframe exactly (``keyframe=True``).
    * An outside frame ``o`` ends the segment: the track is absent from ``o`` up to,
      not including, the next keyframe. A frame cannot be both a keyframe and
      outside (:class:`InterpolationError`).
    * A track not closed by an outside frame runs to the end of the video
      (``frame_count - 1``).

Position, between the previous keyframe ``a`` and the next keyframe ``b``
(``a < f < b``, no outside frame in between), with ``t = (f - a) / (b - a)``:
    * A keypoint labeled (visibility > 0) in both keyframes is interpolated
      linearly in image coordinates: ``(1 - t) * p_a + t * p_b``.
    * A keypoint labeled in ``a`` only is held at ``p_a`` until ``b``.
    * A keypoint labeled in ``b`` only is not labeled before ``b``: it is never
      invented before the first keyframe that labels it.
    * When no next keyframe follows in the same segment (an outside frame comes
      first, or the track runs to the end), every labeled keypoint of ``a`` is held.

Visibility
    * Always the previous keyframe's state: an occluded keypoint stays occluded
      until the next keyframe that says otherwise, and a keypoint visible in one
      keyframe and occluded in the other takes the state of the previous keyframe
      (``a``), whichever way round.

Other fields
    * Box: linear between the two boxes when both keyframes have one, else the
      previous keyframe's box (or None).
    * ``keypoint_scores`` and ``score``: interpolated like positions when both
      keyframes have them (held where the keypoint is held, 0 where not labeled),
      else the previous keyframe's value when there is no next keyframe, else None.
    * ``source``, ``status``, ``track_id``, ``iscrowd`` and ``extra`` (copied) come
      from the previous keyframe; ``id``, ``area`` and ``segmentation`` are None
      (an interpolated instance is computed, not stored).

How the result is marked: every function returns :class:`TrackFrame` records;
``TrackFrame.keyframe`` is False for computed frames (``previous_keyframe`` and
``next_keyframe`` say which keyframes they came from). :class:`Instance` is
unchanged.

Example:
    >>> import numpy as np
    >>> from posekit.core import Instance
    >>> a = Instance(np.array([[0.0, 0.0]]), np.array([2]))
    >>> b = Instance(np.array([[10.0, 20.0]]), np.array([2]))
    >>> instance_at({0: a, 10: b}, 5, frame_count=20).instance.keypoints.tolist()
    [[5.0, 10.0]]
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from posekit.core import Instance

__all__ = [
    "InterpolationError",
    "TrackFrame",
    "instance_at",
    "interpolate_between",
    "interpolate_track",
    "track_segments",
]


class InterpolationError(ValueError):
    """Keyframes, outside frames or the frame asked for are inconsistent."""


@dataclass(frozen=True, eq=False)
class TrackFrame:
    """The track's instance at one frame.

    Attributes:
        frame_index: The frame.
        instance: The keyframe itself, or a computed instance.
        keyframe: True when ``instance`` is the keyframe a person set.
        previous_keyframe: The keyframe this frame comes from (itself for a keyframe).
        next_keyframe: The keyframe interpolated towards, or None when held.
    """

    frame_index: int
    instance: Instance
    keyframe: bool
    previous_keyframe: int
    next_keyframe: int | None

    @property
    def interpolated(self) -> bool:
        """True for every frame that is not a keyframe (interpolated or held)."""
        return not self.keyframe


class _Track:
    """Sorted keyframes and outside frames, validated once."""

    def __init__(
        self, keyframes: Mapping[int, Instance], frame_count: int, outside: Collection[int]
    ) -> None:
        frame_count = int(frame_count)
        if frame_count < 0:
            raise InterpolationError(f"frame_count must be >= 0, got {frame_count}")
        self.frame_count = frame_count
        self.frames = sorted(int(f) for f in keyframes)
        self.keyframes = {int(f): inst for f, inst in keyframes.items()}
        self.outside = sorted({int(f) for f in outside})
        for f in self.frames:
            if not 0 <= f < frame_count:
                raise InterpolationError(
                    f"keyframe at frame {f} is outside the video (0..{frame_count - 1})"
                )
        both = set(self.frames) & set(self.outside)
        if both:
            raise InterpolationError(f"frame {min(both)} is both a keyframe and an outside frame")
        sizes = {inst.num_keypoints for inst in self.keyframes.values()}
        if len(sizes) > 1:
            raise InterpolationError(
                f"keyframes have different numbers of keypoints: {sorted(sizes)}"
            )

    def segment_end(self, start: int) -> int:
        """Exclusive end of the segment that starts at keyframe ``start``: the first
        outside frame after it, else the video's end."""
        i = bisect.bisect_right(self.outside, start)
        return self.outside[i] if i < len(self.outside) else self.frame_count

    def at(self, frame: int) -> TrackFrame | None:
        if not 0 <= frame < self.frame_count:
            raise InterpolationError(
                f"frame {frame} is outside the video (0..{self.frame_count - 1})"
            )
        i = bisect.bisect_right(self.frames, frame) - 1
        if i < 0:
            return None
        a = self.frames[i]
        if a == frame:
            return TrackFrame(frame, self.keyframes[a], True, a, None)
        end = self.segment_end(a)
        if frame >= end:
            return None
        b = self.frames[i + 1] if i + 1 < len(self.frames) else None
        if b is not None and b > end:
            b = None  # the segment closes before the next keyframe
        return self._computed(frame, a, b)

    def _computed(self, frame: int, a: int, b: int | None) -> TrackFrame:
        if b is None:
            inst = _held(self.keyframes[a])
        else:
            inst = interpolate_between(self.keyframes[a], self.keyframes[b], (frame - a) / (b - a))
        return TrackFrame(frame, inst, False, a, b)


def _held(prev: Instance) -> Instance:
    return prev.copy(
        keypoints=prev.keypoints.copy(),
        visibility=prev.visibility.copy(),
        keypoint_scores=None if prev.keypoint_scores is None else prev.keypoint_scores.copy(),
        box=None if prev.box is None else prev.box.copy(),
        id=None,
        area=None,
        segmentation=None,
        extra=dict(prev.extra),
    )


def interpolate_between(prev: Instance, next_: Instance, t: float) -> Instance:
    """The instance a fraction ``t`` of the way from keyframe ``prev`` to ``next_``.

    Follows the position, visibility and field rules of the module docstring;
    ``t`` is in [0, 1). Coordinates are computed in float64 and stored as float32.
    """
    if prev.num_keypoints != next_.num_keypoints:
        raise InterpolationError(
            f"keyframes have {prev.num_keypoints} and {next_.num_keypoints} keypoints"
        )
    t = float(t)
    if not 0.0 <= t < 1.0:
        raise InterpolationError(f"t must be in [0, 1), got {t}")
    in_prev = prev.visibility > 0
    both = in_prev & (next_.visibility > 0)
    p = prev.keypoints.astype(np.float64)
    q = next_.keypoints.astype(np.float64)
    keypoints = np.where(both[:, None], (1.0 - t) * p + t * q, p)
    keypoints = np.where(in_prev[:, None], keypoints, 0.0)
    visibility = np.where(in_prev, prev.visibility, 0).astype(np.uint8)
    scores = None
    if prev.keypoint_scores is not None and next_.keypoint_scores is not None:
        ps = prev.keypoint_scores.astype(np.float64)
        qs = next_.keypoint_scores.astype(np.float64)
        scores = np.where(both, (1.0 - t) * ps + t * qs, ps)
        scores = np.where(in_prev, scores, 0.0)
    if prev.box is not None and next_.box is not None:
        box = (1.0 - t) * prev.box.astype(np.float64) + t * next_.box.astype(np.float64)
    else:
        box = None if prev.box is None else prev.box.copy()
    score = None
    if prev.score is not None and next_.score is not None:
        score = (1.0 - t) * prev.score + t * next_.score
    return prev.copy(
        keypoints=keypoints,
        visibility=visibility,
        keypoint_scores=scores,
        box=box,
        score=score,
        id=None,
        area=None,
        segmentation=None,
        extra=dict(prev.extra),
    )


def instance_at(
    keyframes: Mapping[int, Instance],
    frame_index: int,
    *,
    frame_count: int,
    outside: Collection[int] = (),
) -> TrackFrame | None:
    """The track at one frame, or None where it is absent.

    Args:
        keyframes: ``{frame_index: Instance}``, all with the same number of keypoints.
        frame_index: The frame asked for, ``0 <= frame_index < frame_count``.
        frame_count: Frames in the video (an open track runs to the last one).
        outside: Frames where a segment of the track ends.
    """
    return _Track(keyframes, frame_count, outside).at(int(frame_index))


def interpolate_track(
    keyframes: Mapping[int, Instance],
    *,
    frame_count: int,
    outside: Collection[int] = (),
    frames: Iterable[int] | None = None,
) -> dict[int, TrackFrame]:
    """The track at every frame where it is present (or at the given ``frames``).

    Returns:
        ``{frame_index: TrackFrame}`` in frame order; frames where the track is
        absent are left out.
    """
    track = _Track(keyframes, frame_count, outside)
    if frames is not None:
        found = ((f, track.at(int(f))) for f in sorted({int(f) for f in frames}))
        return {f: tf for f, tf in found if tf is not None}
    out: dict[int, TrackFrame] = {}
    for start, stop in track_segments(keyframes, frame_count=frame_count, outside=outside):
        for f in range(start, stop):
            tf = track.at(f)
            if tf is not None:
                out[f] = tf
    return out


def track_segments(
    keyframes: Mapping[int, Instance],
    *,
    frame_count: int,
    outside: Collection[int] = (),
) -> list[tuple[int, int]]:
    """Half-open frame ranges ``[start, stop)`` where the track is present.

    Example:
        >>> import numpy as np
        >>> from posekit.core import Instance
        >>> k = Instance(np.zeros((1, 2)), np.array([2]))
        >>> track_segments({2: k, 5: k, 9: k}, frame_count=12, outside={7})
        [(2, 7), (9, 12)]
    """
    track = _Track(keyframes, frame_count, outside)
    segments: list[tuple[int, int]] = []
    for f in track.frames:
        if segments and segments[-1][0] <= f < segments[-1][1]:
            continue
        segments.append((f, track.segment_end(f)))
    return segments
