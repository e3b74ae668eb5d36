"""Tests for posekit.engines.ray: the Ray engine writes what the local engine writes.

The Ray tests share one local Ray instance (2 CPUs, started once for the module and
shut down after it); they are skipped, with the reason, when Ray is not installed
(``pip install 'posekit[ray]'``). The transport codec and the import checks run
without Ray.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fakes
from fakes import BrightnessDetector, GridPose
from posekit import Instance, get_preset
from posekit.engines import get_engine
from posekit.engines.local import autolabel as local_autolabel
from posekit.engines.ray_worker import decode_instances, encode_instances
from posekit.pipeline.options import AutolabelOptions
from posekit.store import Workspace, import_images

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLE_FOLDERS = [
    DATA / "coco-val2017-sample" / "images",
    DATA / "crowdpose-sample" / "images",
    DATA / "aic-sample",
]


# ------------------------------------------------------------------ without Ray
def test_instances_survive_the_trip_from_a_worker_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    kps = rng.uniform(0, 1000, (17, 2)).astype(np.float32)
    vis = rng.integers(0, 3, 17)
    original = [
        Instance(
            kps,
            vis,
            keypoint_scores=rng.uniform(0, 1, 17).astype(np.float32),
            box=np.array([1.5, 2.25, 300.1, 400.7], np.float32),
            score=0.123456789,
            source="model:x",
            status="predicted",
            track_id=7,
        ),
        Instance(kps, np.zeros(17), source="model:x", status="predicted"),
    ]
    back = decode_instances(encode_instances(original))
    assert back == original
    assert back[0].keypoints.dtype == np.float32
    assert np.array_equal(back[0].keypoints[vis > 0], kps[vis > 0])
    assert back[0].score == original[0].score and back[1].box is None
    assert decode_instances(encode_instances([])) == []


def test_ray_is_imported_only_when_the_engine_runs() -> None:
    code = (
        "import sys, posekit.cli, posekit.engines, posekit.engines.local, "
        "posekit.engines.ray_worker; from posekit.engines import get_engine; "
        "get_engine('local'); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_engine_options_are_validated() -> None:
    options = AutolabelOptions(engine="ray", address="auto", workers=3, gpus_per_worker=0.5)
    assert AutolabelOptions.from_mapping(options.to_dict()) == options
    for bad in ({"workers": 0}, {"workers": 1.5}, {"gpus_per_worker": -1}, {"engine": ""}):
        with pytest.raises(ValueError):
            AutolabelOptions(**bad)


def test_server_jobs_choose_the_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import posekit.engines.ray
    from posekit.engines.report import AutolabelReport
    from posekit.server.jobs import JobManager
    from posekit.server.schemas import JobCreate

    calls = []

    def fake_ray_engine(ws, project, options, *, progress=None, should_stop=None, author_id=None):
        calls.append(options)
        progress(0, 0)
        return AutolabelReport(device="detector: cpu, pose: cpu (2 Ray workers)")

    monkeypatch.setattr(posekit.engines.ray, "autolabel", fake_ray_engine)
    body = JobCreate(engine="ray", workers=2, gpus_per_worker=0.5, batch_size=4)
    assert body.options() == AutolabelOptions(
        engine="ray", workers=2, gpus_per_worker=0.5, batch_size=4
    )
    with Workspace(tmp_path / "ws") as ws:
        project = ws.create_project("p", get_preset("coco17"))
        jobs = JobManager(ws)
        try:
            job = jobs.submit(project, "autolabel", body.options())
            assert jobs.wait(job.id, timeout=10).status == "done"
            with pytest.raises(ValueError, match="unknown engine 'spark'"):
                jobs.submit(project, "autolabel", {"engine": "spark"})
        finally:
            jobs.close(timeout=10)
    assert calls == [body.options()]


# ------------------------------------------------------------------ Ray cluster
@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'posekit[ray]')")
    import ray
    from ray import cloudpickle

    # Workers cannot import tests/ modules by name: ship the fakes and hooks by value.
    cloudpickle.register_pickle_by_value(fakes)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    cloudpickle.unregister_pickle_by_value(fakes)


def _workspace(root: Path, folders: list[Path]) -> Workspace:
    for folder in folders:
        if not folder.is_dir():
            pytest.skip(f"sample data not found at {folder}")
    ws = Workspace(root)
    ws.create_project("people", get_preset("coco17"))
    report = import_images(ws, "people", "train", folders)
    assert report.added and not report.failures
    return ws


@pytest.fixture
def two_workspaces(tmp_path: Path):
    """The same project twice: one for the local engine, one for the Ray engine."""
    local = _workspace(tmp_path / "local", SAMPLE_FOLDERS)
    remote = _workspace(tmp_path / "ray", SAMPLE_FOLDERS)
    yield local, remote
    local.close()
    remote.close()


def fake_models(fail_height: int | None = None):
    """The worker's model factory (runs in the Ray worker)."""
    return BrightnessDetector(), GridPose(fail_on_call=fail_height)


def kill_worker(marker: str, crash_on: int | None, poison: int | None, item_ids: list[int]):
    """Test hook run in the worker before each batch: ``os._exit`` (a worker crash)
    once on the batch holding ``crash_on``, every time on one holding ``poison``."""
    if poison in item_ids:
        os._exit(3)
    if crash_on in item_ids and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(4)


def label_locally(ws: Workspace, batch_size: int = 8) -> None:
    options = AutolabelOptions(batch_size=batch_size)
    local_autolabel(ws, "people", options, detector=BrightnessDetector(), pose=GridPose())


def by_name(ws: Workspace) -> dict[str, list[Instance]]:
    items = ws.list_items("people")
    by_item = ws.instances_by_item([i.id for i in items])
    return {i.file_name: by_item[i.id] for i in items}


def assert_same_labels(expected: Workspace, got: Workspace) -> None:
    """Same items, statuses and instances (keypoints within float32 round-off)."""
    assert {i.file_name: i.status for i in got.list_items("people")} == {
        i.file_name: i.status for i in expected.list_items("people")
    }
    want, have = by_name(expected), by_name(got)
    assert want.keys() == have.keys()
    for name in want:
        assert len(have[name]) == len(want[name]), name
        order = lambda insts: sorted(insts, key=lambda i: tuple(i.box))  # noqa: E731
        for a, b in zip(order(want[name]), order(have[name])):
            np.testing.assert_allclose(b.keypoints, a.keypoints, rtol=1e-6, atol=1e-4)
            np.testing.assert_array_equal(b.visibility, a.visibility)
            np.testing.assert_allclose(b.keypoint_scores, a.keypoint_scores, rtol=1e-6)
            np.testing.assert_allclose(b.box, a.box, rtol=1e-6, atol=1e-4)
            assert (b.score, b.status, b.source) == (a.score, a.status, a.source)


def test_ray_engine_writes_what_the_local_engine_writes(ray_cluster, two_workspaces) -> None:
    local, remote = two_workspaces
    broken = {}
    for ws in (local, remote):  # the same corrupt media file in both projects
        item = ws.list_items("people")[0]
        item.path.write_bytes(item.path.read_bytes()[:200])
        broken = item
    odd = remote.list_items("people")[5]
    options = AutolabelOptions(batch_size=2)
    expected = local_autolabel(
        local, "people", options, detector=BrightnessDetector(), pose=GridPose(odd.height)
    )
    progress: list[tuple[int, int | None]] = []
    report = get_engine("ray")(
        remote,
        "people",
        AutolabelOptions(engine="ray", batch_size=2, workers=2),
        progress=lambda done, total: progress.append((done, total)),
        model_factory=functools.partial(fake_models, odd.height),
    )
    assert_same_labels(local, remote)
    assert (report.processed, report.instances, report.skipped) == (
        expected.processed,
        expected.instances,
        expected.skipped,
    )
    # The same reasons, but each mentions its own workspace's media path.
    local_root, ray_root = str(local.root), str(remote.root)
    assert sorted((n, r.replace(ray_root, local_root)) for n, r in report.failures) == sorted(
        expected.failures
    )
    assert broken.file_name in dict(report.failures)
    assert report.device == "detector: cpu, pose: cpu (2 Ray workers)"
    assert progress[0] == (0, 9) and progress[-1] == (9, 9)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    # A second run retries only the failed items.
    again = get_engine("ray")(
        remote,
        "people",
        AutolabelOptions(engine="ray", batch_size=2),
        model_factory=functools.partial(fake_models, odd.height),
    )
    assert (again.processed, again.skipped) == (0, expected.processed)
    assert len(again.failures) == len(expected.failures)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(
    ray_cluster, two_workspaces, tmp_path: Path
) -> None:
    local, remote = two_workspaces
    label_locally(local, batch_size=2)
    victim = remote.list_items("people")[4].id  # the third batch
    report = get_engine("ray")(
        remote,
        "people",
        AutolabelOptions(engine="ray", batch_size=2, workers=2),
        model_factory=fake_models,
        before_batch=functools.partial(kill_worker, str(tmp_path / "killed"), victim, None),
    )
    assert (tmp_path / "killed").exists()  # the worker did die
    assert report.processed == 9 and not report.failures
    assert_same_labels(local, remote)


def test_a_poison_item_is_reported_and_the_rest_labeled(
    ray_cluster, two_workspaces, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import posekit.engines.ray

    monkeypatch.setattr(posekit.engines.ray, "TASK_RETRIES", 1)  # fewer crashes, same path
    local, remote = two_workspaces
    poison = remote.list_items("people")[3]
    report = get_engine("ray")(
        remote,
        "people",
        AutolabelOptions(engine="ray", batch_size=3, workers=2),
        model_factory=fake_models,
        before_batch=functools.partial(kill_worker, str(tmp_path / "unused"), None, poison.id),
    )
    assert report.processed == 8
    assert [name for name, _ in report.failures] == [poison.file_name]
    assert "died on this item 2 times (poison item)" in report.failures[0][1]
    statuses = {i.file_name: i.status for i in remote.list_items("people")}
    assert statuses.pop(poison.file_name) == "new"  # untouched: a later run tries it again
    assert set(statuses.values()) == {"predicted"}
    # The same items, less the poison one, as the local engine labels them.
    label_locally(local)
    got, want = by_name(remote), by_name(local)
    assert got.pop(poison.file_name) == []
    assert {n: len(v) for n, v in got.items()} == {
        n: len(v) for n, v in want.items() if n != poison.file_name
    }


def test_an_interrupted_run_stays_consistent_and_a_rerun_completes_it(
    ray_cluster, two_workspaces
) -> None:
    local, remote = two_workspaces
    label_locally(local, batch_size=2)

    def interrupt_after_two_batches(done: int, total: int | None) -> None:
        if done >= 4:
            raise KeyboardInterrupt

    options = AutolabelOptions(engine="ray", batch_size=2, workers=1)
    with pytest.raises(KeyboardInterrupt):
        get_engine("ray")(
            remote,
            "people",
            options,
            progress=interrupt_after_two_batches,
            model_factory=fake_models,
        )
    want = by_name(local)
    labeled = {i.file_name for i in remote.list_items("people") if i.status == "predicted"}
    assert len(labeled) == 4  # two whole batches committed, nothing of the rest
    for name, instances in by_name(remote).items():
        assert len(instances) == (len(want[name]) if name in labeled else 0)

    rest = get_engine("ray")(remote, "people", options, model_factory=fake_models)
    assert (rest.processed, rest.skipped) == (5, 4) and not rest.failures
    assert_same_labels(local, remote)


def test_cancel_stops_between_batches(ray_cluster, two_workspaces) -> None:
    _, remote = two_workspaces
    seen: list[int] = []
    report = get_engine("ray")(
        remote,
        "people",
        AutolabelOptions(engine="ray", batch_size=3, workers=1),
        progress=lambda done, total: seen.append(done),
        should_stop=lambda: len(seen) >= 2,  # after the first batch is written
        model_factory=fake_models,
    )
    assert report.cancelled and report.processed == 3
    assert sum(i.status == "predicted" for i in remote.list_items("people")) == 3


def test_blazepose_through_the_cli_on_ray_matches_local(ray_cluster, tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="BlazePose needs the [mediapipe] extra")
    from posekit.cli import main

    folders = [DATA / "coco-val2017-sample" / "images"]
    local = _workspace(tmp_path / "local", folders)
    remote = _workspace(tmp_path / "ray", folders)
    remote.close()
    try:
        local_autolabel(local, "people", AutolabelOptions(batch_size=4))
        flags = ["--engine", "ray", "--workers", "1", "--gpus-per-worker", "0", "--batch-size", "4"]
        root = str(tmp_path / "ray")
        assert main(["--workspace", root, "-q", "autolabel", "people", *flags]) == 0
        remote = Workspace(tmp_path / "ray")
        assert {i.status for i in remote.list_items("people")} == {"predicted"}
        assert_same_labels(local, remote)
    finally:
        local.close()
        remote.close()


def test_gpu_workers_without_a_gpu_in_the_cluster_fail_early(ray_cluster, tmp_path: Path) -> None:
    from posekit.engines.ray import RayEngineError

    ws = _workspace(tmp_path / "ws", SAMPLE_FOLDERS[2:])
    try:
        options = AutolabelOptions(engine="ray", gpus_per_worker=1)
        with pytest.raises(RayEngineError, match="no GPU"):
            get_engine("ray")(ws, "people", options, model_factory=fake_models)
        assert {i.status for i in ws.list_items("people")} == {"new"}
    finally:
        ws.close()
