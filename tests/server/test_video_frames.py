"""The server's video frames (posekit.server.video_frames): the JPEG cache bounded in
bytes, frames at the view's size, and the seek proxy built in the background and
used once ready (its state in the video API)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")
pytest.importorskip("av", reason="needs the [video] extra (PyAV)")
from fastapi.testclient import TestClient
from PIL import Image

from media.test_video import numbered_frame, read_number, write_numbered
from posekit import get_preset
from posekit.server import Settings, create_app
from posekit.server.video_frames import BytesLRU, proxy_side, scaled_size
from posekit.store import Workspace
from posekit.store.video_imports import import_video

from .auth_helpers import login_admin


def test_jpeg_cache_evicts_least_recently_used_by_bytes() -> None:
    cache = BytesLRU(100)
    cache.put("a", b"x" * 40)
    cache.put("b", b"x" * 40)
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", b"x" * 40)  # 120 > 100: b goes, not a
    assert "b" not in cache and "a" in cache and "c" in cache and cache.bytes == 80
    cache.put("a", b"x" * 10)  # replacing counts the new size only
    assert cache.bytes == 50
    cache.put("huge", b"x" * 101)  # over the whole budget: not kept, nothing evicted
    assert "huge" not in cache and len(cache) == 2 and cache.bytes == 50
    cache.put("d", b"x" * 60)  # 110: c, now the least recently used (a was put again), goes
    assert cache.bytes == 70 and "c" not in cache and "a" in cache and "d" in cache


def test_scaled_size_is_a_whole_factor() -> None:
    assert scaled_size(1920, 1080, 900) == (960, 540)
    assert scaled_size(1920, 1080, 600) == (640, 360)
    assert scaled_size(1280, 720, 900) == (1280, 720)
    assert scaled_size(161, 97, 64) == (81, 49)
    assert scaled_size(160, 96, None) == (160, 96)


def test_proxy_side_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSEKIT_VIDEO_PROXY_SIDE", "480")
    assert proxy_side(Settings()) == 480
    assert proxy_side(Settings(video_proxy_side=0)) == 0


@pytest.fixture
def client(tmp_path: Path, request: pytest.FixtureRequest):
    side = getattr(request, "param", 160)
    frames = [numbered_frame(i, 320, 192) for i in range(30)]
    clip = write_numbered(tmp_path / "clip.mp4", 30, options={"g": "15", "bf": "2"}, frames=frames)
    with Workspace(tmp_path / "ws") as ws:
        project = ws.create_project("clips", get_preset("coco17"))
        video = import_video(ws, project, "clips", clip).video
    app = create_app(Settings(workspace=tmp_path / "ws", video_proxy_side=side))
    with TestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        login_admin(test_client)
        yield test_client, app, video.id
        app.state.posekit_video_frames.close()


def picture(response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))


def test_proxy_is_built_in_the_background_and_serves_view_sized_frames(client) -> None:
    test_client, app, vid = client
    url = f"/api/videos/{vid}/frames"
    before = test_client.get(f"{url}/7", params={"max_side": 150})
    assert "proxy" not in before.headers["server-timing"]
    assert picture(before).shape == (96, 160, 3)  # the original, halved

    assert test_client.get(f"/api/videos/{vid}").json()["proxy"] is None  # not asked
    state = test_client.get(f"/api/videos/{vid}", params={"proxy": True}).json()["proxy"]
    assert state["state"] in ("queued", "building", "ready")
    assert (state["width"], state["height"]) == (160, 96) and state["bound_bytes"] > 0
    assert app.state.posekit_video_frames.wait_idle(120)
    state = test_client.get(f"/api/videos/{vid}", params={"proxy": True}).json()["proxy"]
    assert state["state"] == "ready" and 0 < state["bytes"] <= state["bound_bytes"]

    for i in (7, 0, 29, 13):
        response = test_client.get(f"{url}/{i}", params={"max_side": 150})
        assert "proxy" in response.headers["server-timing"]
        shown = picture(response)
        assert shown.shape == (96, 160, 3)
        assert read_number(np.repeat(np.repeat(shown, 2, axis=0), 2, axis=1)) == i
    # a new source is a new ETag (a frame cached from the original stays valid)
    assert (
        test_client.get(f"{url}/7", params={"max_side": 150}).headers["etag"]
        != (before.headers["etag"])
    )
    # larger than the proxy, or full size: the original
    for params in ({"max_side": 300}, {}):
        response = test_client.get(f"{url}/7", params=params)
        assert "proxy" not in response.headers["server-timing"]
        assert picture(response).shape == (192, 320, 3)
        assert read_number(picture(response)) == 7


@pytest.mark.parametrize("client", [0], indirect=True)
def test_proxy_off_when_the_side_is_zero(client) -> None:
    test_client, app, vid = client
    assert test_client.get(f"/api/videos/{vid}", params={"proxy": True}).json()["proxy"] is None
    assert app.state.posekit_video_frames.wait_idle(1)
    response = test_client.get(f"/api/videos/{vid}/frames/3", params={"max_side": 150})
    assert "proxy" not in response.headers["server-timing"]
