"""The team workflow: assignment, queues with atomic claiming, submit and review decisions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from posekit.store import NotFoundError, StoreError
from posekit.store.queries import UNASSIGNED, item_summaries, workflow_counts
from posekit.store.workflow import StageError, WorkflowPermissionError

from .store_factories import make_person
from .workflow_factories import Team, make_team


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    team = make_team(tmp_path)
    yield team
    team.ws.close()


def stages(team: Team) -> list[str]:
    return [item.stage for item in team.ws.list_items("people")]


# ------------------------------------------------------------------ assignment
def test_new_items_are_in_annotation_unassigned(team: Team) -> None:
    item = team.ws.get_item(team.ids[0])
    assert (item.stage, item.assignee_id, item.reviewer_id, item.stage_changed_at) == (
        "annotation",
        None,
        None,
        None,
    )


def test_assign_items_range_and_unassign(team: Team) -> None:
    ws, ids = team.ws, team.ids
    assert ws.assign_items("people", [ids[2], ids[0]], team.annotator.id, by=team.manager.id) == [
        ids[0],
        ids[2],
    ]
    assert [i.assignee_id for i in ws.list_items("people")] == [
        team.annotator.id,
        None,
        team.annotator.id,
        None,
        None,
        None,
    ]
    got = ws.assign_range("people", ids[1], ids[3], team.annotator2.id, by=team.manager.id)
    assert got == ids[1:4]
    assert ws.get_item(ids[2]).assignee_id == team.annotator2.id
    ws.assign_items("people", [ids[1]], None, by=team.manager.id)
    assert ws.get_item(ids[1]).assignee_id is None
    project = ws.get_project("people")
    total, page = item_summaries(ws, project.id, assignee=team.annotator2.id)
    assert total == 2 and [s.assignee for s in page] == ["annotator2", "annotator2"]
    assert item_summaries(ws, project.id, assignee=UNASSIGNED)[0] == 3


def test_assign_next_unlabeled_skips_assigned_and_labeled(team: Team) -> None:
    ws, ids = team.ws, team.ids
    ws.assign_items("people", [ids[0]], team.annotator2.id, by=team.manager.id)
    ws.add_instance(ids[1], make_person(1))  # labeled by a person: status reviewed
    assert ws.assign_next_unlabeled("people", 2, team.annotator.id, by=None) == ids[2:4]
    assert ws.assign_next_unlabeled("people", 10, team.annotator.id, by=None) == ids[4:]
    assert ws.assign_next_unlabeled("people", 10, team.annotator.id, by=None) == []
    with pytest.raises(StoreError, match="count: 0 is not a positive"):
        ws.assign_next_unlabeled("people", 0, team.annotator.id, by=None)


def test_assignment_checks_roles_and_items(team: Team, tmp_path: Path) -> None:
    ws, ids = team.ws, team.ids
    with pytest.raises(WorkflowPermissionError, match=r"'annotator' .*not a manager"):
        ws.assign_items("people", ids[:1], team.annotator.id, by=team.annotator.id)
    with pytest.raises(StoreError, match=r"assignee: user 'viewer' .*not an annotator"):
        ws.assign_items("people", ids[:1], team.viewer.id, by=team.manager.id)
    with pytest.raises(NotFoundError, match="assignee: user 999 does not exist"):
        ws.assign_items("people", ids[:1], 999, by=team.manager.id)
    other = ws.create_project("other", ws.get_project("people").template)
    with pytest.raises(NotFoundError, match=f"item {ids[0]} is not an item of project 'other'"):
        ws.assign_items(other.id, ids[:1], None, by=None)
    with pytest.raises(StoreError, match="first_item_id 9 is after last_item_id 3"):
        ws.assign_range("people", 9, 3, None, by=None)
    with pytest.raises(NotFoundError, match="project 12345 does not exist"):
        ws.assign_items(12345, ids[:1], None, by=None)
    assert all(i.assignee_id is None for i in ws.list_items("people"))  # nothing written


# ------------------------------------------------------------------ queues
def test_annotator_queue_order_fix_first_then_own_then_claim(team: Team) -> None:
    ws, ids = team.ws, team.ids
    me = team.annotator.id
    first = ws.claim_next("people", me, role="annotator")
    assert first.id == ids[0] and first.assignee_id == me
    # Unsubmitted own work comes back until submitted.
    assert ws.claim_next("people", me, role="annotator").id == ids[0]
    ws.submit_item(ids[0], me)
    assert ws.claim_next("people", me, role="annotator").id == ids[1]
    ws.submit_item(ids[1], me)
    ws.decide_review(ids[1], team.reviewer.id, "reject", comment="nose is off")
    ws.assign_items("people", [ids[3]], me, by=team.manager.id)
    # ids[1] (to fix) first, then own ids[3], then a claim of ids[2].
    assert ws.claim_next("people", me, role="annotator").id == ids[1]
    ws.submit_item(ids[1], me)
    assert ws.claim_next("people", me, role="annotator").id == ids[3]
    ws.submit_item(ids[3], me)
    claimed = ws.claim_next("people", me, role="annotator")
    assert claimed.id == ids[2] and claimed.assignee_id == me
    # Someone else's items are never handed out.
    assert ws.claim_next("people", team.annotator2.id, role="annotator").id == ids[4]


def test_reviewer_queue_takes_submitted_items_oldest_first(team: Team) -> None:
    ws, ids = team.ws, team.ids
    assert ws.claim_next("people", team.reviewer.id, role="reviewer") is None
    ws.assign_items("people", ids[:3], team.annotator.id, by=None)
    for item_id in (ids[2], ids[0]):
        ws.submit_item(item_id, team.annotator.id)
    got = ws.claim_next("people", team.reviewer.id, role="reviewer")
    assert got.id == ids[2] and got.reviewer_id == team.reviewer.id and got.stage == "review"
    assert ws.claim_next("people", team.reviewer.id, role="reviewer").id == ids[2]
    assert ws.claim_next("people", team.manager.id, role="reviewer").id == ids[0]
    assert ws.claim_next("people", team.manager.id, role="reviewer").id == ids[0]


def test_queue_roles_are_checked(team: Team) -> None:
    ws = team.ws
    with pytest.raises(WorkflowPermissionError, match=r"'viewer' .*cannot take items as annotator"):
        ws.claim_next("people", team.viewer.id, role="annotator")
    with pytest.raises(WorkflowPermissionError, match=r"'annotator' .*as reviewer"):
        ws.claim_next("people", team.annotator.id, role="reviewer")
    with pytest.raises(StoreError, match="role 'boss' is not one of annotator, reviewer"):
        ws.claim_next("people", team.annotator.id, role="boss")
    ws.set_user_active(team.annotator.id, False)
    with pytest.raises(WorkflowPermissionError, match="'annotator' is disabled"):
        ws.claim_next("people", team.annotator.id, role="annotator")


def test_two_threads_claiming_50_times_never_get_the_same_item(tmp_path: Path) -> None:
    team = make_team(tmp_path, num_items=110)
    ws = team.ws
    users = [team.annotator.id, team.annotator2.id]
    got: dict[int, list[int]] = {u: [] for u in users}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(user_id: int) -> None:
        try:
            barrier.wait()
            for _ in range(50):
                item = ws.claim_next("people", user_id, role="annotator")
                got[user_id].append(item.id)
                ws.submit_item(item.id, user_id)  # so that the next call claims anew
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ws.close()
    assert not errors, errors
    first, second = (set(got[u]) for u in users)
    assert len(first) == len(second) == 50
    assert not first & second
    with type(ws)(tmp_path / "ws") as again:
        for item in again.list_items("people"):
            owner = next((u for u in users if item.id in got[u]), None)
            assert item.assignee_id == owner
            assert item.stage == ("review" if owner else "annotation")


# ------------------------------------------------------------------ stages
def test_submit_rules(team: Team) -> None:
    ws, ids = team.ws, team.ids
    ws.assign_items("people", ids[:2], team.annotator.id, by=None)
    with pytest.raises(WorkflowPermissionError, match=f"item {ids[0]} is assigned to user"):
        ws.submit_item(ids[0], team.annotator2.id)
    with pytest.raises(WorkflowPermissionError, match="assigned to nobody"):
        ws.submit_item(ids[2], team.annotator.id)
    item = ws.submit_item(ids[0], team.annotator.id)
    assert item.stage == "review" and item.stage_changed_at is not None
    with pytest.raises(StageError, match=f"item {ids[0]} is in stage review, not annotation"):
        ws.submit_item(ids[0], team.annotator.id)
    assert ws.submit_item(ids[1], team.manager.id).stage == "review"  # a manager may
    with pytest.raises(NotFoundError, match="item 999999 does not exist"):
        ws.submit_item(999999, team.annotator.id)


def test_reject_with_keypoint_comment_then_accept(team: Team) -> None:
    ws, ids = team.ws, team.ids
    me = team.annotator.id
    ws.assign_items("people", ids[:1], me, by=None)
    record = ws.add_instance(ids[0], make_person(0))
    ws.submit_item(ids[0], me)
    with pytest.raises(StoreError, match=f"comment: rejecting item {ids[0]} needs a comment"):
        ws.decide_review(ids[0], team.reviewer.id, "reject", comment="  ")
    with pytest.raises(
        StoreError, match=r"keypoint: 17 is not a keypoint index .*'coco17' .*0\.\.16"
    ):
        ws.decide_review(
            ids[0], team.reviewer.id, "reject", comment="x", instance_id=record.id, keypoint=17
        )
    assert ws.get_item(ids[0]).stage == "review"  # a refused decision writes nothing
    assert ws.list_comments(ids[0]) == []
    item = ws.decide_review(
        ids[0], team.reviewer.id, "reject", comment="left wrist", instance_id=record.id, keypoint=9
    )
    assert (item.stage, item.assignee_id, item.reviewer_id) == ("annotation", me, team.reviewer.id)
    (thread,) = ws.list_comments(ids[0])
    assert (thread.author, thread.body, thread.instance_id, thread.keypoint) == (
        "reviewer",
        "left wrist",
        record.id,
        9,
    )
    assert not thread.resolved
    project_id = ws.get_project("people").id
    assert workflow_counts(ws, project_id, me)["to_fix"] == 1
    assert item_summaries(ws, project_id, open_comments=True)[0] == 1
    ws.submit_item(ids[0], me)
    # Back to the reviewer who rejected it, first in their queue.
    assert ws.claim_next("people", team.reviewer.id, role="reviewer").id == ids[0]
    with pytest.raises(WorkflowPermissionError, match=r"'annotator' .*not a reviewer"):
        ws.decide_review(ids[0], me, "accept")
    done = ws.decide_review(ids[0], team.reviewer.id, "accept")
    assert done.stage == "done"
    assert ws.list_comments(ids[0])[0].resolved_by_name == "reviewer"  # accepting resolves
    with pytest.raises(StageError, match=f"item {ids[0]} is in stage done, not review"):
        ws.decide_review(ids[0], team.reviewer.id, "reject", comment="again")
    with pytest.raises(StoreError, match="decision 'maybe' is not one of accept, reject"):
        ws.decide_review(ids[0], team.reviewer.id, "maybe")


def test_workflow_counts_and_stage_filter(team: Team) -> None:
    ws, ids = team.ws, team.ids
    project_id = ws.get_project("people").id
    ws.assign_items("people", ids[:3], team.annotator.id, by=None)
    for item_id in ids[:3]:
        ws.submit_item(item_id, team.annotator.id)
    ws.decide_review(ids[0], team.reviewer.id, "accept")
    ws.decide_review(ids[1], team.reviewer.id, "reject", comment="redo")
    assert workflow_counts(ws, project_id) == {
        "annotation": 4,
        "review": 1,
        "done": 1,
        "unassigned": 3,
        "open_comments": 1,
    }
    mine = workflow_counts(ws, project_id, team.annotator.id)
    assert (mine["mine"], mine["to_fix"], mine["my_reviews"]) == (1, 1, 0)
    assert workflow_counts(ws, project_id, team.reviewer.id)["my_reviews"] == 0
    total, page = item_summaries(ws, project_id, stage="done")
    assert total == 1 and page[0].id == ids[0] and page[0].reviewer == "reviewer"
    assert item_summaries(ws, project_id, stage="review")[1][0].id == ids[2]
    assert item_summaries(ws, project_id, open_comments=False)[0] == 5
    with pytest.raises(StoreError, match="stage 'later' is not one of annotation, review, done"):
        item_summaries(ws, project_id, stage="later")
