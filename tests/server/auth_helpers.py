"""Logging tests in: users, sessions and clients for the server and UI tests.

Every API route but login, health and the UI's files needs a logged-in user
(issue 12), so every server test logs in with one of these:

* ``make_user(app_or_ws, "alice", role="annotator", project_id=pid)`` -> ``(user,
  password)``: a user (with a fresh random password), optionally a member of a project.
* ``login(client, username, password)``: a real ``POST /api/auth/login``; the client
  keeps the session cookie.
* ``login_admin(client)``: logs a client in as a fresh admin (a session made directly
  in the store: no password hashing, no request, so rate-limit tests are unaffected).
* ``admin_client(app)`` / ``role_client(app, pid, "viewer")``: a new ``TestClient``
  (not entered: no lifespan, so closing it does not close the app's workspace)
  logged in as a fresh admin / as a fresh user with that role in the project.
* ``access_token(app_or_ws, user)``: a personal access token (``Authorization:
  Bearer ...``) for httpx clients of live servers.
* ``browser_login_url(app_or_ws, base)``: a one-time login link for Playwright: open
  it first in each new browser context (it sets the cookie and redirects to ``/``).

``app_or_ws`` is a FastAPI app made by ``create_app``, its ``AppState``, a
``TestClient`` of it, or a :class:`~posekit.store.Workspace`.
"""

from __future__ import annotations

import itertools
import secrets
from typing import Any

SESSION_COOKIE = "posekit_session"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
_counter = itertools.count(1)


def workspace_of(app_or_ws: Any) -> Any:
    """The :class:`~posekit.store.Workspace` behind an app, app state, client or workspace."""
    from posekit.store import Workspace

    if isinstance(app_or_ws, Workspace):
        return app_or_ws
    app = getattr(app_or_ws, "app", app_or_ws)  # a TestClient
    state = getattr(getattr(app, "state", None), "posekit", app)  # an app, or an AppState
    ws = getattr(state, "ws", None)
    if ws is None:
        raise TypeError(f"no posekit workspace behind {app_or_ws!r}")
    return ws


def _unique(prefix: str) -> str:
    return f"{prefix}-{next(_counter)}-{secrets.token_hex(3)}"


def make_user(
    app_or_ws: Any,
    username: str | None = None,
    role: str | None = None,
    project_id: int | None = None,
    admin: bool = False,
    *,
    password: str | None = "",
) -> tuple[Any, str | None]:
    """Create a user; with ``role`` and ``project_id`` also a member of that project.

    Args:
        app_or_ws: See the module docstring.
        username: Default: a unique ``user-N-xxxxxx``.
        role: ``manager``, ``reviewer``, ``annotator`` or ``viewer`` (needs
            ``project_id``); None: no membership.
        project_id: The project of ``role``.
        admin: A workspace admin.
        password: The password; ``""`` (default) makes a random one; None: no password
            (no hashing: faster, but the user cannot log in with a password).

    Returns:
        ``(User, password)``.
    """
    ws = workspace_of(app_or_ws)
    if password == "":
        password = "pw-" + secrets.token_urlsafe(12)
    user = ws.create_user(username or _unique("user"), password, admin=admin)
    if role is not None:
        if project_id is None:
            raise ValueError("make_user: role needs project_id")
        ws.set_member(project_id, user.id, role)
    return user, password


def session_token(app_or_ws: Any, user: Any, ttl_s: float = 3600.0) -> str:
    """A session token (the cookie's value) for ``user``, made in the store."""
    return workspace_of(app_or_ws).create_session(user.id, ttl_s=ttl_s)


def set_session(client: Any, token: str) -> None:
    """Give a TestClient / httpx client the session cookie ``token``."""
    client.cookies.set(SESSION_COOKIE, token)


def login(client: Any, username: str, password: str) -> Any:
    """``POST /api/auth/login``; asserts success and returns the response (the client
    keeps the ``posekit_session`` cookie)."""
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response


def login_as(client: Any, user: Any) -> Any:
    """Log ``client`` (of a TestClient's app) in as ``user`` with a store-made session."""
    set_session(client, session_token(client, user))
    return user


def login_admin(client: Any, username: str | None = None) -> Any:
    """Log a TestClient in as a fresh admin (no password); returns the ``User``."""
    user, _ = make_user(client, username or _unique("admin"), admin=True, password=None)
    return login_as(client, user)


def admin_client(app: Any, base_url: str = DEFAULT_BASE_URL, **kwargs: Any) -> Any:
    """A new ``TestClient`` of ``app`` logged in as a fresh admin (``client.user``)."""
    from fastapi.testclient import TestClient

    client = TestClient(app, base_url=base_url, **kwargs)
    client.user = login_admin(client)  # type: ignore[attr-defined]
    return client


def role_client(
    app: Any,
    project_id: int | None,
    role: str | None,
    base_url: str = DEFAULT_BASE_URL,
    **kwargs: Any,
) -> Any:
    """A new ``TestClient`` logged in as a fresh user (``client.user``) with ``role`` in
    ``project_id``: ``manager``, ``reviewer``, ``annotator``, ``viewer``, ``admin``
    (a workspace admin) or None (a user who is a member of nothing)."""
    from fastapi.testclient import TestClient

    client = TestClient(app, base_url=base_url, **kwargs)
    if role == "admin":
        user, _ = make_user(app, _unique("admin"), admin=True, password=None)
    else:
        user, _ = make_user(app, _unique(role or "nobody"), role, project_id, password=None)
    client.user = login_as(client, user)  # type: ignore[attr-defined]
    return client


def access_token(app_or_ws: Any, user: Any = None, name: str = "tests") -> str:
    """A personal access token (``pk_...``) of ``user`` (default: a fresh admin)."""
    ws = workspace_of(app_or_ws)
    if user is None:
        user, _ = make_user(ws, _unique("admin"), admin=True, password=None)
    token, _ = ws.create_access_token(user.id, name)
    return token


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header of an access token."""
    return {"Authorization": f"Bearer {token}"}


def browser_login_url(app_or_ws: Any, base: str, user: Any = None, ttl_s: float = 600.0) -> str:
    """A one-time login link ``{base}/login/link?token=...`` for ``user`` (default: a
    fresh admin); a browser opening it is logged in and sent to ``/``."""
    ws = workspace_of(app_or_ws)
    if user is None:
        user, _ = make_user(ws, _unique("admin"), admin=True, password=None)
    token = ws.create_login_link(user.id, ttl_s=ttl_s)
    return f"{base.rstrip('/')}/login/link?token={token}"


def api_routes(app: Any) -> list[Any]:
    """Every ``APIRoute`` of an app, included routers walked (FastAPI keeps them as
    ``_IncludedRouter`` entries of ``app.routes``)."""
    from fastapi.routing import APIRoute

    def walk(routes: Any) -> Any:
        for route in routes:
            if isinstance(route, APIRoute):
                yield route
            elif hasattr(route, "original_router"):
                yield from walk(route.original_router.routes)

    return list(walk(app.routes))


def route_permission(route: Any) -> Any:
    """The :class:`~posekit.server.authz.Permission` a route declares with
    ``dependencies=[allow(...)]``, or None."""
    found = [
        getattr(dep.dependency, "permission", None)
        for dep in route.dependencies
        if getattr(dep.dependency, "permission", None) is not None
    ]
    return found[0] if len(found) == 1 else None
