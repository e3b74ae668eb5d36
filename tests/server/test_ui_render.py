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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import LiveServer, checked_page, image_project, require_browser

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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[LiveServer]:
    """A live server with one image holding a crowd of COCO-WholeBody people; ``view``:
    the URL of its annotation view."""
    require_browser()
    from posekit.skeleton import get_preset

    image = shared_data / "coco-val2017-sample" / "images" / IMAGE
    if not image.is_file():
        pytest.skip(f"COCO sample image not found at {image}")
    workspace = tmp_path_factory.mktemp("ui-render") / "ws"
    pid = image_project(workspace, "crowd", [image], preset="coco_wholebody133")
    with LiveServer(workspace) as live:
        item = live.get(f"/api/projects/{pid}/items")["items"][0]
        names = get_preset("coco_wholebody133").keypoints
        for body in _crowd(item["width"], item["height"], names):
            live.post(f"/api/items/{item['id']}/instances", body)
        live.view = f"{live.url}/#/projects/{pid}/items/{item['id']}?filter=all&order=name"  # type: ignore[attr-defined]
        yield live


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
    browser: Any, server: LiveServer, dpr: int
) -> None:
    with checked_page(browser, server, bypass_csp=False, device_scale_factor=dpr) as page:
        page.goto(server.view)  # type: ignore[attr-defined]
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
        # checked_page: no JavaScript error in all that.
