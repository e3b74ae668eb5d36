"""Logging in and out, the logged-in user, personal access tokens, the login page and
one-time login links (issue 12; see :mod:`posekit.server.auth`)."""

from __future__ import annotations

import html
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from posekit.server.auth import (
    SESSION_COOKIE,
    CurrentUser,
    clear_session_cookie,
    set_session_cookie,
    unauthorized,
)
from posekit.server.auth_schemas import (
    LoginIn,
    MeOut,
    ProjectRoleOut,
    TokenCreate,
    TokenCreatedOut,
    TokenOut,
    UserOut,
)
from posekit.server.authz import PROJECT_ROLES, ROLE_PERMISSIONS, Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.ratelimit import LoginLimiter

router = APIRouter(tags=["auth"], route_class=JSONRoute)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_UNAUTHORIZED = {401: {"description": "Not logged in, or the credential is no longer valid"}}


def login_limiter(request: Request) -> LoginLimiter:
    """The app's :class:`LoginLimiter` (made on first use from the settings)."""
    limiter = getattr(request.app.state, "login_limiter", None)
    if limiter is None:
        settings = request.app.state.posekit.settings
        limiter = LoginLimiter(settings.login_max_failures, settings.login_failure_window_s)
        request.app.state.login_limiter = limiter
    return limiter


def _permissions(role: str) -> list[str]:
    return sorted(p.value for p in ROLE_PERMISSIONS.get(role, frozenset()))


@router.post(
    "/api/auth/login",
    response_model=UserOut,
    responses={
        401: {"description": "Wrong username or password"},
        429: {"description": "Too many failed logins (see Retry-After)"},
    },
    dependencies=[allow(Permission.PUBLIC)],
)
async def login(body: LoginIn, request: Request, response: Response, state: State) -> UserOut:
    """Log in with a username and password: sets the ``posekit_session`` cookie
    (HttpOnly, SameSite=Lax, Secure over HTTPS). A wrong username and a wrong
    password get the same 401. After ``login_max_failures`` failures for a username
    or from an address within the window, attempts get 429 with ``Retry-After``."""
    limiter = login_limiter(request)
    address = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(body.username, address)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise HTTPException(
            429,
            f"too many failed logins for this username or from this address: try again in "
            f"{seconds} s (or ask an admin: posekit users reset-password)",
            headers={"Retry-After": str(seconds)},
        )
    user = await run_in_threadpool(state.ws.authenticate, body.username, body.password)
    if user is None:
        limiter.fail(body.username, address)
        raise unauthorized("wrong username or password")
    limiter.succeed(body.username, address)
    token = await run_in_threadpool(
        lambda: state.ws.create_session(
            user.id,
            ttl_s=state.settings.session_ttl_hours * 3600,
            user_agent=(request.headers.get("user-agent") or "")[:300] or None,
        )
    )
    set_session_cookie(response, request, token, state.settings)
    return UserOut.model_validate(user)


@router.post(
    "/api/auth/logout",
    status_code=204,
    response_class=Response,
    dependencies=[allow(Permission.PUBLIC)],
)
async def logout(request: Request, state: State) -> Response:
    """End this browser's session (if any) and remove its cookie."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(state.ws.delete_session, token)
    response = Response(status_code=204)
    clear_session_cookie(response, request, state.settings)
    return response


@router.get(
    "/api/auth/me",
    response_model=MeOut,
    responses=_UNAUTHORIZED,
    dependencies=[allow(Permission.USER)],
)
def me(user: CurrentUser, state: State) -> MeOut:
    """The logged-in user, their role in each project and what each role may do."""
    roles = state.ws.roles_of(user.id)
    return MeOut(
        user=UserOut.model_validate(user),
        is_admin=user.is_admin,
        projects=[
            ProjectRoleOut(project_id=pid, role=role, permissions=_permissions(role))
            for pid, role in sorted(roles.items())
        ],
        role_permissions={role: _permissions(role) for role in PROJECT_ROLES},
    )


@router.get(
    "/api/auth/tokens",
    response_model=list[TokenOut],
    responses=_UNAUTHORIZED,
    dependencies=[allow(Permission.USER)],
)
def list_tokens(user: CurrentUser, state: State) -> list[TokenOut]:
    """Your personal access tokens (without the tokens themselves)."""
    return [TokenOut.model_validate(t) for t in state.ws.list_access_tokens(user.id)]


@router.post(
    "/api/auth/tokens",
    response_model=TokenCreatedOut,
    status_code=201,
    responses={**_UNAUTHORIZED, **errors(422)},
    dependencies=[allow(Permission.USER)],
)
def create_token(body: TokenCreate, user: CurrentUser, state: State) -> TokenCreatedOut:
    """A new personal access token for scripts (``Authorization: Bearer <token>``),
    acting as you. The token is in this answer only: it is stored hashed."""
    expires_at = None
    if body.expires_in_days is not None:
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        expires_at = now + timedelta(days=body.expires_in_days)
    token, record = state.ws.create_access_token(user.id, body.name, expires_at=expires_at)
    return TokenCreatedOut(token=token, **TokenOut.model_validate(record).model_dump())


@router.delete(
    "/api/auth/tokens/{token_id}",
    status_code=204,
    response_class=Response,
    responses={**_UNAUTHORIZED, **errors(404)},
    dependencies=[allow(Permission.USER)],
)
def revoke_token(token_id: DatabaseId, user: CurrentUser, state: State) -> Response:
    """Revoke one of your tokens: requests with it get 401 from now on."""
    state.ws.revoke_access_token(user.id, token_id)
    return Response(status_code=204)


@router.get("/login", include_in_schema=False, dependencies=[allow(Permission.PUBLIC)])
def login_page() -> FileResponse:
    """The login form (``static/login.html``)."""
    return FileResponse(STATIC_DIR / "login.html", media_type="text/html")


def _link_page(status: int, title: str, message: str) -> HTMLResponse:
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8" />'
        f"<title>posekit - {html.escape(title)}</title>"
        '<link rel="icon" href="data:," /><link rel="stylesheet" href="/style.css" />'
        f'</head><body class="login-page"><main class="login-box"><h1>{html.escape(title)}'
        f"</h1><p>{html.escape(message)}</p>"
        '<p><a href="/login">Log in with a password</a></p></main></body></html>'
    )
    return HTMLResponse(page, status_code=status)


@router.get("/login/link", include_in_schema=False, dependencies=[allow(Permission.PUBLIC)])
async def login_link(
    request: Request, state: State, token: str | None = Query(None, max_length=200)
) -> Response:
    """Log in with a one-time link (printed by ``posekit serve`` / ``posekit demo``):
    the link is used up, the session cookie set, and the browser sent to ``/``."""
    if not token:
        return _link_page(
            400, "Login link incomplete", "This login link has no token: copy the whole link."
        )
    user = await run_in_threadpool(state.ws.consume_login_link, token)
    if user is None:
        return _link_page(
            401,
            "Login link not valid",
            "This login link was already used or has expired (each link works once). "
            "Ask an admin for a new one (or restart posekit serve on this machine) "
            "or log in with your password.",
        )
    session = await run_in_threadpool(
        lambda: state.ws.create_session(
            user.id,
            ttl_s=state.settings.session_ttl_hours * 3600,
            user_agent=(request.headers.get("user-agent") or "")[:300] or None,
        )
    )
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, request, session, state.settings)
    return response
