"""Users, sessions, access tokens, login links and project members (issue 12).

Credentials are never stored in plain text: passwords as Argon2id hashes
(:mod:`posekit.store.passwords`), session tokens, access tokens and login-link
tokens as their SHA-256 (they are random, 256 bits, so a fast hash is enough).
The token itself is returned once, by the call that creates it.

* **Users** are never deleted (history names them), only disabled: a disabled user
  cannot log in, their sessions are deleted and their access tokens and login
  links stop working until they are enabled again.
* **Sessions** (browser logins) expire at a fixed time; ``last_seen_at`` is written
  at most once a minute, not on every request.
* **Access tokens** start with ``pk_`` (so that a leaked one is recognisable),
  can expire and be revoked.
* **Login links** work once: consuming is one conditional ``UPDATE``, so of two
  simultaneous uses exactly one gets the user.
* **Members**: a user's role in a project, one of :data:`PROJECT_ROLES`
  (:mod:`posekit.store.members`).

Times are naive UTC (:func:`posekit.store.tables.utcnow`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from posekit.store import passwords
from posekit.store.errors import AlreadyExistsError, NotFoundError, StoreError
from posekit.store.members import OWNED_KINDS, PROJECT_ROLES, MemberOperations
from posekit.store.records import AccessToken, Project, User
from posekit.store.tables import (
    AccessTokenRow,
    LoginLinkRow,
    SessionRow,
    UserRow,
    utcnow,
)

__all__ = [
    "ACCESS_TOKEN_PREFIX",
    "OWNED_KINDS",
    "PROJECT_ROLES",
    "UserOperations",
    "check_username",
]

#: Every personal access token starts with this.
ACCESS_TOKEN_PREFIX = "pk_"

_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,100}")
#: ``last_seen_at`` / ``last_used_at`` are refreshed at most this often.
_TOUCH_INTERVAL = timedelta(seconds=60)
_PREFIX_LENGTH = 10


def check_username(username: object) -> str:
    """The username if valid: 1-100 characters of ``A-Z a-z 0-9 . _ @ -``.

    Raises:
        StoreError: Naming ``username``.
    """
    if not isinstance(username, str) or not _USERNAME.fullmatch(username):
        raise StoreError(
            f"username must be 1-100 characters of letters, digits and . _ @ -, got {username!r}"
        )
    return username


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# The credential lookups of every request, built once (parameter ``token_hash``).
_SESSION_USER = (
    select(
        SessionRow.id.label("session_id"), SessionRow.expires_at, SessionRow.last_seen_at, UserRow
    )
    .join(UserRow, UserRow.id == SessionRow.user_id)
    .where(SessionRow.token_hash == bindparam("token_hash"))
)
_TOKEN_USER = (
    select(
        AccessTokenRow.id.label("token_id"),
        AccessTokenRow.expires_at,
        AccessTokenRow.revoked_at,
        AccessTokenRow.last_used_at,
        UserRow,
    )
    .join(UserRow, UserRow.id == AccessTokenRow.user_id)
    .where(AccessTokenRow.token_hash == bindparam("token_hash"))
)


def _ttl(ttl_s: float) -> timedelta:
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int | float) or not ttl_s > 0:
        raise StoreError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")
    return timedelta(seconds=float(ttl_s))


def _naive_utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise StoreError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        is_admin=bool(row.is_admin),
        is_active=bool(row.is_active),
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def _access_token(row: Any) -> AccessToken:
    return AccessToken(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


class UserOperations(MemberOperations):
    """The users part of :class:`posekit.store.Workspace` (mixed into it)."""

    if TYPE_CHECKING:

        def transaction(self) -> Iterator[Connection]: ...
        def _read(self) -> Iterator[Connection]: ...
        def get_project(self, name: str) -> Project: ...

    # ------------------------------------------------------------ users
    def create_user(
        self,
        username: str,
        password: str | None = None,
        *,
        admin: bool = False,
        display_name: str | None = None,
    ) -> User:
        """Create a user; ``password=None``: no password login (login links only).

        Usernames are unique regardless of case (``Alice`` and ``alice`` are one).

        Raises:
            StoreError: Invalid ``username``, ``display_name`` or ``password``
                (at least 8 characters); nothing is written.
            AlreadyExistsError: The username is taken.
        """
        username = check_username(username)
        display_name = _check_display_name(display_name)
        password_hash = None if password is None else passwords.hash_password(password)
        try:
            with self.transaction() as conn:
                if self._user_row_by_name(conn, username) is not None:
                    raise AlreadyExistsError(f"user {username!r} already exists")
                user_id = conn.execute(
                    insert(UserRow).values(
                        username=username,
                        display_name=display_name,
                        password_hash=password_hash,
                        is_admin=bool(admin),
                        is_active=True,
                        created_at=utcnow(),
                    )
                ).inserted_primary_key[0]
        except IntegrityError:  # created concurrently
            raise AlreadyExistsError(f"user {username!r} already exists") from None
        return self.get_user(user_id)

    def get_user(self, user: int | str | User) -> User:
        """A user by id, by username (any case) or a :class:`User` (re-read).

        Raises:
            NotFoundError: Naming the user.
        """
        with self._read() as conn:
            return _user(self._user_row(conn, user))

    def list_users(self) -> list[User]:
        """All users (disabled ones too), by id."""
        with self._read() as conn:
            rows = conn.execute(select(UserRow).order_by(UserRow.id)).all()
        return [_user(r) for r in rows]

    def set_user_active(self, user: int | str | User, active: bool) -> User:
        """Enable or disable a user. Disabling deletes their sessions; their access
        tokens and login links stop working (until enabled again)."""
        with self.transaction() as conn:
            row = self._user_row(conn, user)
            conn.execute(update(UserRow).where(UserRow.id == row.id).values(is_active=bool(active)))
            if not active:
                conn.execute(delete(SessionRow).where(SessionRow.user_id == row.id))
        return self.get_user(row.id)

    def set_password(self, user: int | str | User, password: str | None) -> None:
        """Set (or, with None, remove) a user's password and log them out everywhere
        (all their sessions are deleted).

        Raises:
            StoreError: The password breaks the policy (at least 8 characters).
            NotFoundError: No such user.
        """
        password_hash = None if password is None else passwords.hash_password(password)
        with self.transaction() as conn:
            row = self._user_row(conn, user)
            conn.execute(
                update(UserRow).where(UserRow.id == row.id).values(password_hash=password_hash)
            )
            conn.execute(delete(SessionRow).where(SessionRow.user_id == row.id))

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if ``password`` is theirs and they are active, else None.

        An unknown username costs the same time as a wrong password. A hash made
        with older parameters is upgraded; ``last_login_at`` is set.
        """
        row = None
        if isinstance(username, str) and _USERNAME.fullmatch(username):
            with self._read() as conn:
                row = self._user_row_by_name(conn, username)
        if row is None or row.password_hash is None or not row.is_active:
            passwords.verify_dummy()
            return None
        if not passwords.verify_password(password, row.password_hash):
            return None
        values: dict[str, Any] = {"last_login_at": utcnow()}
        if passwords.needs_rehash(row.password_hash):
            values["password_hash"] = passwords.hash_password(password)
        with self.transaction() as conn:
            # Only if the password was not changed meanwhile.
            conn.execute(
                update(UserRow)
                .where(UserRow.id == row.id, UserRow.password_hash == row.password_hash)
                .values(**values)
            )
        return self.get_user(row.id)

    # ------------------------------------------------------------ sessions
    def create_session(self, user_id: int, *, ttl_s: float, user_agent: str | None = None) -> str:
        """A new session of an active user, valid ``ttl_s`` seconds: its token (for
        the cookie; only its SHA-256 is stored). Expired sessions of the user go.

        Raises:
            NotFoundError: No such user.
            StoreError: The user is disabled, or ``ttl_s`` is not positive.
        """
        ttl = _ttl(ttl_s)
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self.transaction() as conn:
            row = self._active_user_row(conn, user_id)
            conn.execute(
                delete(SessionRow).where(SessionRow.user_id == row.id, SessionRow.expires_at <= now)
            )
            conn.execute(
                insert(SessionRow).values(
                    user_id=row.id,
                    token_hash=_token_hash(token),
                    created_at=now,
                    expires_at=now + ttl,
                    last_seen_at=now,
                    user_agent=None if user_agent is None else str(user_agent)[:300],
                )
            )
        return token

    def user_for_session(self, token: str) -> User | None:
        """The active user of an unexpired session token, else None."""
        if not isinstance(token, str) or not token:
            return None
        token_hash = _token_hash(token)
        with self._read() as conn:
            found = conn.execute(_SESSION_USER, {"token_hash": token_hash}).first()
        if found is None:
            return None
        now = utcnow()
        if found.expires_at <= now:
            with self.transaction() as conn:
                conn.execute(delete(SessionRow).where(SessionRow.id == found.session_id))
            return None
        if not found.is_active:
            return None
        if now - found.last_seen_at >= _TOUCH_INTERVAL:
            with self.transaction() as conn:
                conn.execute(
                    update(SessionRow)
                    .where(SessionRow.id == found.session_id)
                    .values(last_seen_at=now)
                )
        return _user(found)

    def delete_session(self, token: str) -> None:
        """Log out: delete the session of a token (nothing if there is none)."""
        if not isinstance(token, str) or not token:
            return
        with self.transaction() as conn:
            conn.execute(delete(SessionRow).where(SessionRow.token_hash == _token_hash(token)))

    def delete_user_sessions(self, user: int | str | User) -> int:
        """Log a user out everywhere; the number of sessions deleted."""
        with self.transaction() as conn:
            row = self._user_row(conn, user)
            return conn.execute(delete(SessionRow).where(SessionRow.user_id == row.id)).rowcount

    # ------------------------------------------------------------ access tokens
    def create_access_token(
        self, user_id: int, name: str, *, expires_at: datetime | None = None
    ) -> tuple[str, AccessToken]:
        """A personal access token (``pk_...``) for scripts: ``(token, metadata)``.
        The token is shown this once; only its SHA-256 is stored. ``expires_at``:
        aware, or naive UTC; None: never expires.

        Raises:
            StoreError: Empty or too long ``name``, ``expires_at`` in the past, or
                the user is disabled.
            NotFoundError: No such user.
        """
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
            raise StoreError(f"token name must be 1-200 characters, got {name!r}")
        now = utcnow()
        if expires_at is not None:
            expires_at = _naive_utc(expires_at, "expires_at")
            if expires_at <= now:
                raise StoreError(f"expires_at {expires_at.isoformat()} is not in the future")
        token = ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.transaction() as conn:
            row = self._active_user_row(conn, user_id)
            token_id = conn.execute(
                insert(AccessTokenRow).values(
                    user_id=row.id,
                    name=name.strip(),
                    token_hash=_token_hash(token),
                    prefix=token[:_PREFIX_LENGTH],
                    created_at=now,
                    expires_at=expires_at,
                )
            ).inserted_primary_key[0]
            meta = conn.execute(select(AccessTokenRow).where(AccessTokenRow.id == token_id)).one()
        return token, _access_token(meta)

    def user_for_access_token(self, token: str) -> User | None:
        """The active user of a valid (not revoked, not expired) access token, else None."""
        if not isinstance(token, str) or not token.startswith(ACCESS_TOKEN_PREFIX):
            return None
        with self._read() as conn:
            found = conn.execute(_TOKEN_USER, {"token_hash": _token_hash(token)}).first()
        now = utcnow()
        if (
            found is None
            or found.revoked_at is not None
            or (found.expires_at is not None and found.expires_at <= now)
            or not found.is_active
        ):
            return None
        if found.last_used_at is None or now - found.last_used_at >= _TOUCH_INTERVAL:
            with self.transaction() as conn:
                conn.execute(
                    update(AccessTokenRow)
                    .where(AccessTokenRow.id == found.token_id)
                    .values(last_used_at=now)
                )
        return _user(found)

    def list_access_tokens(self, user_id: int) -> list[AccessToken]:
        """A user's access tokens (revoked ones too), by id."""
        with self._read() as conn:
            row = self._user_row(conn, user_id)
            rows = conn.execute(
                select(AccessTokenRow)
                .where(AccessTokenRow.user_id == row.id)
                .order_by(AccessTokenRow.id)
            ).all()
        return [_access_token(r) for r in rows]

    def revoke_access_token(self, user_id: int, token_id: int) -> AccessToken:
        """Revoke one of a user's tokens (again: no change); the updated metadata.

        Raises:
            NotFoundError: The user has no token with that id.
        """
        with self.transaction() as conn:
            row = self._user_row(conn, user_id)
            where = (AccessTokenRow.id == token_id, AccessTokenRow.user_id == row.id)
            if conn.execute(select(AccessTokenRow.id).where(*where)).first() is None:
                raise NotFoundError(
                    f"access token {token_id} of user {row.username!r} does not exist"
                )
            conn.execute(
                update(AccessTokenRow)
                .where(*where, AccessTokenRow.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            meta = conn.execute(select(AccessTokenRow).where(*where)).one()
        return _access_token(meta)

    # ------------------------------------------------------------ login links
    def create_login_link(self, user_id: int, *, ttl_s: float) -> str:
        """A one-time login token for an active user, valid ``ttl_s`` seconds (the
        server puts it in a URL). Only its SHA-256 is stored."""
        ttl = _ttl(ttl_s)
        token = secrets.token_urlsafe(32)
        now = utcnow()
        with self.transaction() as conn:
            row = self._active_user_row(conn, user_id)
            conn.execute(
                insert(LoginLinkRow).values(
                    user_id=row.id,
                    token_hash=_token_hash(token),
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return token

    def consume_login_link(self, token: str) -> User | None:
        """The user of an unused, unexpired login token, marking it used; else None.
        Atomic: of two simultaneous uses, one gets the user and the other None."""
        if not isinstance(token, str) or not token:
            return None
        now = utcnow()
        token_hash = _token_hash(token)
        with self.transaction() as conn:
            # One conditional UPDATE: the database lets exactly one writer flip used_at
            # (SQLite: the write lock; PostgreSQL: the row lock, WHERE re-checked).
            consumed = conn.execute(
                update(LoginLinkRow)
                .where(
                    LoginLinkRow.token_hash == token_hash,
                    LoginLinkRow.used_at.is_(None),
                    LoginLinkRow.expires_at > now,
                )
                .values(used_at=now)
            ).rowcount
            if consumed != 1:
                return None
            user_id = conn.execute(
                select(LoginLinkRow.user_id).where(LoginLinkRow.token_hash == token_hash)
            ).scalar_one()
            row = conn.execute(select(UserRow).where(UserRow.id == user_id)).first()
            if row is None or not row.is_active:
                return None
            conn.execute(update(UserRow).where(UserRow.id == user_id).values(last_login_at=now))
        return self.get_user(user_id)

    # ------------------------------------------------------------ internals
    @staticmethod
    def _user_row_by_name(conn: Connection, username: str) -> Any:
        return conn.execute(
            select(UserRow).where(func.lower(UserRow.username) == username.lower())
        ).first()

    def _user_row(self, conn: Connection, user: int | str | User) -> Any:
        if isinstance(user, User):
            user = user.id
        if isinstance(user, str):
            row = self._user_row_by_name(conn, user)
            if row is None:
                raise NotFoundError(f"no user named {user!r}")
            return row
        if isinstance(user, bool) or not isinstance(user, int):
            raise StoreError(f"user must be an id, a username or a User, got {user!r}")
        row = conn.execute(select(UserRow).where(UserRow.id == user)).first()
        if row is None:
            raise NotFoundError(f"user {user} does not exist")
        return row

    def _active_user_row(self, conn: Connection, user: int | str | User) -> Any:
        row = self._user_row(conn, user)
        if not row.is_active:
            raise StoreError(f"user {row.username!r} is disabled")
        return row


def _check_display_name(display_name: str | None) -> str | None:
    if display_name is None:
        return None
    if not isinstance(display_name, str) or len(display_name.strip()) > 200:
        raise StoreError(f"display_name must be at most 200 characters, got {display_name!r}")
    return display_name.strip() or None
