"""The login page and role-dependent controls in real Chromium: a browser without a
session is sent to /login and back to the view it asked for; a wrong password is
shown on the page; a viewer sees no upload, export, auto-label or template buttons
and no editing tools, a manager sees them; logging out ends the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .auth_helpers import browser_login_url, make_user
from .conftest import LiveServer, checked_page, image_project, require_browser, solid_images

MANAGER_CONTROLS = ("#upload-button", "#export-coco", "#autolabel-button", "#edit-template")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_browser()
    root = tmp_path_factory.mktemp("ui-login")
    images = solid_images(root / "img", {"one.png": (120, 80, 40)}, (64, 48))
    project_id = image_project(root / "ws", "team", [images])
    with LiveServer(root / "ws") as live:
        live.project_id = project_id
        live.item_id = live.item_id(project_id, "one.png")  # type: ignore[attr-defined,method-assign]
        keypoints = [[10.0 + k, 10.0 + k] for k in range(17)]
        live.post(
            f"/api/items/{live.item_id}/instances",  # type: ignore[attr-defined]
            {"keypoints": keypoints, "visibility": [2] * 17, "box": [5, 5, 40, 40]},
        )
        yield live


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A page that is not logged in."""
    with checked_page(browser, bypass_csp=False) as page:
        yield page


def test_login_page_then_back_to_the_view_then_logout(page: Any, server: LiveServer) -> None:
    _, password = make_user(server.app, "ui-viewer", role="viewer", project_id=server.project_id)
    # The view sends a stranger to the login page: a second navigation right after the
    # first, which a wait on the URL can see aborted under load; the form is what counts.
    page.goto(f"{server.url}/#/projects/{server.project_id}", wait_until="commit")
    page.wait_for_selector("#login-username")
    assert "/login?next=" in page.url, page.url
    page.fill("#login-username", "ui-viewer")
    page.fill("#login-password", "not the password")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:has-text('Wrong username or password')")
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_selector("body[data-page=project] .card")
    assert page.url.endswith(f"/#/projects/{server.project_id}")
    page.wait_for_selector("#whoami-name:has-text('ui-viewer (viewer)')")
    # A viewer: no managing, no editing tools.
    page.wait_for_selector("body[data-can='view']")
    for selector in (*MANAGER_CONTROLS, "#review-button"):
        assert not page.locator(selector).is_visible(), selector
    page.click(".card")
    page.wait_for_selector("body[data-page=annotate]")
    assert not page.locator("#assist-button").is_visible()
    assert page.locator("#file-name").is_visible()
    # An edit by keyboard is undone at once and nothing is sent.
    page.focus("#canvas")
    page.keyboard.press("Tab")  # selects the instance
    page.keyboard.press("Delete")
    page.wait_for_selector("#toasts :text('Read only')")
    state = page.evaluate("window.posekit.state()")
    assert [i for i in state["instances"] if not i["deleted"]], state
    item = server.get(f"/api/items/{server.item_id}")  # type: ignore[attr-defined]
    assert len(item["instances"]) == 1
    page.goto(f"{server.url}/")
    page.wait_for_selector("body[data-page=projects]")
    assert not page.locator("form.new-project").is_visible()  # admins create projects
    page.click("#logout-button")
    page.wait_for_url("**/login")
    status = page.evaluate("fetch('/api/auth/me').then((r) => r.status)")
    assert status == 401


def test_a_manager_sees_the_managing_controls(page: Any, server: LiveServer) -> None:
    manager, _ = make_user(server.app, "ui-manager", role="manager", project_id=server.project_id)
    page.goto(browser_login_url(server.app, server.url, user=manager))
    page.wait_for_selector("body[data-page=projects]")
    page.goto(f"{server.url}/#/projects/{server.project_id}")
    page.wait_for_selector("body[data-page=project] .card")
    page.wait_for_selector("body[data-can~='manage']")
    for selector in (*MANAGER_CONTROLS, "#review-button"):
        assert page.locator(selector).is_visible(), selector


def test_a_used_login_link_shows_a_clear_page(page: Any, server: LiveServer) -> None:
    url = browser_login_url(server.app, server.url)
    page.goto(url)
    page.wait_for_selector("body[data-page=projects]")
    response = page.goto(url)
    assert response.status == 401
    assert "already used or has expired" in page.inner_text("body")


def test_an_annotator_edits_only_assigned_items(page: Any, server: LiveServer) -> None:
    ws = server.app.state.posekit.ws
    annotator, _ = make_user(server.app, role="annotator", project_id=server.project_id)
    item_id = server.item_id  # type: ignore[attr-defined]
    ws.assign_items(server.project_id, [item_id], None, by=None)
    page.goto(browser_login_url(server.app, server.url, user=annotator))
    page.wait_for_selector("body[data-page=projects]")
    page.goto(f"{server.url}/#/projects/{server.project_id}/items/{item_id}")
    page.wait_for_selector(
        "body[data-page=annotate][data-role=annotator]:not([data-can~=annotate])"
    )
    assert not page.locator("#assist-button").is_visible()
    ws.assign_items(server.project_id, [item_id], annotator.id, by=None)
    page.reload()
    page.wait_for_selector("body[data-page=annotate][data-can~=annotate]")
    assert page.locator("#assist-button").is_visible()
    ws.assign_items(server.project_id, [item_id], None, by=None)
