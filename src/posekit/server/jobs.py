"""Background jobs (auto-labeling) with one worker thread and a bounded queue.

Rules:

* One worker thread runs one job at a time, so a job gets both CPU cores and
  models are never loaded twice at once.
* At most ``queue_size`` jobs wait; one more is refused (:class:`QueueFullError`,
  HTTP 429).
* One job per project at a time: a project with a queued or running job refuses
  another (:class:`JobConflictError`, HTTP 409).
* Cancelling a queued job ends it at once; a running job stops after its
  current batch (auto-labeling writes each batch in one transaction, so every
  item is either fully labeled or untouched).

Progress lives in this process's memory; every job is also stored in the workspace
(:mod:`posekit.store.jobs`: its options when submitted, its outcome when it ends), so
the job list survives a restart (a job a restart interrupted shows as failed;
auto-labeling resumes where it stopped when started again). Finished jobs are kept
in memory for inspection, the newest :data:`KEEP_FINISHED` of them.

A model that cannot be loaded (:class:`posekit.models.base.ModelError`) fails the
job with the model's own message, not a traceback.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from posekit.engines import ENGINES, get_engine
from posekit.models.base import ModelError
from posekit.pipeline.options import AutolabelOptions
from posekit.store import NotFoundError, Workspace
from posekit.store.jobs import JobRecord, finish_job, get_job_record, list_job_records, record_job

__all__ = [
    "KEEP_FINISHED",
    "Job",
    "JobConflictError",
    "JobManager",
    "QueueFullError",
]

log = logging.getLogger(__name__)

KEEP_FINISHED = 500
ACTIVE = ("queued", "running")


class JobConflictError(RuntimeError):
    """The project already has a queued or running job."""


class QueueFullError(RuntimeError):
    """The job queue is full."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Job:
    """One job and its progress (``done`` of ``total`` items; ``total`` is None until
    the job has counted its items)."""

    id: int
    project_id: int
    project_name: str
    kind: str
    options: AutolabelOptions
    status: str = "queued"
    done: int = 0
    total: int | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    device: str | None = None
    processed: int = 0
    instances: int = 0
    skipped: int = 0
    #: The user who submitted it: the author of what it writes (not stored with the job).
    author_id: int | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event, repr=False)

    def snapshot(self) -> Job:
        """A copy safe to read while the worker goes on updating the job."""
        return replace(self, failures=list(self.failures))


class JobManager:
    """Queue and run jobs on a workspace.

    Args:
        ws: The workspace jobs write to.
        queue_size: Jobs that may wait (beyond the running one).

    Example:
        >>> jobs = JobManager(ws, queue_size=8)  # doctest: +SKIP
        >>> options = AutolabelOptions(detector="blazepose", batch_size=8)  # doctest: +SKIP
        >>> job = jobs.submit(project, "autolabel", options)  # doctest: +SKIP
        >>> jobs.get(job.id).status  # doctest: +SKIP
    """

    def __init__(self, ws: Workspace, queue_size: int = 8) -> None:
        self._ws = ws
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=queue_size)
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._resume = threading.Event()
        self._resume.set()
        self._closed = False
        self._runners: dict[str, Callable[[Job], None]] = {"autolabel": self._run_autolabel}

    # ------------------------------------------------------------ public
    def submit(
        self,
        project: Any,
        kind: str,
        options: AutolabelOptions | Mapping[str, Any],
        *,
        author_id: int | None = None,
    ) -> Job:
        """Queue a job on ``project`` (a :class:`posekit.store.Project`).

        Args:
            project: The project the job runs on.
            kind: The job kind (``"autolabel"``).
            options: The job's options (a mapping is read with
                :meth:`AutolabelOptions.from_mapping`, absent keys taking its defaults).
            author_id: The submitting user, the author of the job's predictions.

        Raises:
            JobConflictError: The project has a queued or running job.
            QueueFullError: The queue is full.
            ValueError: Unknown job kind or invalid options.
        """
        if kind not in self._runners:
            raise ValueError(f"unknown job kind {kind!r}; available: {', '.join(self._runners)}")
        if not isinstance(options, AutolabelOptions):
            options = AutolabelOptions.from_mapping(options)
        if options.engine not in ENGINES:
            raise ValueError(f"unknown engine {options.engine!r}; available: {', '.join(ENGINES)}")
        with self._lock:
            if self._closed:
                raise RuntimeError("the job manager is shut down")
            for job in self._jobs.values():
                if job.project_id == project.id and job.status in ACTIVE:
                    raise JobConflictError(
                        f"project {project.name!r} already has job {job.id} ({job.status}); "
                        "wait for it or cancel it"
                    )
            if self._queue.full():  # only submit puts, under this lock
                raise QueueFullError(
                    f"the job queue is full ({self._queue.maxsize} jobs waiting); retry later"
                )
            job_id = record_job(self._ws, project.id, kind, options.to_dict())
            job = Job(job_id, project.id, project.name, kind, options, author_id=author_id)
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise QueueFullError(
                    f"the job queue is full ({self._queue.maxsize} jobs waiting); retry later"
                ) from None
            self._jobs[job.id] = job
            self._forget_old()
            self._ensure_worker()
            return job.snapshot()

    def get(self, job_id: int) -> Job:
        """A snapshot of job ``job_id`` (a stored one if not in memory); ``KeyError``
        naming it if unknown."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                return job.snapshot()
        try:
            return _stored(get_job_record(self._ws, job_id))
        except NotFoundError:
            raise KeyError(f"job {job_id} does not exist") from None

    def list(self, project_id: int | None = None) -> list[Job]:
        """Snapshots of the jobs (of one project), newest first: those in memory and
        the stored ones of earlier runs of the server."""
        with self._lock:
            jobs = {
                j.id: j.snapshot()
                for j in self._jobs.values()
                if project_id is None or j.project_id == project_id
            }
        for record in list_job_records(self._ws, project_id):
            if record.id not in jobs:
                jobs[record.id] = _stored(record)
        return sorted(jobs.values(), key=lambda j: -j.id)

    def cancel(self, job_id: int) -> Job:
        """Cancel a job: a queued one ends now, a running one after its current batch.
        Cancelling a finished job changes nothing."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise KeyError(f"job {job_id} does not exist or has finished before")
            job.cancel_event.set()
            ended = job.status == "queued"
            if ended:
                job.status = "cancelled"
                job.finished_at = _now()
            snapshot = job.snapshot()
        if ended:
            self._store_outcome(snapshot)
        return snapshot

    def pause(self) -> None:
        """Let the running job finish but start no further job until :meth:`resume`."""
        self._resume.clear()

    def resume(self) -> None:
        """Start queued jobs again after :meth:`pause`."""
        self._resume.set()

    def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """Block until job ``job_id`` has finished (or ``timeout`` seconds); its snapshot."""
        deadline = None if timeout is None else _now().timestamp() + timeout
        while True:
            job = self.get(job_id)
            if job.status not in ACTIVE:
                return job
            if deadline is not None and _now().timestamp() > deadline:
                return job
            time.sleep(0.02)

    def close(self, timeout: float = 30.0) -> None:
        """Cancel every job and stop the worker (waits up to ``timeout`` seconds)."""
        ended = []
        with self._lock:
            self._closed = True
            for job in self._jobs.values():
                job.cancel_event.set()
                if job.status == "queued":
                    job.status = "cancelled"
                    job.finished_at = _now()
                    ended.append(job.snapshot())
            worker = self._worker
        for job in ended:
            self._store_outcome(job)
        self._resume.set()
        if worker is not None:
            # The sentinel may not fit into a full queue; the worker drains the
            # cancelled jobs quickly, so block briefly for room.
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                log.warning("job queue still full at shutdown")
            worker.join(timeout)

    # ------------------------------------------------------------ worker
    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="posekit-jobs", daemon=True)
            self._worker.start()

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.status not in ACTIVE]
        for job_id in sorted(finished)[: max(0, len(finished) - KEEP_FINISHED)]:
            del self._jobs[job_id]

    def _work(self) -> None:
        while True:
            # Wait for resume before taking a job, so that a paused manager holds
            # exactly queue_size waiting jobs.
            self._resume.wait()
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if job.status != "queued":  # cancelled while waiting
                    continue
                job.status = "running"
                job.started_at = _now()
            log.info("job %d (%s on %s) started", job.id, job.kind, job.project_name)
            try:
                self._runners[job.kind](job)
            except ModelError as exc:  # the model's own message says what to do
                log.warning("job %d failed: %s", job.id, exc)
                with self._lock:
                    job.status = "failed"
                    job.error = f"the model could not be loaded: {exc}"
            except Exception as exc:  # a failed job must not kill the worker
                log.exception("job %d failed", job.id)
                with self._lock:
                    job.status = "failed"
                    job.error = f"{type(exc).__name__}: {exc}"
            finally:
                with self._lock:
                    if job.status == "running":
                        job.status = "cancelled" if job.cancel_event.is_set() else "done"
                    job.finished_at = _now()
                self._store_outcome(job)
            log.info("job %d finished: %s", job.id, job.status)

    def _store_outcome(self, job: Job) -> None:
        try:
            finish_job(
                self._ws, job.id, status=job.status, error=job.error, device=job.device,
                processed=job.processed, instances=job.instances, skipped=job.skipped,
                failures=job.failures,
            )  # fmt: skip
        except Exception:  # the job ran; losing its record must not stop the worker
            log.exception("job %d: could not store its outcome", job.id)

    def _run_autolabel(self, job: Job) -> None:
        autolabel = get_engine(job.options.engine)

        def on_progress(done: int, total: int) -> None:
            with self._lock:
                job.done, job.total = done, total

        report = autolabel(
            self._ws,
            job.project_name,
            job.options,
            progress=on_progress,
            should_stop=job.cancel_event.is_set,
            author_id=job.author_id,
        )
        with self._lock:
            job.failures = list(report.failures)
            job.device = report.device
            job.processed = report.processed
            job.instances = report.instances
            job.skipped = report.skipped
            if report.cancelled:
                job.status = "cancelled"


def _stored(record: JobRecord) -> Job:
    """A :class:`Job` of a stored record of an earlier server run."""
    status, error = record.status, record.error
    if status in ACTIVE:  # the server stopped while it waited or ran
        status, error = "failed", error or "interrupted: the server stopped before it ended"
    try:
        options = AutolabelOptions.from_mapping(record.options)
    except (TypeError, ValueError):
        options = AutolabelOptions()
    return Job(
        id=record.id,
        project_id=record.project_id,
        project_name="",
        kind=record.kind,
        options=options,
        status=status,
        done=record.processed,
        total=None,
        failures=list(record.failures),
        error=error,
        created_at=record.created_at.replace(tzinfo=timezone.utc),
        finished_at=None
        if record.finished_at is None
        else record.finished_at.replace(tzinfo=timezone.utc),
        device=record.device,
        processed=record.processed,
        instances=record.instances,
        skipped=record.skipped,
    )
