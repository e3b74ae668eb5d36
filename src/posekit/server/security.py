"""Protection of the local server, which has no login (yet).

Pure ASGI middleware, outermost first (see :func:`install_security`):

* :class:`SecurityHeaders`: a Content-Security-Policy that fits the UI (ES modules
  from the server itself, no inline script or style), ``frame-ancestors 'none'`` and
  ``X-Frame-Options: DENY``, ``nosniff``, ``Referrer-Policy: same-origin`` and
  ``Cross-Origin-Resource-Policy: same-origin`` on every response, errors included.
* :class:`TrustedHosts`: DNS rebinding. A page of ``evil.example`` whose name is
  rebound to 127.0.0.1 reaches the server with ``Host: evil.example``; only host
  names that cannot be rebound by someone else are answered: IP literals,
  ``localhost`` (and ``*.localhost``), and ``Settings.allowed_hosts``. Others: 400.
* :class:`CrossSiteGuard`: CSRF. A state-changing request (any method but GET,
  HEAD, OPTIONS) is refused (403) when its ``Origin`` (or, without one, its
  ``Referer``) is not this server's own origin or ``Settings.allowed_origins``,
  when ``Sec-Fetch-Site`` says it came from another site, or when it comes from a
  browser page (it has one of those headers) without the :data:`CLIENT_HEADER`
  that the posekit UI sends on every call. A cross-site form can set none of these
  (a custom header needs a CORS preflight, which this server never grants), so
  multipart uploads and imports from other pages are refused too. Scripts and the
  CLI (no Origin, Referer or Sec-Fetch-Site) are not browsers and need nothing.
* :class:`BodyLimits`: JSON and other non-multipart bodies are limited to
  ``Settings.max_json_bytes`` (an instance is a few KB), multipart bodies (uploads,
  imports) to ``Settings.max_request_bytes``; a declared ``Content-Length`` over the
  limit is refused (413) before anything is read, a chunked body as soon as it
  passes the limit.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from fastapi import FastAPI

    from posekit.server.settings import Settings

__all__ = [
    "CLIENT_HEADER",
    "CONTENT_SECURITY_POLICY",
    "BodyLimits",
    "CrossSiteGuard",
    "SecurityHeaders",
    "TrustedHosts",
    "host_is_allowed",
    "install_security",
]

#: The header the posekit UI sends on every API call (value: ``ui``).
CLIENT_HEADER = "x-posekit-client"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: The UI: ES modules and one stylesheet from the server, images from the API (and
#: ``data:`` for the empty favicon), fetch to the API only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: The API docs (local Swagger UI files): Swagger UI sets inline styles.
DOCS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)
_HEADERS = {
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"cross-origin-resource-policy": b"same-origin",
}
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

log = logging.getLogger(__name__)


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, detail: str) -> None:
    await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


class SecurityHeaders:
    """Add the security headers to every HTTP response (keeping any a route set)."""

    def __init__(self, app: ASGIApp, docs_prefixes: Iterable[str] = ("/docs", "/redoc")) -> None:
        self.app = app
        self.docs_prefixes = tuple(docs_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"].startswith(self.docs_prefixes)
        policy = DOCS_CONTENT_SECURITY_POLICY if docs else CONTENT_SECURITY_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {key.lower() for key, _ in headers}
                if b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", policy.encode()))
                headers.extend((k, v) for k, v in _HEADERS.items() if k not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _split_host(host: str) -> tuple[str, int | None]:
    """``(lower-case host name, port or None)`` of a Host header value."""
    host = host.strip().lower()
    port: int | None = None
    if host.startswith("["):  # [::1]:8000
        name, _, rest = host[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        return name, port
    if host.count(":") == 1:
        name, _, raw_port = host.partition(":")
        if raw_port.isdigit():
            port = int(raw_port)
        return name.rstrip("."), port
    return host.rstrip("."), None


def host_is_allowed(host: str, allowed: Iterable[str] = ()) -> bool:
    """Whether a ``Host`` header names this server (see the module docstring).

    Args:
        host: The header value, e.g. ``127.0.0.1:8000``.
        allowed: Extra host names; ``*.example.org`` matches sub-domains, ``*`` any.
    """
    name, _ = _split_host(host)
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
        return True  # an address cannot be rebound: the page's origin is the address
    except ValueError:
        pass
    if name == "localhost" or name.endswith(".localhost"):
        return True
    for pattern in allowed:
        pattern = pattern.strip().lower().rstrip(".")
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


class TrustedHosts:
    """Answer only requests whose ``Host`` is one of this server's names (else 400)."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = tuple(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if host_is_allowed(host, self.allowed):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = host[:100] or "(none)"
        log.warning("%s refused: host %r is not a name of this server", scope["path"], shown)
        await _refuse(
            scope,
            receive,
            send,
            400,
            f"host {shown!r} is not a name of this server; it answers to IP addresses, "
            "localhost and the names in POSEKIT_ALLOWED_HOSTS",
        )


def _origin_of(url: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an Origin or Referer value, None if unusable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower().rstrip("."), port or _DEFAULT_PORTS[parts.scheme]


class CrossSiteGuard:
    """Refuse state-changing requests from other sites (403; see the module docstring)."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {o for o in (_origin_of(raw) for raw in allowed_origins) if o}

    def _own(self, scope: Scope, headers: Headers, origin: tuple[str, str, int]) -> bool:
        if origin in self.allowed:
            return True
        name, port = _split_host(headers.get("host", ""))
        scheme = scope.get("scheme", "http")
        own_port = port or _DEFAULT_PORTS.get(scheme, 80)
        return origin[1] == name and origin[2] == own_port

    def problem(self, scope: Scope) -> str | None:
        """Why the request is refused, or None."""
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        referer = headers.get("referer")
        fetch_site = headers.get("sec-fetch-site")
        if origin is not None:
            parsed = _origin_of(origin)
            if parsed is None or not self._own(scope, headers, parsed):
                return f"cross-site request refused: Origin {origin[:100]!r} is not this server"
        elif referer is not None:
            parsed = _origin_of(referer)
            if parsed is None or not self._own(scope, headers, parsed):
                return "cross-site request refused: the Referer is not a page of this server"
        if origin is None and fetch_site in ("cross-site", "same-site"):
            return f"cross-site request refused (Sec-Fetch-Site: {fetch_site})"
        from_browser = origin is not None or referer is not None or fetch_site is not None
        if from_browser and not headers.get(CLIENT_HEADER):
            return (
                "request refused: a browser request that changes data must carry the "
                f"{CLIENT_HEADER.title()} header (the posekit UI sends it)"
            )
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            problem = self.problem(scope)
            if problem is not None:
                log.warning("%s %s refused: %s", scope["method"], scope["path"], problem)
                await _refuse(scope, receive, send, 403, problem)
                return
        await self.app(scope, receive, send)


class BodyTooLarge(HTTPException):
    """A request body passed its limit while it was read (413)."""

    def __init__(self, limit: int, what: str) -> None:
        super().__init__(413, f"{what} is over the limit of {limit} bytes")


class BodyLimits:
    """Per-kind body limits, checked before and while the body is read (413)."""

    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_request_bytes: int) -> None:
        self.app = app
        self.max_json_bytes = max_json_bytes
        self.max_request_bytes = max_request_bytes

    def limit(self, headers: Headers) -> tuple[int, str]:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            return self.max_request_bytes, "the upload"
        return self.max_json_bytes, "the request body (uploads are multipart/form-data)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit, what = self.limit(headers)
        declared = headers.get("content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await _refuse(scope, receive, send, 400, "invalid Content-Length header")
                return
            if length > limit:
                await _refuse(
                    scope,
                    receive,
                    send,
                    413,
                    f"{what} of {length} bytes is over the limit of {limit} bytes",
                )
                return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, what)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            if started:
                raise
            await _refuse(scope, receive, send, 413, str(exc.detail))


def install_security(app: FastAPI, settings: Settings) -> None:
    """Add the middleware of this module (and the rate limiter) to a FastAPI app.

    ``add_middleware`` wraps the app, so the last added runs first: headers, hosts,
    cross-site guard, rate limit, body limits, then the app.
    """
    from posekit.server.ratelimit import RateLimit

    app.add_middleware(
        BodyLimits,
        max_json_bytes=settings.max_json_bytes,
        max_request_bytes=settings.max_request_bytes,
    )
    app.add_middleware(
        RateLimit, rate=settings.rate_limit_per_second, burst=settings.rate_limit_burst
    )
    app.add_middleware(CrossSiteGuard, allowed_origins=settings.allowed_origins)
    app.add_middleware(TrustedHosts, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(SecurityHeaders)
