"""Team workflow: assigning items, the annotator and reviewer queues, submitting an
item for review and the reviewer's decision (issue 12; rules in
:mod:`posekit.store.workflow`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.schemas import ItemOut
from posekit.server.team_schemas import (
    AssignOut,
    AssignRequest,
    DecisionRequest,
    WorkflowCountsOut,
)
from posekit.store import NotFoundError, StoreError
from posekit.store.queries import item_summary, workflow_counts

router = APIRouter(prefix="/api", tags=["workflow"], route_class=JSONRoute)

_QUEUE_RESPONSES = {
    200: {"description": "The next item, now assigned to (or taken for review by) the caller"},
    204: {"description": "The queue is empty"},
    **errors(404),
}


def user_id_of(state: State, username: str, where: str) -> int:
    """The id of the user called ``username``; 422 naming ``where`` if there is none."""
    try:
        return state.ws.get_user(username).id
    except NotFoundError:
        raise StoreError(f"{where}: no user named {username!r}") from None


def _item_out(state: State, item_id: int) -> ItemOut:
    return ItemOut.model_validate(item_summary(state.ws, item_id))


@router.post(
    "/projects/{project_id}/assign",
    response_model=AssignOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.MANAGE)],
)
def assign(
    project_id: DatabaseId, body: AssignRequest, state: State, user: CurrentUser
) -> AssignOut:
    """Assign items to an annotator (``assignee`` null: unassign them): a list of
    items, a range of item ids, or the next N unassigned unlabeled items."""
    ws = state.ws
    assignee_id = None if body.assignee is None else user_id_of(state, body.assignee, "assignee")
    if body.item_ids is not None:
        ids = ws.assign_items(project_id, body.item_ids, assignee_id, by=user.id)
    elif body.next_unlabeled is not None:
        assert assignee_id is not None  # checked by the schema
        ids = ws.assign_next_unlabeled(project_id, body.next_unlabeled, assignee_id, by=user.id)
    else:
        first, last = body.first_item_id, body.last_item_id
        assert first is not None and last is not None  # checked by the schema
        ids = ws.assign_range(project_id, first, last, assignee_id, by=user.id)
    return AssignOut(item_ids=ids, assignee=body.assignee)


def _next(state: State, project_id: int, user_id: int, role: str) -> ItemOut | Response:
    item = state.ws.claim_next(project_id, user_id, role=role)
    if item is None:
        return Response(status_code=204)
    return _item_out(state, item.id)


@router.post(
    "/projects/{project_id}/queue/annotator/next",
    response_model=ItemOut,
    responses=_QUEUE_RESPONSES,
    dependencies=[allow(Permission.ANNOTATE)],
)
def next_to_annotate(project_id: DatabaseId, state: State, user: CurrentUser) -> ItemOut | Response:
    """The caller's next item to annotate: their items sent back with open comments
    first, then their other items in annotation, then an unassigned unlabeled item,
    claimed for them (atomically: nobody else gets it). 204 when there is none."""
    return _next(state, project_id, user.id, "annotator")


@router.post(
    "/projects/{project_id}/queue/reviewer/next",
    response_model=ItemOut,
    responses=_QUEUE_RESPONSES,
    dependencies=[allow(Permission.REVIEW)],
)
def next_to_review(project_id: DatabaseId, state: State, user: CurrentUser) -> ItemOut | Response:
    """The caller's next item to review: one they already took, else the oldest
    submitted one nobody took, taken for them (atomically). 204 when there is none."""
    return _next(state, project_id, user.id, "reviewer")


@router.get(
    "/projects/{project_id}/workflow",
    response_model=WorkflowCountsOut,
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def counts(project_id: DatabaseId, state: State, user: CurrentUser) -> WorkflowCountsOut:
    """Items per stage, unassigned and with open comments, and the caller's queue."""
    return WorkflowCountsOut(**workflow_counts(state.ws, project_id, user.id))


@router.post(
    "/items/{item_id}/submit",
    response_model=ItemOut,
    responses=errors(404, 409, 422),
    dependencies=[allow(Permission.ANNOTATE)],
)
def submit(item_id: DatabaseId, state: State, user: CurrentUser) -> ItemOut:
    """Submit an item for review (stage annotation -> review): its assignee or a
    manager. 409 when it is not in stage annotation."""
    state.ws.submit_item(item_id, user.id)
    return _item_out(state, item_id)


@router.post(
    "/items/{item_id}/decision",
    response_model=ItemOut,
    responses=errors(404, 409, 422),
    dependencies=[allow(Permission.REVIEW)],
)
def decide(item_id: DatabaseId, body: DecisionRequest, state: State, user: CurrentUser) -> ItemOut:
    """Accept an item in review (-> done; its open threads are resolved) or reject
    it with a ``comment`` (-> back to its annotator), which may point at an instance
    and a keypoint. 409 when it is not in stage review."""
    state.ws.decide_review(
        item_id,
        user.id,
        body.decision,
        comment=body.comment,
        instance_id=body.instance_id,
        keypoint=body.keypoint,
    )
    return _item_out(state, item_id)
