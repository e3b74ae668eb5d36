"""Auto-labeling on a Ray cluster: the same pipeline, run by a pool of model workers.

:func:`autolabel` has the signature of :func:`posekit.engines.local.autolabel` and
writes the same instances. How it runs:

* The driver (this process) selects the items to label exactly as the local
  engine does and builds a Ray Dataset with one row per batch (its item ids and
  media paths), one block and one task per row.
* ``map_batches`` with :class:`PoseWorker` (a callable class, so an actor pool of
  ``options.workers``): each worker loads the detector and pose estimator once,
  then reads each batch's media from the shared media folder and runs
  :func:`posekit.pipeline.run.run_pipeline` on it, the code the local engine runs.
* Results stream back to the driver, the only process that writes to the
  workspace: one transaction per batch through
  :class:`posekit.engines.local.PredictionWriter`, so a rerun skips what was
  written and an interrupted run leaves every item either labeled or untouched.
* A worker that dies is replaced and its batch retried (``max_task_retries``).
  A batch that still fails is redone one item at a time, one task per worker at a
  time (so a crash takes no neighbour down); an item that keeps killing workers
  (a poison item) is reported in the failures, not retried again.

Media access: workers open ``<media root>/<item.media_path>``, where the media
root is the driver's ``ws.media_root`` unless ``POSEKIT_MEDIA_ROOT`` is set in the
workers' environment (a shared filesystem mounted elsewhere on the workers).
Object storage comes with the store's storage interface.

Videos: a video's frames stay on one worker (tracking needs them in order), so a
video is one work unit (one row, one block): :class:`VideoWorker` runs
:func:`posekit.pipeline.video.run_tracked` over it, the local engine's code, and
streams its finished frames back in chunks; the driver writes them as the local
engine does (:class:`posekit.engines.local_video.FrameWriter`), then the tracks'
outside marks, and sets the video's status to ``predicted``. A video whose worker
died is run again from its start (frames that already came back are not written
twice); a video that cannot be read is reported in the failures.

Ray is imported only when this engine runs; install it with ``pip install
'posekit[ray]'``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from posekit.engines.local import PredictionWriter, items_to_label
from posekit.engines.local_video import FrameWriter, videos_to_label
from posekit.engines.ray_worker import (
    MEDIA_ROOT_ENV,
    ModelFactory,
    PoseWorker,
    VideoWorker,
    decode_instances,
)
from posekit.engines.report import AutolabelReport
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.run import ProgressCallback
from posekit.store import Item, Project, Workspace
from posekit.store.videos import StoredVideo

__all__ = [
    "MEDIA_ROOT_ENV",
    "TASK_RETRIES",
    "ModelFactory",
    "PoseWorker",
    "RayEngineError",
    "VideoWorker",
    "autolabel",
]

log = logging.getLogger(__name__)

#: Times a batch is retried after its worker died (a new worker takes it each time).
TASK_RETRIES = 2

_VIDEO_LOST_REASON = (
    "no result from the Ray workers for this video (a worker died on it more than "
    f"{TASK_RETRIES} times, or the pipeline failed; see the Ray logs)"
)
_POISON_REASON = (
    "a model worker died on this item {attempts} times (poison item); not retried further"
)


# ------------------------------------------------------------------ driver side
class RayEngineError(RuntimeError):
    """The Ray engine cannot run (Ray missing, no cluster)."""


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise RayEngineError(
            f"the Ray engine needs {exc.name or 'ray'}: pip install 'posekit[ray]'"
        ) from None
    return ray


def _units(items: Sequence[Item], batch_size: int) -> list[dict[str, Any]]:
    """One row per work unit: a batch of items (later: one video, its frames in order)."""
    return [
        {
            "item_ids": [item.id for item in items[i : i + batch_size]],
            "media_paths": [item.media_path or "" for item in items[i : i + batch_size]],
        }
        for i in range(0, len(items), batch_size)
    ]


def _check_capacity(ray: Any, options: AutolabelOptions) -> None:
    """Fail early when no node could ever host a worker (Ray would wait forever)."""
    resources = ray.cluster_resources()
    if options.gpus_per_worker > 0 and resources.get("GPU", 0) == 0:
        raise RayEngineError(
            f"--gpus-per-worker {options.gpus_per_worker:g}, but the Ray cluster has no GPU "
            f"(resources: {resources}); use --gpus-per-worker 0 or a cluster with GPUs"
        )
    wanted_gpus = options.workers * options.gpus_per_worker
    if wanted_gpus > resources.get("GPU", 0) or options.workers > resources.get("CPU", 0):
        log.warning(
            "%d workers x %g GPUs asked, the cluster has %s now: workers start as nodes "
            "free up (or the autoscaler adds them)",
            options.workers,
            options.gpus_per_worker,
            resources,
        )


class _Run:
    """One Ray run: streams batches from the worker pool into the writer."""

    def __init__(
        self,
        ray: Any,
        options: AutolabelOptions,
        worker_args: dict[str, Any],
        writer: PredictionWriter,
        report: AutolabelReport,
        total: int,
        progress: ProgressCallback | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.ray = ray
        self.options = options
        self.worker_args = worker_args
        self.writer = writer
        self.report = report
        self.total = total
        self.progress = progress
        self.should_stop = should_stop
        self.done: set[int] = set()
        self.devices: set[str] = set()

    def run(self, items: Sequence[Item], batch_size: int, *, isolate: bool = False) -> None:
        """Label ``items`` in blocks of ``batch_size``; items whose batch was lost
        (workers died more than :data:`TASK_RETRIES` times) are left out of ``done``."""
        if not items:
            return
        data = self.ray.data
        units = _units(items, batch_size)
        # One unit per block and per task: a worker that dies costs one batch.
        dataset = data.from_items(units, override_num_blocks=len(units))
        context = dataset.context
        context.enable_progress_bars = False  # progress goes to the callback
        context.print_on_execution_start = False
        context.max_errored_blocks = -1  # a lost batch is redone item by item, see autolabel
        results = dataset.map_batches(
            PoseWorker,
            batch_size=1,
            batch_format="numpy",
            # Alone on a worker (isolate), a task that kills it takes no other task down.
            compute=data.ActorPoolStrategy(
                size=self.options.workers, max_tasks_in_flight_per_actor=1 if isolate else None
            ),
            num_gpus=self.options.gpus_per_worker or None,
            fn_constructor_kwargs=self.worker_args,
            # Dead workers are replaced (Ray Data's default); a batch is retried a few
            # times, not forever (the default), so a poison item cannot stall the run.
            # Ray 2.60 warns that these actor options move elsewhere in 2.64 (pinned below).
            max_restarts=-1,
            max_task_retries=TASK_RETRIES,
        )
        batches = iter(results.iter_batches(batch_size=None, batch_format="numpy"))
        try:
            for batch in batches:
                if self.should_stop is not None and self.should_stop():
                    self.report.cancelled = True
                    log.info("ray autolabel stopped on request")
                    return
                self._write(batch)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()

    def _write(self, batch: dict[str, np.ndarray]) -> None:
        for item_id, error, blob, device in zip(
            batch["item_id"], batch["error"], batch["instances"], batch["device"]
        ):
            key = int(item_id)
            if key in self.done:  # a retried batch that had already come back
                continue
            self.done.add(key)
            self.devices.add(str(device))
            if error:
                self.writer.fail(key, str(error))
            else:
                self.writer.put(key, None, decode_instances(bytes(blob)))  # type: ignore[arg-type]
        self.writer.commit()
        if self.progress is not None:
            self.progress(len(self.done), self.total)


def _video_rows(videos: Sequence[StoredVideo]) -> list[dict[str, Any]]:
    """One row per video (see :class:`VideoWorker`)."""
    return [
        {
            "video_id": v.id,
            "media_path": v.media_path or "",
            "kind": v.kind,
            "fps": float(v.fps),
            "index": orjson.dumps(v.decode_index).decode() if v.decode_index else "",
        }
        for v in videos
    ]


def _run_videos(
    ray: Any,
    ws: Workspace,
    videos: Sequence[StoredVideo],
    options: AutolabelOptions,
    worker_args: dict[str, Any],
    report: AutolabelReport,
    progress: Callable[[int], None],
    should_stop: Callable[[], bool] | None,
) -> set[str]:
    """Tracked labeling of ``videos`` on the worker pool, written here; returns the
    workers' devices."""
    data = ray.data
    dataset = data.from_items(_video_rows(videos), override_num_blocks=len(videos))
    context = dataset.context
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    context.max_errored_blocks = -1  # a video that keeps failing is reported, see below
    results = dataset.map_batches(
        VideoWorker,
        batch_size=1,
        batch_format="numpy",
        compute=data.ActorPoolStrategy(size=options.workers),
        num_gpus=options.gpus_per_worker or None,
        fn_constructor_kwargs=worker_args,
        max_restarts=-1,
        max_task_retries=TASK_RETRIES,
    )
    by_id = {v.id: v for v in videos}
    writers: dict[int, FrameWriter] = {}
    seen: dict[int, set[int]] = {}
    finished: set[int] = set()
    devices: set[str] = set()
    batches = iter(results.iter_batches(batch_size=None, batch_format="numpy"))
    try:
        for batch in batches:
            if should_stop is not None and should_stop():
                report.cancelled = True
                log.info("ray autolabel stopped on request")
                break
            for video_id, frame, blob, end, info, device in zip(
                batch["video_id"], batch["frame_index"], batch["instances"], batch["end"],
                batch["info"], batch["device"],
            ):  # fmt: skip
                vid = int(video_id)
                devices.add(str(device))
                video = by_id[vid]
                if vid not in writers:
                    writers[vid] = FrameWriter(ws, video, options.pose, options.overwrite, report)
                    seen[vid] = set()
                if not end:
                    if int(frame) not in seen[vid]:  # a rerun video sends its frames again
                        seen[vid].add(int(frame))
                        writers[vid].put(int(frame), decode_instances(bytes(blob)))
                    continue
                if vid in finished:
                    continue
                finished.add(vid)
                writers[vid].write()
                _finish_video(ws, video, orjson.loads(str(info)), report)
            progress(sum(len(f) for f in seen.values()))
    finally:
        close = getattr(batches, "close", None)
        if close is not None:
            close()
        for vid, writer in writers.items():
            if vid not in finished:
                writer.write()  # what came back stays; the video stays "new" for a rerun
    if not report.cancelled:
        for video in videos:
            if video.id not in finished:
                report.failures.append((video.file_name, _VIDEO_LOST_REASON))
    return devices


def _finish_video(
    ws: Workspace, video: StoredVideo, info: dict[str, Any], report: AutolabelReport
) -> None:
    if info["error"]:
        report.failures.append((video.file_name, info["error"]))
        return
    report.failures.extend(
        (f"{video.file_name} frame {frame}", reason) for frame, reason in info["failures"]
    )
    outside = {int(t): marks for t, marks in info["outside"].items()}
    ws.write_frame_predictions(video, {}, replace=False, outside=outside)
    ws.set_video_status(video, "predicted")
    log.info("ray autolabel video %s: %d sampled frames", video.file_name, info["total"])


def autolabel(
    ws: Workspace,
    project: Project | str,
    options: AutolabelOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    model_factory: ModelFactory | None = None,
    before_batch: Callable[[list[int]], None] | None = None,
    author_id: int | None = None,
) -> AutolabelReport:
    """Predict poses for a project's items on a Ray cluster and store them.

    Same contract as :func:`posekit.engines.local.autolabel` (resumable, one
    transaction per batch, ``overwrite`` keeps manual and reviewed instances),
    with ``options.address``, ``options.workers`` and ``options.gpus_per_worker``
    choosing the cluster and the worker pool. A Ray instance this call starts
    (``address=None`` and none running) is shut down at the end; one already
    initialised in this process is used as it is.

    Args:
        ws: The :class:`posekit.store.Workspace` (only the driver opens it).
        project: Project or project name.
        options: As for the local engine, plus the Ray fields.
        progress: ``progress(done, total)`` items, after every batch written.
        should_stop: Checked before every batch is written; True stops the run.
        model_factory: Picklable ``() -> (detector, pose)`` run once per worker,
            instead of creating ``options.detector`` / ``options.pose``.
        before_batch: Test hook run in the worker before every batch, with the
            batch's item ids (e.g. to kill the worker).
        author_id: The user running it (as for the local engine).

    Returns:
        An :class:`AutolabelReport` (``device`` names the workers' devices).

    Example:
        >>> options = AutolabelOptions(engine="ray", workers=4, gpus_per_worker=1,
        ...                            detector="rtdetr", pose="vitpose")  # doctest: +SKIP
        >>> report = autolabel(ws, "people", options)  # doctest: +SKIP
    """
    if not isinstance(ws, Workspace):
        raise TypeError(f"ws: expected a posekit.store.Workspace, got {type(ws).__name__}")
    options = options or AutolabelOptions(engine="ray")
    if not isinstance(options, AutolabelOptions):
        raise TypeError(f"options: expected AutolabelOptions, got {type(options).__name__}")
    ray = _import_ray()
    start = time.perf_counter()
    if isinstance(project, str):
        project = ws.get_project(project)
    report = AutolabelReport()
    todo, report.skipped = items_to_label(ws, project, options)
    videos, skipped_videos = videos_to_label(ws, project, options)
    report.skipped += skipped_videos
    writer = PredictionWriter(
        ws, todo, options.pose, options.replaces_predictions, report, author_id=author_id
    )
    video_total = sum(-(-v.frame_count // options.every) for v in videos)
    if not todo and not videos:  # nothing to label: no cluster to start or join
        report.elapsed = time.perf_counter() - start
        return report
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
    try:
        worker_args = {
            "options": options.to_dict(),
            "template": project.template.to_dict(),
            "media_root": str(ws.media_root),
            "model_factory": model_factory,
            "before_batch": before_batch,
        }
        total = len(todo) + video_total
        run = _Run(ray, options, worker_args, writer, report, total, progress, should_stop)
        log.info(
            "ray autolabel %s: %d items to label (%d skipped), %d workers x %g GPUs, cluster %s",
            project.name,
            len(todo),
            report.skipped,
            options.workers,
            options.gpus_per_worker,
            ray.cluster_resources(),
        )
        _check_capacity(ray, options)
        if progress is not None:
            progress(0, total)
        run.run(todo, options.batch_size)
        lost = [item for item in todo if item.id not in run.done]
        if lost and not report.cancelled:
            # A batch that killed its workers every time: redo its items one by one,
            # so only the item that causes it is given up.
            log.warning("%d items lost with crashed workers; retrying one by one", len(lost))
            run.run(lost, 1, isolate=True)
            lost = [item for item in lost if item.id not in run.done]
        if not report.cancelled:
            attempts = 1 + TASK_RETRIES
            for item in lost:
                writer.fail(item.id, _POISON_REASON.format(attempts=attempts))
            if lost and progress is not None:
                progress(len(run.done) + len(lost), total)
        writer.flush()
        if videos and not report.cancelled:
            images_done = len(run.done) + len(lost)

            def video_progress(frames: int) -> None:
                if progress is not None:
                    progress(images_done + min(video_total, -(-frames // options.every)), total)

            run.devices |= _run_videos(
                ray, ws, videos, options, worker_args, report, video_progress, should_stop
            )
        report.device = ", ".join(sorted(run.devices)) or "no worker answered"
        report.device += f" ({options.workers} Ray workers)"
    finally:
        if started_here:
            ray.shutdown()
        report.elapsed = time.perf_counter() - start
    log.info("ray autolabel %s: %s", project.name, report.summary())
    return report
