"""Per-client rate limiting of the JSON API (429 with ``Retry-After``).

A token bucket per client address: ``rate`` requests a second on average, bursts of
up to ``burst``. It protects the server from a client (or a runaway script) that
floods listings, thumbnails or assist, so that everybody's edits stay fast.

Saves from the editor are never refused: creating, updating and deleting instances
and reviewing an item (:func:`is_editor_save`) do not take tokens. Nor do the UI's
static files and ``/api/health``. The buckets live in the event loop's thread (the
middleware runs there), so no lock is needed.

:class:`LoginLimiter` is separate: it counts *failed* logins per username and per
client address and refuses further attempts (429) once either reaches its limit
within the window, so that passwords cannot be guessed at speed.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LoginLimiter", "RateLimit", "TokenBuckets", "is_editor_save"]

_SAVES = (
    ("POST", re.compile(r"^/api/items/[^/]+/(instances|review)/?$")),
    ("PUT", re.compile(r"^/api/instances/[^/]+/?$")),
    ("PATCH", re.compile(r"^/api/instances/[^/]+/?$")),
    ("DELETE", re.compile(r"^/api/instances/[^/]+/?$")),
)
log = logging.getLogger(__name__)

#: Clients remembered at once (least recently seen forgotten first).
MAX_CLIENTS = 10_000


def is_editor_save(method: str, path: str) -> bool:
    """Whether a request is an edit the annotation editor saves (never rate limited)."""
    return any(method == m and pattern.match(path) for m, pattern in _SAVES)


class TokenBuckets:
    """Token buckets by key, refilled at ``rate`` tokens a second up to ``burst``."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = float(rate)
        self.burst = max(1, int(burst))
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 if granted, else the seconds until one is free."""
        now = self.clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


class RateLimit:
    """ASGI middleware limiting ``/api`` requests per client address.

    Args:
        app: The wrapped app.
        rate: Requests a second per client on average; 0 turns the limit off.
        burst: Requests a client may make at once.
    """

    def __init__(self, app: ASGIApp, *, rate: float, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst) if rate > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.buckets is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if (
            not path.startswith("/api/")
            or path == "/api/health"
            or is_editor_save(scope["method"], path)
        ):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.buckets.take(client[0] if client else "unknown")
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        retry_after = max(1, math.ceil(wait))
        log.info("%s %s from %s: rate limited", scope["method"], path, client)
        response = JSONResponse(
            {
                "detail": f"too many requests from this client (over {self.buckets.rate:g} a "
                f"second); retry after {retry_after} s. Saving edits is never limited."
            },
            status_code=429,
            headers={"Retry-After": str(retry_after)},
        )
        await response(scope, receive, send)


class LoginLimiter:
    """Failed logins by username and by client address within a sliding window.

    Args:
        max_failures: Failures of one key within ``window_s`` after which attempts
            are refused until the oldest of them is ``window_s`` old.
        window_s: The window, seconds.
        clock: The time source (tests pass a fake one).

    Example:
        >>> limiter = LoginLimiter(max_failures=2, window_s=60)
        >>> limiter.fail("alice", "10.0.0.1"); limiter.fail("alice", "10.0.0.2")
        >>> limiter.retry_after("alice", "10.0.0.3") > 0
        True
    """

    def __init__(
        self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max(1, int(max_failures))
        self.window_s = float(window_s)
        self.clock = clock
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _keys(username: str, address: str) -> tuple[str, str]:
        return f"user:{username.strip().lower()}", f"addr:{address}"

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < self.window_s]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, username: str, address: str) -> float:
        """0.0 if an attempt may be made, else the seconds until one may."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in self._keys(username, address):
                times = self._recent(key, now)
                if len(times) >= self.max_failures:
                    wait = max(wait, times[-self.max_failures] + self.window_s - now)
        return wait

    def fail(self, username: str, address: str) -> None:
        """Count a failed attempt for the username and the address."""
        now = self.clock()
        with self._lock:
            for key in self._keys(username, address):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times[-self.max_failures :]
                self._failures.move_to_end(key)
            while len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)

    def succeed(self, username: str, address: str) -> None:
        """Forget the failures of the username and the address (a successful login)."""
        with self._lock:
            for key in self._keys(username, address):
                self._failures.pop(key, None)
