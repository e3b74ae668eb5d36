"""Helpers for the HTTP benchmarks: a real uvicorn server in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def auth_headers(workspace: Path) -> dict[str, str]:
    """``Authorization`` with a fresh admin's access token for a server on ``workspace``
    (every API route needs a logged-in user); ``{}`` for a posekit without logins."""
    import secrets

    from posekit.store import Workspace

    with Workspace(workspace) as ws:
        if not hasattr(ws, "create_access_token"):
            return {}
        user = ws.create_user(f"bench-{secrets.token_hex(4)}", None, admin=True)
        token, _ = ws.create_access_token(user.id, "benchmark")
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(process: subprocess.Popen, url: str, timeout_s: float = 60) -> Iterator[str]:
    """Wait until a server just started as ``process`` answers ``/api/health`` at
    ``url``, yield the URL, and stop the process afterwards."""
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def running_server(workspace: Path) -> Iterator[str]:
    """``uvicorn posekit.server.app:create_app --factory`` on ``workspace``; yields the URL."""
    port = free_port()
    env = dict(os.environ, POSEKIT_WORKSPACE=str(workspace))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "posekit.server.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    with serving(process, f"http://127.0.0.1:{port}") as url:
        yield url
