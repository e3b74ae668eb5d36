"""What the browser tests (``test_ui_*.py``) share: a live server, Debian's Chromium,
pages, and the data they are set up with.

* :func:`require_browser`: skip, saying why, where the browser tests cannot run (the
  first line of every module's ``server`` fixture).
* :class:`LiveServer`: the real ``posekit.server.create_app`` under uvicorn in a
  background thread on a free loopback port, with a small JSON client; a context
  manager (``with LiveServer(workspace) as live: ...``).
* :func:`launched_chromium` and the module-scoped ``browser`` fixture (it waits for
  the module's own ``server`` fixture, so that a server-side skip comes first).
* :func:`new_page` / :func:`checked_page` and the ``page`` fixture: a page in a fresh
  context, logged in, whose JavaScript errors fail the test.
* Data: :func:`solid_images`, :func:`image_project`, :func:`walker_videos`.

Each module defines its own ``server`` fixture (its own workspace and data) and may
override ``page``. Heavy imports (Playwright, uvicorn, the app, PIL) stay inside the
functions: this file is loaded for every test of ``tests/server``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .auth_helpers import access_token, bearer, browser_login_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000
#: The header the UI sends on every call (the cross-site guard asks it of browsers
#: only); the video tests' API clients send it too.
CLIENT_HEADERS = {"X-Posekit-Client": "ui"}


def require_browser() -> None:
    """Skip, with the reason, where the browser tests cannot run: no Playwright, no
    uvicorn, or no Debian Chromium (the first lines of every live-server fixture)."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    pytest.importorskip("uvicorn", reason="uvicorn (server extra) is not installed")
    if not CHROMIUM.is_file():
        pytest.skip(f"Debian chromium not found at {CHROMIUM}")


@contextmanager
def launched_chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright with the flags above, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The app on ``workspace`` served by uvicorn in a daemon thread, plus a small JSON
    client (``http``: httpx with a fresh admin's access token and ``headers``).

    The fixtures that make one set what their tests need on it, e.g. ``project_id``
    and ``videos`` (video name -> id)."""

    project_id: int
    videos: dict[str, int]

    def __init__(self, workspace: Path, headers: Mapping[str, str] | None = None) -> None:
        import httpx
        import uvicorn

        from posekit.server import create_app
        from posekit.server.settings import Settings

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(Settings(workspace=workspace, host="127.0.0.1", port=self.port))
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the test server did not start on {self.url}")
            time.sleep(0.05)
        client_headers = {**(headers or {}), **bearer(access_token(self.app))}
        self.http = httpx.Client(base_url=self.url, timeout=60, headers=client_headers)

    def __enter__(self) -> LiveServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON request; an error status raises."""
        response = self.http.request(method, path, json=body)
        response.raise_for_status()
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.call("POST", path, body)

    def item_id(self, project_id: int, file_name: str) -> int:
        page = self.get(f"/api/projects/{project_id}/items", limit=100)
        for item in page["items"]:
            if item["file_name"] == file_name:
                return item["id"]
        raise LookupError(f"no item {file_name!r} in project {project_id}")

    def close(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


# ---------------------------------------------------------------- browser and pages
@pytest.fixture(scope="module")
def browser(server: Any) -> Iterator[Any]:
    """Chromium for the module's tests, launched once its ``server`` is up."""
    with launched_chromium() as chromium:
        yield chromium


def log_in(page: Any, server: Any, user: Any = None) -> None:
    """Open a one-time login link of ``user`` (default: a fresh admin): logged in, at /."""
    page.goto(browser_login_url(server.app, server.url, user))


def new_page(
    browser: Any,
    server: Any = None,
    *,
    user: Any = None,
    viewport: tuple[int, int] = (1280, 720),
    bypass_csp: bool = True,
    record_dialogs: bool = False,
    **context_options: Any,
) -> Any:
    """A page in a context of its own (``page.context``; close it when done), with the
    default timeout :data:`TIMEOUT_MS`, JavaScript errors collected in ``page.errors``,
    and with ``record_dialogs`` every dialog's message in ``page.dialogs`` (dismissed);
    logged in as ``user`` (:func:`log_in`) when ``server`` is given.

    ``bypass_csp``: Playwright's ``wait_for_function`` evaluates its predicate string
    inside the page, which the server's CSP (no eval) forbids; the tests that check the
    UI under the policy pass False.
    """
    width, height = viewport
    context = browser.new_context(
        viewport={"width": width, "height": height}, bypass_csp=bypass_csp, **context_options
    )
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    if record_dialogs:
        page.dialogs = []
        page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    if server is not None:
        log_in(page, server, user)
    return page


@contextmanager
def checked_page(browser: Any, server: Any = None, **options: Any) -> Iterator[Any]:
    """:func:`new_page` (same arguments), its context closed afterwards; a JavaScript
    error (with ``record_dialogs``: a dialog) while it was open fails the test."""
    page = new_page(browser, server, **options)
    try:
        yield page
        assert page.errors == [], f"JavaScript errors: {page.errors}"
        if options.get("record_dialogs"):
            assert page.dialogs == [], f"unexpected dialogs: {page.dialogs}"
    finally:
        page.context.close()


@pytest.fixture()
def page(browser: Any, server: Any) -> Iterator[Any]:
    """A fresh 1280x720 page, logged in as a fresh admin; a JavaScript error fails the
    test."""
    with checked_page(browser, server) as page:
        yield page


# ---------------------------------------------------------------- data
def solid_images(
    folder: Path, colors: Mapping[str, tuple[int, int, int]], size: tuple[int, int]
) -> Path:
    """Plain pictures ``file name -> RGB colour``, all ``size`` (width, height), in
    ``folder`` (made if missing); returns the folder."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, color in colors.items():
        Image.new("RGB", size, color).save(folder / name)
    return folder


def image_project(
    workspace: Path,
    name: str,
    images: Sequence[Path],
    *,
    dataset: str = "default",
    preset: str = "coco17",
) -> int:
    """Project ``name`` (template ``preset``) in the workspace folder, with ``images``
    (folders or files) imported into ``dataset``; returns the project's id."""
    from posekit.skeleton import get_preset
    from posekit.store import Workspace, import_images

    with Workspace(workspace) as ws:
        project = ws.create_project(name, get_preset(preset))
        import_images(ws, project, dataset, list(images))
    return project.id


def walker(frame: int) -> tuple[int, int]:
    """Where the square of :func:`walker_videos` is on ``frame``."""
    return 6 + 2 * frame, 30


def walker_videos(root: Path, names: Sequence[str], frames: int) -> tuple[int, dict[str, int]]:
    """Project ``walkers`` (COCO-17) in the workspace ``root / "ws"`` with one video per
    name (dataset ``clips-<name>``, 12 fps), each the same PNG frame folder
    (``root / "walk"``) of a bright square walking right (:func:`walker`).

    Returns:
        The project's id and ``video name -> video id``.
    """
    from posekit.skeleton import get_preset
    from posekit.store import Workspace
    from posekit.store.video_imports import import_video
    from video_fakes import square_frames, write_frame_folder

    folder = write_frame_folder(root / "walk", square_frames(frames, [walker]))
    videos = {}
    with Workspace(root / "ws") as ws:
        project = ws.create_project("walkers", get_preset("coco17"))
        for name in names:
            imported = import_video(
                ws, project, f"clips-{name}", folder, frames_folder=True, fps=12, name=name
            )
            videos[name] = imported.video.id
    return project.id, videos
