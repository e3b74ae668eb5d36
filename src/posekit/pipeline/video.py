"""Tracked pose prediction on video, store-free: frames -> detect -> pose -> tracker ->
(interpolate between sampled frames) -> (smooth) -> per-frame instances with ``track_id``.

* :class:`VideoFrameSource` is a :class:`~posekit.pipeline.run.FrameSource` over every
  frame, or every n-th, of a :class:`posekit.media.video.Video`. It decodes while the
  models run (the pipeline's decoding thread) and streams: frames are never all held.
* :class:`TrackingSink` is the :class:`~posekit.pipeline.run.PredictionSink` that runs
  a :class:`~posekit.tracking.Tracker` on the predictions as they come and hands each
  finished frame, in frame order, to ``on_frame(frame_index, instances)``. It holds
  only the last ``min_hits`` sampled frames (the ones a tentative track can still
  claim) plus one sampling interval, so memory does not grow with video length.
  Between two sampled frames ``a < f < b`` a track present in both is interpolated
  (:func:`posekit.tracking.interpolation.interpolate_between`, the keyframe rules);
  a track that is not in ``b`` ends after ``a``. Smoothing: One Euro online per track
  and joint, or Savitzky-Golay over the whole video at the end (offline: the only
  mode whose memory grows with length).
* :func:`predict_video` runs it all and returns a
  :class:`~posekit.dataset.PoseDataset` (one image per frame with ``video``,
  ``frame_index``, ``timestamp``; one :class:`~posekit.dataset.VideoRecord`; a
  :class:`~posekit.dataset.TrackRecord` per track with its outside frames).
* :func:`propagate_track` is AI-assisted tracking of one person: from an instance on
  one frame, run the pose model on each next frame with the box carried over.

Example:
    >>> from posekit.media.video import open_video
    >>> with open_video("walk.mp4") as video:  # doctest: +SKIP
    ...     result = predict_video(video, detector, pose, get_preset("coco17"))
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posekit.core import Detections, Instance, box_from_keypoints
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.pipeline.allocator import limit_heap_growth
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.run import (
    FrameError,
    PipelineSummary,
    ProgressCallback,
    WorkUnit,
    run_pipeline,
)
from posekit.skeleton import Skeleton
from posekit.tracking import (
    OneEuroSmoother,
    PoseTracker,
    Tracker,
    TrackerOptions,
    interpolate_between,
    smooth_video,
)
from posekit.tracking.tracker import BackfillingTracker

if TYPE_CHECKING:
    from posekit.media.video import Video
    from posekit.models.base import Detector, PoseEstimator

__all__ = [
    "FrameCallback",
    "TrackingSink",
    "VideoFrameSource",
    "VideoPrediction",
    "predict_video",
    "propagate_track",
    "video_frame_name",
]

log = logging.getLogger(__name__)

#: ``on_frame(frame_index, instances)``: a finished frame, called in frame order.
FrameCallback = Callable[[int, list[Instance]], None]


def video_frame_name(video_name: str, frame_index: int) -> str:
    """Image name of a frame in a predicted dataset: ``clip.mp4/000012.jpg``."""
    return f"{video_name}/{int(frame_index):06d}.jpg"


class VideoFrameSource:
    """Work units for frames ``start, start + every, ...`` of a video (key: frame index).

    The frames are decoded by one forward stream (:meth:`Video.frames`), each unit's
    ``load`` taking the next one, so decoding runs in the pipeline's decoding thread
    and nothing seeks.
    """

    def __init__(
        self, video: Video, *, every: int = 1, start: int = 0, stop: int | None = None
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.video = video
        self.every = int(every)
        self.start = int(start)
        self.stop = video.frame_count if stop is None else min(int(stop), video.frame_count)

    def __len__(self) -> int:
        return max(0, -(-(self.stop - self.start) // self.every))

    def __iter__(self) -> Iterator[WorkUnit]:
        stream = self.video.frames(self.start, self.stop, self.every)
        expected = iter(range(self.start, self.stop, self.every))

        def load(frame_index: int) -> np.ndarray:
            # Units are loaded once each, in order, by one thread.
            if next(expected) != frame_index:
                raise FrameError(f"frame {frame_index}: loaded out of order")
            try:
                return next(stream)
            except StopIteration:
                raise FrameError(f"frame {frame_index}: the video ended early") from None

        for frame_index in range(self.start, self.stop, self.every):
            yield WorkUnit(frame_index, lambda f=frame_index: load(f))


class TrackingSink:
    """Tracks predictions as they arrive and emits finished frames in order.

    Args:
        tracker: Any :class:`~posekit.tracking.Tracker` (reset here).
        frame_count: Frames in the video (interpolation and outside marks stop there).
        every: The sampling step of the source.
        on_frame: Receives every frame from the first sampled one to the end, in
            order, with its tracked instances (possibly none).
        smoothing: ``"none"``, ``"one-euro"`` or ``"savgol"``.
        fps: For One Euro timing.

    After the run, :attr:`outside` holds ``{track_id: [frame, ...]}``: the frames where
    each track's segments end, and :attr:`failed` the frames that could not be read.
    """

    def __init__(
        self,
        tracker: Tracker,
        *,
        frame_count: int,
        every: int = 1,
        on_frame: FrameCallback,
        smoothing: str = "none",
        fps: float = 30.0,
        timestamps: np.ndarray | None = None,
    ) -> None:
        self.tracker = tracker
        self.tracker.reset()
        self.frame_count = int(frame_count)
        self.every = int(every)
        self._on_frame = on_frame
        self._smoothing = smoothing
        self._one_euro = (
            OneEuroSmoother(fps=fps if fps > 0 else 30.0) if smoothing == "one-euro" else None
        )
        self._timestamps = timestamps
        self._fps = fps
        self._hold = getattr(getattr(tracker, "options", None), "min_hits", 3)
        self._pending: deque[tuple[int, list[Instance]]] = deque()
        self._assigned: dict[int, dict[int, int]] = {}
        self._settled: tuple[int, dict[int, Instance]] | None = None
        self._offline: dict[int, list[Instance]] = {}
        self._last_seen: dict[int, int] = {}
        self._next_frame: int | None = None
        self.outside: dict[int, list[int]] = {}
        self.failed: list[tuple[int, str]] = []
        self.tracks: set[int] = set()

    # ------------------------------------------------------------ PredictionSink
    def put(self, key: Hashable, frame: np.ndarray, instances: list[Instance]) -> None:
        frame_index = int(key)  # type: ignore[call-overload]
        if isinstance(self.tracker, BackfillingTracker):
            self._assigned[frame_index] = dict(self.tracker.assign(frame_index, instances))
            for f, ids in self.tracker.drain_backfill().items():
                self._assigned.setdefault(f, {}).update(ids)
            self._pending.append((frame_index, list(instances)))
        else:
            out = self.tracker.update(frame_index, instances)
            self._assigned[frame_index] = {}
            self._pending.append((frame_index, [i for i in out if i.track_id is not None]))
        while len(self._pending) > self._hold:
            self._settle(*self._pending.popleft())

    def fail(self, key: Hashable, reason: str) -> None:
        self.failed.append((int(key), reason))  # type: ignore[call-overload]

    def commit(self) -> None:
        pass

    def flush(self) -> None:
        while self._pending:
            self._settle(*self._pending.popleft())
        if self._settled is not None:
            last, tracks = self._settled
            self._emit_span(last, None, tracks, {})
            self._settled = None
        if self._offline:
            smoothed = smooth_video(self._offline, method="savgol", fps=self._fps or None)
            self._offline = {}
            for f in sorted(smoothed):
                self._on_frame(f, smoothed[f])

    # ------------------------------------------------------------ internals
    def _settle(self, frame_index: int, instances: list[Instance]) -> None:
        ids = self._assigned.pop(frame_index, {})
        if isinstance(self.tracker, BackfillingTracker):
            tracked = {
                ids[n]: inst.copy(track_id=ids[n]) for n, inst in enumerate(instances) if n in ids
            }
        else:
            tracked = {int(i.track_id): i for i in instances}  # type: ignore[arg-type]
        if self._settled is not None:
            previous, before = self._settled
            self._emit_span(previous, frame_index, before, tracked)
        self._settled = (frame_index, tracked)

    def _emit_span(
        self,
        a: int,
        b: int | None,
        at_a: dict[int, Instance],
        at_b: dict[int, Instance],
    ) -> None:
        """Emit frame ``a`` and the frames up to (not including) ``b``: tracks in both
        interpolated, the others ending after ``a``."""
        end = b if b is not None else min(self.frame_count, a + self.every)
        self._emit(a, [at_a[t] for t in sorted(at_a)])
        for f in range(a + 1, end):
            t = (f - a) / (b - a) if b is not None else 0.0
            between = [
                interpolate_between(at_a[tid], at_b[tid], t).copy(track_id=tid)
                for tid in sorted(at_a)
                if tid in at_b
            ]
            self._emit(f, between)

    def _emit(self, frame_index: int, instances: list[Instance]) -> None:
        for inst in instances:
            tid = int(inst.track_id)  # type: ignore[arg-type]
            last = self._last_seen.get(tid)
            if last is not None and last < frame_index - 1:
                self.outside.setdefault(tid, []).append(last + 1)
            self._last_seen[tid] = frame_index
            self.tracks.add(tid)
        if self._one_euro is not None:
            stamp = None if self._timestamps is None else float(self._timestamps[frame_index])
            instances = self._one_euro.update(frame_index, instances, timestamp=stamp)
        if self._smoothing == "savgol":
            self._offline[frame_index] = instances
            return
        self._on_frame(frame_index, instances)

    def close_tracks(self) -> dict[int, list[int]]:
        """:attr:`outside` completed with the frame after each track's last one."""
        for tid, last in self._last_seen.items():
            if last + 1 < self.frame_count:
                marks = self.outside.setdefault(tid, [])
                if last + 1 not in marks:
                    marks.append(last + 1)
        return {tid: sorted(marks) for tid, marks in sorted(self.outside.items())}


@dataclass
class VideoPrediction:
    """Result of :func:`predict_video`.

    Attributes:
        dataset: One image per frame (``video``, ``frame_index``, ``timestamp`` set)
            with its tracked instances, the video and its tracks.
        summary: The pipeline's summary (sampled frames processed, failures, device).
        tracks: Number of tracks.
        elapsed: Wall time in seconds.
    """

    dataset: PoseDataset
    summary: PipelineSummary
    tracks: int = 0
    elapsed: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)


def make_tracker(template: Skeleton, options: AutolabelOptions) -> PoseTracker:
    """The tracker :func:`predict_video` uses: :class:`PoseTracker` with
    ``options.tracker_options``; ``max_age`` counts frames, so it is not scaled."""
    return PoseTracker(template, TrackerOptions(**options.tracker_options))


def run_tracked(
    video: Video,
    detector: Detector | None,
    pose: PoseEstimator,
    template: Skeleton,
    options: AutolabelOptions,
    on_frame: FrameCallback,
    *,
    tracker: Tracker | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[PipelineSummary, TrackingSink]:
    """Tracked prediction over a whole video, streaming finished frames to ``on_frame``.

    Returns the pipeline summary and the sink (``close_tracks()`` gives the outside
    marks, ``tracks`` the track ids).

    Fixes glibc's mmap threshold first (:func:`posekit.pipeline.allocator.limit_heap_growth`),
    so that freed frames go back to the system and memory stays flat with length.
    """
    limit_heap_growth()
    sink = TrackingSink(
        tracker or make_tracker(template, options),
        frame_count=video.frame_count,
        every=options.every,
        on_frame=on_frame,
        smoothing=options.smoothing,
        fps=video.fps,
        timestamps=video.timestamps,
    )
    source = VideoFrameSource(video, every=options.every)
    summary = run_pipeline(
        source, sink, detector, pose, template, options, progress=progress, should_stop=should_stop
    )
    return summary, sink


def predict_video(
    video: Video | str | Path,
    detector: Detector | None,
    pose: PoseEstimator,
    template: Skeleton,
    options: AutolabelOptions | None = None,
    *,
    name: str | None = None,
    tracker: Tracker | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> VideoPrediction:
    """Tracked poses on every frame of a video (or every ``options.every``-th,
    interpolated in between), as a :class:`~posekit.dataset.PoseDataset`.

    Args:
        video: An open :class:`~posekit.media.video.Video` or a video file.
        detector, pose: The models (the caller owns and closes them).
        template: The template instances are written on.
        options: ``every``, ``smoothing``, ``tracker_options``, ``batch_size`` and the
            score thresholds of :class:`AutolabelOptions`.
        name: The video's name in the dataset (default: the file name).
    """
    from posekit.media.video import open_video

    options = options or AutolabelOptions()
    started = time.perf_counter()
    owned = not hasattr(video, "frames")
    opened: Video = open_video(video) if owned else video  # type: ignore[arg-type]
    try:
        name = name or Path(opened.path).name
        stamps = opened.timestamps
        images: list[LabeledImage] = []

        def on_frame(frame_index: int, instances: list[Instance]) -> None:
            record = ImageRecord(
                video_frame_name(name, frame_index), opened.width, opened.height,
                id=frame_index + 1, video=name, frame_index=frame_index,
                timestamp=float(stamps[frame_index]),
                extra={"timestamp": float(stamps[frame_index])},
            )  # fmt: skip
            images.append(LabeledImage(record, list(instances)))

        summary, sink = run_tracked(
            opened, detector, pose, template, options, on_frame,
            tracker=tracker, progress=progress, should_stop=should_stop,
        )  # fmt: skip
        outside = sink.close_tracks()
        video_record = VideoRecord(
            name=name, width=opened.width, height=opened.height,
            frame_count=opened.frame_count, fps=opened.fps, file_name=name,
        )  # fmt: skip
        dataset = PoseDataset(
            skeleton=template,
            images=images,
            videos=[video_record],
            tracks=[
                TrackRecord(video=name, track_id=t, outside=set(outside.get(t, [])))
                for t in sorted(sink.tracks)
            ],
        )
    finally:
        if owned:
            opened.close()
    failures = [(f"{name} frame {f}", reason) for f, reason in summary.failures]  # type: ignore[misc]
    return VideoPrediction(
        dataset=dataset,
        summary=summary,
        tracks=len(sink.tracks),
        elapsed=time.perf_counter() - started,
        failures=failures,
    )


def carried_box(
    instance: Instance, width: int, height: int, margin: float = 0.1
) -> np.ndarray | None:
    """The box to look for a person in the next frame: the box around the instance's
    labeled keypoints grown by ``margin`` of its size on each side (clipped to the
    frame), else the instance's own box; None when it has neither."""
    box = box_from_keypoints(instance.keypoints, instance.visibility)
    if box is None or box[2] - box[0] < 2 or box[3] - box[1] < 2:
        box = instance.box
        if box is None:
            return None
        return np.asarray(box, dtype=np.float32)
    w, h = box[2] - box[0], box[3] - box[1]
    grown = np.array(
        [box[0] - margin * w, box[1] - margin * h, box[2] + margin * w, box[3] + margin * h]
    )
    grown = np.clip(grown, 0, [width - 1, height - 1, width - 1, height - 1])
    return grown.astype(np.float32)


def propagate_track(
    video: Video,
    start_frame: int,
    instance: Instance,
    count: int,
    pose: PoseEstimator,
    template: Skeleton,
    *,
    margin: float = 0.1,
    min_score: float = 0.0,
    should_stop: Callable[[], bool] | None = None,
) -> dict[int, Instance]:
    """Follow one person forward from ``instance`` on ``start_frame``: on each of the
    next ``count`` frames, run ``pose`` in the box carried from the previous frame
    (:func:`carried_box`), producing predicted instances in the same track.

    Stops early at the end of the video, when no box can be carried, or when the
    prediction scores under ``min_score``.

    Returns:
        ``{frame_index: Instance}`` for the frames after ``start_frame`` (status
        ``predicted``, ``track_id`` of ``instance``).
    """
    out: dict[int, Instance] = {}
    previous = instance
    stop = min(video.frame_count, int(start_frame) + 1 + max(0, int(count)))
    for frame_index, frame in zip(
        range(start_frame + 1, stop), video.frames(start_frame + 1, stop), strict=False
    ):
        if should_stop is not None and should_stop():
            break
        box = carried_box(previous, video.width, video.height, margin)
        if box is None:
            break
        dets = Detections(box[None, :], np.ones(1, np.float32))
        (found,) = pose.estimate([frame], [dets], template)
        if not found:
            break
        inst = found[0]
        if min_score > 0 and inst.score is not None and inst.score < min_score:
            break
        source = inst.source if inst.source.startswith("model:") else f"model:{pose.name}"
        inst = inst.copy(track_id=instance.track_id, status="predicted", source=source, id=None)
        out[frame_index] = inst
        previous = inst
    return out
