"""Videos through the Ray engine (engines.ray + ray_worker.VideoWorker): one video per
worker task, tracked there with the local engine's code, streamed back and written by
the driver: the same tracks, instances and outside marks as the local engine.

Skipped, with the reason, when Ray Data is not installed (``pip install 'posekit[ray]'``).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import numpy as np
import pytest

import video_fakes
from posekit import get_preset
from posekit.engines import get_engine
from posekit.engines.local import autolabel as local_autolabel
from posekit.pipeline.options import AutolabelOptions
from posekit.store import Workspace, import_images
from posekit.store.video_imports import import_video
from video_fakes import SquareDetector, SquarePose, square_frames, write_frame_folder

FRAMES = 150  # more than two of the worker's output chunks (64 frames)


def walker(f: int) -> tuple[int, int]:
    return 6 + f // 3, 30  # slowly right, within the left band


def visitor(f: int) -> tuple[int, int]:
    # In the frame from 20 to 89, then gone: a second track with an outside mark.
    return (120, 60) if 20 <= f < 90 else (500, 500)  # (500, 500): off the frame


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'posekit[ray]')")
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(video_fakes)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    cloudpickle.unregister_pickle_by_value(video_fakes)


def _workspace(root: Path, frames: Path, broken: Path | None = None) -> Workspace:
    ws = Workspace(root)
    ws.create_project("p", get_preset("coco17"))
    import_video(ws, "p", "clips", frames, frames_folder=True, fps=10, name="walk")
    if broken is not None:
        import_video(ws, "p", "clips", broken, frames_folder=True, fps=10, name="broken")
    return ws


def fake_models():
    """The workers' model factory (runs in the Ray worker)."""
    return SquareDetector(), SquarePose()


def crash_once(marker: str, ids: list[int]) -> None:
    """Test hook: the worker dies (``os._exit``) the first time it starts a video."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os._exit(4)


def _labels(ws: Workspace) -> dict:
    out = {}
    for video in ws.list_videos("p"):
        tracks = {t.track_id: (t.frames, t.outside) for t in ws.list_tracks(video)}
        frames = {}
        for f in range(video.frame_count):
            frames[f] = sorted(
                (fi.track_id, fi.stored, fi.instance.keypoints.round(4).tobytes(),
                 fi.instance.status, fi.instance.source)
                for fi in ws.frame_view(video, f)
            )  # fmt: skip
        out[video.file_name] = (video.status, tracks, frames)
    return out


@pytest.mark.parametrize("every", [1, 4])
def test_ray_engine_tracks_videos_as_the_local_engine_does(
    ray_cluster, tmp_path: Path, every: int
) -> None:
    folder = write_frame_folder(tmp_path / "frames", square_frames(FRAMES, [walker, visitor]))
    # A second video whose frames were deleted after import: reported, the first labeled.
    broken = write_frame_folder(tmp_path / "broken", square_frames(3, [walker]))
    local = _workspace(tmp_path / "local", folder, broken)
    remote = _workspace(tmp_path / "ray", folder, broken)
    for ws in (local, remote):
        (gone,) = [v for v in ws.list_videos("p") if v.file_name == "broken"]
        for file in sorted(gone.path.iterdir()):
            file.unlink()
    options = {"every": every, "tracker_options": {"min_hits": 2}}
    expected = local_autolabel(
        local, "p", AutolabelOptions(**options), detector=SquareDetector(), pose=SquarePose()
    )
    progress: list[tuple[int, int | None]] = []
    report = get_engine("ray")(
        remote,
        "p",
        AutolabelOptions(engine="ray", workers=1, **options),
        model_factory=fake_models,
        progress=lambda done, total: progress.append((done, total)),
    )
    try:
        wanted = _labels(local)
        assert wanted["walk"][0] == "predicted" and len(wanted["walk"][1]) == 2
        # The visitor's outside mark: after the last sampled frame that shows it.
        last = max(f for f in range(0, FRAMES, every) if 20 <= f < 90)
        assert wanted["walk"][1][2][1] == (last + 1,)
        assert _labels(remote) == wanted
        assert (report.processed, report.instances) == (expected.processed, expected.instances)
        assert report.processed == FRAMES
        assert [name for name, _ in report.failures] == ["broken"]
        assert [name for name, _ in expected.failures] == ["broken"]
        assert report.device == "detector: cpu, pose: cpu (1 Ray workers)"
        total = -(-FRAMES // every) + -(-3 // every)  # and the broken video's 3 frames
        assert progress[0] == (0, total) and progress[-1][1] == total
        assert progress[-1][0] >= -(-FRAMES // every)
        assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    finally:
        local.close()
        remote.close()


def test_a_worker_killed_on_a_video_is_replaced_and_nothing_is_doubled(
    ray_cluster, tmp_path: Path
) -> None:
    folder = write_frame_folder(tmp_path / "frames", square_frames(FRAMES, [walker, visitor]))
    local = _workspace(tmp_path / "local", folder)
    remote = _workspace(tmp_path / "ray", folder)
    # Images and a video in one project: both labeled in one run.
    images = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "aic-sample"
    if images.is_dir():
        for ws in (local, remote):
            import_images(ws, "p", "stills", [images])
    options = {"tracker_options": {"min_hits": 2}}
    local_autolabel(
        local, "p", AutolabelOptions(**options), detector=SquareDetector(), pose=SquarePose()
    )
    report = get_engine("ray")(
        remote,
        "p",
        AutolabelOptions(engine="ray", workers=1, **options),
        model_factory=fake_models,
        before_batch=functools.partial(crash_once, str(tmp_path / "crashed")),
    )
    try:
        assert (tmp_path / "crashed").exists()
        assert _labels(remote) == _labels(local)
        (video,) = remote.list_videos("p")
        counts = [len(remote.frame_view(video, f)) for f in range(FRAMES)]
        assert counts == [2 if 20 <= f < 90 else 1 for f in range(FRAMES)]
        if images.is_dir():
            for a, b in zip(
                sorted(local.list_items("p", dataset="stills"), key=lambda i: i.file_name),
                sorted(remote.list_items("p", dataset="stills"), key=lambda i: i.file_name),
                strict=True,
            ):
                assert len(local.get_instances(a)) == len(remote.get_instances(b))
        assert not [f for f in report.failures if "walk" in f[0]]
        again = get_engine("ray")(
            remote, "p", AutolabelOptions(engine="ray", **options), model_factory=fake_models
        )
        assert again.processed == 0 and again.skipped >= 1
    finally:
        local.close()
        remote.close()


def test_stored_instances_keep_float32_positions(ray_cluster, tmp_path: Path) -> None:
    """The frames that come back from the worker are the local engine's, bit for bit."""
    folder = write_frame_folder(tmp_path / "frames", square_frames(12, [walker]))
    local = _workspace(tmp_path / "local", folder)
    remote = _workspace(tmp_path / "ray", folder)
    options = {"every": 3, "tracker_options": {"min_hits": 1}}
    local_autolabel(
        local, "p", AutolabelOptions(**options), detector=SquareDetector(), pose=SquarePose()
    )
    get_engine("ray")(
        remote, "p", AutolabelOptions(engine="ray", **options), model_factory=fake_models
    )
    try:
        (a,) = local.list_videos("p")
        (b,) = remote.list_videos("p")
        # Frames 0-9 (sampled 0, 3, 6, 9 and interpolated between); none after the last.
        for f in range(12):
            here, there = local.frame_view(a, f), remote.frame_view(b, f)
            assert len(here) == len(there) == (1 if f <= 9 else 0)
            for x, y in zip(here, there, strict=True):
                assert np.array_equal(x.instance.keypoints, y.instance.keypoints)
                assert y.instance.keypoints.dtype == np.float32
    finally:
        local.close()
        remote.close()
