"""User accounts (workspace admins) and project members (project managers)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from posekit.server.auth import CurrentUser
from posekit.server.auth_schemas import (
    LoginLinkOut,
    MemberOut,
    MemberSet,
    UserCreate,
    UserOut,
    UserPatch,
)
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.store import StoreError
from posekit.store.queries import get_project_by_id

router = APIRouter(prefix="/api", tags=["users"], route_class=JSONRoute)


@router.get("/users", response_model=list[UserOut], dependencies=[allow(Permission.ADMIN)])
def list_users(state: State) -> list[UserOut]:
    """Every account, by username."""
    return [UserOut.model_validate(u) for u in state.ws.list_users()]


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    responses=errors(409, 422),
    dependencies=[allow(Permission.ADMIN)],
)
def create_user(body: UserCreate, state: State) -> UserOut:
    """Create an account. Without ``password`` the user cannot log in with one: give
    them a login link (``POST /api/users/{id}/login-link``)."""
    user = state.ws.create_user(
        body.username, body.password, admin=body.admin, display_name=body.display_name
    )
    return UserOut.model_validate(user)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.ADMIN)],
)
def patch_user(user_id: DatabaseId, body: UserPatch, user: CurrentUser, state: State) -> UserOut:
    """Disable (``active: false``: their sessions and tokens stop working at once) or
    enable an account, or set a new password."""
    target = state.ws.get_user(user_id)
    if body.active is False and target.id == user.id:
        raise StoreError("active: you cannot disable your own account")
    if body.password is not None:
        state.ws.set_password(target.id, body.password)
    if body.active is not None:
        state.ws.set_user_active(target.id, body.active)
    return UserOut.model_validate(state.ws.get_user(target.id))


@router.post(
    "/users/{user_id}/login-link",
    response_model=LoginLinkOut,
    responses=errors(404),
    dependencies=[allow(Permission.ADMIN)],
)
def make_login_link(user_id: DatabaseId, request: Request, state: State) -> LoginLinkOut:
    """A one-time login link for a user (e.g. a new one without a password)."""
    target = state.ws.get_user(user_id)
    ttl = state.settings.login_link_ttl_s
    token = state.ws.create_login_link(target.id, ttl_s=ttl)
    base = str(request.base_url).rstrip("/")
    return LoginLinkOut(url=f"{base}/login/link?token={token}", expires_in_s=ttl)


@router.get(
    "/projects/{project_id}/members",
    response_model=list[MemberOut],
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def list_members(project_id: DatabaseId, state: State) -> list[MemberOut]:
    """The members of a project and their roles."""
    project = get_project_by_id(state.ws, project_id)
    return [MemberOut.model_validate(m) for m in state.ws.list_members(project.id)]


@router.put(
    "/projects/{project_id}/members",
    response_model=MemberOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.MANAGE)],
)
def set_member(project_id: DatabaseId, body: MemberSet, state: State) -> MemberOut:
    """Add a user (id or username) to the project with a role, or change their role."""
    project = get_project_by_id(state.ws, project_id)
    target = state.ws.get_user(body.user)
    return MemberOut.model_validate(state.ws.set_member(project.id, target.id, body.role))


@router.delete(
    "/projects/{project_id}/members/{user}",
    status_code=204,
    response_class=Response,
    responses=errors(404),
    dependencies=[allow(Permission.MANAGE)],
)
def remove_member(project_id: DatabaseId, user: str, state: State) -> Response:
    """Remove a user (id or username) from the project."""
    project = get_project_by_id(state.ws, project_id)
    target = state.ws.get_user(int(user) if user.isdigit() else user)
    state.ws.remove_member(project.id, target.id)
    return Response(status_code=204)
