"""End-to-end tests of the annotation UI in real Chromium against the real server.

A real ``posekit.server.create_app`` runs under uvicorn in a background thread on a
free loopback port, with a temporary workspace holding the shared COCO sample
images. Debian's ``/usr/bin/chromium`` is driven by Playwright (never a downloaded
browser). The tests read the app's state through the documented ``window.posekit``
hook and check persisted results through the HTTP API.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from posekit.store.imports import portable_name

from .auth_helpers import browser_login_url

# launched_chromium: test_ui_import.py (not this module's) imports it from here.
from .conftest import (  # noqa: F401
    TIMEOUT_MS,
    LiveServer,
    checked_page,
    image_project,
    launched_chromium,
    require_browser,
)

XSS = "<img src=x onerror=alert(1)>"
PROJECT = f"people {XSS}"
XSS_FILE = f"{XSS}.jpg"
#: How the workspace stores that file name: made valid on every OS (it ends up in
#: exports), still shown as text, never as markup.
STORED_XSS_FILE = portable_name(XSS_FILE)
EDIT_FILE = "000000000785.jpg"  # one skier, 640x425
# Items given predictions before the tests: file -> score of every predicted instance.
PREDICTED = {"000000040083.jpg": 0.9, "000000196141.jpg": 0.3}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[LiveServer]:
    """A live server on a fresh workspace: project ``PROJECT`` (COCO-17) with the four
    COCO sample images plus one named ``XSS_FILE``, and ground-truth people of two
    images stored as predictions (scores from ``PREDICTED``) for the review queue."""
    require_browser()
    sample = shared_data / "coco-val2017-sample"
    images = sample / "images"
    if not images.is_dir():
        pytest.skip(f"COCO sample images not found at {images}")
    root = tmp_path_factory.mktemp("ui-e2e")
    odd = root / "odd"
    odd.mkdir()
    # A different picture (not a byte copy, which would be skipped as a duplicate)
    # whose file name is markup.
    from PIL import Image

    Image.open(images / EDIT_FILE).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(odd / XSS_FILE)
    project_id = image_project(root / "ws", PROJECT, [images, odd])
    with LiveServer(root / "ws") as live:
        coco = json.loads((sample / "person_keypoints.json").read_text())
        file_of = {img["id"]: img["file_name"] for img in coco["images"]}
        for ann in coco["annotations"]:
            score = PREDICTED.get(file_of[ann["image_id"]])
            if score is None or not any(ann["keypoints"][2::3]):
                continue
            triplets = [ann["keypoints"][i : i + 3] for i in range(0, len(ann["keypoints"]), 3)]
            x, y, w, h = ann["bbox"]
            live.post(
                f"/api/items/{live.item_id(project_id, file_of[ann['image_id']])}/instances",
                {
                    "keypoints": [[t[0], t[1]] for t in triplets],
                    "visibility": [t[2] for t in triplets],
                    # Alternate scores so that some keypoints are flagged low-confidence.
                    "keypoint_scores": [0.2 if k % 2 else 0.95 for k in range(len(triplets))],
                    "box": [x, y, x + w, y + h],
                    "score": score,
                    "source": "model:test",
                    "status": "predicted",
                },
            )
        live.project_id = project_id
        yield live


@pytest.fixture()
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    """A fresh 1280x720 page; any JavaScript dialog or page error fails the test."""
    # bypass_csp (conftest.new_page): test_ui_runs_under_the_csp runs the UI with the
    # policy enforced.
    with checked_page(browser, server, record_dialogs=True, accept_downloads=True) as page:
        yield page


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate("window.posekit.state()")


def _live(page: Any) -> list[dict[str, Any]]:
    return [inst for inst in _state(page)["instances"] if not inst["deleted"]]


def _flat(points: list[list[float]]) -> list[float]:
    return [value for point in points for value in point]


def _wait_saved(page: Any) -> None:
    page.wait_for_selector("#save-status[data-state=saved]")


def _open_item(page: Any, server: LiveServer, file_name: str) -> int:
    """Project list -> project page -> the item's card; returns the item id."""
    page.goto(server.url + "/")
    page.locator(".project-link").filter(has_text=PROJECT).click()
    page.wait_for_selector("body[data-page=project] .card")
    item_id = server.item_id(server.project_id, file_name)
    page.click(f".card[data-item-id='{item_id}']")
    page.wait_for_selector("body[data-page=annotate]")
    return item_id


def _drag(page: Any, start: dict[str, float], end: dict[str, float]) -> None:
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(end["x"], end["y"], steps=6)
    page.mouse.up()


def test_assist_edit_undo_persist_and_export(page: Any, server: LiveServer) -> None:
    item_id = _open_item(page, server, EDIT_FILE)
    assert _live(page) == []

    # Draw a box around the skier and ask the real BlazePose model for her pose.
    page.keyboard.press("b")
    corner = page.evaluate("window.posekit.clientFromImage(200, 40)")
    opposite = page.evaluate("window.posekit.clientFromImage(430, 420)")
    _drag(page, corner, opposite)
    page.keyboard.press("a")
    page.wait_for_selector(".page[data-assist=done]", timeout=90_000)
    _wait_saved(page)
    (inst,) = _live(page)
    assert inst["source"] == "model:blazepose"
    assert inst["status"] == "predicted"
    assert inst["id"] is not None
    nose_before = inst["keypoints"][0]
    assert 200 <= nose_before[0] <= 430 and 40 <= nose_before[1] <= 420
    key = inst["key"]

    # Drag the nose 24 screen px right and 12 down.
    start = page.evaluate(f"window.posekit.clientPoint({key}, 0)")
    _drag(page, start, {"x": start["x"] + 24, "y": start["y"] + 12})
    scale = _state(page)["view"]["scale"]
    nose = _live(page)[0]["keypoints"][0]
    assert nose[0] == pytest.approx(nose_before[0] + 24 / scale, abs=0.5)
    assert nose[1] == pytest.approx(nose_before[1] + 12 / scale, abs=0.5)

    # Left wrist (9) occluded by key V; right wrist (10) through the side panel.
    wrist = page.evaluate(f"window.posekit.clientPoint({key}, 9)")
    page.mouse.click(wrist["x"], wrist["y"])
    assert _state(page)["selected"] == [[key, [9]]]
    page.keyboard.press("v")
    page.click("#keypoint-table tr[data-k='10'] button.vis")
    assert _live(page)[0]["visibility"][9:11] == [1, 1]
    page.click("#keypoint-table tr[data-k='10'] button.vis")  # occluded -> not labeled
    assert _live(page)[0]["visibility"][10] == 0
    assert page.locator("#missing-list li", has_text="right_wrist").count() == 1
    page.keyboard.press("Control+z")
    before_mirror = _live(page)[0]
    assert before_mirror["visibility"][9:11] == [1, 1]

    # Mirror swaps left/right data by the template's flip pairs.
    flip = server.get(f"/api/projects/{server.project_id}")["template"]["flip_index"]
    page.keyboard.press("m")
    mirrored = _live(page)[0]
    assert mirrored["keypoints"] == [before_mirror["keypoints"][j] for j in flip]
    assert mirrored["keypoints"][5] == before_mirror["keypoints"][6]
    page.keyboard.press("Control+z")
    assert _live(page)[0]["keypoints"] == before_mirror["keypoints"]
    page.keyboard.press("Control+Shift+z")
    assert _live(page)[0]["keypoints"] == mirrored["keypoints"]
    page.keyboard.press("Control+z")
    page.keyboard.press("Control+y")
    final = _live(page)[0]
    assert final["keypoints"] == mirrored["keypoints"]
    assert final["visibility"] == mirrored["visibility"]
    _wait_saved(page)

    # Persisted: through the API, and after a reload of the page.
    (stored,) = server.get(f"/api/items/{item_id}")["instances"]
    assert stored["visibility"] == final["visibility"]
    assert _flat(stored["keypoints"]) == pytest.approx(_flat(final["keypoints"]), abs=1e-3)
    page.reload()
    page.wait_for_selector("body[data-page=annotate]")
    (reloaded,) = _live(page)
    assert _flat(reloaded["keypoints"]) == pytest.approx(_flat(final["keypoints"]), abs=1e-3)
    assert reloaded["visibility"] == final["visibility"]

    # Export COCO with the project page's button and find the edited instance.
    page.click("button[title='Back to the project']")
    page.wait_for_selector("body[data-page=project]")
    with page.expect_download() as download_info:
        page.click("#export-coco")
    coco = json.loads(Path(download_info.value.path()).read_text())
    image_id = next(img["id"] for img in coco["images"] if img["file_name"].endswith(EDIT_FILE))
    (ann,) = [a for a in coco["annotations"] if a["image_id"] == image_id]
    triplets = [ann["keypoints"][i : i + 3] for i in range(0, len(ann["keypoints"]), 3)]
    assert [t[2] for t in triplets] == final["visibility"]
    for (x, y, v), (fx, fy) in zip(triplets, final["keypoints"], strict=True):
        if v:
            assert (x, y) == pytest.approx((fx, fy), abs=0.01)


def test_review_queue_accepts_lowest_confidence_first(page: Any, server: LiveServer) -> None:
    # The queue: items with predictions, least confident first (the API's order; which
    # images those are depends on the model's scores and on the tests before this one).
    queue = server.get(
        f"/api/projects/{server.project_id}/items", filter="predicted", order="confidence"
    )["items"]
    assert len(queue) >= 2, "the fixture needs two items with predictions"
    low, high = queue[0]["id"], queue[1]["id"]
    page.goto(f"{server.url}/#/projects/{server.project_id}")
    page.click("#review-button")
    page.wait_for_selector("body[data-page=annotate]")
    assert _state(page)["itemId"] == low
    # Predictions are marked in the panel, low keypoint scores flagged.
    page.locator(".inst").first.click()
    assert page.locator(".inst-predicted").count() == len(_live(page))
    assert page.locator("#keypoint-table .score.low").count() > 0
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # accept every prediction, then the next item
    page.wait_for_function(f"window.posekit.state() && window.posekit.state().itemId === {high}")
    stored = server.get(f"/api/items/{low}")["instances"]
    assert stored and {inst["status"] for inst in stored} == {"accepted"}
    assert {inst["status"] for inst in server.get(f"/api/items/{high}")["instances"]} == {
        "predicted"
    }


def test_conflict_keeps_local_edit_until_resolved(page: Any, server: LiveServer) -> None:
    item_id = server.item_id(server.project_id, "000000197388.jpg")
    num_keypoints = 17  # COCO-17
    created = server.post(
        f"/api/items/{item_id}/instances",
        {
            "keypoints": [[100 + 10 * k, 100 + 5 * k] for k in range(num_keypoints)],
            "visibility": [2] * num_keypoints,
            "box": [90, 90, 280, 200],
        },
    )
    page.goto(f"{server.url}/#/projects/{server.project_id}/items/{item_id}")
    page.wait_for_selector("body[data-page=annotate]")
    (inst,) = _live(page)
    # Someone else saves a change first.
    theirs = [[x, y + 30] for x, y in created["keypoints"]]
    response = server.http.put(
        f"/api/instances/{created['id']}", json={"version": 1, "keypoints": theirs}
    )
    assert response.status_code == 200
    start = page.evaluate(f"window.posekit.clientPoint({inst['key']}, 3)")
    _drag(page, start, {"x": start["x"] + 20, "y": start["y"]})
    mine = _live(page)[0]["keypoints"]
    page.wait_for_selector("#save-status[data-state=conflict]")
    local = _live(page)[0]
    assert local["keypoints"] == mine  # nothing dropped
    # The server's version is held next to it (drawn as a ghost), not applied.
    assert _flat(local["conflict"]["keypoints"]) == pytest.approx(_flat(theirs), abs=1e-3)
    assert page.locator(".conflict").count() == 1
    assert server.get(f"/api/items/{item_id}")["instances"][0]["version"] == 2
    page.click(".conflict button.keep-mine")
    _wait_saved(page)
    (stored,) = server.get(f"/api/items/{item_id}")["instances"]
    assert stored["version"] == 3
    assert _flat(stored["keypoints"]) == pytest.approx(_flat(mine), abs=1e-3)


def test_names_are_shown_as_text(page: Any, server: LiveServer) -> None:
    item_id = server.item_id(server.project_id, STORED_XSS_FILE)
    page.goto(server.url + "/")
    link = page.locator(".project-link").filter(has_text=PROJECT)
    assert link.text_content() == PROJECT
    link.click()
    page.wait_for_selector("body[data-page=project] .card")
    assert page.text_content("#project-name") == PROJECT
    card = page.locator(f".card[data-item-id='{item_id}'] .card-name")
    assert card.text_content() == STORED_XSS_FILE
    card.click()
    page.wait_for_selector("body[data-page=annotate]")
    assert page.text_content("#file-name") == STORED_XSS_FILE
    assert page.locator("img[src='x']").count() == 0
    assert page.title().startswith(PROJECT)


def test_ui_runs_under_the_csp(browser: Any, server: LiveServer) -> None:
    """The UI under the server's Content-Security-Policy (not bypassed): the project
    list, the grid's thumbnails, the editor's image, and a write through api.js (its
    X-Posekit-Client header and the browser's own Origin pass the cross-site guard)."""
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    # Registered through DevTools, so it runs although the page's CSP forbids inline code.
    context.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(browser_login_url(server.app, server.url))
        response = page.goto(server.url + "/")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        page.locator(".project-link").filter(has_text=PROJECT).click()
        page.wait_for_selector("body[data-page=project] .card img")
        item_id = server.item_id(server.project_id, "000000197388.jpg")
        page.click(f".card[data-item-id='{item_id}']")
        page.wait_for_selector("body[data-page=annotate]")
        page.wait_for_selector("#file-name")
        created = page.evaluate(
            "import('/api.js').then((m) => m.api.createProject('csp check', 'coco17'))"
        )
        assert created["name"] == "csp check"
        assert "csp check" in [p["name"] for p in server.get("/api/projects")]
        assert page.evaluate("window.__violations") == []
        assert errors == []
    finally:
        context.close()


def test_api_docs_render_offline_under_the_csp(browser: Any, server: LiveServer) -> None:
    """Swagger UI at /docs from the server's own files: every operation shown, nothing
    requested from anywhere else, no CSP violation."""
    context = browser.new_context()
    context.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(server.url + "/docs")
        page.wait_for_selector(".opblock")
        paths = server.get("/openapi.json")["paths"]
        assert page.locator(".opblock").count() >= sum(len(ops) for ops in paths.values())
        assert [u for u in requests if not u.startswith(server.url)] == []
        assert page.evaluate("window.__violations") == [] and errors == []
    finally:
        context.close()
