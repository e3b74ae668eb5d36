"""The editor's History panel in real Chromium (history_panel.js): versions with their
authors, restoring an older one as a new version, and a stale restore shown as the
same conflict as a stale save."""

from __future__ import annotations

from typing import Any

import pytest

from . import test_ui_e2e as e2e
from .conftest import LiveServer
from .test_ui_e2e import _drag, _flat, _live, _wait_saved

# The live server and page fixtures of the end-to-end tests (browser: conftest's).
server, page = e2e.server, e2e.page

K = 17


def _versions(page: Any) -> list[str]:
    return page.locator("#history-panel .history-version").all_inner_texts()


def test_history_panel_lists_authors_and_restores(page: Any, server: LiveServer) -> None:
    item_id = server.item_id(server.project_id, "000000197388.jpg")
    created = server.post(
        f"/api/items/{item_id}/instances",
        {
            "keypoints": [[100 + 10 * k, 100 + 5 * k] for k in range(K)],
            "visibility": [2] * K,
            "box": [90, 90, 280, 200],
        },
    )
    api_user = server.get("/api/auth/me")["user"]["username"]
    page.goto(f"{server.url}/#/projects/{server.project_id}/items/{item_id}")
    page.wait_for_selector("body[data-page=annotate]")
    browser_user = page.evaluate("fetch('/api/auth/me').then((r) => r.json())")["user"]["username"]
    (inst,) = _live(page)
    page.click(f"li.inst[data-key='{inst['key']}']")
    page.click("#history-panel summary")
    page.wait_for_selector("#history-panel .history-version")
    (only,) = _versions(page)
    assert only.startswith(f"v1 {api_user}") and "(current)" in only

    # The browser's user edits: a second version by them, the first "edited by" them.
    start = page.evaluate(f"window.posekit.clientPoint({inst['key']}, 3)")
    _drag(page, start, {"x": start["x"] + 20, "y": start["y"]})
    _wait_saved(page)
    page.wait_for_selector("#history-panel .history-version[data-version='2']")
    newest, oldest = _versions(page)
    assert newest.startswith(f"v2 {browser_user}") and "(current)" in newest
    assert oldest.startswith(f"v1 {api_user}") and f"edited by {browser_user}" in oldest

    # Restore version 1: a third version with its values, written by the browser's user.
    page.click("#history-panel .history-version[data-version='1'] button.history-restore")
    page.wait_for_selector("#history-panel .history-version[data-version='3']")
    _wait_saved(page)
    (stored,) = server.get(f"/api/items/{item_id}")["instances"]
    assert stored["version"] == 3
    assert _flat(stored["keypoints"]) == pytest.approx(_flat(created["keypoints"]), abs=1e-3)
    assert _flat(_live(page)[0]["keypoints"]) == pytest.approx(_flat(created["keypoints"]))
    history = server.get(f"/api/instances/{created['id']}/history")["versions"]
    assert [(v["author"], v["replaced_by_action"]) for v in history] == [
        (api_user, "update"),
        (browser_user, "restore"),
        (browser_user, None),
    ]

    # Someone else saves meanwhile: restoring now is a conflict, as a stale save is.
    theirs = [[x, y + 30] for x, y in created["keypoints"]]
    response = server.http.put(
        f"/api/instances/{created['id']}", json={"version": 3, "keypoints": theirs}
    )
    assert response.status_code == 200
    page.click("#history-panel .history-version[data-version='2'] button.history-restore")
    page.wait_for_selector("#save-status[data-state=conflict]")
    assert page.locator(".conflict").count() == 1
    assert server.get(f"/api/items/{item_id}")["instances"][0]["version"] == 4
    page.click(".conflict button.take-theirs")
    _wait_saved(page)
    local = _live(page)[0]["keypoints"]
    assert _flat(local) == pytest.approx(_flat(theirs), abs=1e-3)
