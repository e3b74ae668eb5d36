"""Seek proxies (posekit.store.video_proxies): frame i of the proxy is frame i of the
video, the disk cost is bounded and reported, failed or cancelled builds leave nothing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'posekit[video]')")

from media.test_video import numbered_frame, read_number, write_numbered
from posekit import get_preset
from posekit.store import Workspace
from posekit.store.video_imports import import_video
from posekit.store.video_proxies import (
    ProxyCancelled,
    build_video_proxy,
    open_video_proxy,
    proxy_info,
    proxy_size,
    prune_video_proxies,
)

COUNT = 40


def read_half(frame: np.ndarray) -> int:
    return read_number(np.repeat(np.repeat(frame, 2, axis=0), 2, axis=1))


def imported(tmp_path: Path, clip: Path) -> tuple[Workspace, object]:
    ws = Workspace(tmp_path / "ws")
    project = ws.create_project("clips", get_preset("coco17"))
    return ws, import_video(ws, project, "clips", clip).video


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    """320x192 H.264 with B-frames and a long GOP (a keyframe every 20 frames)."""
    frames = [numbered_frame(i, 320, 192) for i in range(COUNT)]
    return write_numbered(
        tmp_path / "clip.mp4", COUNT, options={"g": "20", "bf": "2"}, frames=frames
    )


def test_proxy_frames_map_one_to_one_to_the_video(tmp_path: Path, clip: Path) -> None:
    ws, video = imported(tmp_path, clip)
    with ws:
        assert proxy_size(video, 160) == (160, 96)
        assert open_video_proxy(ws, video, 160) is None  # not built yet
        info = build_video_proxy(ws, video, 160)
        assert info.ready and (info.width, info.height) == (160, 96)
        assert 0 < info.bytes <= info.bound_bytes
        assert info.path.is_file() and info.index_path.is_file()
        with open_video_proxy(ws, video, 160) as proxy, ws.open_video(video) as original:
            assert proxy.frame_count == original.frame_count == COUNT
            # short GOP: a cold seek decodes at most a few frames
            assert np.diff(proxy.keyframes).max() <= 5
            for i in np.random.default_rng(1).permutation(COUNT).tolist():
                assert read_half(proxy.frame(i)) == i
                assert read_number(original.frame(i)) == i
        # built once: a second call finds it
        assert build_video_proxy(ws, video, 160).path == info.path


def test_variable_frame_rate_video_still_maps_by_index(tmp_path: Path) -> None:
    pts = [0, 1, 2, 5, 6, 10, 11, 12, 20, 21, 22, 23]
    frames = [numbered_frame(i, 320, 192) for i in range(len(pts))]
    clip = write_numbered(
        tmp_path / "vfr.mkv",
        len(pts),
        pts=pts,
        time_base=Fraction(1, 10),
        options={"bf": "0"},
        frames=frames,
    )
    ws, video = imported(tmp_path, clip)
    with ws:
        build_video_proxy(ws, video, 160)
        with open_video_proxy(ws, video, 160) as proxy:
            assert [read_half(f) for f in proxy.frames()] == list(range(len(pts)))


def test_small_videos_and_frame_folders_need_no_proxy(tmp_path: Path, clip: Path) -> None:
    ws, video = imported(tmp_path, clip)
    with ws:
        assert proxy_info(ws, video, 320) is None and proxy_info(ws, video, 0) is None
        assert build_video_proxy(ws, video, 400) is None


def test_cancelled_build_leaves_nothing(tmp_path: Path, clip: Path) -> None:
    ws, video = imported(tmp_path, clip)
    with ws:
        with pytest.raises(ProxyCancelled):
            build_video_proxy(ws, video, 160, cancelled=lambda: True)
        info = proxy_info(ws, video, 160)
        assert not info.ready and info.bytes == 0
        assert list(info.path.parent.iterdir()) == []


def test_unreadable_proxy_is_not_used(tmp_path: Path, clip: Path) -> None:
    ws, video = imported(tmp_path, clip)
    with ws:
        info = build_video_proxy(ws, video, 160)
        info.index_path.write_text("{not json", encoding="utf-8")
        assert open_video_proxy(ws, video, 160) is None


def test_deleting_a_video_removes_its_proxy_unless_another_shares_it(
    tmp_path: Path, clip: Path
) -> None:
    ws, video = imported(tmp_path, clip)
    with ws:
        project = ws.get_project("clips")
        twin = import_video(ws, project, "other", clip).video  # same content, same proxy
        assert twin.sha256 == video.sha256
        info = build_video_proxy(ws, video, 160)
        ws.delete_video(video)
        assert info.path.is_file() and proxy_info(ws, twin, 160).ready
        ws.delete_video(twin)
        assert not info.path.exists() and not info.index_path.exists()


def test_prune_removes_only_proxies_of_videos_that_are_gone(tmp_path: Path, clip: Path) -> None:
    ws, video = imported(tmp_path, clip)
    with ws:
        info = build_video_proxy(ws, video, 160)
        folder = info.path.parent
        gone = ["0" * 64 + "-160x96.mp4", "0" * 64 + "-160x96.mp4.index.json"]
        gone += [".video-999-160x96.partial.mp4", "video-999-160x96.mp4.index.json.partial"]
        for name in [*gone, "notes.txt"]:
            (folder / name).write_bytes(b"x")
        assert prune_video_proxies(ws) == len(gone)
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [info.path.name, info.index_path.name, "notes.txt"]
        )
        proxy = open_video_proxy(ws, video, 160)
        assert proxy is not None
        proxy.close()
