"""The app :mod:`benchmarks.save_latency` serves with uvicorn (``--factory``).

``SAVE_BENCH_AUTH=none``: the request's user is taken from an ``X-Bench-User``
header (usernames looked up once, at start) and handed to posekit's per-request
user cache, so saves run every authorization check (role, item assignment) but no
session or token lookup: the cost of the store and the API without a login. Any
other value (``login``, ``token``): the app exactly as ``posekit serve`` builds it.
A posekit without logins (an older tree) is served as it is.
"""

from __future__ import annotations

import os
from typing import Any

from posekit.server import Settings, create_app


def create() -> Any:
    app = create_app(Settings())
    if os.environ.get("SAVE_BENCH_AUTH", "login") != "none":
        return app
    ws = app.state.posekit.ws
    if not hasattr(ws, "list_users"):
        return app  # no logins in this posekit
    users = {user.username: user for user in ws.list_users()}
    inner = app.build_middleware_stack

    def with_bench_user() -> Any:
        stack = inner()

        async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                for name, value in scope["headers"]:
                    if name == b"x-bench-user":
                        state = scope.setdefault("state", {})
                        state["posekit_user"] = users[value.decode()]
            await stack(scope, receive, send)

        return asgi

    app.build_middleware_stack = with_bench_user  # type: ignore[method-assign]
    return app
