"""The video editor and the seek proxy, in real Chromium: opening a video file larger
than the view queues its proxy's build, and once it is built the frames the view
asks for come from it (the exact frame still)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("av", reason="needs the [video] extra (PyAV)")

from .conftest import CLIENT_HEADERS, LiveServer, checked_page, require_browser

FRAMES = 20

# The last frame request's Server-Timing names, after a seek through the view.
SEEK_JS = """async (i) => {
  performance.clearResourceTimings();
  await window.posekit.view.seek(i);
  const own = new RegExp(`/frames/${i}(\\\\?|$)`);
  const entry = performance.getEntriesByType("resource").filter((e) => own.test(e.name)).pop();
  return {
    frame: window.posekit.view.frame,
    timing: entry ? (entry.serverTiming || []).map((s) => s.name) : null,
  };
}"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_browser()
    from posekit.render.video import write_video
    from posekit.skeleton import get_preset
    from posekit.store import Workspace
    from posekit.store.video_imports import import_video

    root = tmp_path_factory.mktemp("ui-video-proxy")
    clip = root / "wide.mp4"
    # 1280x720: larger than the 960 px proxy; the view draws it 900 px wide
    frames = [np.full((720, 1280, 3), 10 * i, np.uint8) for i in range(FRAMES)]
    write_video(clip, frames, 10, gop=10, options={"bf": "0"})
    with Workspace(root / "ws") as ws:
        project = ws.create_project("wide", get_preset("coco17"))
        video = import_video(ws, project, "clips", clip).video
    with LiveServer(root / "ws", headers=CLIENT_HEADERS) as live:
        live.project_id, live.videos = project.id, {"wide": video.id}
        try:
            yield live
        finally:
            live.app.state.posekit_video_frames.close()


@pytest.fixture()
def page(browser: Any, server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Any]:
    scale = getattr(request, "param", 1)
    with checked_page(browser, server, device_scale_factor=scale) as page:
        # prefetch off: each seek asks the server for its frame
        page.evaluate("localStorage.setItem('posekit.videoPrefetch', 'off')")
        yield page


def _proxy_ready(server: LiveServer, vid: int, timeout: float = 120) -> bool:
    from posekit.store.video_proxies import proxy_info

    ws = server.app.state.posekit.ws
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy_info(ws, ws.get_video(vid)).ready:
            return True
        time.sleep(0.2)
    return False


# dpr2: a high-DPI screen, whose canvas has 1800 px (more than the proxy's 960): the
# view asks for frames at the proxy's size, so they still come from it.
@pytest.mark.parametrize("page", [1, 2], indirect=True, ids=["dpr1", "dpr2"])
def test_opening_a_video_builds_its_proxy_and_seeks_use_it(page: Any, server: LiveServer) -> None:
    vid = server.videos["wide"]
    page.goto(f"{server.url}/#/projects/{server.project_id}/videos/{vid}?frame=0")
    page.wait_for_selector("body[data-page=video]")
    page.wait_for_function("window.posekit.state() && window.posekit.state().frame === 0")
    # nothing but the editor's opening asked for the proxy
    assert _proxy_ready(server, vid)
    shown = page.evaluate(SEEK_JS, 13)
    assert shown["frame"] == 13 and "proxy" in shown["timing"], shown
    # the picture is frame 13's (grey level 130), drawn from the proxy's JPEG
    level = page.evaluate(
        """() => {
          const c = document.querySelector('canvas');
          const d = c.getContext('2d').getImageData(5, c.height - 10, 1, 1).data;
          return (d[0] + d[1] + d[2]) / 3;
        }"""
    )
    assert abs(level - 130) < 8
