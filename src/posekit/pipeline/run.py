"""The store-free pipeline: frames from a source -> detect -> pose -> a sink.

:func:`run_pipeline` knows nothing about projects, databases or servers. A
:class:`FrameSource` yields :class:`WorkUnit` s (a key and a way to get the RGB
frame: an image file, a project item, a video frame, a frame sent to a worker);
a :class:`PredictionSink` receives the instances found per key and the reason
per key that failed. The same function runs the ``posekit predict`` files path,
a project's auto-labeling (:mod:`posekit.engines.local`) and, later, video
frames and distributed workers.

Behaviour:

* Units are processed in batches of ``options.batch_size``; the next batch is
  decoded in a worker thread while the models run on the current one.
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
from typing import Protocol, runtime_checkable

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


_Decoded = list[tuple[WorkUnit, "np.ndarray | None", "str | None"]]


def _decode(batch: Sequence[WorkUnit]) -> _Decoded:
    out: _Decoded = []
    for unit in batch:
        try:
            out.append((unit, unit.load(), None))
        except Exception as exc:  # one unreadable frame must not stop the run
            out.append((unit, None, _reason(exc)))
    return out


def _batches(units: Iterable[WorkUnit], size: int) -> Iterator[list[WorkUnit]]:
    iterator = iter(units)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _decoded_batches(units: Iterable[WorkUnit], size: int) -> Iterator[_Decoded]:
    """Batches decoded one ahead in a worker thread (image decoding releases the GIL)."""
    batches = _batches(units, size)
    first = next(batches, None)
    if first is None:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="posekit-decode") as pool:
        pending: Future[_Decoded] = pool.submit(_decode, first)
        while True:
            current = pending.result()
            following = next(batches, None)
            if following is not None:
                pending = pool.submit(_decode, following)
            yield current
            if following is None:
                return


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
    try:
        for batch in _decoded_batches(source, options.batch_size):
            if should_stop is not None and should_stop():
                summary.cancelled = True
                left = "" if total is None else f"; {total - summary.total} frames left"
                log.info("pipeline stopped on request%s", left)
                break
            summary.total += len(batch)
            loaded = [(unit, frame) for unit, frame, error in batch if frame is not None]
            results = iter(
                models.predict_batch(
                    [frame for _, frame in loaded], [unit.detections for unit, _ in loaded]
                )
            )
            for unit, frame, error in batch:
                result = error if frame is None else next(results)
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
                sink.put(unit.key, frame, instances)
            sink.commit()
            if progress is not None:
                progress(summary.total, total)
        sink.flush()
    finally:
        summary.elapsed = time.perf_counter() - started
    return summary
