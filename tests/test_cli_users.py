"""``posekit users ...``: accounts, members and tokens from the command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from posekit import get_preset
from posekit.cli import main
from posekit.cli.user_commands import ROLE_CHOICES
from posekit.store import Workspace, passwords
from posekit.store.users import PROJECT_ROLES

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing() -> Iterator[None]:
    passwords.configure_hashing(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    passwords.configure_hashing()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "ws"
    monkeypatch.setenv("POSEKIT_WORKSPACE", str(folder))
    return folder


def run(argv: list[str], monkeypatch: pytest.MonkeyPatch, stdin: str | None = None) -> int:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["users", *argv])


def users_of(folder: Path) -> dict[str, tuple[bool, bool]]:
    with Workspace(folder) as ws:
        return {u.username: (u.is_admin, u.is_active) for u in ws.list_users()}


def test_create_list_disable_enable(workspace: Path, monkeypatch, capsys) -> None:
    assert (
        run(["create", "alice", "--admin", "--password-stdin"], monkeypatch, PASSWORD + "\n") == 0
    )
    assert "created user 'alice' (id 1, admin)" in capsys.readouterr().err
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "bob's password"

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert run(["create", "bob", "--display-name", "Bob B."], monkeypatch) == 0
    assert len(prompts) == 2  # asked twice
    capsys.readouterr()
    assert run(["list"], monkeypatch) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["id", "username", "admin", "active", "last", "login"]
    assert lines[1].split() == ["1", "alice", "yes", "yes", "never"]
    assert lines[2].split() == ["2", "bob", "no", "yes", "never"]
    with Workspace(workspace) as ws:
        assert ws.authenticate("alice", PASSWORD) is not None
        assert ws.authenticate("bob", "bob's password").display_name == "Bob B."
        session = ws.create_session(ws.get_user("bob").id, ttl_s=600)
    assert run(["disable", "bob"], monkeypatch) == 0
    assert users_of(workspace)["bob"] == (False, False)
    with Workspace(workspace) as ws:
        assert ws.user_for_session(session) is None
        assert ws.authenticate("bob", "bob's password") is None
    capsys.readouterr()
    assert run(["list"], monkeypatch) == 0
    assert capsys.readouterr().out.splitlines()[2].split()[:4] == ["2", "bob", "no", "no"]
    assert run(["enable", "bob"], monkeypatch) == 0
    assert users_of(workspace)["bob"] == (False, True)


def test_reset_password(workspace: Path, monkeypatch, capsys) -> None:
    assert run(["create", "alice", "--password-stdin"], monkeypatch, PASSWORD + "\n") == 0
    assert run(["reset-password", "alice", "--password-stdin"], monkeypatch, "new password\n") == 0
    assert "their sessions were ended" in capsys.readouterr().err
    with Workspace(workspace) as ws:
        assert ws.authenticate("alice", PASSWORD) is None
        assert ws.authenticate("alice", "new password") is not None
    # A refused new password changes nothing.
    assert run(["reset-password", "alice", "--password-stdin"], monkeypatch, "tiny\n") == 2
    assert "--password-stdin: password must be at least 8" in capsys.readouterr().err
    answers = iter(["first password", "second password"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert run(["reset-password", "alice"], monkeypatch) == 2
    assert "the two passwords differ; nothing was changed" in capsys.readouterr().err
    with Workspace(workspace) as ws:
        assert ws.authenticate("alice", "new password") is not None
    assert run(["reset-password", "nobody", "--password-stdin"], monkeypatch, PASSWORD) == 2
    assert "USERNAME nobody: no user named 'nobody'" in capsys.readouterr().err


def test_bad_arguments_name_the_argument_and_write_nothing(
    workspace: Path, monkeypatch, capsys
) -> None:
    assert run(["create", "bob", "--password-stdin"], monkeypatch, "short\n") == 2
    err = capsys.readouterr().err
    assert "--password-stdin: password must be at least 8 characters" in err and "short" not in err
    assert run(["create", "b b", "--password-stdin"], monkeypatch, PASSWORD) == 2
    assert "USERNAME b b: username must be 1-100 characters" in capsys.readouterr().err
    long_name = "x" * 201
    assert (
        run(
            ["create", "bob", "--display-name", long_name, "--password-stdin"],
            monkeypatch,
            PASSWORD,
        )
        == 2
    )
    assert "--display-name: display_name must be at most 200" in capsys.readouterr().err
    assert users_of(workspace) == {}
    assert run(["create", "bob", "--password-stdin"], monkeypatch, PASSWORD) == 0
    assert run(["create", "BOB", "--password-stdin"], monkeypatch, PASSWORD) == 2
    assert "USERNAME BOB: user 'BOB' already exists" in capsys.readouterr().err
    for argv, flag in (
        (["create"], "USERNAME"),
        (["frobnicate"], "ACTION"),
        (["add-member", "proj", "bob"], "--role"),
        (["add-member", "proj", "bob", "--role", "boss"], "--role"),
        (["token", "create", "bob"], "--name"),
        (["token", "revoke", "bob", "one"], "TOKEN_ID"),
        (["create", "bob", "--password", "secret123"], "--password: never give a password"),
        (["reset-password", "bob", "--password=secret123"], "--password: never give"),
    ):
        with pytest.raises(SystemExit) as info:
            run(argv, monkeypatch)
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert flag in err and "secret123" not in err, argv
    assert users_of(workspace) == {"bob": (False, True)}


def test_members(workspace: Path, monkeypatch, capsys) -> None:
    with Workspace(workspace) as ws:
        ws.create_project("proj", get_preset("coco17"))
    assert run(["create", "bob", "--password-stdin"], monkeypatch, PASSWORD) == 0
    assert run(["add-member", "proj", "bob", "--role", "annotator"], monkeypatch) == 0
    assert run(["add-member", "proj", "bob", "--role", "reviewer"], monkeypatch) == 0
    assert "'bob' is reviewer of project 'proj'" in capsys.readouterr().err
    with Workspace(workspace) as ws:
        assert [(m.username, m.role) for m in ws.list_members("proj")] == [("bob", "reviewer")]
    assert run(["add-member", "nope", "bob", "--role", "viewer"], monkeypatch) == 2
    assert "PROJECT nope: no project named 'nope'" in capsys.readouterr().err
    assert run(["add-member", "proj", "zed", "--role", "viewer"], monkeypatch) == 2
    assert "USERNAME zed: no user named 'zed'" in capsys.readouterr().err
    assert run(["remove-member", "proj", "bob"], monkeypatch) == 0
    assert run(["remove-member", "proj", "bob"], monkeypatch) == 2
    assert "USERNAME bob: not a member of 'proj'" in capsys.readouterr().err
    with Workspace(workspace) as ws:
        assert ws.list_members("proj") == []


def test_role_choices_are_the_store_roles() -> None:
    assert ROLE_CHOICES == PROJECT_ROLES


def test_token_create_list_revoke(workspace: Path, monkeypatch, capsys) -> None:
    assert run(["create", "bob", "--password-stdin"], monkeypatch, PASSWORD) == 0
    capsys.readouterr()
    assert run(["token", "create", "bob", "--name", "ci", "--expires-days", "30"], monkeypatch) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("pk_") and "\n" not in token  # the token alone on stdout
    assert "shown only now" in err and token not in err
    with Workspace(workspace) as ws:
        assert ws.user_for_access_token(token).username == "bob"
    assert run(["token", "list", "bob"], monkeypatch) == 0
    out = capsys.readouterr().out
    assert token[:10] in out and token not in out
    assert out.splitlines()[1].split()[:3] == ["1", "ci", token[:10]]
    assert out.splitlines()[1].split()[-1] == "active"
    assert run(["token", "revoke", "bob", "1"], monkeypatch) == 0
    with Workspace(workspace) as ws:
        assert ws.user_for_access_token(token) is None
    capsys.readouterr()
    assert run(["token", "list", "bob"], monkeypatch) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[-1] == "revoked"
    assert run(["token", "revoke", "bob", "7"], monkeypatch) == 2
    assert "TOKEN_ID 7: access token 7 of user 'bob' does not exist" in capsys.readouterr().err
    assert run(["token", "create", "bob", "--name", " "], monkeypatch) == 2
    assert "--name: token name must be 1-200" in capsys.readouterr().err
    assert run(["token", "create", "bob", "--name", "x", "--expires-days", "0"], monkeypatch) == 2
    assert "--expires-days: must be a positive number" in capsys.readouterr().err
    with Workspace(workspace) as ws:
        assert len(ws.list_access_tokens(ws.get_user("bob").id)) == 1


def test_console_script_reads_the_password_from_stdin(tmp_path: Path) -> None:
    env = {**os.environ, "POSEKIT_WORKSPACE": str(tmp_path / "ws")}
    command = [sys.executable, "-m", "posekit.cli", "users", "create", "root", "--admin"]
    done = subprocess.run(
        [*command, "--password-stdin"], input=PASSWORD + "\n", env=env,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "created user 'root'" in done.stderr and PASSWORD not in done.stderr + done.stdout
    with Workspace(tmp_path / "ws") as ws:
        assert ws.authenticate("root", PASSWORD).is_admin
    done = subprocess.run(
        [sys.executable, "-m", "posekit.cli", "users", "disable", "nobody"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "USERNAME nobody: no user named 'nobody'" in done.stderr
