"""Review comments: threads and replies, instance/keypoint targets, resolving, counts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from posekit.store import NotFoundError, StoreError
from posekit.store.comments import MAX_COMMENT_CHARS

from .store_factories import make_person
from .workflow_factories import Team, make_team


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    team = make_team(tmp_path, num_items=3)
    yield team
    team.ws.close()


def test_thread_with_replies_and_authors(team: Team) -> None:
    ws, item_id = team.ws, team.ids[0]
    record = ws.add_instance(item_id, make_person(0))
    root = ws.add_comment(item_id, team.reviewer.id, " nose? ", instance_id=record.id, keypoint=0)
    assert (root.body, root.author, root.instance_id, root.keypoint, root.parent_id) == (
        "nose?",
        "reviewer",
        record.id,
        0,
        None,
    )
    reply = ws.add_comment(item_id, team.annotator.id, "moved it", parent_id=root.id)
    assert reply.id == root.id  # the thread comes back
    # A reply to a reply joins the root's thread.
    reply_id = reply.replies[0].id
    thread = ws.add_comment(item_id, team.reviewer.id, "thanks", parent_id=reply_id)
    assert [(c.author, c.body, c.parent_id) for c in thread.replies] == [
        ("annotator", "moved it", root.id),
        ("reviewer", "thanks", root.id),
    ]
    other = ws.add_comment(item_id, team.manager.id, "whole image is blurry")
    assert [t.id for t in ws.list_comments(item_id)] == [root.id, other.id]
    assert ws.list_comments(team.ids[1]) == []
    assert ws.comment_thread(reply_id).id == root.id


def test_resolve_and_reopen_a_thread_from_any_comment(team: Team) -> None:
    ws, item_id = team.ws, team.ids[0]
    root = ws.add_comment(item_id, team.reviewer.id, "check the hips")
    ws.add_comment(item_id, team.annotator.id, "done", parent_id=root.id)
    reply_id = ws.comment_thread(root.id).replies[0].id
    assert ws.open_comment_counts(team.ids) == {item_id: 1}
    resolved = ws.resolve_comment(reply_id, team.annotator.id)
    assert resolved.id == root.id and resolved.resolved
    assert (resolved.resolved_by, resolved.resolved_by_name) == (team.annotator.id, "annotator")
    assert ws.open_comment_counts(team.ids) == {}
    reopened = ws.resolve_comment(root.id, team.reviewer.id, resolved=False)
    assert not reopened.resolved and reopened.resolved_by is None
    assert ws.open_comment_counts([item_id]) == {item_id: 1}


def test_refused_comments_name_the_bad_element(team: Team) -> None:
    ws, ids = team.ws, team.ids
    record = ws.add_instance(ids[1], make_person(1))
    root = ws.add_comment(ids[0], team.reviewer.id, "x")
    cases = [
        (dict(body=""), StoreError, "body: a comment needs some text"),
        (dict(body="y" * (MAX_COMMENT_CHARS + 1)), StoreError, "body: 10001 characters"),
        (dict(author_id=999), NotFoundError, "author: user 999 does not exist"),
        (dict(instance_id=record.id), StoreError, f"instance {record.id} is on item {ids[1]}"),
        (dict(instance_id=424242), NotFoundError, "instance_id: instance 424242 does not"),
        (dict(keypoint=3), StoreError, "keypoint: a comment on a keypoint needs the instance_id"),
        (dict(parent_id=777), NotFoundError, "parent_id: comment 777 does not exist"),
        (dict(parent_id=root.id, keypoint=1), StoreError, "a reply takes the instance"),
        (dict(item_id=999999), NotFoundError, "item 999999 does not exist"),
    ]
    for changes, error, message in cases:
        args = dict(item_id=ids[0], author_id=team.reviewer.id, body="text", **{})
        args.update(changes)
        item_id, author_id, body = args.pop("item_id"), args.pop("author_id"), args.pop("body")
        with pytest.raises(error, match=message):
            ws.add_comment(item_id, author_id, body, **args)
    own = ws.add_instance(ids[0], make_person(2))
    with pytest.raises(StoreError, match="keypoint: -1 is not a keypoint index"):
        ws.add_comment(ids[0], team.reviewer.id, "t", instance_id=own.id, keypoint=-1)
    with pytest.raises(StoreError, match=f"parent_id: comment {root.id} is on item {ids[0]}"):
        ws.add_comment(ids[1], team.reviewer.id, "t", parent_id=root.id)
    assert len(ws.list_comments(ids[0])) == 1 and ws.list_comments(ids[1]) == []
    with pytest.raises(NotFoundError, match="comment 5555 does not exist"):
        ws.resolve_comment(5555, team.reviewer.id)


def test_comments_outlive_their_instance_and_go_with_the_item(team: Team) -> None:
    ws, item_id = team.ws, team.ids[0]
    record = ws.add_instance(item_id, make_person(0))
    ws.add_comment(item_id, team.reviewer.id, "elbow", instance_id=record.id, keypoint=7)
    ws.delete_instance(record.id)
    assert ws.list_comments(item_id)[0].instance_id == record.id
    ws.delete_project("people")
    with ws.engine.connect() as conn:
        from sqlalchemy import func, select

        from posekit.store.tables import CommentRow

        assert conn.execute(select(func.count()).select_from(CommentRow)).scalar_one() == 0
