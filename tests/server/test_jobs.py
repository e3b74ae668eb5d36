"""Tests for posekit.server.jobs: the job queue, one job per project, a bounded queue,
cancelling, progress and failures (with a fake auto-label engine, no models)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import posekit.engines.local
from posekit.engines.report import AutolabelReport
from posekit.pipeline.options import AutolabelOptions
from posekit.server.jobs import KEEP_FINISHED, JobConflictError, JobManager, QueueFullError
from posekit.skeleton import get_preset
from posekit.store import Workspace


class FakeEngine:
    """Stands in for :func:`posekit.engines.local.autolabel`: ``batches`` batches of
    one item, each waiting for ``step`` to be set when ``gated``."""

    def __init__(self, batches: int = 3, gated: bool = False) -> None:
        self.batches = batches
        self.gated = gated
        self.step = threading.Event()
        self.started = threading.Event()
        self.calls: list[tuple[str, AutolabelOptions]] = []
        self.authors: list[int | None] = []
        self.fail: Exception | None = None

    def __call__(self, ws, project, options, *, progress=None, should_stop=None, author_id=None):
        self.calls.append((project, options))
        self.authors.append(author_id)
        self.started.set()
        if self.fail is not None:
            raise self.fail
        report = AutolabelReport(device="detector: cpu, pose: cpu")
        progress(0, self.batches)
        for done in range(1, self.batches + 1):
            if should_stop():
                report.cancelled = True
                return report
            if self.gated:
                assert self.step.wait(10), "test did not release the batch"
                self.step.clear()
            report.processed += 1
            report.instances += 2
            progress(done, self.batches)
        report.failures.append(("bad.jpg", "unreadable"))
        return report


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> FakeEngine:
    fake = FakeEngine()
    monkeypatch.setattr(posekit.engines.local, "autolabel", fake)
    return fake


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    with Workspace(tmp_path / "ws") as workspace:
        for name in ("p0", "p1", "p2", "p3"):
            workspace.create_project(name, get_preset("coco17"))
        yield workspace


@pytest.fixture
def manager(ws: Workspace) -> Iterator[JobManager]:
    jobs = JobManager(ws, queue_size=2)
    yield jobs
    jobs.close(timeout=10)


def _project(ws: Workspace, name: str):
    return ws.get_project(name)


def test_a_job_runs_with_progress_and_its_report(manager, ws, engine):
    job = manager.submit(_project(ws, "p0"), "autolabel", {"batch_size": 4, "pose": "blazepose"})
    assert job.status in ("queued", "running") and job.project_name == "p0"
    done = manager.wait(job.id, timeout=10)
    assert done.status == "done" and done.error is None
    assert (done.done, done.total) == (3, 3)
    assert (done.processed, done.instances) == (3, 6)
    assert done.failures == [("bad.jpg", "unreadable")] and "cpu" in done.device
    assert done.started_at is not None and done.finished_at >= done.started_at
    # The options reach the engine as one AutolabelOptions with its defaults.
    (project, options), = engine.calls  # fmt: skip
    assert project == "p0"
    assert options == AutolabelOptions(batch_size=4)
    assert [j.id for j in manager.list()] == [job.id]
    assert [j.id for j in manager.list(job.project_id)] == [job.id]
    assert manager.list(project_id=-1) == []


def test_the_submitting_user_is_the_author_of_the_job(manager, ws, engine):
    job = manager.submit(_project(ws, "p0"), "autolabel", {}, author_id=7)
    assert manager.wait(job.id, timeout=10).status == "done"
    assert engine.authors == [7]


def test_progress_is_visible_while_running(manager, ws, engine):
    engine.gated = True
    job = manager.submit(_project(ws, "p0"), "autolabel", AutolabelOptions())
    assert engine.started.wait(10)
    deadline = time.monotonic() + 10
    while manager.get(job.id).total is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    running = manager.get(job.id)
    assert running.status == "running" and (running.done, running.total) == (0, 3)
    engine.step.set()
    while manager.get(job.id).done < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert manager.get(job.id).done == 1
    for _ in range(2):
        engine.step.set()
        time.sleep(0.05)
    assert manager.wait(job.id, timeout=10).status == "done"


def test_one_job_per_project_and_a_bounded_queue(manager, ws, engine):
    manager.pause()  # nothing starts: the queue state is deterministic
    first = manager.submit(_project(ws, "p0"), "autolabel", {})
    with pytest.raises(JobConflictError, match=r"'p0'.*already has job"):
        manager.submit(_project(ws, "p0"), "autolabel", {})
    manager.submit(_project(ws, "p1"), "autolabel", {})
    with pytest.raises(QueueFullError, match="full"):
        manager.submit(_project(ws, "p2"), "autolabel", {})
    manager.resume()
    assert manager.wait(first.id, timeout=10).status == "done"
    # A finished job frees its project.
    again = manager.submit(_project(ws, "p0"), "autolabel", {})
    assert manager.wait(again.id, timeout=10).status == "done"


def test_cancel_a_queued_job_ends_it_at_once_and_never_runs_it(manager, ws, engine):
    manager.pause()
    first = manager.submit(_project(ws, "p0"), "autolabel", {})
    second = manager.submit(_project(ws, "p1"), "autolabel", {})
    cancelled = manager.cancel(second.id)
    assert cancelled.status == "cancelled" and cancelled.started_at is None
    assert cancelled.finished_at is not None
    manager.resume()
    assert manager.wait(first.id, timeout=10).status == "done"
    third = manager.submit(_project(ws, "p1"), "autolabel", {})  # the project is free
    assert manager.wait(third.id, timeout=10).status == "done"
    assert manager.get(second.id).status == "cancelled"
    assert [project for project, _ in engine.calls] == ["p0", "p1"]  # p1 ran once: the third


def test_cancel_a_running_job_stops_it_between_batches(manager, ws, engine):
    engine.gated = True
    job = manager.submit(_project(ws, "p0"), "autolabel", {})
    assert engine.started.wait(10)
    engine.step.set()  # first batch
    deadline = time.monotonic() + 10
    while manager.get(job.id).done < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert manager.cancel(job.id).status == "running"  # stops after the current batch
    engine.step.set()
    stopped = manager.wait(job.id, timeout=10)
    assert stopped.status == "cancelled" and stopped.done < stopped.total == 3
    # Cancelling a finished job changes nothing.
    assert manager.cancel(job.id).status == "cancelled"


def test_a_failing_job_is_failed_and_the_worker_goes_on(manager, ws, engine):
    engine.fail = RuntimeError("model exploded")
    failed = manager.wait(manager.submit(_project(ws, "p0"), "autolabel", {}).id, timeout=10)
    assert failed.status == "failed" and failed.error == "RuntimeError: model exploded"
    engine.fail = None
    ok = manager.wait(manager.submit(_project(ws, "p0"), "autolabel", {}).id, timeout=10)
    assert ok.status == "done"


def test_bad_kind_options_and_unknown_ids_are_refused(manager, ws, engine):
    with pytest.raises(ValueError, match="unknown job kind 'train'"):
        manager.submit(_project(ws, "p0"), "train", {})
    with pytest.raises(ValueError, match="batch_size"):
        manager.submit(_project(ws, "p0"), "autolabel", {"batch_size": 0})
    with pytest.raises(ValueError, match="unknown auto-label option"):
        manager.submit(_project(ws, "p0"), "autolabel", {"bogus": 1})
    for call in (manager.get, manager.cancel):
        with pytest.raises(KeyError, match="job 99 does not exist"):
            call(99)
    assert manager.list() == []  # nothing was queued


def test_snapshots_do_not_change_under_the_reader(manager, ws, engine):
    engine.gated = True
    job = manager.submit(_project(ws, "p0"), "autolabel", {})
    assert engine.started.wait(10)
    before = manager.get(job.id)
    for _ in range(3):
        engine.step.set()
        time.sleep(0.05)
    manager.wait(job.id, timeout=10)
    assert before.status in ("queued", "running") and before.failures == []


def test_close_cancels_queued_jobs_and_refuses_new_ones(ws, engine):
    jobs = JobManager(ws, queue_size=2)
    jobs.pause()
    queued = jobs.submit(_project(ws, "p0"), "autolabel", {})
    jobs.close(timeout=10)
    assert jobs.get(queued.id).status == "cancelled"
    with pytest.raises(RuntimeError, match="shut down"):
        jobs.submit(_project(ws, "p1"), "autolabel", {})
    assert engine.calls == []


def test_finished_jobs_are_forgotten_after_the_newest_few(manager, ws, engine, monkeypatch):
    assert KEEP_FINISHED >= 100
    monkeypatch.setattr("posekit.server.jobs.KEEP_FINISHED", 2)
    engine.batches = 1
    ids = [
        manager.wait(manager.submit(_project(ws, "p0"), "autolabel", {}).id, timeout=10).id
        for _ in range(4)
    ]
    last = manager.submit(_project(ws, "p0"), "autolabel", {})  # forgetting runs on submit
    manager.wait(last.id, timeout=10)
    # Memory keeps the newest; every job stays listed from the store (posekit.store.jobs).
    assert sorted(manager._jobs, reverse=True) == [last.id, ids[3], ids[2]]
    assert [job.id for job in manager.list()] == [last.id, *reversed(ids)]
    assert manager.get(ids[0]).status == "done"
