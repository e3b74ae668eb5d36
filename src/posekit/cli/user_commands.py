"""``posekit users ...``: accounts, project members and personal access tokens.

Thin calls into :mod:`posekit.store.users`. Passwords never come from the command
line (they would stay in the shell history and in ``ps``): they are asked twice
with :func:`getpass.getpass`, or read from one line of standard input with
``--password-stdin``. A token is printed once, on standard output alone (messages
go to standard error), so that ``TOKEN=$(posekit users token create ...)`` works.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

__all__ = ["EXAMPLES", "add_users_parser", "cmd_users"]

EXAMPLES = """examples:
  posekit users create alice --admin                 # asks for the password twice
  printf '%s\\n' "$PW" | posekit users create bob --password-stdin
  posekit users list
  posekit users add-member myproject bob --role annotator
  posekit users reset-password bob
  posekit users disable bob                          # logged out, tokens stop working
  posekit users token create bob --name ci           # prints the token once
  posekit users token list bob
  posekit users token revoke bob 3
"""

#: Kept here (not imported from the store) so that ``posekit --help`` stays instant;
#: tests check it equals ``posekit.store.users.PROJECT_ROLES``.
ROLE_CHOICES = ("manager", "reviewer", "annotator", "viewer")


class _RefusePassword(argparse.Action):
    def __call__(self, parser: argparse.ArgumentParser, *_: Any, **__: Any) -> None:
        parser.error(
            f"{self.option_strings[0]}: never give a password on the command line (it stays "
            "in the shell history); answer the prompt or use --password-stdin"
        )


def add_users_parser(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Add ``users`` and its actions with the parser's ``add(name, help)``."""
    p = add("users", "Manage user accounts, project members and personal access tokens.")
    p.epilog = EXAMPLES
    actions = p.add_subparsers(dest="users_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help_text, description=help_text)

    def password_stdin(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input instead of "
            "asking twice (never give a password as an argument)",
        )
        # Named so that it is refused (without echoing the value), rather than taken
        # as an abbreviation of --password-stdin with the password left over.
        parser.add_argument("--password", nargs="?", action=_RefusePassword, help=argparse.SUPPRESS)

    a = action("create", "Create a user (asks for the password).")
    a.add_argument("username", metavar="USERNAME", help="1-100 of A-Z a-z 0-9 . _ @ -")
    a.add_argument("--admin", action="store_true", help="a workspace admin (may do everything)")
    a.add_argument("--display-name", metavar="NAME", help="the name shown in the app")
    password_stdin(a)
    action("list", "List users: id, username, admin, active, last login.")
    a = action("disable", "Disable a user: no login; sessions end; tokens stop working.")
    a.add_argument("username", metavar="USERNAME")
    a = action("enable", "Enable a disabled user again.")
    a.add_argument("username", metavar="USERNAME")
    a = action("reset-password", "Set a user's password (logs them out everywhere).")
    a.add_argument("username", metavar="USERNAME")
    password_stdin(a)
    a = action("add-member", "Give a user a role in a project (replaces their role there).")
    a.add_argument("project", metavar="PROJECT")
    a.add_argument("username", metavar="USERNAME")
    a.add_argument("--role", required=True, choices=ROLE_CHOICES)
    a = action("remove-member", "Take a user's role in a project away.")
    a.add_argument("project", metavar="PROJECT")
    a.add_argument("username", metavar="USERNAME")

    a = action("token", "Personal access tokens for scripts (Authorization: Bearer ...).")
    tokens = a.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    t = tokens.add_parser("create", help="create a token and print it (once)")
    t.add_argument("username", metavar="USERNAME")
    t.add_argument("--name", required=True, help="what the token is for, e.g. ci")
    t.add_argument(
        "--expires-days", type=float, metavar="DAYS", help="valid this many days (default: ever)"
    )
    t = tokens.add_parser("list", help="list a user's tokens (never the tokens themselves)")
    t.add_argument("username", metavar="USERNAME")
    t = tokens.add_parser("revoke", help="revoke a token by its id (see token list)")
    t.add_argument("username", metavar="USERNAME")
    t.add_argument("token_id", metavar="TOKEN_ID", type=int)


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _cli_error(where: str, exc: Exception) -> Exception:
    from posekit.cli.commands import CliError

    return CliError(f"{where}: {exc.args[0] if exc.args else exc}")


def _user(ws: Any, username: str) -> Any:
    from posekit.store.errors import NotFoundError

    try:
        return ws.get_user(username)
    except NotFoundError as exc:
        raise _cli_error(f"USERNAME {username}", exc) from None


def _read_password(args: argparse.Namespace) -> str:
    from posekit.cli.commands import CliError
    from posekit.store.errors import StoreError
    from posekit.store.passwords import check_password_policy

    if args.password_stdin:
        where = "--password-stdin"
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        where = "password"
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise CliError("password: the two passwords differ; nothing was changed")
    try:
        return check_password_policy(password)
    except StoreError as exc:
        if where == "password":
            raise CliError(f"{exc}; nothing was changed") from None
        raise _cli_error(where, exc) from None


def _when(value: datetime | None, never: str = "never") -> str:
    return never if value is None else value.strftime("%Y-%m-%d %H:%M")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _create(ws: Any, args: argparse.Namespace) -> int:
    from posekit.store.errors import AlreadyExistsError, StoreError
    from posekit.store.users import check_username

    try:
        check_username(args.username)
        if any(u.username.lower() == args.username.lower() for u in ws.list_users()):
            raise AlreadyExistsError(f"user {args.username!r} already exists")
    except StoreError as exc:
        raise _cli_error(f"USERNAME {args.username}", exc) from None
    password = _read_password(args)
    try:
        user = ws.create_user(
            args.username, password, admin=args.admin, display_name=args.display_name
        )
    except StoreError as exc:
        where = "--display-name" if "display_name" in str(exc) else f"USERNAME {args.username}"
        raise _cli_error(where, exc) from None
    _say(f"created user {user.username!r} (id {user.id}{', admin' if user.is_admin else ''})")
    return 0


def _list(ws: Any, args: argparse.Namespace) -> int:
    rows = [
        (
            str(u.id),
            u.username,
            "yes" if u.is_admin else "no",
            "yes" if u.is_active else "no",
            _when(u.last_login_at),
        )
        for u in ws.list_users()
    ]
    if not rows:
        _say("no users yet; create the first admin with: posekit users create NAME --admin")
        return 0
    _table(("id", "username", "admin", "active", "last login"), rows)
    return 0


def _set_active(active: bool) -> Callable[[Any, argparse.Namespace], int]:
    def run(ws: Any, args: argparse.Namespace) -> int:
        user = ws.set_user_active(_user(ws, args.username).id, active)
        _say(f"{'enabled' if active else 'disabled'} user {user.username!r}")
        return 0

    return run


def _reset_password(ws: Any, args: argparse.Namespace) -> int:
    user = _user(ws, args.username)
    ws.set_password(user.id, _read_password(args))
    _say(f"set the password of {user.username!r}; their sessions were ended")
    return 0


def _project(ws: Any, name: str) -> Any:
    from posekit.store.errors import NotFoundError

    try:
        return ws.get_project(name)
    except NotFoundError as exc:
        raise _cli_error(f"PROJECT {name}", exc) from None


def _add_member(ws: Any, args: argparse.Namespace) -> int:
    project = _project(ws, args.project)
    user = _user(ws, args.username)
    member = ws.set_member(project, user.id, args.role)
    _say(f"{member.username!r} is {member.role} of project {project.name!r}")
    return 0


def _remove_member(ws: Any, args: argparse.Namespace) -> int:
    from posekit.store.errors import NotFoundError

    project = _project(ws, args.project)
    user = _user(ws, args.username)
    try:
        ws.remove_member(project, user.id)
    except NotFoundError:
        raise _cli_error(
            f"USERNAME {args.username}", NotFoundError(f"not a member of {project.name!r}")
        ) from None
    _say(f"removed {user.username!r} from project {project.name!r}")
    return 0


def _token(ws: Any, args: argparse.Namespace) -> int:
    from posekit.store.errors import NotFoundError, StoreError
    from posekit.store.tables import utcnow

    user = _user(ws, args.username)
    if args.token_command == "create":
        expires_at = None
        if args.expires_days is not None:
            if not args.expires_days > 0:
                raise _cli_error("--expires-days", ValueError("must be a positive number of days"))
            expires_at = utcnow() + timedelta(days=args.expires_days)
        try:
            token, meta = ws.create_access_token(user.id, args.name, expires_at=expires_at)
        except StoreError as exc:
            where = "--name" if "token name" in str(exc) else f"USERNAME {args.username}"
            raise _cli_error(where, exc) from None
        print(token)
        _say(
            f"token {meta.id} {meta.name!r} of {user.username!r} (starts {meta.prefix}): shown "
            "only now, store it safely; send it as 'Authorization: Bearer <token>'"
        )
    elif args.token_command == "list":
        now = utcnow()
        rows = []
        for t in ws.list_access_tokens(user.id):
            state = "active"
            if t.revoked_at is not None:
                state = "revoked"
            elif t.expires_at is not None and t.expires_at <= now:
                state = "expired"
            rows.append(
                (str(t.id), t.name, t.prefix, _when(t.created_at), _when(t.last_used_at),
                 _when(t.expires_at, "-"), state)
            )  # fmt: skip
        if not rows:
            _say(f"{user.username!r} has no access tokens")
            return 0
        header = ("id", "name", "prefix", "created", "last used", "expires", "state")
        _table(header, rows)
    else:
        try:
            meta = ws.revoke_access_token(user.id, args.token_id)
        except NotFoundError as exc:
            raise _cli_error(f"TOKEN_ID {args.token_id}", exc) from None
        _say(f"revoked token {meta.id} {meta.name!r} of {user.username!r}")
    return 0


_ACTIONS: dict[str, Callable[[Any, argparse.Namespace], int]] = {
    "create": _create,
    "list": _list,
    "disable": _set_active(False),
    "enable": _set_active(True),
    "reset-password": _reset_password,
    "add-member": _add_member,
    "remove-member": _remove_member,
    "token": _token,
}


def cmd_users(args: argparse.Namespace) -> int:
    """``posekit users ACTION ...`` (see :data:`EXAMPLES`)."""
    from posekit.cli.commands import _workspace

    ws = _workspace(args)
    try:
        return _ACTIONS[args.users_command](ws, args)
    finally:
        ws.close()
