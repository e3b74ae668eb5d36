"""The video view in real Chromium against the real server: open a video from the
project page, play, step, edit an interpolated frame (it becomes a keyframe, stored),
interpolated positions between two keyframes, "track forward" with a fake pose model.

The video is a PNG frame folder of a bright square walking right (``video_fakes``), so
every position is exact; the fake pose model ``squares`` follows the square.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from video_fakes import SquarePose, square_frames, square_pose_keypoints, write_frame_folder

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
]
TIMEOUT_MS = 30_000
FRAMES = 24


def walker(f: int) -> tuple[int, int]:
    return 6 + 2 * f, 30


def pose_body(x: float, y: float) -> dict[str, Any]:
    return {"keypoints": square_pose_keypoints(x, y).tolist(), "visibility": [2] * 17}


class LiveServer:
    def __init__(self, workspace: Path) -> None:
        import httpx
        import uvicorn

        from posekit.server import create_app
        from posekit.server.settings import Settings

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(Settings(workspace=workspace, host="127.0.0.1", port=self.port))
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start on {self.url}")
            time.sleep(0.05)
        self.http = httpx.Client(base_url=self.url, timeout=60, headers={"X-Posekit-Client": "ui"})

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pytest.importorskip("uvicorn", reason="uvicorn (server extra) is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian chromium not found at {CHROMIUM}")
    from posekit.models import registry
    from posekit.skeleton import get_preset
    from posekit.store import Workspace
    from posekit.store.video_imports import import_video

    root = tmp_path_factory.mktemp("ui-video")
    folder = write_frame_folder(root / "walk", square_frames(FRAMES, [walker]))
    with Workspace(root / "ws") as ws:
        project = ws.create_project("walkers", get_preset("coco17"))
        video = import_video(ws, project, "clips", folder, frames_folder=True, fps=12).video
    previous = registry.POSE_ESTIMATORS.get("squares")
    registry.POSE_ESTIMATORS["squares"] = lambda arg, **options: SquarePose()
    live = LiveServer(root / "ws")
    live.project_id, live.video_id = project.id, video.id  # type: ignore[attr-defined]
    try:
        yield live
    finally:
        live.close()
        if previous is None:
            registry.POSE_ESTIMATORS.pop("squares", None)
        else:
            registry.POSE_ESTIMATORS["squares"] = previous


@pytest.fixture(scope="module")
def browser(server: LiveServer) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: wait_for_function evaluates strings, which the CSP (no eval) forbids.
    context = browser.new_context(viewport={"width": 1280, "height": 720}, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    try:
        yield page
        assert page.errors == [], f"JavaScript errors: {page.errors}"
    finally:
        context.close()


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate("window.posekit.state()")


def _open(page: Any, server: LiveServer, frame: int | None = None) -> None:
    if frame is None:
        # From the project page's video list.
        page.goto(f"{server.url}/#/projects/{server.project_id}")
        page.click(f"#video-list a[data-video-id='{server.video_id}']")
    else:
        page.goto(
            f"{server.url}/#/projects/{server.project_id}/videos/{server.video_id}?frame={frame}"
        )
    page.wait_for_selector("body[data-page=video]")


def _wait_frame(page: Any, frame: int) -> None:
    page.wait_for_function(f"window.posekit.state() && window.posekit.state().frame === {frame}")


def _seek(page: Any, frame: int) -> None:
    page.fill("#vv-frame", str(frame))
    page.press("#vv-frame", "Enter")
    _wait_frame(page, frame)


def _track(server: LiveServer, track_id: int) -> dict[str, Any]:
    base = f"/api/videos/{server.video_id}"
    return next(t for t in server.call("GET", f"{base}/tracks") if t["track_id"] == track_id)


def test_open_play_pause_and_step(page: Any, server: LiveServer) -> None:
    _open(page, server)
    state = _state(page)
    assert state["kind"] == "video" and state["frame"] == 0 and not state["playing"]
    assert "frame 0 / 23" in page.inner_text("#vv-info")
    page.wait_for_function("document.querySelector('#tl-strip').naturalWidth > 0")

    page.click("#vv-play")
    page.wait_for_function("window.posekit.state().frame >= 4")
    page.keyboard.press("Space")  # pause
    assert not _state(page)["playing"]
    paused_at = _state(page)["frame"]
    time.sleep(0.3)
    assert _state(page)["frame"] == paused_at

    page.keyboard.press("Home")
    _wait_frame(page, 0)
    page.keyboard.press(".")
    _wait_frame(page, 1)
    page.keyboard.press("Shift+ArrowRight")
    _wait_frame(page, 2)
    page.keyboard.press(",")
    _wait_frame(page, 1)
    page.click("#vv-next")
    _wait_frame(page, 2)
    _seek(page, 17)
    assert "frame 17 / 23" in page.inner_text("#vv-info")
    # Clicking the timeline seeks: its right end is the last frame.
    box = page.locator("#timeline").bounding_box()
    page.mouse.click(box["x"] + box["width"] - 1, box["y"] + 10)
    _wait_frame(page, FRAMES - 1)

    # Seek latency (frame JPEG + the frame's instances), random frames.
    for frame in np.random.default_rng(0).permutation(FRAMES)[:12]:
        _seek(page, int(frame))
    ms = np.array(_state(page)["requestMs"])
    p50, p95 = np.percentile(ms, [50, 95])
    print(f"\nvideo view seek: n={len(ms)} p50={p50:.1f} ms p95={p95:.1f} ms")


def test_interpolate_and_keyframe_edit(page: Any, server: LiveServer) -> None:
    base = f"/api/videos/{server.video_id}"
    track = server.call("POST", f"{base}/tracks", {"label": "walker"})["track_id"]
    server.call("PUT", f"{base}/tracks/{track}/keyframes/2", pose_body(10, 20))
    server.call("PUT", f"{base}/tracks/{track}/keyframes/6", pose_body(30, 40))
    _open(page, server, frame=4)
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    page.wait_for_selector(f"#tl-rows .tl-row[data-track-id='{track}'] .tl-key[data-frame='6']")

    # Frames between the keyframes show the interpolated positions the API computes.
    for frame, (x, y) in {3: (15, 25), 4: (20, 30), 5: (25, 35)}.items():
        _seek(page, frame)
        (shown,) = [i for i in _state(page)["instances"] if i["track_id"] == track]
        assert shown["interpolated"] and not shown["keyframe"]
        np.testing.assert_allclose(shown["keypoints"], square_pose_keypoints(x, y), atol=1e-4)

    # Drag keypoint 0 on interpolated frame 4: the frame becomes a keyframe.
    _seek(page, 4)
    start = page.evaluate(f"window.posekit.clientPoint({track}, 0)")
    scale = page.evaluate("window.posekit.view.scale")
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(start["x"] + 15, start["y"] + 6, steps=5)
    page.mouse.up()
    page.wait_for_selector("#vv-status[data-state=saved]")
    assert _track(server, track)["keyframes"] == [2, 4, 6]
    (stored,) = [
        i for i in server.call("GET", f"{base}/frames/4/instances") if i["track_id"] == track
    ]
    assert stored["keyframe"] and not stored["interpolated"] and stored["version"] == 1
    assert stored["keypoints"][0] == pytest.approx([20 + 15 / scale, 30 + 6 / scale], abs=0.05)
    assert stored["keypoints"][1] == pytest.approx(square_pose_keypoints(20, 30)[1].tolist())
    page.wait_for_function(
        f"window.posekit.state().instances.some((i) => i.track_id === {track} && i.keyframe)"
    )
    page.wait_for_selector(f"#tl-rows .tl-row[data-track-id='{track}'] .tl-key[data-frame='4']")

    # Someone else changes the frame: the next edit here conflicts (409) and reloads.
    server.call("PUT", f"{base}/tracks/{track}/keyframes/4", {**pose_body(21, 30), "version": 1})
    start = page.evaluate(f"window.posekit.clientPoint({track}, 5)")
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(start["x"] + 9, start["y"], steps=3)
    page.mouse.up()
    page.wait_for_selector("#vv-status[data-state=conflict]")
    page.wait_for_function(
        f"window.posekit.state().instances.some((i) => i.track_id === {track} && i.version === 2)"
    )


def test_propagate_forward(page: Any, server: LiveServer) -> None:
    base = f"/api/videos/{server.video_id}"
    track = server.call("POST", f"{base}/tracks", {"label": "tracked"})["track_id"]
    server.call("PUT", f"{base}/tracks/{track}/keyframes/10", pose_body(*walker(10)))
    _open(page, server, frame=10)
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    page.fill("#vv-count", "4")
    page.fill("#vv-model", "squares")
    page.click("#vv-propagate")
    page.wait_for_selector("#vv-status[data-state=saved]")
    assert "4 frame(s)" in page.inner_text("#vv-status")
    assert _track(server, track)["frames"] == [10, 11, 12, 13, 14]
    _seek(page, 13)
    (shown,) = [i for i in _state(page)["instances"] if i["track_id"] == track]
    assert shown["status"] == "predicted" and not shown["interpolated"]
    np.testing.assert_array_equal(shown["keypoints"], square_pose_keypoints(*walker(13)))


def test_frame_items_link_to_the_video_view(page: Any, server: LiveServer) -> None:
    """Frame items (made by keyframe edits) show in the grid as frame cards that open
    the video view at their frame, not the image editor."""
    base = f"/api/videos/{server.video_id}"
    track = server.call("POST", f"{base}/tracks", {"label": "grid"})["track_id"]
    server.call("PUT", f"{base}/tracks/{track}/keyframes/20", pose_body(*walker(20)))
    page.goto(f"{server.url}/#/projects/{server.project_id}")
    card = page.locator(f".card[data-video-id='{server.video_id}']").filter(has_text="000020")
    card.wait_for()
    page.wait_for_function("[...document.querySelectorAll('.card img')].every((i) => i.complete)")
    assert page.evaluate(
        "[...document.querySelectorAll('.card[data-video-id] img')].every((i) => i.naturalWidth)"
    )
    card.click()
    page.wait_for_selector("body[data-page=video]")
    _wait_frame(page, 20)
