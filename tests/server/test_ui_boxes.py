"""Editable boxes in real Chromium: resize handles on the selected instance's box
(undoable, autosaved) and boxes derived from the keypoints following single-point
edits, while a box somebody set stays where it was put (issue 8)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import (
    TIMEOUT_MS,
    LiveServer,
    checked_page,
    image_project,
    require_browser,
    solid_images,
)

#: Two people: USER's box was drawn by someone (larger than its points), TIGHT's box
#: is the tight box of its points (derived from them, as video interpolation makes).
USER_POINTS = [[60.0 + 7 * k, 60.0 + 13 * k] for k in range(17)]
USER_BOX = [40.0, 40.0, 200.0, 300.0]
TIGHT_POINTS = [[300.0 + 7 * k, 60.0 + 13 * k] for k in range(17)]
TIGHT_BOX = [300.0, 60.0, 412.0, 268.0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_browser()
    root = tmp_path_factory.mktemp("ui-boxes")
    photos = solid_images(root / "photos", {"two.png": (70, 90, 110)}, (480, 360))
    project_id = image_project(root / "ws", "boxes", [photos])
    with LiveServer(root / "ws") as live:
        live.project_id = project_id
        live.item = live.item_id(live.project_id, "two.png")  # type: ignore[attr-defined]
        for points, box in ((USER_POINTS, USER_BOX), (TIGHT_POINTS, TIGHT_BOX)):
            live.post(
                f"/api/items/{live.item}/instances",  # type: ignore[attr-defined]
                {"keypoints": points, "visibility": [2] * 17, "box": box},
            )
        yield live


@pytest.fixture()
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    # Wide enough that the side panels cover none of the fitted image.
    with checked_page(browser, server, viewport=(1800, 720)) as page:
        yield page


def _records(page: Any) -> dict[int, dict[str, Any]]:
    """Live instances in the page by database id."""
    state = page.evaluate("window.posekit.state()")
    return {r["id"]: r for r in state["instances"] if not r["deleted"]}


def _stored(server: LiveServer) -> dict[int, dict[str, Any]]:
    detail = server.get(f"/api/items/{server.item}")  # type: ignore[attr-defined]
    return {inst["id"]: inst for inst in detail["instances"]}


def _id_with_box(records: dict[int, dict[str, Any]], box: list[float]) -> int:
    return next(i for i, r in records.items() if r["box"] == pytest.approx(box, abs=0.01))


def _client(page: Any, x: float, y: float) -> dict[str, float]:
    return page.evaluate(f"window.posekit.clientFromImage({x}, {y})")


def _drag(page: Any, start: dict[str, float], end: dict[str, float]) -> None:
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(end["x"], end["y"], steps=8)
    page.mouse.up()


def _settled(page: Any) -> None:
    """Wait until the view (fit to the canvas, which the side panels size) stays put."""
    last, since = None, time.monotonic()
    deadline = since + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        view = page.evaluate("JSON.stringify(window.posekit.state().view)")
        if view != last:
            last, since = view, time.monotonic()
        elif time.monotonic() - since > 0.5:
            return
        time.sleep(0.05)
    raise AssertionError("the annotation view did not settle")


def _saved(page: Any) -> None:
    page.wait_for_selector("#save-status[data-state=saved]")


def test_resize_handles_undo_and_derived_boxes_following(page: Any, server: LiveServer) -> None:
    page.goto(f"{server.url}/#/projects/{server.project_id}/items/{server.item}")  # type: ignore[attr-defined]
    page.wait_for_selector("body[data-page=annotate]")
    _settled(page)
    records = _records(page)
    user, tight = _id_with_box(records, USER_BOX), _id_with_box(records, TIGHT_BOX)
    user_key, tight_key = records[user]["key"], records[tight]["key"]

    # Select the drawn box's instance (a click inside it, away from its points), then
    # drag its bottom-right corner handle: the box grows, and is saved.
    page.mouse.click(**_client(page, 185, 70))
    assert page.evaluate("window.posekit.state().activeKey") == user_key
    _drag(page, _client(page, 200, 300), _client(page, 260, 330))
    assert _records(page)[user]["box"] == pytest.approx([40, 40, 260, 330], abs=1.0)
    _saved(page)
    assert _stored(server)[user]["box"] == pytest.approx([40, 40, 260, 330], abs=1.0)
    assert _stored(server)[user]["version"] == 2
    # An edge handle moves one side only.
    _drag(page, _client(page, 150, 40), _client(page, 150, 20))
    assert _records(page)[user]["box"] == pytest.approx([40, 20, 260, 330], abs=1.0)
    # Undo takes back one resize at a time, and the undone state is saved too.
    page.keyboard.press("Control+z")
    assert _records(page)[user]["box"] == pytest.approx([40, 40, 260, 330], abs=1.0)
    page.keyboard.press("Control+z")
    assert _records(page)[user]["box"] == pytest.approx(USER_BOX, abs=0.01)
    _saved(page)
    assert _stored(server)[user]["box"] == pytest.approx(USER_BOX, abs=0.01)
    assert _records(page)[user]["keypoints"] == USER_POINTS  # the points did not move

    # One point of the drawn box's instance moved: that box stays where it was set.
    _drag(
        page, page.evaluate(f"window.posekit.clientPoint({user_key}, 8)"), _client(page, 150, 200)
    )
    assert _records(page)[user]["keypoints"][8] == pytest.approx([150, 200], abs=1.0)
    assert _records(page)[user]["box"] == pytest.approx(USER_BOX, abs=0.01)
    # The last point of the derived box's instance dragged out: the box follows it.
    _drag(
        page, page.evaluate(f"window.posekit.clientPoint({tight_key}, 16)"), _client(page, 442, 288)
    )
    moved = _records(page)[tight]
    assert moved["keypoints"][16] == pytest.approx([442, 288], abs=1.0)
    assert moved["box"] == pytest.approx([300, 60, 442, 288], abs=1.0)
    # ... and for arrow-key nudges of a single point too.
    page.keyboard.press("Shift+ArrowDown")
    assert _records(page)[tight]["box"] == pytest.approx([300, 60, 442, 298], abs=1.0)
    _saved(page)
    stored = _stored(server)
    assert stored[tight]["box"] == pytest.approx([300, 60, 442, 298], abs=1.0)
    assert stored[user]["box"] == pytest.approx(USER_BOX, abs=0.01)
    # Undo of the nudge puts the derived box back with its point.
    page.keyboard.press("Control+z")
    assert _records(page)[tight]["box"] == pytest.approx([300, 60, 442, 288], abs=1.0)
