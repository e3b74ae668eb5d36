"""Security of the local server (posekit.server.security, docs): cross-site requests,
DNS rebinding, security headers, offline API docs."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient
from PIL import Image

from posekit.server import Settings, create_app
from posekit.server.app import STATIC_DIR
from posekit.server.security import CLIENT_HEADER, host_is_allowed

from .auth_helpers import login_admin

BASE = "http://127.0.0.1:8000"
EVIL = {"Origin": "http://evil.example"}
UI = {"Origin": BASE, CLIENT_HEADER: "ui"}


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, base_url=BASE) as client:
        login_admin(client)
        yield client


def _state(client: TestClient) -> tuple[dict, list[str]]:
    ws = client.app.state.posekit.ws  # type: ignore[attr-defined]
    media = sorted(str(p) for p in (ws.root / "media").rglob("*") if p.is_file())
    return ws.row_counts(), media


@pytest.fixture
def project(client: TestClient) -> tuple[int, int]:
    """A project with one image: (project id, item id)."""
    pid = client.post("/api/projects", json={"name": "p", "template": "coco17"}).json()["id"]
    files = [("files", ("a.jpg", _jpeg(), "image/jpeg"))]
    assert client.post(f"/api/projects/{pid}/upload", files=files).status_code == 200
    iid = client.get(f"/api/projects/{pid}/items").json()["items"][0]["id"]
    return pid, iid


# ------------------------------------------------------------------ CSRF
def test_cross_site_multipart_upload_and_import_are_refused(client, project):
    pid, _ = project
    before = _state(client)
    files = [("files", ("x.jpg", _jpeg(), "image/jpeg"))]
    upload = client.post(f"/api/projects/{pid}/upload", files=files, headers=EVIL)
    assert upload.status_code == 403
    assert "evil.example" in upload.json()["detail"]
    coco = b'{"images": [], "annotations": [], "categories": []}'
    imported = client.post(
        f"/api/projects/{pid}/import/coco",
        files=[("file", ("a.json", coco, "application/json"))],
        headers=EVIL,
    )
    assert imported.status_code == 403 and "cross-site" in imported.json()["detail"]
    assert _state(client) == before


def _state_changing_routes(client: TestClient) -> list[tuple[str, str]]:
    out = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method in operations:
            if method.upper() not in ("GET", "HEAD", "OPTIONS"):
                out.append((method.upper(), re.sub(r"\{[^}]+\}", "1", path)))
    return out


def test_every_state_changing_route_refuses_another_origin(client, project):
    routes = _state_changing_routes(client)
    assert ("POST", "/api/projects/1/upload") in routes and len(routes) >= 10
    before = _state(client)
    for method, path in routes:
        for headers in (
            EVIL,
            {"Origin": "null"},
            {"Referer": "http://evil.example/page.html"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Origin": "http://127.0.0.1:9999", CLIENT_HEADER: "ui"},  # another local port
        ):
            response = client.request(method, path, json={}, headers=headers)
            assert response.status_code == 403, (method, path, headers, response.text)
            assert "refused" in response.json()["detail"]
    assert _state(client) == before


def test_browser_writes_need_the_client_header(client, project):
    body = {"name": "second", "template": "coco17"}
    without = client.post("/api/projects", json=body, headers={"Origin": BASE})
    assert without.status_code == 403 and CLIENT_HEADER in without.json()["detail"].lower()
    assert client.post("/api/projects", json=body, headers=UI).status_code == 201
    # Same origin through a Referer only (an older browser), with the header: accepted.
    referer = {"Referer": f"{BASE}/#/projects", CLIENT_HEADER: "ui"}
    third = client.post("/api/projects", json={**body, "name": "third"}, headers=referer)
    assert third.status_code == 201
    # Scripts and the CLI send no browser headers: accepted as before.
    assert client.post("/api/projects", json={**body, "name": "fourth"}).status_code == 201


def test_allowed_origins_setting(tmp_path: Path):
    settings = Settings(workspace=tmp_path / "ws", allowed_origins=["https://pose.lab.example"])
    with TestClient(create_app(settings), base_url=BASE) as client:
        login_admin(client)
        headers = {"Origin": "https://pose.lab.example", CLIENT_HEADER: "ui"}
        response = client.post(
            "/api/projects", json={"name": "p", "template": "coco17"}, headers=headers
        )
        assert response.status_code == 201


def test_the_ui_sends_the_client_header():
    source = (STATIC_DIR / "api.js").read_text()
    assert '"X-Posekit-Client": "ui"' in source and "...CLIENT_HEADERS" in source


# ------------------------------------------------------------------ DNS rebinding
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"])
def test_unknown_host_names_are_refused(client, host):
    response = client.get("/api/projects", headers={"Host": host})
    assert response.status_code == 400
    assert "evil.example" in response.json()["detail"]
    assert "POSEKIT_ALLOWED_HOSTS" in response.json()["detail"]
    before = _state(client)
    write = client.post(
        "/api/projects", json={"name": "x", "template": "coco17"}, headers={"Host": host}
    )
    assert write.status_code == 400 and _state(client) == before


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "10.1.2.3"])
def test_addresses_and_localhost_are_answered(client, host):
    assert client.get("/api/projects", headers={"Host": host}).status_code == 200


def test_allowed_hosts_setting_and_environment(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("POSEKIT_ALLOWED_HOSTS", "pose.lab.example, *.cluster.example")
    settings = Settings(workspace=tmp_path / "ws")
    assert settings.allowed_hosts == ["pose.lab.example", "*.cluster.example"]
    with TestClient(create_app(settings), base_url=BASE) as client:
        login_admin(client)
        for host in ("pose.lab.example", "node1.cluster.example:8000"):
            assert client.get("/api/projects", headers={"Host": host}).status_code == 200
        assert (
            client.get("/api/projects", headers={"Host": "cluster.example.evil"}).status_code == 400
        )


def test_host_is_allowed_rules():
    assert host_is_allowed("LOCALHOST.")
    assert host_is_allowed("app.localhost:8000")
    assert not host_is_allowed("")
    assert not host_is_allowed("localhost.evil.example")
    assert host_is_allowed("anything", ["*"])


# ------------------------------------------------------------------ headers
def test_security_headers_on_pages_api_and_errors(client):
    for path in ("/", "/app.js", "/api/projects", "/api/projects/12345"):
        response = client.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"
    refused = client.get("/api/projects", headers={"Host": "evil.example"})
    assert refused.headers["x-frame-options"] == "DENY"


def test_ui_has_no_inline_script_or_style():
    page = (STATIC_DIR / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", page):
        assert "src=" in tag, tag
    assert "<style" not in page and not re.search(r"\son\w+\s*=", page)
    assert " style=" not in page
    for module in STATIC_DIR.glob("*.js"):
        source = module.read_text()
        assert not re.search(r"\.innerHTML\s*=", source), module.name
        assert 'setAttribute("style"' not in source and "javascript:" not in source
        assert not re.search(r"\beval\(|new Function\(", source), module.name


# ------------------------------------------------------------------ docs
def test_docs_load_from_the_server_itself(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "cdn." not in page.text and "https://" not in page.text
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assets = [r for r in references if not r.startswith("data:")]
    assert assets, "the docs page references its assets"
    for asset in assets:
        assert asset.startswith("/"), asset
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 0
        if asset.endswith(".js"):
            assert "https://cdn" not in response.text[:2000]
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert inline == []  # start-up code is a file: the CSP allows no inline script
    assert "/openapi.json" in client.get("/docs/init.js").text
    assert client.get("/openapi.json").json()["info"]["title"] == "posekit"


def test_docs_without_swagger_ui_list_the_operations(tmp_path: Path, monkeypatch):
    import posekit.server.docs as docs

    monkeypatch.setattr(docs, "swagger_ui_dir", lambda: None)
    with TestClient(create_app(Settings(workspace=tmp_path / "ws")), base_url=BASE) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and "/api/projects/{project_id}/upload" in page.text
        assert "<script" not in page.text
