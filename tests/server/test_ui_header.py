"""The signed-in user's name (with their role in the project on screen) and a "Log out"
button in the header of every page, in real Chromium: the project list, a project's
page, the annotation view and the video view. Logging out from the annotation view
ends the session on the server (the cookie no longer works) and shows the login page.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from video_fakes import square_frames, write_frame_folder

from .auth_helpers import SESSION_COOKIE, make_user
from .conftest import LiveServer, checked_page, require_browser, solid_images


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server with project ``walkers``: a few images and a short video, and a
    user ``Ann Otator`` (annotator of the project) who owns the first image."""
    require_browser()
    from posekit.skeleton import get_preset
    from posekit.store import Workspace, import_images
    from posekit.store.video_imports import import_video

    root = tmp_path_factory.mktemp("ui-header")
    colors = {f"img{index}.png": (60 * index, 90, 160) for index in range(3)}
    images = solid_images(root / "images", colors, (64, 48))
    frames = write_frame_folder(root / "walk", square_frames(6, [lambda f: (8 + 2 * f, 20)]))
    with Workspace(root / "ws") as ws:
        project = ws.create_project("walkers", get_preset("coco17"))
        import_images(ws, project, "stills", [images])
        video = import_video(ws, project, "clips", frames, frames_folder=True, fps=12, name="walk")
        user, _ = make_user(ws, "ann", role="annotator", project_id=project.id, password=None)
        item_id = ws.list_items(project, dataset="stills")[0].id
        ws.assign_items(project, [item_id], user.id, by=None)
    with LiveServer(root / "ws") as live:
        live.project_id, live.item_id, live.video_id = project.id, item_id, video.video.id  # type: ignore[attr-defined]
        live.user = user  # type: ignore[attr-defined]
        yield live


@pytest.fixture()
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    """A page logged in as the annotator (a one-time login link, as printed by serve)."""
    with checked_page(browser, server, user=server.user) as page:  # type: ignore[attr-defined]
        yield page


def _header_user(page: Any, page_name: str) -> str:
    """The user shown in the header once the page ``page_name`` is open (visible,
    exactly one, with a visible "Log out" button inside the window); with the role
    in the project on screen, which the tooltip always has."""
    page.wait_for_selector(f"body[data-page={page_name}]")
    name = page.wait_for_selector("#whoami-name", state="visible")
    assert page.locator("#whoami").count() == 1
    assert page.locator("#logout-button").is_visible()
    box, viewport = page.locator("#logout-button").bounding_box(), page.viewport_size
    assert box["x"] + box["width"] <= viewport["width"], "the button is off screen"
    text, title = name.inner_text(), name.get_attribute("title")
    assert title.startswith(text)
    return title


def test_every_page_shows_the_user_and_logs_out(page: Any, server: LiveServer) -> None:
    s: Any = server
    base = f"{s.url}/#/projects/{s.project_id}"
    assert _header_user(page, "projects") == "ann"
    page.goto(base)
    assert _header_user(page, "project") == "ann (annotator)"
    page.goto(f"{base}/videos/{s.video_id}?frame=0")
    assert _header_user(page, "video") == "ann (annotator)"
    page.goto(f"{base}/items/{s.item_id}")
    assert _header_user(page, "annotate") == "ann (annotator)"
    # The toolbar is full at 1280 px: the name alone there, the role in its tooltip.
    assert page.inner_text("#whoami-name") == "ann"
    assert page.get_attribute("#logout-button", "title") == "Log out"
    # Moving to another item re-renders the toolbar: still one user in it.
    page.goto(f"{base}/items/{s.item_id + 1}")
    page.wait_for_function(f"location.hash.includes('/items/{s.item_id + 1}')")
    assert _header_user(page, "annotate") == "ann (annotator)"

    cookie = next(c for c in page.context.cookies() if c["name"] == SESSION_COOKIE)
    page.click("#logout-button")
    page.wait_for_url(f"{s.url}/login**")
    # The session is gone on the server, not only in this browser.
    import httpx

    response = httpx.get(
        f"{s.url}/api/auth/me", cookies={SESSION_COOKIE: cookie["value"]}, timeout=30
    )
    assert response.status_code == 401
    page.goto(f"{base}/items/{s.item_id}")
    page.wait_for_url(f"{s.url}/login**")
