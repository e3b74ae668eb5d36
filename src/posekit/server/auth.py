"""Who is calling: the session cookie or a personal access token (issue 12).

A browser logs in with ``POST /api/auth/login`` (or a one-time login link) and then
sends the ``posekit_session`` cookie (HttpOnly, SameSite=Lax, Secure over HTTPS): a
random token whose hash the store keeps with an expiry (:mod:`posekit.store.users`).
Scripts send ``Authorization: Bearer pk_...``, a personal access token made with
``POST /api/auth/tokens``. A request with a Bearer header is judged by that token
alone (a bad token is a 401 even with a valid cookie).

The user is looked up once per request (the store is synchronous: in the thread
pool) and kept on ``request.state``; the :func:`posekit.server.authz.allow` guard of
every route and the :data:`CurrentUser` parameter of a handler share that lookup.

Example:
    >>> @router.get("/api/whoami", dependencies=[allow(Permission.USER)])  # doctest: +SKIP
    ... def whoami(user: CurrentUser) -> dict:
    ...     return {"username": user.username}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from posekit.store.records import User

if TYPE_CHECKING:
    from posekit.server.settings import Settings

__all__ = [
    "SESSION_COOKIE",
    "CurrentUser",
    "OptionalUser",
    "UploadsNeedLogin",
    "clear_session_cookie",
    "current_user",
    "needs_lookup",
    "optional_user",
    "require_user_now",
    "resolve_user",
    "resolve_user_now",
    "set_session_cookie",
    "unauthorized",
]

SESSION_COOKIE = "posekit_session"
_NOT_LOOKED_UP = object()


def unauthorized(detail: str) -> HTTPException:
    """A 401 with ``WWW-Authenticate`` (Bearer: browsers show no password prompt)."""
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="posekit"'})


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Authorization header: expected 'Bearer <personal access token>'")
    return token.strip()


def resolve_user_now(request: Request) -> User | None:
    """:func:`resolve_user` without the thread hop: for code already running in a
    worker thread (the authorization guard looks the user up and checks the role in
    one hop). Store calls block; never call it on the event loop."""
    cached = getattr(request.state, "posekit_user", _NOT_LOOKED_UP)
    if cached is not _NOT_LOOKED_UP:
        if isinstance(cached, HTTPException):
            raise cached
        return cached  # type: ignore[return-value]
    ws = request.app.state.posekit.ws
    user: User | None = None
    problem: HTTPException | None = None
    try:
        token = _bearer(request)
    except HTTPException as exc:
        token, problem = None, exc
    if token is not None:
        user = ws.user_for_access_token(token)
        if user is None:
            problem = unauthorized(
                "the access token is invalid, expired or revoked, or its user is disabled"
            )
    elif problem is None:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            user = ws.user_for_session(cookie)
            if user is None:
                problem = unauthorized(
                    "your session has expired or ended (or your account is disabled): log in again"
                )
    if user is not None and not user.is_active:  # the store should not return them
        user, problem = None, unauthorized(f"user {user.username!r} is disabled")
    request.state.posekit_user = problem if problem is not None else user
    if problem is not None:
        raise problem
    return user


def needs_lookup(request: Request) -> bool:
    """Whether finding the request's user needs the database (not known yet, and a
    credential was sent)."""
    if getattr(request.state, "posekit_user", _NOT_LOOKED_UP) is not _NOT_LOOKED_UP:
        return False
    return "authorization" in request.headers or SESSION_COOKIE in request.cookies


async def resolve_user(request: Request) -> User | None:
    """The user of a request (None: not logged in), looked up once per request.

    Raises:
        HTTPException: 401 for a Bearer token or session cookie that is invalid,
            expired, revoked, or belongs to a disabled user.
    """
    if needs_lookup(request):
        return await run_in_threadpool(resolve_user_now, request)
    return resolve_user_now(request)  # known already, or no credential: no store call


def require_user_now(request: Request) -> User:
    """:func:`current_user` without the thread hop (see :func:`resolve_user_now`)."""
    user = resolve_user_now(request)
    if user is None:
        raise unauthorized(
            "not logged in: log in at /login, or send 'Authorization: Bearer <personal "
            "access token>'"
        )
    return user


async def current_user(request: Request) -> User:
    """The logged-in user; 401 (with ``WWW-Authenticate``) when there is none."""
    if needs_lookup(request):
        return await run_in_threadpool(require_user_now, request)
    return require_user_now(request)


async def optional_user(request: Request) -> User | None:
    """The logged-in user or None (an invalid credential is still a 401)."""
    return await resolve_user(request)


#: A handler parameter: the logged-in user (401 without one).
CurrentUser = Annotated[User, Depends(current_user)]
#: A handler parameter: the logged-in user, or None.
OptionalUser = Annotated[User | None, Depends(optional_user)]


def _secure(request: Request, settings: Settings) -> bool:
    return settings.secure_cookies == "always" or request.url.scheme == "https"


def set_session_cookie(
    response: Response, request: Request, token: str, settings: Settings
) -> None:
    """Set the session cookie: HttpOnly, SameSite=Lax, path ``/``, ``Secure`` over
    HTTPS (or always, with ``Settings.secure_cookies = "always"``), expiring with the
    session (``Settings.session_ttl_hours``)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.session_ttl_hours * 3600),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )


def clear_session_cookie(response: Response, request: Request, settings: Settings) -> None:
    """Remove the session cookie from the browser."""
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request, settings),
    )


class UploadsNeedLogin:
    """ASGI middleware: a multipart body (uploads and imports, up to
    ``Settings.max_request_bytes``) is received only from a logged-in user.

    FastAPI parses a request's body before the route's dependencies run, so without
    this an anonymous client could make the server read and stage a gigabyte before
    its 401. Every multipart route needs a login (none is public); the user found
    here is kept for the route's own checks.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            request = Request(scope)
            content_type = request.headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() == "multipart/form-data":
                try:
                    await current_user(request)
                except HTTPException as exc:
                    response = JSONResponse(
                        {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
