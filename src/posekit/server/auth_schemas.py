"""Request and response schemas of login, accounts, access tokens and members."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from posekit.server.authz import PROJECT_ROLES

__all__ = [
    "LoginIn",
    "LoginLinkOut",
    "MeOut",
    "MemberOut",
    "MemberSet",
    "ProjectRoleOut",
    "TokenCreate",
    "TokenCreatedOut",
    "TokenOut",
    "UserCreate",
    "UserOut",
    "UserPatch",
]

Role = Literal[PROJECT_ROLES]  # type: ignore[valid-type]
_USERNAME = r"^[A-Za-z0-9._@-]{1,100}$"


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginIn(_In):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    """A user account (never its password or hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str | None = None
    is_admin: bool
    is_active: bool
    created_at: datetime | None = None
    last_login_at: datetime | None = None


class ProjectRoleOut(BaseModel):
    project_id: int
    role: str
    permissions: list[str] = Field(description="what the role may do in the project")


class MeOut(BaseModel):
    """The logged-in user, their roles and what each lets them do (the UI hides the
    rest; the server checks every request anyway)."""

    user: UserOut
    is_admin: bool = Field(description="a workspace admin may do everything everywhere")
    projects: list[ProjectRoleOut]
    role_permissions: dict[str, list[str]] = Field(
        description="every project role and its permissions"
    )


class TokenCreate(_In):
    name: str = Field(min_length=1, max_length=200, description="what the token is for")
    expires_in_days: float | None = Field(
        None, gt=0, le=3650, description="default: never expires (revoke it when done)"
    )


class TokenOut(BaseModel):
    """A personal access token's metadata (the token itself is shown only once)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreatedOut(TokenOut):
    token: str = Field(
        description="send as 'Authorization: Bearer <token>'; shown only now, keep it safe"
    )


class UserCreate(_In):
    username: str = Field(pattern=_USERNAME, description="1-100 of A-Z a-z 0-9 . _ @ -")
    password: str | None = Field(
        None, max_length=1024, description="none: the user logs in with a login link"
    )
    display_name: str | None = Field(None, max_length=200)
    admin: bool = False


class UserPatch(_In):
    active: bool | None = Field(None, description="false disables the account (ends sessions)")
    password: str | None = Field(None, min_length=1, max_length=1024, description="a new one")


class LoginLinkOut(BaseModel):
    url: str = Field(description="a one-time login link; give it to the user")
    expires_in_s: float


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    project_id: int
    user_id: int
    username: str
    role: str


class MemberSet(_In):
    user: int | str = Field(description="user id or username")
    role: Role  # type: ignore[valid-type]
