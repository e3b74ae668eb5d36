"""Users, passwords, sessions, access tokens, login links, members (store/users.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert, select

from posekit import Instance, get_preset
from posekit.store import AlreadyExistsError, NotFoundError, StoreError, Workspace, passwords, users
from posekit.store.tables import (
    AccessTokenRow,
    CommentRow,
    InstanceVersionRow,
    ItemRow,
    JobRow,
    LoginLinkRow,
    SessionRow,
    TrackRow,
    UserRow,
    VideoRow,
    utcnow,
)

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashing() -> Iterator[None]:
    """Argon2id with tiny parameters (the default costs 0.16 s per hash)."""
    passwords.configure_hashing(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    # Tests that switch to the production cost leave the suite's cheap one behind
    # (tests/conftest.py sets it for every test).
    passwords.configure_hashing(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    workspace = Workspace(tmp_path / "ws")
    workspace.create_project("people", get_preset("coco17"))
    yield workspace
    workspace.close()


class Clock:
    """A settable ``utcnow`` for the users module."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(users, "utcnow", fake)
    return fake


def _password_hash(ws: Workspace, user_id: int) -> str | None:
    with ws.engine.connect() as conn:
        return conn.execute(select(UserRow.password_hash).where(UserRow.id == user_id)).scalar()


# ------------------------------------------------------------------ passwords
def test_default_hash_is_argon2id_with_the_recommended_cost() -> None:
    passwords.configure_hashing()
    stored = passwords.hash_password(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert passwords.verify_password(PASSWORD, stored)
    assert not passwords.verify_password(PASSWORD + "!", stored)
    assert passwords.hash_password(PASSWORD) != stored  # salted
    assert not passwords.needs_rehash(stored)


def test_policy_names_password_and_never_echoes_it() -> None:
    with pytest.raises(StoreError, match="password must be at least 8 characters") as info:
        passwords.hash_password("short12")
    assert "short12" not in str(info.value)
    with pytest.raises(StoreError, match="password must be a string"):
        passwords.check_password_policy(12345678)
    with pytest.raises(StoreError, match="password must be at most 1024"):
        passwords.check_password_policy("x" * 1025)


def test_malformed_hash_never_verifies() -> None:
    assert not passwords.verify_password(PASSWORD, "not a hash")
    assert not passwords.verify_password("", passwords.hash_password(PASSWORD))


# ------------------------------------------------------------------ users
def test_create_get_list_users(ws: Workspace) -> None:
    alice = ws.create_user("alice", PASSWORD, admin=True, display_name="Alice A.")
    bob = ws.create_user("bob.b@lab-1_x")
    assert (alice.username, alice.display_name, alice.is_admin, alice.is_active) == (
        "alice",
        "Alice A.",
        True,
        True,
    )
    assert alice.last_login_at is None and not bob.is_admin
    assert ws.get_user(alice.id) == alice
    assert ws.get_user("ALICE") == alice  # usernames are case-insensitive
    assert ws.get_user(alice) == alice
    assert ws.list_users() == [alice, bob]
    assert _password_hash(ws, alice.id).startswith("$argon2id$")
    assert _password_hash(ws, bob.id) is None
    assert ws.authenticate("bob.b@lab-1_x", "") is None  # no password: link login only


def test_create_user_errors_write_nothing(ws: Workspace) -> None:
    ws.create_user("alice", PASSWORD)
    with pytest.raises(AlreadyExistsError, match="user 'Alice' already exists"):
        ws.create_user("Alice", PASSWORD)
    for bad in ("", "a b", "x" * 101, "ünï", "semi;colon"):
        with pytest.raises(StoreError, match="username must be 1-100 characters"):
            ws.create_user(bad, PASSWORD)
    with pytest.raises(StoreError, match="password must be at least 8"):
        ws.create_user("carol", "1234567")
    with pytest.raises(StoreError, match="display_name"):
        ws.create_user("carol", PASSWORD, display_name="x" * 201)
    assert [u.username for u in ws.list_users()] == ["alice"]
    with pytest.raises(NotFoundError, match="no user named 'carol'"):
        ws.get_user("carol")
    with pytest.raises(NotFoundError, match="user 99 does not exist"):
        ws.get_user(99)


def test_authenticate(ws: Workspace) -> None:
    alice = ws.create_user("alice", PASSWORD)
    assert ws.authenticate("alice", "wrong password") is None
    assert ws.authenticate("nobody", PASSWORD) is None
    assert ws.authenticate("bad name!", PASSWORD) is None
    user = ws.authenticate("alice", PASSWORD)
    assert user is not None and user.id == alice.id
    assert user.last_login_at is not None
    assert ws.get_user("alice").last_login_at == user.last_login_at


def test_unknown_user_still_costs_a_verification(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(passwords, "verify_dummy", lambda: calls.append("dummy"))
    ws.create_user("alice", PASSWORD)
    ws.set_user_active("alice", False)
    assert ws.authenticate("nobody", PASSWORD) is None
    assert ws.authenticate("alice", PASSWORD) is None  # disabled
    assert calls == ["dummy", "dummy"]


def test_login_upgrades_an_outdated_hash(ws: Workspace) -> None:
    alice = ws.create_user("alice", PASSWORD)
    old = _password_hash(ws, alice.id)
    passwords.configure_hashing(time_cost=2, memory_cost=1024, parallelism=1)
    assert passwords.needs_rehash(old)
    assert ws.authenticate("alice", PASSWORD) is not None
    new = _password_hash(ws, alice.id)
    assert new != old and "t=2" in new and not passwords.needs_rehash(new)
    assert ws.authenticate("alice", PASSWORD) is not None


def test_disabled_user_cannot_log_in_and_loses_sessions_and_tokens(ws: Workspace) -> None:
    alice = ws.create_user("alice", PASSWORD)
    session = ws.create_session(alice.id, ttl_s=3600)
    token, _ = ws.create_access_token(alice.id, "script")
    link = ws.create_login_link(alice.id, ttl_s=600)
    disabled = ws.set_user_active("alice", False)
    assert not disabled.is_active
    assert ws.authenticate("alice", PASSWORD) is None
    assert ws.user_for_session(session) is None
    assert ws.user_for_access_token(token) is None
    assert ws.consume_login_link(link) is None
    with pytest.raises(StoreError, match="user 'alice' is disabled"):
        ws.create_session(alice.id, ttl_s=60)
    with pytest.raises(StoreError, match="user 'alice' is disabled"):
        ws.create_access_token(alice.id, "again")
    ws.set_user_active(alice.id, True)
    assert ws.authenticate("alice", PASSWORD) is not None
    assert ws.user_for_session(session) is None  # sessions were deleted, not suspended
    assert ws.user_for_access_token(token).id == alice.id  # tokens work again


def test_set_password_logs_out_everywhere(ws: Workspace) -> None:
    alice = ws.create_user("alice", PASSWORD)
    sessions = [ws.create_session(alice.id, ttl_s=3600) for _ in range(2)]
    with pytest.raises(StoreError, match="password must be at least 8"):
        ws.set_password("alice", "short")
    assert ws.user_for_session(sessions[0]) is not None  # a refused change changes nothing
    ws.set_password("alice", "another good one")
    assert [ws.user_for_session(s) for s in sessions] == [None, None]
    assert ws.authenticate("alice", PASSWORD) is None
    assert ws.authenticate("alice", "another good one") is not None
    ws.set_password("alice", None)
    assert ws.authenticate("alice", "another good one") is None
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        ws.set_password("nobody", PASSWORD)


# ------------------------------------------------------------------ sessions
def test_session_lifecycle(ws: Workspace, clock: Clock) -> None:
    alice = ws.create_user("alice", PASSWORD)
    token = ws.create_session(alice.id, ttl_s=120, user_agent="x" * 500)
    assert len(token) >= 43
    assert ws.user_for_session(token).id == alice.id
    assert ws.user_for_session(token + "x") is None
    assert ws.user_for_session("") is None
    clock.advance(119)
    assert ws.user_for_session(token) is not None
    clock.advance(1)
    assert ws.user_for_session(token) is None  # expired, and deleted
    with ws.engine.connect() as conn:
        assert conn.execute(select(SessionRow)).all() == []
    other = ws.create_session(alice.id, ttl_s=60)
    ws.delete_session(other)
    ws.delete_session(other)  # twice: nothing
    assert ws.user_for_session(other) is None
    with pytest.raises(StoreError, match="ttl_s must be a positive number"):
        ws.create_session(alice.id, ttl_s=0)
    with pytest.raises(NotFoundError, match="user 42 does not exist"):
        ws.create_session(42, ttl_s=60)


def test_last_seen_is_written_at_most_once_a_minute(ws: Workspace, clock: Clock) -> None:
    alice = ws.create_user("alice", PASSWORD)
    token = ws.create_session(alice.id, ttl_s=3600)
    created = clock.now

    def last_seen() -> datetime:
        with ws.engine.connect() as conn:
            return conn.execute(select(SessionRow.last_seen_at)).scalar_one()

    writes: list[object] = []
    original = ws.transaction

    def counting_transaction():  # type: ignore[no-untyped-def]
        writes.append(1)
        return original()

    ws.transaction = counting_transaction  # type: ignore[method-assign]
    clock.advance(30)
    ws.user_for_session(token)
    assert last_seen() == created and writes == []  # a read, no write
    clock.advance(31)
    ws.user_for_session(token)
    assert last_seen() == clock.now and len(writes) == 1


def test_delete_user_sessions(ws: Workspace) -> None:
    alice = ws.create_user("alice", PASSWORD)
    bob = ws.create_user("bob", PASSWORD)
    ws.create_session(alice.id, ttl_s=60)
    ws.create_session(alice.id, ttl_s=60)
    kept = ws.create_session(bob.id, ttl_s=60)
    assert ws.delete_user_sessions("alice") == 2
    assert ws.user_for_session(kept).id == bob.id


# ------------------------------------------------------------------ access tokens
def test_access_token_lifecycle(ws: Workspace, clock: Clock) -> None:
    alice = ws.create_user("alice", PASSWORD)
    token, meta = ws.create_access_token(alice.id, " ci script ")
    assert token.startswith("pk_") and len(token) > 40
    assert (meta.user_id, meta.name, meta.prefix) == (alice.id, "ci script", token[:10])
    assert meta.last_used_at is None and meta.revoked_at is None and meta.expires_at is None
    assert ws.user_for_access_token(token).id == alice.id
    assert ws.list_access_tokens(alice.id)[0].last_used_at == clock.now
    assert ws.user_for_access_token(token[3:]) is None  # no pk_ prefix
    assert ws.user_for_access_token("pk_" + "x" * 43) is None
    revoked = ws.revoke_access_token(alice.id, meta.id)
    assert revoked.revoked_at == clock.now
    assert ws.user_for_access_token(token) is None
    clock.advance(10)
    assert ws.revoke_access_token(alice.id, meta.id).revoked_at == revoked.revoked_at
    assert [t.id for t in ws.list_access_tokens(alice.id)] == [meta.id]


def test_access_token_expiry_and_errors(ws: Workspace, clock: Clock) -> None:
    alice = ws.create_user("alice", PASSWORD)
    bob = ws.create_user("bob", PASSWORD)
    aware = (clock.now + timedelta(hours=1)).replace(tzinfo=timezone.utc)
    token, meta = ws.create_access_token(alice.id, "short-lived", expires_at=aware)
    assert meta.expires_at == clock.now + timedelta(hours=1)
    clock.advance(3599)
    assert ws.user_for_access_token(token) is not None
    clock.advance(1)
    assert ws.user_for_access_token(token) is None
    with pytest.raises(StoreError, match="is not in the future"):
        ws.create_access_token(alice.id, "old", expires_at=clock.now)
    with pytest.raises(StoreError, match="token name must be 1-200 characters"):
        ws.create_access_token(alice.id, "  ")
    with pytest.raises(NotFoundError, match=r"access token .* of user 'bob' does not exist"):
        ws.revoke_access_token(bob.id, meta.id)  # someone else's token
    assert ws.list_access_tokens(bob.id) == []


def _make_secrets(ws: Workspace) -> list[str]:
    alice = ws.create_user("alice", PASSWORD)
    return [
        PASSWORD,
        ws.create_session(alice.id, ttl_s=60),
        ws.create_access_token(alice.id, "script")[0],
        ws.create_login_link(alice.id, ttl_s=60),
    ]


def test_no_plain_token_or_password_in_any_row(ws: Workspace) -> None:
    made = _make_secrets(ws)
    with ws.engine.connect() as conn:
        text = repr(
            [
                conn.execute(select(table)).all()
                for table in (UserRow, SessionRow, AccessTokenRow, LoginLinkRow)
            ]
        )
    assert "alice" in text and "$argon2id$" in text
    for secret in [*made, made[2][3:]]:
        assert secret not in text


@pytest.mark.sqlite_only(reason="greps the SQLite file and its WAL")
@pytest.mark.sqlite_only(reason="reads the bytes of the SQLite file")
def test_no_plain_token_or_password_in_the_database_file(ws: Workspace) -> None:
    secrets_made = _make_secrets(ws)
    ws.close()
    data = b"".join(
        path.read_bytes() for path in ws.root.iterdir() if path.name.startswith("posekit.db")
    )
    assert b"alice" in data  # the bytes are searchable at all
    for secret in [*secrets_made, secrets_made[2][3:]]:
        assert secret.encode() not in data


# ------------------------------------------------------------------ login links
def test_login_link_works_once(ws: Workspace, clock: Clock) -> None:
    alice = ws.create_user("alice")
    link = ws.create_login_link(alice.id, ttl_s=300)
    user = ws.consume_login_link(link)
    assert user is not None and user.id == alice.id and user.last_login_at == clock.now
    assert ws.consume_login_link(link) is None
    expiring = ws.create_login_link(alice.id, ttl_s=300)
    clock.advance(300)
    assert ws.consume_login_link(expiring) is None
    assert ws.consume_login_link("") is None


def test_login_link_from_two_threads_at_once(ws: Workspace) -> None:
    alice = ws.create_user("alice")
    for _ in range(5):
        link = ws.create_login_link(alice.id, ttl_s=300)
        barrier = threading.Barrier(4)
        results: list[object] = []

        def use(
            link: str = link, barrier: threading.Barrier = barrier, results: list = results
        ) -> None:
            barrier.wait()
            results.append(ws.consume_login_link(link))

        threads = [threading.Thread(target=use) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [r for r in results if r is not None]
        assert len(results) == 4 and len(winners) == 1 and winners[0].id == alice.id


# ------------------------------------------------------------------ members
def test_members_and_roles(ws: Workspace) -> None:
    other = ws.create_project("hands", get_preset("coco17"))
    people = ws.get_project("people")
    alice = ws.create_user("alice", PASSWORD)
    bob = ws.create_user("bob", PASSWORD)
    member = ws.set_member("people", "bob", "annotator")
    assert (member.project_id, member.user_id, member.username, member.role) == (
        people.id,
        bob.id,
        "bob",
        "annotator",
    )
    ws.set_member(people, alice, "viewer")
    ws.set_member(people.id, alice.id, "manager")  # replaces
    ws.set_member(other.id, alice.id, "reviewer")
    assert [(m.username, m.role) for m in ws.list_members("people")] == [
        ("alice", "manager"),
        ("bob", "annotator"),
    ]
    assert ws.role_of(alice.id, people.id) == "manager"
    assert ws.role_of(bob.id, other.id) is None
    assert ws.roles_of(alice.id) == {people.id: "manager", other.id: "reviewer"}
    ws.remove_member("people", "bob")
    assert ws.roles_of(bob.id) == {}
    with pytest.raises(NotFoundError, match="user 'bob' is not a member"):
        ws.remove_member("people", "bob")


def test_member_errors(ws: Workspace) -> None:
    ws.create_user("alice", PASSWORD)
    with pytest.raises(StoreError, match="role must be one of manager, reviewer, annotator, "):
        ws.set_member("people", "alice", "owner")
    with pytest.raises(NotFoundError, match="no project named 'nope'"):
        ws.set_member("nope", "alice", "viewer")
    with pytest.raises(NotFoundError, match="project 77 does not exist"):
        ws.set_member(77, "alice", "viewer")
    with pytest.raises(NotFoundError, match="no user named 'zed'"):
        ws.set_member("people", "zed", "viewer")
    assert ws.list_members("people") == []


def test_project_roles_match_the_server() -> None:
    from posekit.server.authz import PROJECT_ROLES, ROLE_PERMISSIONS

    assert users.PROJECT_ROLES == PROJECT_ROLES
    assert set(ROLE_PERMISSIONS) == set(PROJECT_ROLES)


# ------------------------------------------------------------------ project_id_of
def test_project_id_of_every_kind(ws: Workspace) -> None:
    # Project 2 holding rows with id 1: an id is never mistaken for its project's.
    project = ws.create_project("hands", get_preset("coco17"))
    dataset = ws.create_dataset("hands", "train")
    author = ws.create_user("alice", PASSWORD)
    now = utcnow()
    with ws.transaction() as conn:
        item_id = conn.execute(
            insert(ItemRow).values(
                dataset_id=dataset.id, file_name="a.jpg", width=64, height=48, created_at=now
            )
        ).inserted_primary_key[0]
    instance_id = ws.add_instance(
        item_id, Instance(np.zeros((17, 2), np.float32), np.full(17, 2, np.uint8))
    ).id
    with ws.transaction() as conn:
        video_id = conn.execute(
            insert(VideoRow).values(
                dataset_id=dataset.id, kind="frames", file_name="clip", fps=25.0,
                frame_count=10, duration=0.4, width=64, height=48, created_at=now,
            )
        ).inserted_primary_key[0]  # fmt: skip
        job_id = conn.execute(
            insert(JobRow).values(
                project_id=project.id, kind="autolabel", status="done", options={},
                created_at=now,
            )
        ).inserted_primary_key[0]  # fmt: skip
        comment_id = conn.execute(
            insert(CommentRow).values(
                item_id=item_id, author_id=author.id, body="fix the knee", created_at=now
            )
        ).inserted_primary_key[0]
        track_id = conn.execute(
            insert(TrackRow).values(
                project_id=project.id, video_id=video_id, track_id=3, outside=[], created_at=now
            )
        ).inserted_primary_key[0]
    ids = {
        "project": project.id,
        "dataset": dataset.id,
        "item": item_id,
        "instance": instance_id,
        "video": video_id,
        "job": job_id,
        "comment": comment_id,
        "track": track_id,
    }
    assert set(ids) == set(users.OWNED_KINDS)
    assert project.id == 2 and set(ids.values()) - {project.id} == {1}
    for kind, id_ in ids.items():
        assert ws.project_id_of(kind, id_) == project.id, kind
        with pytest.raises(NotFoundError, match=f"^{kind} 9999 does not exist$"):
            ws.project_id_of(kind, 9999)
    with pytest.raises(StoreError, match="kind must be one of"):
        ws.project_id_of("user", 1)


def test_project_id_of_a_deleted_instance_through_its_history(ws: Workspace) -> None:
    project = ws.create_project("hands", get_preset("coco17"))
    dataset = ws.create_dataset("hands", "train")
    now = utcnow()
    with ws.transaction() as conn:
        item_id = conn.execute(
            insert(ItemRow).values(
                dataset_id=dataset.id, file_name="a.jpg", width=64, height=48, created_at=now
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(InstanceVersionRow).values(
                instance_id=41, item_id=item_id, version=1, keypoints=b"", visibility=b"",
                source="manual", status="accepted", written_at=now,
                replaced_by_action="delete",
            )
        )  # fmt: skip
    assert ws.project_id_of("instance", 41) == project.id
    with pytest.raises(NotFoundError, match=r"^instance 42 does not exist$"):
        ws.project_id_of("instance", 42)
