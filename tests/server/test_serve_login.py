"""``posekit serve`` on loopback prints a one-time login link (and makes the first
admin); on other hosts it prints none."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="needs the [server] extra")

from fastapi.testclient import TestClient

from posekit.cli import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(monkeypatch: pytest.MonkeyPatch, *argv: str) -> Any:
    import uvicorn

    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    assert main(["serve", *argv]) == 0
    return served["app"]


def test_serve_on_loopback_prints_a_login_link_for_a_new_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    app = _serve(monkeypatch, "--workspace", str(tmp_path / "ws"), "--port", str(port))
    err = capsys.readouterr().err
    found = re.search(rf"Open (http://127\.0\.0\.1:{port}/login/link\?token=\S+)", err)
    assert found, err
    assert "created the admin user 'admin' without a password" in err
    (admin,) = app.state.posekit.ws.list_users()
    assert admin.username == "admin" and admin.is_admin
    # Nobody can log in with a password (there is none), the link works once.
    client = TestClient(app, base_url=f"http://127.0.0.1:{port}", follow_redirects=False)
    refused = client.post("/api/auth/login", json={"username": "admin", "password": "admin"})
    assert refused.status_code == 401
    assert client.get(found.group(1)).status_code == 303
    assert client.get("/api/auth/me").json()["user"]["username"] == "admin"
    assert client.get(found.group(1)).status_code == 401
    app.state.posekit.close()
    # A second start: no new user, a new link for the same admin.
    app = _serve(monkeypatch, "--workspace", str(tmp_path / "ws"), "--port", str(port))
    err = capsys.readouterr().err
    assert "created the admin" not in err and "/login/link?token=" in err
    assert [u.username for u in app.state.posekit.ws.list_users()] == ["admin"]
    app.state.posekit.close()


def test_serve_on_another_host_prints_no_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    app = _serve(
        monkeypatch, "--workspace", str(tmp_path / "ws"), "--host", "0.0.0.0", "--port", str(port)
    )
    err = capsys.readouterr().err
    assert "login/link" not in err
    assert "posekit users create NAME --admin" in err
    assert app.state.posekit.ws.list_users() == []
    app.state.posekit.close()
