"""Temporal smoothing of pose tracks, per track and joint, and a jitter measure.

Two filters:

* **One Euro** (Casiez, Roussel and Vogel, CHI 2012), online: a low-pass filter
  whose cutoff rises with speed, ``cutoff = min_cutoff + beta * speed``. Time is in
  seconds (``fps`` or per-frame timestamps), cutoffs in Hz. The speed is measured
  in **person sizes per second**: the filtered 2D joint speed in pixels per second
  divided by the person's size ``sqrt(w * h)`` of its box (the keypoints' box when
  there is none), so one ``beta`` suits near and far people alike. ``d_cutoff``
  (Hz) smooths that speed estimate.
* **Savitzky-Golay** (``scipy.signal.savgol_filter``), offline, over each run of
  consecutive frames where the joint is labeled.

Both follow the same rules:

* Gaps are never smoothed across: a frame where a joint is not labeled (or the
  track is absent) ends that joint's run; the next labeled frame starts afresh.
* Locked frames (keyframes a person set; the caller passes a boolean mask) are
  never moved. One Euro restarts from a locked value; Savitzky-Golay spreads the
  correction that puts a locked frame back over the ``window_length // 2`` frames
  on each side (tapering linearly to zero) so that the track passes through the
  keyframe without a step.
* Only keypoint coordinates change; visibility, scores and boxes are kept.

:func:`mean_acceleration` is the jitter measure: the mean over joints and frames
of the second difference ``|p[t+1] - 2 p[t] + p[t-1]|`` divided by the person's
size at ``t``, over frames where the joint is labeled at ``t - 1``, ``t`` and ``t + 1``.

Array functions (:func:`savgol_smooth`, :func:`one_euro_smooth`) take one track's
consecutive frames; :func:`smooth_track` takes its instances frame by frame;
:func:`smooth_video` and :func:`video_jitter` take a whole video as
``{frame_index: [Instance, ...]}`` with ``track_id`` set, and :class:`OneEuroSmoother`
runs online next to a tracker.

Example:
    >>> import numpy as np
    >>> xy = np.zeros((5, 1, 2)); vis = np.full((5, 1), 2)
    >>> savgol_smooth(xy, vis, window_length=5, polyorder=2).tolist() == xy.tolist()
    True
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from posekit.core import Instance
from posekit.tracking.tracks import frames_from_tracks, tracks_by_id

__all__ = [
    "OneEuroFilter",
    "OneEuroOptions",
    "OneEuroSmoother",
    "SmoothingError",
    "mean_acceleration",
    "one_euro_smooth",
    "person_size",
    "savgol_smooth",
    "smooth_track",
    "smooth_video",
    "track_arrays",
    "track_jitter",
    "video_jitter",
]


class SmoothingError(ValueError):
    """Smoothing input or parameters are invalid; the message says which."""


@dataclass(frozen=True)
class OneEuroOptions:
    """One Euro parameters (see the module docstring for the units).

    Attributes:
        min_cutoff: Cutoff in Hz when the joint is still; lower is smoother and
            lags more. Default 1.0.
        beta: Cutoff increase in Hz per (person size per second) of speed; higher
            follows fast motion more closely. Default 3.0.
        d_cutoff: Cutoff in Hz of the speed estimate. Default 1.0.
    """

    min_cutoff: float = 1.0
    beta: float = 3.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_cutoff) and self.min_cutoff > 0):
            raise SmoothingError(f"min_cutoff must be > 0 Hz, got {self.min_cutoff!r}")
        if not (math.isfinite(self.beta) and self.beta >= 0):
            raise SmoothingError(f"beta must be >= 0, got {self.beta!r}")
        if not (math.isfinite(self.d_cutoff) and self.d_cutoff > 0):
            raise SmoothingError(f"d_cutoff must be > 0 Hz, got {self.d_cutoff!r}")


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter for one 2D point (one joint of one track).

    Example:
        >>> f = OneEuroFilter(OneEuroOptions())
        >>> f(np.array([1.0, 2.0]), t=0.0, size=100.0).tolist()
        [1.0, 2.0]
    """

    def __init__(self, options: OneEuroOptions) -> None:
        self.options = options
        self.reset()

    def reset(self) -> None:
        """Forget the state; the next sample is passed through."""
        self._value: np.ndarray | None = None
        self._speed = np.zeros(2)
        self._time = 0.0

    def restart(self, value: np.ndarray, t: float) -> None:
        """Continue from ``value`` at time ``t`` (a locked keyframe), keeping the
        speed estimate."""
        if self._value is not None and t > self._time:
            self._speed = (np.asarray(value, np.float64) - self._value) / (t - self._time)
        self._value = np.asarray(value, dtype=np.float64).copy()
        self._time = float(t)

    def __call__(self, value: np.ndarray, t: float, size: float) -> np.ndarray:
        """Filter ``value`` ``(2,)`` px at time ``t`` seconds; ``size`` in px."""
        x = np.asarray(value, dtype=np.float64)
        if self._value is None:
            self._value = x.copy()
            self._speed = np.zeros(2)
            self._time = float(t)
            return x.copy()
        dt = float(t) - self._time
        if dt <= 0:
            raise SmoothingError(f"time must increase: got {t} after {self._time}")
        opts = self.options
        raw_speed = (x - self._value) / dt
        a_d = _alpha(opts.d_cutoff, dt)
        self._speed = a_d * raw_speed + (1.0 - a_d) * self._speed
        speed = float(np.hypot(*self._speed)) / max(float(size), 1e-6)
        a = _alpha(opts.min_cutoff + opts.beta * speed, dt)
        self._value = a * x + (1.0 - a) * self._value
        self._time = float(t)
        return self._value.copy()


def person_size(instance: Instance) -> float:
    """``sqrt(w * h)`` of the instance's box (its keypoints' box if it has none), at
    least 1 px; 1.0 when nothing is labeled."""
    box = instance.bbox_or_keypoint_box()
    if box is None:
        return 1.0
    return max(math.sqrt(max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)), 1.0)


def _check_arrays(
    keypoints: np.ndarray, visibility: np.ndarray, locked: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xy = np.asarray(keypoints, dtype=np.float64)
    if xy.ndim != 3 or xy.shape[2] != 2:
        raise SmoothingError(f"keypoints: expected shape (T, K, 2), got {xy.shape}")
    vis = np.asarray(visibility)
    if vis.shape != xy.shape[:2]:
        raise SmoothingError(f"visibility: expected shape {xy.shape[:2]}, got {vis.shape}")
    if locked is None:
        lock = np.zeros(xy.shape[0], dtype=bool)
    else:
        lock = np.asarray(locked, dtype=bool)
        if lock.shape != (xy.shape[0],):
            raise SmoothingError(f"locked: expected shape ({xy.shape[0]},), got {lock.shape}")
    return xy, vis > 0, lock


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open ``[start, stop)`` runs of True in a 1-D mask."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2])]


def savgol_smooth(
    keypoints: np.ndarray,
    visibility: np.ndarray,
    locked: np.ndarray | None = None,
    *,
    window_length: int = 9,
    polyorder: int = 2,
) -> np.ndarray:
    """Savitzky-Golay smoothing of one track, per joint, within labeled runs.

    Args:
        keypoints: ``(T, K, 2)`` px, T consecutive frames of one track.
        visibility: ``(T, K)``; 0 (not labeled, or track absent) breaks a run.
        locked: ``(T,) bool``, frames that must not move (keyframes).
        window_length: Odd window in frames. A run shorter than the window uses the
            longest odd window it holds; a run whose window would be
            ``polyorder + 1`` frames or fewer is left as it is (such a window fits
            the data exactly anyway).
        polyorder: Degree of the local polynomial, less than ``window_length``.

    Returns:
        ``(T, K, 2) float64`` smoothed coordinates (unlabeled entries unchanged).
    """
    from scipy.signal import savgol_filter

    if window_length < 3 or window_length % 2 == 0:
        raise SmoothingError(f"window_length must be odd and >= 3, got {window_length}")
    if not 0 <= polyorder < window_length:
        raise SmoothingError(
            f"polyorder must be in [0, window_length), got {polyorder} for {window_length}"
        )
    xy, labeled, lock = _check_arrays(keypoints, visibility, locked)
    out = xy.copy()
    half = window_length // 2
    for j in range(xy.shape[1]):
        for start, stop in _runs(labeled[:, j]):
            n = stop - start
            window = min(window_length, n if n % 2 == 1 else n - 1)
            if window <= polyorder + 1 or window < 3:
                continue
            seg = xy[start:stop, j]
            smoothed = savgol_filter(seg, window, polyorder, axis=0, mode="interp")
            seg_lock = np.flatnonzero(lock[start:stop])
            if seg_lock.size:
                smoothed = _pin(smoothed, seg, seg_lock, half)
            out[start:stop, j] = smoothed
    return out


def _pin(smoothed: np.ndarray, original: np.ndarray, locked: np.ndarray, half: int) -> np.ndarray:
    """Put locked frames back, spreading each correction over ``half`` frames per side."""
    n = smoothed.shape[0]
    correction = np.zeros_like(smoothed)
    weight = np.zeros(n)
    frames = np.arange(n)
    for lf in locked:
        w = np.clip(1.0 - np.abs(frames - lf) / (half + 1.0), 0.0, None)
        correction += w[:, None] * (original[lf] - smoothed[lf])[None, :]
        weight += w
    # Where tapers overlap, average the corrections instead of adding them.
    scale = np.where(weight > 1.0, 1.0 / np.maximum(weight, 1e-12), 1.0)
    result = smoothed + correction * scale[:, None]
    result[locked] = original[locked]
    return result


def one_euro_smooth(
    keypoints: np.ndarray,
    visibility: np.ndarray,
    sizes: np.ndarray,
    locked: np.ndarray | None = None,
    *,
    options: OneEuroOptions | None = None,
    fps: float | None = None,
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """One Euro filtering of one track over its frames, per joint (offline use of the
    online filter: the result at frame t depends only on frames up to t).

    Args:
        keypoints: ``(T, K, 2)`` px, T consecutive frames.
        visibility: ``(T, K)``; 0 breaks a joint's run (its filter restarts).
        sizes: ``(T,)`` person size in px per frame (see :func:`person_size`).
        locked: ``(T,) bool`` frames that must not move.
        options: :class:`OneEuroOptions`.
        fps: Frame rate, when ``timestamps`` is not given.
        timestamps: ``(T,)`` seconds, increasing (variable frame rate).

    Returns:
        ``(T, K, 2) float64``.
    """
    xy, labeled, lock = _check_arrays(keypoints, visibility, locked)
    times = _times(xy.shape[0], fps, timestamps)
    size = np.asarray(sizes, dtype=np.float64)
    if size.shape != (xy.shape[0],):
        raise SmoothingError(f"sizes: expected shape ({xy.shape[0]},), got {size.shape}")
    opts = options or OneEuroOptions()
    out = xy.copy()
    for j in range(xy.shape[1]):
        filt = OneEuroFilter(opts)
        for t in range(xy.shape[0]):
            if not labeled[t, j]:
                filt.reset()
                continue
            if lock[t]:
                filt.restart(xy[t, j], times[t])
                continue
            out[t, j] = filt(xy[t, j], times[t], size[t])
    return out


def _times(n: int, fps: float | None, timestamps: np.ndarray | None) -> np.ndarray:
    if timestamps is not None:
        times = np.asarray(timestamps, dtype=np.float64)
        if times.shape != (n,):
            raise SmoothingError(f"timestamps: expected shape ({n},), got {times.shape}")
        if n > 1 and not np.all(np.diff(times) > 0):
            raise SmoothingError("timestamps must increase strictly")
        return times
    if fps is None or not (math.isfinite(fps) and fps > 0):
        raise SmoothingError(f"give fps > 0 or timestamps, got fps={fps!r}")
    return np.arange(n, dtype=np.float64) / float(fps)


def track_arrays(
    track: Sequence[Instance | None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(T, K, 2)`` keypoints, ``(T, K)`` visibility and ``(T,)`` person sizes of a
    track given frame by frame (None where the track is absent)."""
    present = [inst for inst in track if inst is not None]
    if not present:
        n = len(track)
        return np.zeros((n, 0, 2)), np.zeros((n, 0), np.uint8), np.ones(n)
    k = present[0].num_keypoints
    xy = np.zeros((len(track), k, 2))
    vis = np.zeros((len(track), k), np.uint8)
    sizes = np.ones(len(track))
    for t, inst in enumerate(track):
        if inst is None:
            continue
        if inst.num_keypoints != k:
            raise SmoothingError(f"frame {t} has {inst.num_keypoints} keypoints, the track has {k}")
        xy[t] = inst.keypoints
        vis[t] = inst.visibility
        sizes[t] = person_size(inst)
    return xy, vis, sizes


def smooth_track(
    track: Sequence[Instance | None],
    locked: Sequence[bool] | None = None,
    *,
    method: str = "savgol",
    window_length: int = 9,
    polyorder: int = 2,
    one_euro: OneEuroOptions | None = None,
    fps: float | None = None,
    timestamps: Sequence[float] | None = None,
) -> list[Instance | None]:
    """Smooth one track given frame by frame (consecutive frames; None = absent).

    Args:
        track: The track's instance at each consecutive frame, or None.
        locked: Boolean mask, same length: frames whose instance must not move.
        method: ``"savgol"`` (offline) or ``"one_euro"``.
        window_length, polyorder: Savitzky-Golay parameters.
        one_euro, fps, timestamps: One Euro parameters and timing.

    Returns:
        New instances (locked ones are the same objects), None where absent.
    """
    xy, vis, sizes = track_arrays(track)
    lock = None if locked is None else np.asarray(locked, dtype=bool)
    if lock is not None and lock.shape != (len(track),):
        raise SmoothingError(f"locked: expected {len(track)} flags, got {lock.shape}")
    if xy.shape[1] == 0:
        return list(track)
    if method == "savgol":
        smoothed = savgol_smooth(xy, vis, lock, window_length=window_length, polyorder=polyorder)
    elif method == "one_euro":
        ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
        smoothed = one_euro_smooth(xy, vis, sizes, lock, options=one_euro, fps=fps, timestamps=ts)
    else:
        raise SmoothingError(f"method: expected 'savgol' or 'one_euro', got {method!r}")
    out: list[Instance | None] = []
    for t, inst in enumerate(track):
        if inst is None or (lock is not None and lock[t]):
            out.append(inst)
        else:
            out.append(inst.copy(keypoints=smoothed[t]))
    return out


class OneEuroSmoother:
    """Online One Euro smoothing of tracked instances, per track and joint.

    Call :meth:`update` once per frame with that frame's tracked instances
    (``track_id`` set); untracked instances pass through unchanged. A track missing
    from a frame restarts its filters at its next appearance (gaps are not smoothed
    across), and so does a joint that is not labeled.

    Args:
        options: :class:`OneEuroOptions`.
        fps: Frame rate; the time of frame ``i`` is ``i / fps`` unless ``update`` is
            given a ``timestamp``.
    """

    def __init__(self, options: OneEuroOptions | None = None, *, fps: float = 30.0) -> None:
        if not (math.isfinite(fps) and fps > 0):
            raise SmoothingError(f"fps must be > 0, got {fps!r}")
        self.options = options or OneEuroOptions()
        self.fps = float(fps)
        self.reset()

    def reset(self) -> None:
        self._filters: dict[int, list[OneEuroFilter]] = {}
        self._last_frame: dict[int, int] = {}

    def update(
        self,
        frame_index: int,
        instances: Sequence[Instance],
        *,
        timestamp: float | None = None,
        locked: Sequence[bool] | None = None,
    ) -> list[Instance]:
        """Smoothed copies of ``instances`` (same order); locked ones are returned as
        they are and restart their filters from their values."""
        t = float(timestamp) if timestamp is not None else frame_index / self.fps
        if locked is not None and len(locked) != len(instances):
            raise SmoothingError(f"locked: expected {len(instances)} flags, got {len(locked)}")
        out: list[Instance] = []
        for n, inst in enumerate(instances):
            tid = inst.track_id
            if tid is None:
                out.append(inst)
                continue
            filters = self._filters.get(tid)
            if (
                filters is None
                or len(filters) != inst.num_keypoints
                or self._last_frame.get(tid) != frame_index - 1
            ):
                filters = [OneEuroFilter(self.options) for _ in range(inst.num_keypoints)]
                self._filters[tid] = filters
            self._last_frame[tid] = frame_index
            is_locked = bool(locked[n]) if locked is not None else False
            size = person_size(inst)
            kps = inst.keypoints.astype(np.float64)
            for j, filt in enumerate(filters):
                if inst.visibility[j] == 0:
                    filt.reset()
                elif is_locked:
                    filt.restart(kps[j], t)
                else:
                    kps[j] = filt(kps[j], t, size)
            out.append(inst if is_locked else inst.copy(keypoints=kps))
        return out


def mean_acceleration(
    keypoints: np.ndarray, visibility: np.ndarray, sizes: np.ndarray | None = None
) -> float:
    """Mean frame-to-frame keypoint acceleration, normalised by person size.

    Args:
        keypoints: ``(T, K, 2)`` px over consecutive frames.
        visibility: ``(T, K)``; a joint counts at ``t`` when labeled at t-1, t, t+1.
        sizes: ``(T,)`` person sizes in px; None for pixels.

    Returns:
        The mean of ``|p[t+1] - 2 p[t] + p[t-1]| / size[t]``; NaN if nothing counts.
    """
    terms = _acceleration_terms(keypoints, visibility, sizes)
    return float(np.mean(terms)) if terms.size else float("nan")


def _acceleration_terms(
    keypoints: np.ndarray, visibility: np.ndarray, sizes: np.ndarray | None
) -> np.ndarray:
    xy, labeled, _ = _check_arrays(keypoints, visibility, None)
    if xy.shape[0] < 3:
        return np.zeros(0)
    size = np.ones(xy.shape[0]) if sizes is None else np.asarray(sizes, dtype=np.float64)
    if size.shape != (xy.shape[0],):
        raise SmoothingError(f"sizes: expected shape ({xy.shape[0]},), got {size.shape}")
    acc = np.linalg.norm(xy[2:] - 2.0 * xy[1:-1] + xy[:-2], axis=-1)  # (T-2, K)
    ok = labeled[2:] & labeled[1:-1] & labeled[:-2]
    return (acc / size[1:-1, None])[ok]


def _as_sequence(track: Sequence[Instance | None] | Mapping[int, Instance]) -> list:
    if isinstance(track, Mapping):
        if not track:
            return []
        first, last = min(track), max(track)
        return [track.get(f) for f in range(first, last + 1)]
    return list(track)


def track_jitter(track: Sequence[Instance | None] | Mapping[int, Instance]) -> float:
    """:func:`mean_acceleration` of a track, frame by frame or as ``{frame: Instance}``
    (missing frames count as absent)."""
    xy, vis, sizes = track_arrays(_as_sequence(track))
    return mean_acceleration(xy, vis, sizes)


def video_jitter(frames: Mapping[int, Sequence[Instance]]) -> float:
    """:func:`mean_acceleration` pooled over every track of a video given as
    ``{frame_index: [Instance, ...]}`` (instances need ``track_id``); NaN if no
    joint is labeled on three consecutive frames of a track."""
    terms = [
        _acceleration_terms(*track_arrays(_as_sequence(track)))
        for track in tracks_by_id(frames).values()
    ]
    pooled = np.concatenate(terms) if terms else np.zeros(0)
    return float(np.mean(pooled)) if pooled.size else float("nan")


def smooth_video(
    frames: Mapping[int, Sequence[Instance]],
    *,
    locked: Collection[tuple[int, int]] = (),
    method: str = "savgol",
    window_length: int = 9,
    polyorder: int = 2,
    one_euro: OneEuroOptions | None = None,
    fps: float | None = None,
    timestamps: Mapping[int, float] | None = None,
) -> dict[int, list[Instance]]:
    """Smooth every track of a video, each on its own (:func:`smooth_track`).

    Args:
        frames: ``{frame_index: [Instance, ...]}``; instances without ``track_id``
            are passed through.
        locked: ``(frame_index, track_id)`` pairs that must not move (keyframes).
        method, window_length, polyorder, one_euro, fps: As for :func:`smooth_track`.
        timestamps: ``{frame_index: seconds}`` for variable frame rate (One Euro).

    Returns:
        ``{frame_index: [Instance, ...]}``: each frame's tracked instances by track
        id, then its untracked ones.
    """
    locked_set = {(int(f), int(t)) for f, t in locked}
    smoothed: dict[int, dict[int, Instance]] = {}
    for track_id, track in tracks_by_id(frames).items():
        first, last = min(track), max(track)
        span = list(range(first, last + 1))
        sequence = [track.get(f) for f in span]
        mask = [(f, track_id) in locked_set for f in span]
        ts = None if timestamps is None else [float(timestamps[f]) for f in span]
        out = smooth_track(
            sequence,
            mask,
            method=method,
            window_length=window_length,
            polyorder=polyorder,
            one_euro=one_euro,
            fps=fps,
            timestamps=ts,
        )
        smoothed[track_id] = {f: inst for f, inst in zip(span, out) if inst is not None}
    untracked = {
        f: [inst for inst in instances if inst.track_id is None] for f, instances in frames.items()
    }
    result = frames_from_tracks(smoothed, untracked)
    for f in frames:
        result.setdefault(int(f), [])
    return dict(sorted(result.items()))
