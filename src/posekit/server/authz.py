"""Authorization: what each role may do, and the guard every route declares.

Roles are per project (``project_members.role``); a workspace admin
(``users.is_admin``) may do everything everywhere. Every route of the app declares
exactly one permission with ``dependencies=[allow(Permission.X)]`` in its decorator
(a route without one fails ``tests/server/test_authorization.py``, which generates
its (route, role) -> status table from the app's routes).

========== ===========================================================
Permission Who
========== ===========================================================
PUBLIC     everybody, logged in or not (login, health, the UI's files)
USER       any logged-in user (own account, tokens, project list)
VIEW       viewer, annotator, reviewer, manager of the project
ANNOTATE   annotator (only items assigned to them), manager
REVIEW     reviewer, manager (stage decisions: accept / reject)
COMMENT    annotator, reviewer, manager (post, reply, resolve)
MANAGE     manager (templates, settings, import/export, upload, jobs,
           members, assignment, deleting)
ADMIN      workspace admins only (users, creating projects)
========== ===========================================================

The project a request is about is found from its path parameters
(``project_id``, ``item_id``, ``instance_id``, ``video_id``, ``job_id``,
``comment_id``, ...) through :meth:`posekit.store.Workspace.project_id_of`.
"""

from __future__ import annotations

from enum import Enum

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

__all__ = [
    "PROJECT_PARAMETERS",
    "PROJECT_ROLES",
    "ROLE_PERMISSIONS",
    "Permission",
    "allow",
    "denied_message",
    "role_allows",
    "roles_with",
]


class Permission(str, Enum):
    PUBLIC = "public"
    USER = "user"
    VIEW = "view"
    ANNOTATE = "annotate"
    REVIEW = "review"
    COMMENT = "comment"
    MANAGE = "manage"
    ADMIN = "admin"


#: Roles a user can have in a project, most powerful first.
PROJECT_ROLES = ("manager", "reviewer", "annotator", "viewer")

#: What each project role may do (a workspace admin may do everything).
ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    "manager": frozenset(
        {
            Permission.VIEW,
            Permission.ANNOTATE,
            Permission.REVIEW,
            Permission.COMMENT,
            Permission.MANAGE,
        }
    ),
    "reviewer": frozenset({Permission.VIEW, Permission.REVIEW, Permission.COMMENT}),
    "annotator": frozenset({Permission.VIEW, Permission.ANNOTATE, Permission.COMMENT}),
    "viewer": frozenset({Permission.VIEW}),
}


def role_allows(role: str | None, permission: Permission, *, admin: bool = False) -> bool:
    """Whether a project role (None: not a member) has a permission, before the
    item-level rule of ANNOTATE (annotators edit only items assigned to them)."""
    if permission in (Permission.PUBLIC, Permission.USER) or admin:
        return True
    return role is not None and permission in ROLE_PERMISSIONS.get(role, frozenset())


#: Path (then query) parameters naming what a request is about, most specific
#: first, with the kind :meth:`Workspace.project_id_of` knows them by.
PROJECT_PARAMETERS = (
    ("project_id", None),
    ("instance_id", "instance"),
    ("item_id", "item"),
    ("comment_id", "comment"),
    ("video_id", "video"),
    ("dataset_id", "dataset"),
    ("job_id", "job"),
)


def roles_with(permission: Permission) -> list[str]:
    """The project roles that have ``permission``, least powerful first."""
    return [r for r in reversed(PROJECT_ROLES) if permission in ROLE_PERMISSIONS[r]]


def denied_message(permission: Permission, project_id: int, role: str | None) -> str:
    """The 403 message, e.g. ``annotate needs the role annotator or manager in project
    3; you are viewer``."""
    roles = roles_with(permission)
    needed = " or ".join(roles) if roles else "workspace admin"
    you = f"you are {role}" if role else f"you are not a member of project {project_id}"
    if permission is Permission.ADMIN:
        return f"{permission.value} needs a workspace admin; {you}"
    return f"{permission.value} needs the role {needed} in project {project_id}; {you}"


def _declares_query_project(request) -> bool:  # type: ignore[no-untyped-def]
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    return any(p.name == "project_id" for p in getattr(dependant, "query_params", ()))


def _subject(request) -> tuple[str, str | None, int] | None:  # type: ignore[no-untyped-def]
    """``(parameter, kind, id)`` of the object the request is about, or None.

    Path parameters only, except ``project_id`` as a query parameter of a route that
    declares it (``GET /api/videos?project_id=``): an extra ``?project_id=`` must not
    move the check to another project.
    """
    params = request.path_params
    for name, kind in PROJECT_PARAMETERS:
        raw = params.get(name)
        if raw is None:
            continue
        try:
            return name, kind, int(raw)
        except (TypeError, ValueError):
            return None  # the route's own validation answers 422
    raw = request.query_params.get("project_id")
    if raw is not None and _declares_query_project(request):
        try:
            return "project_id", None, int(raw)
        except ValueError:
            return None
    return None


def _check(ws, user, permission: Permission, subject) -> None:  # type: ignore[no-untyped-def]
    """The store side of :func:`allow` (in a worker thread); raises 403/404."""
    _, kind, object_id = subject
    # One query: the project (404 when the object does not exist), the role, and for
    # an item or instance (a deleted one too) the item's assignee and stage.
    access = ws.access_of(user.id, kind or "project", object_id)
    project_id, role = access.project_id, access.role
    if not role_allows(role, permission):
        raise HTTPException(403, denied_message(permission, project_id, role))
    if permission is Permission.ANNOTATE and role == "annotator" and kind in ("item", "instance"):
        item_id, assignee, stage = access.item_id, access.assignee_id, access.stage
        if assignee != user.id:
            whose = "nobody" if assignee is None else "somebody else"
            raise HTTPException(
                403,
                f"item {item_id} is not assigned to you (it is assigned to {whose}); "
                "annotators edit only their own items",
            )
        if stage != "annotation":
            # Submitted work is the reviewer's until it comes back (or a manager edits).
            raise HTTPException(
                403,
                f"item {item_id} is in stage {stage}; annotators edit items in stage "
                "annotation only (a reviewer sends it back, or a manager edits it)",
            )


def allow(permission: Permission):  # type: ignore[no-untyped-def]
    """The dependency a route declares: ``dependencies=[allow(Permission.VIEW)]``.

    ``PUBLIC``: anybody. Otherwise a logged-in user is needed (401 with
    ``WWW-Authenticate`` without one: :func:`posekit.server.auth.current_user`).
    ``USER``: that is all. ``ADMIN``: a workspace admin (else 403). The project
    permissions find the project from the request's parameters
    (:data:`PROJECT_PARAMETERS`; an object that does not exist is a 404, as the
    handler would answer) and need a role that has the permission (403 naming the
    roles that would do, and the user's own). ``ANNOTATE`` on an item or instance of
    an annotator also needs the item to be assigned to them (``items.assignee_id``).
    A workspace admin passes every check. A route of a project permission without
    any project parameter needs the permission in at least one project.

    The returned object carries ``.permission`` (the authorization test reads it).
    """
    from posekit.server.auth import current_user, needs_lookup, require_user_now

    def lookup_and_check(request: Request, subject: tuple[str, str | None, int]) -> None:
        # One worker-thread hop for the session (or token) lookup and the role check.
        user = require_user_now(request)
        if not user.is_admin:
            _check(request.app.state.posekit.ws, user, permission, subject)

    async def guard(request: Request) -> None:
        if permission is Permission.PUBLIC:
            return
        if permission not in (Permission.USER, Permission.ADMIN) and needs_lookup(request):
            subject = _subject(request)
            if subject is not None:
                await run_in_threadpool(lookup_and_check, request, subject)
                return
        user = await current_user(request)
        if permission is Permission.USER or user.is_admin:
            return
        if permission is Permission.ADMIN:
            raise HTTPException(403, f"this needs a workspace admin; {user.username!r} is not one")
        ws = request.app.state.posekit.ws
        subject = _subject(request)
        if subject is None:
            roles = await run_in_threadpool(ws.roles_of, user.id)
            if not any(role_allows(r, permission) for r in roles.values()):
                needed = " or ".join(roles_with(permission))
                raise HTTPException(
                    403, f"{permission.value} needs the role {needed} in some project"
                )
            return
        await run_in_threadpool(_check, ws, user, permission, subject)

    guard.permission = permission  # type: ignore[attr-defined]
    return Depends(guard)


_AUTH_RESPONSES = {
    401: {"description": "Not logged in, or the session / access token is no longer valid"},
    403: {"description": "Your role does not allow this (the message names the roles that do)"},
}


def document_permissions(routes) -> None:  # type: ignore[no-untyped-def]
    """Add the 401 / 403 answers, and the permission, to the OpenAPI description of
    every route that declares :func:`allow` (call before the schema is first built)."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            document_permissions(original.routes)
            continue
        guards = [d.dependency for d in getattr(route, "dependencies", ()) or ()]
        permission = next(
            (getattr(g, "permission", None) for g in guards if hasattr(g, "permission")), None
        )
        if permission is None or permission is Permission.PUBLIC:
            continue
        route.responses.setdefault(401, _AUTH_RESPONSES[401])
        if permission is not Permission.USER:
            route.responses.setdefault(403, _AUTH_RESPONSES[403])
        note = f"Permission: `{permission.value}`."
        if route.description and note not in route.description:
            route.description = f"{route.description}\n\n{note}"
