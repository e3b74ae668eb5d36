"""The store-free pipeline: frames from a source -> detect -> pose -> a sink.

:func:`run_pipeline` knows nothing about projects, databases or servers. A
:class:`FrameSource` yields :class:`WorkUnit` s (a key and a way to get the RGB
frame: an image file, a project item, a video frame, a frame sent to a worker);
a :class:`PredictionSink` receives the instances found per key and the reason
per key that failed. The same function runs the ``posekit predict`` files path,
a project's auto-labeling (:mod:`posekit.engines.local`) and, later, video
frames and distributed workers.

Behaviour:

* Units are processed in batches of ``options.batch_size``. A worker thread
  decodes the frames, one after the other and up to one batch ahead, while the
  models run (the source itself is iterated in the calling thread, while that
  worker is idle); for a detector that can prepare its inputs apart from running
  (:class:`PreparingDetector`, e.g. BlazePose's letterboxed views) it prepares
  them there too, and each frame is detected as soon as it is ready instead of
  when its whole batch is. The results are those of detecting the batch at once.
* A unit whose frame cannot be produced, or whose prediction fails, is reported
  to the sink and in the summary; the others go on. When a batch fails in the
  models, its frames are retried one by one so one bad frame costs only itself.
* ``sink.commit()`` is called after every batch (a store sink writes the batch
  in one transaction there); ``sink.flush()`` once when the run ends normally or
  stops on ``should_stop``. After an exception (Ctrl-C included) neither is
  called for the unfinished batch.
* Progress goes only to the ``progress`` callback; nothing is printed.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np

from posekit.core import Detections, Instance
from posekit.media import ImageError
from posekit.models.base import Detector, PoseEstimator
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.postprocess import postprocess_instances
from posekit.pipeline.predict import predict
from posekit.skeleton import Skeleton

__all__ = [
    "FrameError",
    "FrameSource",
    "PipelineSummary",
    "PredictionSink",
    "PreparingDetector",
    "ProgressCallback",
    "WorkUnit",
    "models_device",
    "run_pipeline",
]

log = logging.getLogger(__name__)

#: ``progress(done, total)``: units handled so far and the source's length (None
#: when the source does not know it). Called once with ``done=0`` before the first
#: batch and after every batch, from the calling thread; keep it cheap.
ProgressCallback = Callable[[int, "int | None"], None]


class FrameError(Exception):
    """A work unit's frame cannot be produced; the message is the reason shown to
    people (raise it from :attr:`WorkUnit.load`)."""


@dataclass(frozen=True)
class WorkUnit:
    """One frame to process.

    Attributes:
        key: What the sink files the result under (a file name, an item id, a
            ``(video, frame index)`` pair).
        load: Returns the ``(H, W, 3) uint8`` RGB frame; called once, in the
            decoding thread. Raise :class:`FrameError` (or
            :class:`posekit.media.ImageError`) with a reason when it cannot.
        detections: Person boxes to use instead of running the detector (given
            boxes, a tracker's boxes); None to detect.
    """

    key: Hashable
    load: Callable[[], np.ndarray]
    detections: Detections | None = None

    @classmethod
    def of_frame(
        cls, key: Hashable, frame: np.ndarray, detections: Detections | None = None
    ) -> WorkUnit:
        """A unit for a frame already in memory."""
        return cls(key, lambda: frame, detections)


@runtime_checkable
class FrameSource(Protocol):
    """Yields the :class:`WorkUnit` s to process, in order. A source that also has
    ``__len__`` gives progress a total."""

    def __iter__(self) -> Iterator[WorkUnit]: ...


@runtime_checkable
class PredictionSink(Protocol):
    """Receives the results of :func:`run_pipeline`, in source order."""

    def put(self, key: Hashable, frame: np.ndarray, instances: list[Instance]) -> None:
        """The instances found on the frame of ``key`` (possibly none)."""

    def fail(self, key: Hashable, reason: str) -> None:
        """``key`` could not be processed, for ``reason``."""

    def commit(self) -> None:
        """End of a batch: make everything put since the last commit durable."""

    def flush(self) -> None:
        """End of the run (finished or stopped): write out anything held back."""


@dataclass
class PipelineSummary:
    """What :func:`run_pipeline` did.

    Attributes:
        processed: Units whose predictions went to the sink (possibly zero people).
        instances: Instances handed to the sink.
        failures: ``(key, reason)`` of every unit that could not be processed.
        total: Units taken from the source.
        device: Devices the models reported, e.g. ``"detector: cpu, pose: cpu"``.
        elapsed: Wall time in seconds.
        cancelled: True when the run stopped early on ``should_stop``.
    """

    processed: int = 0
    instances: int = 0
    failures: list[tuple[Hashable, str]] = field(default_factory=list)
    total: int = 0
    device: str = ""
    elapsed: float = 0.0
    cancelled: bool = False


def models_device(detector: Detector | None, pose: PoseEstimator) -> str:
    """``"detector: cpu, pose: cpu"`` (the detector part only when there is one)."""
    pose_part = f"pose: {pose.device}"
    return pose_part if detector is None else f"detector: {detector.device}, {pose_part}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, (FrameError, ImageError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@runtime_checkable
class PreparingDetector(Protocol):
    """A detector whose input preparation (resizing, letterboxing: no model) can run
    apart from the model, in another thread, e.g. on the next frame while the model
    runs on this one. ``detect_prepared([prepare(image)])`` must equal
    ``detect([image])``; ``prepare`` raises what ``detect`` would for a bad image.
    What ``prepare`` returns may have a ``fill()`` method that does the rest of the
    work in steps: the worker thread calls it right after ``prepare``, and
    ``detect_prepared`` must do itself (or wait for) any step ``fill`` has not done, so
    that the model starts on the first parts while the rest are made."""

    def prepare(self, image: np.ndarray) -> Any: ...

    def detect_prepared(self, prepared: Sequence[Any]) -> list[Detections]: ...


@dataclass(frozen=True)
class _Loaded:
    """A unit after the worker thread: its frame (or why not), and the detector's
    prepared inputs (or why they could not be made) when it will be detected."""

    unit: WorkUnit
    frame: np.ndarray | None = None
    error: str | None = None
    prepared: Any = None
    prepare_error: Exception | None = None


def _load(unit: WorkUnit, prepare: Callable[[np.ndarray], Any] | None) -> _Loaded:
    try:
        frame = unit.load()
    except Exception as exc:  # one unreadable frame must not stop the run
        return _Loaded(unit, error=_reason(exc))
    if prepare is None or unit.detections is not None:
        return _Loaded(unit, frame)
    try:
        return _Loaded(unit, frame, prepared=prepare(frame))
    except Exception as exc:  # reported as the frame's detection failure
        return _Loaded(unit, frame, prepare_error=exc)


@runtime_checkable
class _Fillable(Protocol):
    """Prepared inputs finished in steps (e.g. one detector view after the other) that
    the worker thread completes after :func:`_load`, while the models already run on
    the parts done; the detector completes itself whatever is not done when it needs
    it (:class:`posekit.models.blazepose.DetectorViews`)."""

    def fill(self) -> None: ...


def _fill(loading: Future[_Loaded]) -> None:
    prepared = loading.result().prepared  # done: the one worker ran it just before
    if isinstance(prepared, _Fillable):
        prepared.fill()  # a failure is raised again to whoever needs the part


def _batches(units: Iterable[WorkUnit], size: int) -> Iterator[list[WorkUnit]]:
    iterator = iter(units)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class _Loader:
    """Loads (and prepares) the units of each batch in a worker thread, one after the
    other, and queues the next batch as soon as the last unit of the current one is
    loaded, while the models still work on it (image decoding and resizing release
    the GIL). The source is iterated in the calling thread only while the worker is
    idle, as before, and at most two batches of frames are held."""

    def __init__(
        self, units: Iterable[WorkUnit], size: int, prepare: Callable[[np.ndarray], Any] | None
    ) -> None:
        self._batches = _batches(units, size)
        self._prepare = prepare
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="posekit-decode")
        self._queued: list[Future[_Loaded]] | None = None
        self._current: list[Future[_Loaded]] = []
        self._fills: list[Future[None]] = []
        self._queue_next()

    def _queue_next(self) -> None:
        batch = next(self._batches, None)
        if batch is None:
            self._queued = None
            return
        self._queued = []
        for unit in batch:
            loading = self._pool.submit(_load, unit, self._prepare)
            self._queued.append(loading)
            # Right after it (one worker: in this order), the rest of its preparation.
            self._fills.append(self._pool.submit(_fill, loading))

    def batches(self) -> Iterator[tuple[int, Iterator[_Loaded]]]:
        """``(size, loaded units in order)`` per batch; read each batch to its end."""
        while self._queued is not None:
            self._current, self._queued = self._queued, None
            yield len(self._current), self._loaded(self._current)

    def _loaded(self, futures: list[Future[_Loaded]]) -> Iterator[_Loaded]:
        for index, future in enumerate(futures):
            loaded = future.result()
            self._fills = [f for f in self._fills if not f.done()]
            if index == len(futures) - 1:
                self._queue_next()
            yield loaded

    def close(self) -> None:
        """Stop: what is queued and not started is dropped (nobody will read it)."""
        for future in [*self._current, *(self._queued or []), *self._fills]:
            future.cancel()
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class _Models:
    """The models of one run and what they are run with."""

    detector: Detector | None
    pose: PoseEstimator
    template: Skeleton
    min_box_score: float

    def detections(
        self, frames: Sequence[np.ndarray], given: Sequence[Detections | None]
    ) -> list[Detections]:
        """The given detections, and the detector's for frames that have none."""
        missing = [i for i, dets in enumerate(given) if dets is None]
        found: dict[int, Detections] = {}
        if missing:
            if self.detector is None:
                raise ValueError(
                    "run_pipeline: a work unit has no detections and there is no detector"
                )
            found = dict(zip(missing, self.detector.detect([frames[i] for i in missing])))
        detections = [found[i] if dets is None else dets for i, dets in enumerate(given)]
        if self.min_box_score > 0:
            detections = [d.subset(d.scores >= self.min_box_score) for d in detections]
        return detections

    def detect_loaded(self, loaded: _Loaded) -> Detections | None:
        """The detector's detections of a frame it prepared in the worker thread (None
        when it did not); raises what detecting the frame raises."""
        if loaded.prepare_error is not None:
            raise loaded.prepare_error
        if loaded.prepared is None:
            return None
        detector = cast(PreparingDetector, self.detector)
        return detector.detect_prepared([loaded.prepared])[0]

    def predict(
        self, frames: Sequence[np.ndarray], given: Sequence[Detections | None]
    ) -> list[list[Instance]]:
        return predict(frames, self.template, None, self.pose, self.detections(frames, given))

    def predict_batch(
        self, frames: Sequence[np.ndarray], given: Sequence[Detections | None]
    ) -> list[list[Instance] | Exception]:
        """Predictions per frame; if the batch fails, frames are retried one by one so
        that one bad frame does not cost the others."""
        if not frames:
            return []
        try:
            return list(self.predict(frames, given))
        except Exception as batch_error:
            if len(frames) == 1:
                return [batch_error]
            log.debug("batch of %d failed (%s); retrying one by one", len(frames), batch_error)
            results: list[list[Instance] | Exception] = []
            for frame, dets in zip(frames, given):
                try:
                    results.append(self.predict([frame], [dets])[0])
                except Exception as exc:
                    results.append(exc)
            return results


def run_pipeline(
    source: FrameSource | Iterable[WorkUnit],
    sink: PredictionSink,
    detector: Detector | None,
    pose: PoseEstimator,
    template: Skeleton,
    options: AutolabelOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PipelineSummary:
    """Detect people and estimate their poses on every frame of ``source``.

    Args:
        source: The work units (any iterable of :class:`WorkUnit`; with ``len``
            progress knows the total).
        sink: Receives instances and failures per key (see :class:`PredictionSink`).
        detector: Person detector; may be None when every unit carries detections.
        pose: Top-down pose estimator.
        template: Template the instances are written on.
        options: Uses ``batch_size``, ``min_box_score``, ``oks_nms_threshold`` and
            ``min_instance_score`` (duplicate poses by OKS, then low scores, are
            dropped: :func:`posekit.pipeline.postprocess.postprocess_instances`)
            (the model specs are for whoever creates the models). Default
            :class:`AutolabelOptions`.
        progress: ``progress(done, total)`` (see :data:`ProgressCallback`).
        should_stop: Checked before every batch; when it returns True the run
            stops there (``cancelled`` in the summary) and the sink is flushed.

    Returns:
        A :class:`PipelineSummary`; per-unit failures are collected there.

    Example:
        >>> units = [WorkUnit.of_frame(name, image) for name, image in frames]  # doctest: +SKIP
        >>> summary = run_pipeline(units, sink, detector, pose, template)  # doctest: +SKIP
    """
    options = options or AutolabelOptions()
    started = time.perf_counter()
    total = len(source) if isinstance(source, Sized) else None
    summary = PipelineSummary(device=models_device(detector, pose))
    models = _Models(detector, pose, template, options.min_box_score)
    log.info(
        "pipeline: %s + %s on %s, batches of %d%s",
        "given boxes" if detector is None else detector.name,
        pose.name,
        summary.device,
        options.batch_size,
        "" if total is None else f", {total} frames",
    )
    if progress is not None:
        progress(0, total)
    prepare = detector.prepare if isinstance(detector, PreparingDetector) else None
    loader: _Loader | None = None
    try:
        loader = _Loader(source, options.batch_size, prepare)
        for size, batch in loader.batches():
            if should_stop is not None and should_stop():
                summary.cancelled = True
                left = "" if total is None else f"; {total - summary.total} frames left"
                log.info("pipeline stopped on request%s", left)
                break
            summary.total += size
            # Each frame as it arrives: detected at once if the detector prepared it.
            outcomes: list[tuple[WorkUnit, np.ndarray | None, str | Exception | None]] = []
            loaded: list[tuple[np.ndarray, Detections | None]] = []
            for item in batch:
                if item.frame is None:
                    outcomes.append((item.unit, None, item.error))
                    continue
                try:
                    detections = models.detect_loaded(item)
                except Exception as exc:
                    outcomes.append((item.unit, item.frame, exc))
                    continue
                outcomes.append((item.unit, item.frame, None))
                given = item.unit.detections if detections is None else detections
                loaded.append((item.frame, given))
            results = iter(
                models.predict_batch([frame for frame, _ in loaded], [d for _, d in loaded])
            )
            for unit, frame, error in outcomes:
                result = error if error is not None else next(results)
                if isinstance(result, (str, Exception)):
                    reason = result if isinstance(result, str) else _reason(result)
                    summary.failures.append((unit.key, reason))
                    sink.fail(unit.key, reason)
                    continue
                instances = postprocess_instances(
                    result,
                    template,
                    oks_threshold=options.oks_nms_threshold,
                    min_score=options.min_instance_score,
                )
                summary.processed += 1
                summary.instances += len(instances)
                sink.put(unit.key, cast(np.ndarray, frame), instances)
            sink.commit()
            if progress is not None:
                progress(summary.total, total)
        sink.flush()
    finally:
        if loader is not None:
            loader.close()
        summary.elapsed = time.perf_counter() - started
    return summary
