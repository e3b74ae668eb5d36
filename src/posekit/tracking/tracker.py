"""Multi-person pose tracking: a ByteTrack-style tracker behind a small protocol.

The :class:`Tracker` protocol is the one interface the pipeline codes against
(``update(frame_index, instances) -> list[Instance]`` and ``reset()``), so that a
maintained tracker library can be wrapped and plugged in later. :class:`PoseTracker`
is posekit's own implementation.

How :class:`PoseTracker` associates detections with tracks, per frame:

1. Each detection gets a score: ``Instance.score``, else the mean of its
   ``keypoint_scores``, else 1.0 (a manual annotation). Detections under
   ``low_score`` are ignored; the rest are *high* (``>= high_score``) or *low*.
2. Each track predicts where its person is now: its last matched pose moved by a
   constant velocity (the mean keypoint displacement per frame, smoothed over
   matches), times the frames since that match (``motion="static"`` disables it).
3. Similarity between a track and a detection is the OKS (COCO formula, the
   template's sigmas, the track's box area as the scale) over the keypoints both
   label; with fewer than ``min_common_keypoints`` such keypoints it falls back to
   the IoU of the (predicted) boxes. A track seen only once has no velocity yet,
   so its similarity is the larger of OKS and IoU (fast motion at birth). Detection
   keypoints whose score is under ``min_keypoint_score`` do not take part.
4. Stage 1: high detections against the confirmed tracks (those seen in the last
   frame and the lost ones, which is what re-identifies a person after a short
   occlusion). Stage 2: low detections against the confirmed tracks that were seen
   in the previous update and are still unmatched (a lost track is not revived by a
   low-score detection, as in ByteTrack). Stage 3: the remaining high detections
   against the tentative tracks. Every stage is a Hungarian assignment
   (``scipy.optimize.linear_sum_assignment``) on ``1 - similarity``; pairs under
   the stage's similarity gate (``min_similarity``, ``min_similarity_low``) are
   never matched.
5. Unmatched high detections with a score ``>= new_track_score`` start tentative
   tracks. A tentative track that misses an update is dropped; one matched in
   ``min_hits`` consecutive updates is confirmed. A confirmed track that is not
   matched is *lost*; it is deleted once more than ``max_age`` frames have passed
   since its last match (frames are counted by ``frame_index``, so processing every
   n-th frame works).

Track ids and confirmation (the design choice for offline video labelling):
a track gets its public id when it is **confirmed**, so ids are consecutive ints
starting at 1 and a false positive that never reaches ``min_hits`` never uses an
id. :meth:`PoseTracker.update` returns the instances of confirmed tracks only (the
online stream). The detections a track collected while tentative are not lost:
:meth:`PoseTracker.drain_backfill` returns ``{frame_index: {detection_index:
track_id}}`` for them, and :func:`track_video` applies it, so that offline each
person is one track from the first frame they were detected in.

Example:
    >>> from posekit.skeleton import get_preset
    >>> tracker = PoseTracker(get_preset("coco17"))
    >>> frames = track_video(tracker, {})  # {frame_index: [Instance, ...]}
    >>> frames
    {}
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from posekit.core import Instance
from posekit.skeleton.template import Skeleton

__all__ = [
    "BackfillingTracker",
    "PoseTracker",
    "Tracker",
    "TrackerError",
    "TrackerOptions",
    "detection_score",
    "track_video",
]

log = logging.getLogger(__name__)

#: Cost given to gated-out pairs so that the Hungarian solver never prefers them.
_INFEASIBLE = 1e6


class TrackerError(ValueError):
    """Tracker input or options are invalid; the message says which and why."""


@runtime_checkable
class Tracker(Protocol):
    """What the pipeline needs from a multi-person tracker.

    ``update`` is called once per processed frame, with increasing ``frame_index``,
    and returns the instances it assigned to tracks (copies with ``track_id`` set;
    the inputs are not modified). ``reset`` forgets every track (a new video).
    """

    def update(self, frame_index: int, instances: Sequence[Instance]) -> list[Instance]: ...

    def reset(self) -> None: ...


@runtime_checkable
class BackfillingTracker(Tracker, Protocol):
    """A tracker that reports assignments by detection position and can name, once it
    confirms a track, the detections that track collected while tentative."""

    def assign(self, frame_index: int, instances: Sequence[Instance]) -> dict[int, int]: ...

    def drain_backfill(self) -> dict[int, dict[int, int]]: ...


@dataclass(frozen=True)
class TrackerOptions:
    """Parameters of :class:`PoseTracker`.

    Attributes:
        high_score: Detections scoring at least this are associated first and may
            start tracks (ByteTrack's ``track_thresh``). Default 0.5.
        low_score: Detections scoring under this are ignored. Default 0.1.
        new_track_score: Unmatched high detections start a track only from this
            score. Default 0.5.
        min_similarity: Gate for stage 1 and 3 (OKS or IoU must reach it). Default 0.2.
        min_similarity_low: Gate for low-score detections (stricter, as in
            ByteTrack). Default 0.5.
        min_hits: Consecutive matched updates before a track is confirmed and gets
            an id. Default 3; 1 confirms at once.
        max_age: Frames a confirmed track may go unmatched and still be
            re-identified. Default 30 (one second at 30 fps).
        min_common_keypoints: Fewer keypoints labeled in both poses than this and
            the similarity is box IoU instead of OKS. Default 3.
        min_keypoint_score: Detection keypoints scoring under this are left out of
            OKS. Default 0.2.
        motion: ``"constant_velocity"`` (predict the pose from its velocity) or
            ``"static"`` (compare with the last pose). Default constant velocity.
        velocity_smoothing: Weight of the newest velocity measurement in the
            exponential average, in (0, 1]. Default 0.5.
    """

    high_score: float = 0.5
    low_score: float = 0.1
    new_track_score: float = 0.5
    min_similarity: float = 0.2
    min_similarity_low: float = 0.5
    min_hits: int = 3
    max_age: int = 30
    min_common_keypoints: int = 3
    min_keypoint_score: float = 0.2
    motion: Literal["constant_velocity", "static"] = "constant_velocity"
    velocity_smoothing: float = 0.5

    def __post_init__(self) -> None:
        for name in ("high_score", "low_score", "new_track_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise TrackerError(f"{name}: expected a value in [0, 1], got {value!r}")
        if self.low_score > self.high_score:
            raise TrackerError(
                f"low_score ({self.low_score}) must not exceed high_score ({self.high_score})"
            )
        for name in ("min_similarity", "min_similarity_low"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise TrackerError(f"{name}: expected a value in (0, 1], got {value!r}")
        if int(self.min_hits) != self.min_hits or self.min_hits < 1:
            raise TrackerError(f"min_hits: expected an int >= 1, got {self.min_hits!r}")
        if int(self.max_age) != self.max_age or self.max_age < 0:
            raise TrackerError(f"max_age: expected an int >= 0, got {self.max_age!r}")
        if self.min_common_keypoints < 1:
            raise TrackerError(
                f"min_common_keypoints: expected >= 1, got {self.min_common_keypoints!r}"
            )
        if self.motion not in ("constant_velocity", "static"):
            raise TrackerError(
                f"motion: expected 'constant_velocity' or 'static', got {self.motion!r}"
            )
        if not 0.0 < self.velocity_smoothing <= 1.0:
            raise TrackerError(
                f"velocity_smoothing: expected a value in (0, 1], got {self.velocity_smoothing!r}"
            )


def detection_score(instance: Instance) -> float:
    """The score a tracker ranks a detection by: ``score``, else the mean keypoint
    score over labeled keypoints, else 1.0 (manual annotations)."""
    if instance.score is not None:
        return float(instance.score)
    if instance.keypoint_scores is not None:
        labeled = instance.visibility > 0
        if np.any(labeled):
            return float(np.mean(instance.keypoint_scores[labeled]))
        return 0.0
    return 1.0


@dataclass
class _Track:
    keypoints: np.ndarray  # (K, 2) float64, last matched pose
    labeled: np.ndarray  # (K,) bool, keypoints usable for OKS
    box: np.ndarray  # (4,) float64 xyxy of the last match
    last_frame: int
    hits: int = 1
    track_id: int | None = None
    velocity: np.ndarray | None = None  # (2,) px per frame
    # (frame_index, detection_index) seen while tentative
    pending: list[tuple[int, int]] = field(default_factory=list)

    def predicted(self, frame_index: int, use_motion: bool) -> tuple[np.ndarray, np.ndarray]:
        if not use_motion or self.velocity is None:
            return self.keypoints, self.box
        shift = self.velocity * float(frame_index - self.last_frame)
        return self.keypoints + shift, self.box + np.concatenate([shift, shift])


def _box_of(instance: Instance) -> np.ndarray:
    box = instance.bbox_or_keypoint_box()
    if box is None:
        return np.zeros(4, dtype=np.float64)
    return np.asarray(box, dtype=np.float64)


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of ``(N, 4)`` against ``(M, 4)`` xyxy boxes; 0 where a union is empty."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return iou


def _hungarian(similarity: np.ndarray, gate: float) -> list[tuple[int, int]]:
    """Row/column pairs maximising total similarity among pairs ``>= gate``."""
    if similarity.size == 0:
        return []
    from scipy.optimize import linear_sum_assignment

    feasible = similarity >= gate
    if not np.any(feasible):
        return []
    cost = np.where(feasible, 1.0 - similarity, _INFEASIBLE)
    rows, cols = linear_sum_assignment(cost)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if feasible[r, c]]


class PoseTracker:
    """ByteTrack-style multi-person pose tracker (see the module docstring).

    Args:
        template: The skeleton of the instances; its OKS sigmas weight the keypoints.
        options: :class:`TrackerOptions`; defaults if None.

    Example:
        >>> from posekit.skeleton import get_preset
        >>> tracker = PoseTracker(get_preset("coco17"), TrackerOptions(min_hits=1))
        >>> tracker.update(0, [])
        []
    """

    def __init__(self, template: Skeleton, options: TrackerOptions | None = None) -> None:
        self.template = template
        self.options = options or TrackerOptions()
        self._sigmas = np.asarray(template.sigmas, dtype=np.float64)
        self.reset()

    # ----------------------------------------------------------------- protocol
    def reset(self) -> None:
        """Forget every track; ids start again at 1."""
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_frame: int | None = None
        self._backfill: dict[int, dict[int, int]] = {}

    def update(self, frame_index: int, instances: Sequence[Instance]) -> list[Instance]:
        """Associate one frame's detections with the tracks.

        Args:
            frame_index: The frame's index in the video; must increase between calls.
            instances: The frame's detections, all on ``template``.

        Returns:
            Copies of the detections matched to confirmed tracks, with ``track_id``
            set, in input order. Detections of tentative tracks are not returned
            (see :meth:`drain_backfill`); ignored ones neither.
        """
        ids = self.assign(frame_index, instances)
        return [instances[d].copy(track_id=ids[d]) for d in sorted(ids)]

    def assign(self, frame_index: int, instances: Sequence[Instance]) -> dict[int, int]:
        """Like :meth:`update`, but returns ``{detection_index: track_id}``.

        Args:
            frame_index: The frame's index in the video; must increase between calls.
            instances: The frame's detections, all on ``template``.

        Returns:
            The positions in ``instances`` of the detections matched to confirmed
            tracks, mapped to their track ids.
        """
        frame_index = int(frame_index)
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise TrackerError(
                f"frame_index must increase: got {frame_index} after {self._last_frame}"
            )
        k = self.template.num_keypoints
        for position, inst in enumerate(instances):
            if inst.num_keypoints != k:
                raise TrackerError(
                    f"detection {position} in frame {frame_index} has {inst.num_keypoints} "
                    f"keypoints, template {self.template.name!r} has {k}"
                )
        opts = self.options
        previous_frame = self._last_frame
        self._last_frame = frame_index

        # Lost tracks past max_age are gone before association.
        self._tracks = [
            t
            for t in self._tracks
            if t.track_id is None or frame_index - t.last_frame <= opts.max_age
        ]

        scores = np.array([detection_score(i) for i in instances], dtype=np.float64)
        high = [d for d in range(len(instances)) if scores[d] >= opts.high_score]
        low = [d for d in range(len(instances)) if opts.low_score <= scores[d] < opts.high_score]

        confirmed = [t for t in self._tracks if t.track_id is not None]
        tentative = [t for t in self._tracks if t.track_id is None]
        matches: list[tuple[_Track, int]] = []

        # Stage 1: high detections vs all confirmed tracks (active and lost).
        pairs, unmatched_tracks, remaining_high = self._associate(
            confirmed, high, instances, frame_index, opts.min_similarity
        )
        matches += pairs
        # Stage 2: low detections vs confirmed tracks that were active last update.
        active = [t for t in unmatched_tracks if t.last_frame == previous_frame]
        pairs, _, _ = self._associate(active, low, instances, frame_index, opts.min_similarity_low)
        matches += pairs
        # Stage 3: remaining high detections vs tentative tracks.
        pairs, unmatched_tentative, remaining_high = self._associate(
            tentative, remaining_high, instances, frame_index, opts.min_similarity
        )
        matches += pairs

        emitted: dict[int, int] = {}
        for track, det in matches:
            self._absorb(track, instances[det], frame_index)
            if track.track_id is None:
                track.pending.append((frame_index, det))
                if track.hits >= opts.min_hits:
                    self._confirm(track)
            if track.track_id is not None:
                emitted[det] = track.track_id

        dropped = {id(t) for t in unmatched_tentative}
        self._tracks = [t for t in self._tracks if id(t) not in dropped]

        for det in remaining_high:
            if scores[det] < opts.new_track_score:
                continue
            track = self._new_track(instances[det], frame_index)
            track.pending.append((frame_index, det))
            if opts.min_hits <= 1:
                self._confirm(track)
                emitted[det] = track.track_id
        return emitted

    # ------------------------------------------------------------------ extras
    def drain_backfill(self) -> dict[int, dict[int, int]]:
        """Ids for detections made while their track was tentative, since the last call.

        Returns:
            ``{frame_index: {detection_index: track_id}}`` where ``detection_index`` is
            the position in the ``instances`` passed to :meth:`update` for that frame.
            The frame that confirms a track is not included: :meth:`update` returned
            that detection already.
        """
        out, self._backfill = self._backfill, {}
        return out

    @property
    def num_tracks(self) -> int:
        """Confirmed tracks alive (active or lost)."""
        return sum(1 for t in self._tracks if t.track_id is not None)

    # --------------------------------------------------------------- internals
    def _new_track(self, inst: Instance, frame_index: int) -> _Track:
        track = _Track(
            keypoints=inst.keypoints.astype(np.float64),
            labeled=self._usable(inst),
            box=_box_of(inst),
            last_frame=frame_index,
        )
        self._tracks.append(track)
        return track

    def _confirm(self, track: _Track) -> None:
        track.track_id = self._next_id
        self._next_id += 1
        # The last pending entry is the confirming frame, returned by update().
        for frame, det in track.pending[:-1]:
            self._backfill.setdefault(frame, {})[det] = track.track_id
        track.pending = []
        log.debug("track %d confirmed at frame %d", track.track_id, track.last_frame)

    def _usable(self, inst: Instance) -> np.ndarray:
        usable = inst.visibility > 0
        if inst.keypoint_scores is not None:
            usable &= inst.keypoint_scores >= self.options.min_keypoint_score
        return usable

    def _absorb(self, track: _Track, inst: Instance, frame_index: int) -> None:
        keypoints = inst.keypoints.astype(np.float64)
        labeled = self._usable(inst)
        box = _box_of(inst)
        gap = frame_index - track.last_frame
        common = labeled & track.labeled
        if np.any(common):
            displacement = (keypoints[common] - track.keypoints[common]).mean(axis=0)
        else:
            displacement = ((box[:2] + box[2:]) - (track.box[:2] + track.box[2:])) / 2.0
        measured = displacement / max(gap, 1)
        if track.velocity is None:
            track.velocity = measured
        else:
            a = self.options.velocity_smoothing
            track.velocity = a * measured + (1.0 - a) * track.velocity
        track.keypoints, track.labeled, track.box = keypoints, labeled, box
        # Hits count consecutive updates for tentative tracks.
        track.hits += 1
        track.last_frame = frame_index

    def _similarity(
        self, tracks: Sequence[_Track], dets: Sequence[Instance], frame_index: int
    ) -> np.ndarray:
        use_motion = self.options.motion == "constant_velocity"
        predicted = [t.predicted(frame_index, use_motion) for t in tracks]
        t_kps = np.stack([p[0] for p in predicted])  # (T, K, 2)
        t_box = np.stack([p[1] for p in predicted])  # (T, 4)
        t_lab = np.stack([t.labeled for t in tracks])  # (T, K)
        d_kps = np.stack([d.keypoints.astype(np.float64) for d in dets])  # (D, K, 2)
        d_box = np.stack([_box_of(d) for d in dets])
        d_lab = np.stack([self._usable(d) for d in dets])
        common = t_lab[:, None, :] & d_lab[None, :, :]  # (T, D, K)
        sq = np.sum((t_kps[:, None] - d_kps[None]) ** 2, axis=-1)  # (T, D, K)
        area = np.maximum((t_box[:, 2] - t_box[:, 0]) * (t_box[:, 3] - t_box[:, 1]), 1.0)
        variances = (2.0 * self._sigmas) ** 2
        e = sq / (2.0 * area[:, None, None] * variances[None, None, :])
        count = common.sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            oks = np.where(count > 0, (np.exp(-e) * common).sum(axis=-1) / count, 0.0)
        iou = _iou_matrix(t_box, d_box)
        # A track seen once has no velocity yet; its box overlap bridges fast motion.
        fresh = np.array([t.velocity is None for t in tracks])[:, None]
        pose_sim = np.where(fresh, np.maximum(oks, iou), oks)
        return np.where(count >= self.options.min_common_keypoints, pose_sim, iou)

    def _associate(
        self,
        tracks: Sequence[_Track],
        det_indices: Sequence[int],
        instances: Sequence[Instance],
        frame_index: int,
        gate: float,
    ) -> tuple[list[tuple[_Track, int]], list[_Track], list[int]]:
        if not tracks or not det_indices:
            return [], list(tracks), list(det_indices)
        sim = self._similarity(tracks, [instances[d] for d in det_indices], frame_index)
        pairs = _hungarian(sim, gate)
        matched_rows = {r for r, _ in pairs}
        matched_cols = {c for _, c in pairs}
        return (
            [(tracks[r], det_indices[c]) for r, c in pairs],
            [t for i, t in enumerate(tracks) if i not in matched_rows],
            [d for j, d in enumerate(det_indices) if j not in matched_cols],
        )


def track_video(
    tracker: Tracker,
    frames: Mapping[int, Sequence[Instance]] | Iterable[tuple[int, Sequence[Instance]]],
    *,
    keep_unconfirmed: bool = False,
) -> dict[int, list[Instance]]:
    """Track a whole video offline: one track per person, from their first detection.

    Runs ``tracker`` over the frames in increasing frame order (after ``reset()``)
    and, if it is a :class:`BackfillingTracker`, gives the detections a track made
    while tentative that track's id.

    Args:
        tracker: Any :class:`Tracker`.
        frames: ``{frame_index: [Instance, ...]}`` or ``(frame_index, instances)`` pairs.
        keep_unconfirmed: Keep detections that never joined a confirmed track (with
            ``track_id=None``); by default they are dropped.

    Returns:
        ``{frame_index: [Instance, ...]}`` for every input frame, each list in input
        order, tracked instances carrying their ``track_id``.
    """
    items = sorted(frames.items() if isinstance(frames, Mapping) else frames, key=lambda p: p[0])
    tracker.reset()
    assigned: dict[int, dict[int, int]] = {}
    inputs: dict[int, Sequence[Instance]] = {}
    for frame_index, instances in items:
        frame_index = int(frame_index)
        instances = list(instances)
        inputs[frame_index] = instances
        frame_ids = assigned.setdefault(frame_index, {})
        if isinstance(tracker, BackfillingTracker):
            frame_ids.update(tracker.assign(frame_index, instances))
            for frame, ids in tracker.drain_backfill().items():
                assigned.setdefault(frame, {}).update(ids)
            continue
        taken: set[int] = set()
        for out in tracker.update(frame_index, instances):
            pos = _find_equal(instances, out, taken)
            if pos is not None and out.track_id is not None:
                frame_ids[pos] = out.track_id
                taken.add(pos)
    result: dict[int, list[Instance]] = {}
    for frame_index, instances in inputs.items():
        ids = assigned.get(frame_index, {})
        frame_out: list[Instance] = []
        for pos, inst in enumerate(instances):
            if pos in ids:
                frame_out.append(inst.copy(track_id=ids[pos]))
            elif keep_unconfirmed:
                frame_out.append(inst.copy(track_id=None))
        result[frame_index] = frame_out
    return result


def _find_equal(instances: Sequence[Instance], out: Instance, taken: set[int]) -> int | None:
    """Position of the input a plain :class:`Tracker` returned a copy of."""
    for pos, inst in enumerate(instances):
        if (
            pos not in taken
            and np.array_equal(inst.keypoints, out.keypoints)
            and np.array_equal(inst.visibility, out.visibility)
        ):
            return pos
    return None
