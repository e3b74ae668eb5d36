"""The annotation canvas in real Chromium: locally repaired layers are pixel-exact.

The view caches the image and the people in offscreen layers and, after a drag,
repairs only the rectangles around what changed. These tests drag keypoints of a
crowd of COCO-WholeBody people with real mouse events (at device pixel ratios 1
and 2, at the fit zoom, where the crowd is drawn with compact markers, and zoomed
in after a wheel gesture, in full detail) and compare the canvas with a redraw
of the same scene from empty caches: not one pixel may differ.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .auth_helpers import access_token, bearer, browser_login_url
from .test_ui_e2e import CHROMIUM, launched_chromium

IMAGE = "000000000785.jpg"  # 640x425
COLUMNS, ROWS = 8, 3
# The repaired canvas and a redraw from scratch, compared per pixel (RGB).
REPAIR_CHECK_JS = """() => {
  const view = window.posekit.view;
  const { width, height } = view.canvas;
  const ctx = view.renderer.ctx;
  view.renderNow();
  const repaired = ctx.getImageData(0, 0, width, height).data;
  view.renderer.reset();
  view.renderNow();
  const fresh = ctx.getImageData(0, 0, width, height).data;
  let differ = 0, maxDiff = 0;
  for (let i = 0; i < fresh.length; i += 4) {
    let d = 0;
    for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(fresh[i + c] - repaired[i + c]));
    if (d) differ++;
    maxDiff = Math.max(maxDiff, d);
  }
  return [differ, maxDiff];
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _crowd(width: int, height: int, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """COLUMNS x ROWS people, every point somewhere in its grid cell, all looks mixed:
    accepted, predicted (with low scores), rejected, without box, occluded points."""
    rng = random.Random(7)
    cell_w, cell_h = width / COLUMNS, height / ROWS
    people = []
    for n in range(COLUMNS * ROWS):
        x1 = (n % COLUMNS) * cell_w
        y1 = (n // COLUMNS) * cell_h
        keypoints = [
            [x1 + rng.uniform(0.0, 1.1) * cell_w, y1 + rng.uniform(0.0, 1.1) * cell_h]
            for _ in names
        ]
        people.append(
            {
                "keypoints": keypoints,
                "visibility": [rng.choice((2, 2, 2, 1, 0)) for _ in names],
                "keypoint_scores": [round(rng.uniform(0.2, 1.0), 3) for _ in names],
                "box": None if n % 5 == 4 else [x1, y1, x1 + cell_w, y1 + cell_h],
                "score": 0.8,
                "source": "manual" if n % 7 == 0 else "model:test",
                "status": ("accepted", "predicted", "rejected")[n % 3],
            }
        )
    return people


class _LoggedInUrl(str):
    """A URL of the app, with ``login_url()``: a one-time login link to open first."""

    login_url: Any


@pytest.fixture(scope="module")
def crowd_url(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[str]:
    """A live server with one image holding a crowd of COCO-WholeBody people; the URL
    of its annotation view."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    uvicorn = pytest.importorskip("uvicorn", reason="uvicorn (server extra) is not installed")
    import httpx

    if not CHROMIUM.is_file():
        pytest.skip(f"Debian chromium not found at {CHROMIUM}")
    from posekit.server import create_app
    from posekit.server.settings import Settings
    from posekit.skeleton import get_preset
    from posekit.store import Workspace, import_images

    image = shared_data / "coco-val2017-sample" / "images" / IMAGE
    if not image.is_file():
        pytest.skip(f"COCO sample image not found at {image}")
    workspace = tmp_path_factory.mktemp("ui-render") / "ws"
    template = get_preset("coco_wholebody133")
    with Workspace(workspace) as ws:
        ws.create_project("crowd", template)
        import_images(ws, "crowd", "default", [image])
    port = _free_port()
    app = create_app(Settings(workspace=workspace, host="127.0.0.1", port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=60, headers=bearer(access_token(app))) as http:
            pid = http.get("/api/projects").json()[0]["id"]
            item = http.get(f"/api/projects/{pid}/items").json()["items"][0]
            for body in _crowd(item["width"], item["height"], template.keypoints):
                http.post(f"/api/items/{item['id']}/instances", json=body).raise_for_status()
        view = _LoggedInUrl(f"{url}/#/projects/{pid}/items/{item['id']}?filter=all&order=name")
        view.login_url = lambda: browser_login_url(app, url)
        yield view
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(crowd_url: str) -> Iterator[Any]:
    with launched_chromium() as chromium:
        yield chromium


def _drag_some(page: Any, count: int) -> None:
    """Drag one visible keypoint of each of `count` people (every third one), with
    real mouse events, each gesture selecting another person."""
    state = page.evaluate("window.posekit.state()")
    box = page.evaluate("document.getElementById('canvas').getBoundingClientRect().toJSON()")
    done = 0
    for inst in state["instances"][::3]:
        for k in range(0, len(inst["visibility"]), 11):
            if inst["visibility"][k] != 2:
                continue
            start = page.evaluate(f"window.posekit.clientPoint({inst['key']}, {k})")
            inside = box["x"] + 12 < start["x"] < box["x"] + box["width"] - 40
            if not inside or not box["y"] + 12 < start["y"] < box["y"] + box["height"] - 40:
                continue
            page.mouse.move(start["x"], start["y"])
            page.mouse.down()
            page.mouse.move(start["x"] + 17.3, start["y"] + 9.6, steps=5)
            page.mouse.up()
            done += 1
            break
        if done == count:
            break
    page.wait_for_timeout(100)
    assert done == count, f"only {done} of {count} drags found a visible point on the canvas"


@pytest.mark.parametrize("dpr", [1, 2])
def test_repaired_layers_equal_a_redraw_from_scratch(
    browser: Any, crowd_url: str, dpr: int
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 720}, device_scale_factor=dpr)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(crowd_url.login_url())
        page.goto(crowd_url)
        page.wait_for_selector("body[data-page=annotate]")
        _drag_some(page, 4)
        differ, max_diff = page.evaluate(REPAIR_CHECK_JS)
        assert (differ, max_diff) == (0, 0), f"fit zoom: {differ} pixels differ (max {max_diff})"

        # Zoom in with the wheel: the frames of the gesture are scaled copies of
        # the layers, then one precise frame redraws them in full detail.
        box = page.evaluate("document.getElementById('canvas').getBoundingClientRect().toJSON()")
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4)
        for _ in range(6):
            page.mouse.wheel(0, -120)
            page.wait_for_timeout(20)
        page.wait_for_timeout(500)
        scale = page.evaluate("window.posekit.state().view.scale")
        assert scale > 2.5
        _drag_some(page, 3)
        differ, max_diff = page.evaluate(REPAIR_CHECK_JS)
        assert (differ, max_diff) == (0, 0), f"zoomed: {differ} pixels differ (max {max_diff})"
        assert errors == []
    finally:
        context.close()
