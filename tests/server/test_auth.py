"""Login, sessions, access tokens, login links, the login rate limit, accounts and
members over HTTP (posekit.server.auth, routes/auth.py, routes/users.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient

from posekit.server import Settings, create_app
from posekit.server.authz import Permission
from posekit.server.security import CLIENT_HEADER

from .auth_helpers import (
    DEFAULT_BASE_URL,
    SESSION_COOKIE,
    api_routes,
    bearer,
    browser_login_url,
    login,
    login_admin,
    make_user,
    role_client,
    route_permission,
)

BASE = DEFAULT_BASE_URL


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Any]:
    application = create_app(Settings(workspace=tmp_path / "ws", rate_limit_per_second=0))
    with TestClient(application, base_url=BASE):  # lifespan: the workspace closes after
        yield application


def _client(app: Any, **kwargs: Any) -> TestClient:
    return TestClient(app, base_url=kwargs.pop("base_url", BASE), **kwargs)


def _project(app: Any) -> int:
    admin = _client(app)
    login_admin(admin)
    response = admin.post("/api/projects", json={"name": "p", "template": "coco17"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _cookie_header(response: Any) -> str:
    (header,) = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    return header


# ------------------------------------------------------------------ 401 everywhere
def test_every_non_public_route_is_401_without_login(app: Any) -> None:
    client = _client(app)
    checked = 0
    for route in api_routes(app):
        if route_permission(route) is Permission.PUBLIC:
            continue
        path = re.sub(r"{(\w+)(?::\w+)?}", "1", route.path)
        for method in sorted(route.methods - {"HEAD"}):
            response = client.request(method, path)
            assert response.status_code == 401, (method, route.path, response.text)
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert "not logged in" in response.json()["detail"]
            checked += 1
    assert checked > 50
    # Only login, logout, health, the docs and the login pages are public.
    public = {r.path for r in api_routes(app) if route_permission(r) is Permission.PUBLIC}
    assert public == {
        "/api/auth/login",
        "/api/auth/logout",
        "/api/health",
        "/docs",
        "/docs/init.js",
        "/login",
        "/login/link",
    }
    assert client.get("/api/health").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text  # the UI's files are public


def test_a_bad_credential_is_401_even_with_a_good_cookie(app: Any) -> None:
    client = _client(app)
    login_admin(client)
    assert client.get("/api/auth/me").status_code == 200
    for header in ("Bearer pk_not-a-token", "Bearer nope", "Basic YTpi", "Bearer"):
        response = client.get("/api/auth/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")
    client.cookies.set(SESSION_COOKIE, "forged-session-token")
    response = client.get("/api/projects")
    assert response.status_code == 401 and "log in again" in response.json()["detail"]


# ------------------------------------------------------------------ login, logout
def test_login_sets_a_safe_cookie_and_logout_ends_the_session(app: Any) -> None:
    _, password = make_user(app, "alice")
    client = _client(app)
    response = login(client, "alice", password)
    assert response.json()["username"] == "alice" and "password" not in response.text
    cookie = _cookie_header(response)
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would be lost
    me = client.get("/api/auth/me").json()
    assert me["user"]["username"] == "alice" and me["is_admin"] is False
    assert me["projects"] == []
    token = client.cookies.get(SESSION_COOKIE)
    assert client.post("/api/auth/logout").status_code == 204
    assert client.get("/api/auth/me").status_code == 401
    # The old cookie is dead on the server too, not only removed from this browser.
    replay = _client(app)
    replay.cookies.set(SESSION_COOKIE, token)
    assert replay.get("/api/auth/me").status_code == 401


def test_cookie_is_secure_over_https_or_when_configured(app: Any, tmp_path: Path) -> None:
    _, password = make_user(app, "bob")
    https = _client(app, base_url="https://127.0.0.1:8443")
    assert "Secure" in _cookie_header(login(https, "bob", password))
    settings = Settings(workspace=tmp_path / "ws2", secure_cookies="always")
    other = create_app(settings)
    _, password = make_user(other, "carol")
    plain = TestClient(other, base_url=BASE)
    response = plain.post("/api/auth/login", json={"username": "carol", "password": password})
    assert response.status_code == 200 and "Secure" in _cookie_header(response)
    other.state.posekit.close()


def test_wrong_username_and_wrong_password_look_the_same(app: Any) -> None:
    make_user(app, "dave", password="right-password-1")
    client = _client(app)
    wrong_password = client.post(
        "/api/auth/login", json={"username": "dave", "password": "wrong-password"}
    )
    no_such_user = client.post(
        "/api/auth/login", json={"username": "nobody", "password": "wrong-password"}
    )
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json() == {"detail": "wrong username or password"}
    assert SESSION_COOKIE not in client.cookies


def test_a_user_without_password_cannot_log_in_with_one(app: Any) -> None:
    make_user(app, "nopass", password=None)
    response = _client(app).post("/api/auth/login", json={"username": "nopass", "password": "x"})
    assert response.status_code == 401


# ------------------------------------------------------------------ one user, not another
def test_a_session_acts_only_for_its_own_user(app: Any) -> None:
    pid = _project(app)
    ws = app.state.posekit.ws
    _, pa = make_user(app, "ann-a", role="annotator", project_id=pid)
    b, pb = make_user(app, "ann-b", role="annotator", project_id=pid)
    client_a, client_b = _client(app), _client(app)
    login(client_a, "ann-a", pa)
    login(client_b, "ann-b", pb)
    assert client_a.get("/api/auth/me").json()["user"]["username"] == "ann-a"
    assert client_b.get("/api/auth/me").json()["user"]["username"] == "ann-b"
    # B's token cannot be listed or revoked with A's session.
    token_b = client_b.post("/api/auth/tokens", json={"name": "b's script"}).json()
    assert client_a.get("/api/auth/tokens").json() == []
    assert client_a.delete(f"/api/auth/tokens/{token_b['id']}").status_code == 404
    assert _client(app).get("/api/auth/me", headers=bearer(token_b["token"])).status_code == 200
    # An item assigned to B is B's to edit: A's session is refused.
    from PIL import Image

    from posekit.store import import_images

    image = Path(ws.root) / "one.png"
    Image.new("RGB", (20, 20), (9, 9, 9)).save(image)
    (project,) = ws.list_projects()
    import_images(ws, project, "default", [image])
    (item,) = ws.list_items(project)
    ws.assign_items(pid, [item.id], b.id, by=None)
    body = {"keypoints": [[1.0, 1.0]] * 17, "visibility": [2] * 17}
    refused = client_a.post(f"/api/items/{item.id}/instances", json=body)
    assert refused.status_code == 403 and "not assigned to you" in refused.json()["detail"]
    assert ws.get_instance_records(item.id) == []
    assert client_b.post(f"/api/items/{item.id}/instances", json=body).status_code == 201


# ------------------------------------------------------------------ access tokens
def test_personal_access_token_works_until_revoked(app: Any) -> None:
    pid = _project(app)
    _, password = make_user(app, "scripter", role="viewer", project_id=pid)
    browser = _client(app)
    login(browser, "scripter", password)
    created = browser.post("/api/auth/tokens", json={"name": "nightly export"})
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("pk_") and created.json()["prefix"] == token[:10]
    listed = browser.get("/api/auth/tokens").json()
    assert [t["name"] for t in listed] == ["nightly export"]
    assert token not in browser.get("/api/auth/tokens").text  # shown only once
    script = _client(app)  # no cookie: the token alone
    assert script.get(f"/api/projects/{pid}", headers=bearer(token)).status_code == 200
    assert script.get("/api/projects", headers=bearer(token)).json()[0]["id"] == pid
    assert browser.delete(f"/api/auth/tokens/{created.json()['id']}").status_code == 204
    response = script.get(f"/api/projects/{pid}", headers=bearer(token))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    assert browser.get("/api/auth/tokens").json()[0]["revoked_at"] is not None


def test_token_with_an_expiry(app: Any) -> None:
    client = _client(app)
    login_admin(client)
    created = client.post("/api/auth/tokens", json={"name": "ci", "expires_in_days": 1})
    assert created.status_code == 201 and created.json()["expires_at"] is not None
    bad = client.post("/api/auth/tokens", json={"name": "ci", "expires_in_days": -1})
    assert bad.status_code == 422 and "expires_in_days" in bad.json()["detail"]


# ------------------------------------------------------------------ login rate limit
def test_ten_wrong_passwords_are_refused_with_429(app: Any) -> None:
    make_user(app, "eve", password="the-right-one-1")
    client = _client(app)
    statuses = []
    for _ in range(10):
        response = client.post("/api/auth/login", json={"username": "eve", "password": "guess"})
        statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429] * 5
    assert int(response.headers["retry-after"]) > 0
    assert "too many failed logins" in response.json()["detail"]
    # While refused, not even the right password is tried.
    right = client.post("/api/auth/login", json={"username": "eve", "password": "the-right-one-1"})
    assert right.status_code == 429 and SESSION_COOKIE not in client.cookies


def test_a_successful_login_resets_the_count(app: Any) -> None:
    _, password = make_user(app, "frank")
    client = _client(app)
    for _ in range(3):
        for _ in range(4):
            wrong = {"username": "frank", "password": "nope"}
            assert client.post("/api/auth/login", json=wrong).status_code == 401
        login(client, "frank", password)


def test_login_limiter_window_and_keys() -> None:
    from posekit.server.ratelimit import LoginLimiter

    now = [0.0]
    limiter = LoginLimiter(max_failures=3, window_s=60, clock=lambda: now[0])
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        limiter.fail("Grace", address)
    assert limiter.retry_after("grace", "10.0.0.9") == 60  # by username, any address
    assert limiter.retry_after("heidi", "10.0.0.9") == 0
    for user in ("u1", "u2", "u3"):
        limiter.fail(user, "10.9.9.9")
    assert limiter.retry_after("u4", "10.9.9.9") == 60  # by address, any username
    now[0] = 61.0
    assert limiter.retry_after("grace", "10.0.0.9") == 0  # the window passed


# ------------------------------------------------------------------ disabled users
def test_a_disabled_user_gets_401_everywhere(app: Any) -> None:
    user, password = make_user(app, "ivan")
    client = _client(app)
    login(client, "ivan", password)
    token = client.post("/api/auth/tokens", json={"name": "t"}).json()["token"]
    admin = _client(app)
    login_admin(admin)
    disabled = admin.patch(f"/api/users/{user.id}", json={"active": False})
    assert disabled.status_code == 200 and disabled.json()["is_active"] is False
    assert client.get("/api/auth/me").status_code == 401
    assert _client(app).get("/api/auth/me", headers=bearer(token)).status_code == 401
    again = _client(app).post("/api/auth/login", json={"username": "ivan", "password": password})
    assert again.status_code == 401
    admin.patch(f"/api/users/{user.id}", json={"active": True})
    login(_client(app), "ivan", password)


# ------------------------------------------------------------------ CSRF
def test_cross_site_requests_with_a_logged_in_cookie_are_refused(app: Any) -> None:
    client = _client(app)
    login_admin(client)
    ws = app.state.posekit.ws
    before = ws.row_counts()
    body = {"name": "evil", "template": "coco17"}
    for headers in (
        {"Origin": "http://evil.example"},
        {"Origin": "http://evil.example", CLIENT_HEADER: "ui"},
        {"Referer": "http://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
    ):
        response = client.post("/api/projects", json=body, headers=headers)
        assert response.status_code == 403, headers
        assert "refused" in response.json()["detail"]
    token = client.post("/api/auth/tokens", json={"name": "x"}, headers={"Origin": "http://e.x"})
    assert token.status_code == 403
    logout = client.post("/api/auth/logout", headers={"Origin": "http://evil.example"})
    assert logout.status_code == 403 and client.get("/api/auth/me").status_code == 200
    assert ws.row_counts() == before
    # The UI itself (same origin, with its header) works with the cookie.
    own = {"Origin": BASE, CLIENT_HEADER: "ui"}
    assert client.post("/api/projects", json=body, headers=own).status_code == 201


def test_login_from_another_site_is_refused(app: Any) -> None:
    _, password = make_user(app, "judy")
    response = _client(app).post(
        "/api/auth/login",
        json={"username": "judy", "password": password},
        headers={"Origin": "http://evil.example"},
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


# ------------------------------------------------------------------ login links
def test_login_link_works_once(app: Any) -> None:
    url = browser_login_url(app, BASE)
    browser = _client(app, follow_redirects=False)
    first = browser.get(url)
    assert first.status_code == 303 and first.headers["location"] == "/"
    assert "HttpOnly" in _cookie_header(first)
    assert browser.get("/api/auth/me").status_code == 200
    other = _client(app, follow_redirects=False)
    second = other.get(url)
    assert second.status_code == 401 and "already used or has expired" in second.text
    assert "text/html" in second.headers["content-type"]
    assert SESSION_COOKIE not in other.cookies
    missing = other.get("/login/link")
    assert missing.status_code == 400 and "no token" in missing.text


def test_expired_login_link(app: Any) -> None:
    import time

    url = browser_login_url(app, BASE, ttl_s=0.05)
    time.sleep(0.1)
    response = _client(app, follow_redirects=False).get(url)
    assert response.status_code == 401 and "expired" in response.text


def test_login_page_is_served_without_inline_script(app: Any) -> None:
    page = _client(app).get("/login")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert '<script type="module" src="/login.js"></script>' in page.text
    assert not re.search(r"<script>|\son\w+=", page.text)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert _client(app).get("/login.js").status_code == 200


# ------------------------------------------------------------------ me, users, members
def test_me_lists_roles_and_their_permissions(app: Any) -> None:
    pid = _project(app)
    client = role_client(app, pid, "reviewer")
    me = client.get("/api/auth/me").json()
    assert me["projects"] == [
        {"project_id": pid, "role": "reviewer", "permissions": ["comment", "review", "view"]}
    ]
    assert me["role_permissions"]["manager"] == ["annotate", "comment", "manage", "review", "view"]
    assert me["role_permissions"]["viewer"] == ["view"]


def test_admins_manage_accounts_others_cannot(app: Any) -> None:
    admin = _client(app)
    login_admin(admin)
    created = admin.post("/api/users", json={"username": "kim", "password": "kims-password-1"})
    assert created.status_code == 201 and created.json()["is_admin"] is False
    assert "kim" in [u["username"] for u in admin.get("/api/users").json()]
    duplicate = admin.post("/api/users", json={"username": "kim"})
    assert duplicate.status_code == 409
    bad = admin.post("/api/users", json={"username": "no spaces"})
    assert bad.status_code == 422 and "username" in bad.json()["detail"]
    kim = _client(app)
    login(kim, "kim", "kims-password-1")
    refused = kim.get("/api/users")
    assert refused.status_code == 403 and "workspace admin" in refused.json()["detail"]
    assert kim.post("/api/projects", json={"name": "k", "template": "coco17"}).status_code == 403
    uid = created.json()["id"]
    reset = admin.patch(f"/api/users/{uid}", json={"password": "a-new-password-2"})
    assert reset.status_code == 200
    login(_client(app), "kim", "a-new-password-2")
    link = admin.post(f"/api/users/{uid}/login-link").json()
    assert link["url"].startswith(f"{BASE}/login/link?token=")
    assert _client(app, follow_redirects=False).get(link["url"]).status_code == 303
    own = admin.get("/api/auth/me").json()["user"]["id"]
    assert admin.patch(f"/api/users/{own}", json={"active": False}).status_code == 422


def test_managers_manage_members(app: Any) -> None:
    pid = _project(app)
    manager = role_client(app, pid, "manager")
    viewer = role_client(app, pid, "viewer")
    user, _ = make_user(app, "lena", password=None)
    added = manager.put(f"/api/projects/{pid}/members", json={"user": "lena", "role": "annotator"})
    assert added.status_code == 200
    assert added.json() == {
        "project_id": pid,
        "user_id": user.id,
        "username": "lena",
        "role": "annotator",
    }
    members = {m["username"]: m["role"] for m in viewer.get(f"/api/projects/{pid}/members").json()}
    assert members["lena"] == "annotator"
    refused = viewer.put(f"/api/projects/{pid}/members", json={"user": "lena", "role": "manager"})
    assert refused.status_code == 403
    assert "manage needs the role manager" in refused.json()["detail"]
    bad_role = manager.put(f"/api/projects/{pid}/members", json={"user": "lena", "role": "boss"})
    assert bad_role.status_code == 422 and "role" in bad_role.json()["detail"]
    assert manager.delete(f"/api/projects/{pid}/members/lena").status_code == 204
    names = [m["username"] for m in viewer.get(f"/api/projects/{pid}/members").json()]
    assert "lena" not in names
    assert manager.delete(f"/api/projects/{pid}/members/nobody-here").status_code == 404


def test_an_anonymous_upload_is_refused_before_its_body_is_read(app: Any) -> None:
    import asyncio

    from posekit.server.auth import UploadsNeedLogin

    reads: list[int] = []
    sent: list[dict] = []
    reached: list[bool] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        reached.append(True)

    async def receive() -> dict:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 1000, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/projects/1/upload",
        "headers": [(b"content-type", b"multipart/form-data; boundary=x"), (b"host", b"h")],
        "query_string": b"",
        "app": app,
    }
    asyncio.run(UploadsNeedLogin(inner)(scope, receive, send))
    assert sent[0]["status"] == 401 and reached == [] and reads == []
    # Over HTTP: the same 401 with WWW-Authenticate.
    files = [("files", ("a.jpg", b"x" * 1000, "image/jpeg"))]
    response = _client(app).post("/api/projects/1/upload", files=files)
    assert response.status_code == 401 and "not logged in" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
