"""Review comments: the threads of an item, new threads and replies, resolving
(issue 12; rules in :mod:`posekit.store.comments`)."""

from __future__ import annotations

from fastapi import APIRouter

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.team_schemas import CommentIn, CommentOut, CommentPatch

router = APIRouter(prefix="/api", tags=["comments"], route_class=JSONRoute)


@router.get(
    "/items/{item_id}/comments",
    response_model=list[CommentOut],
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def list_comments(item_id: DatabaseId, state: State) -> list[CommentOut]:
    """The comment threads of an item, oldest first, each with its replies."""
    return [CommentOut.model_validate(t) for t in state.ws.list_comments(item_id)]


@router.post(
    "/items/{item_id}/comments",
    response_model=CommentOut,
    status_code=201,
    responses=errors(404, 422),
    dependencies=[allow(Permission.COMMENT)],
)
def add_comment(
    item_id: DatabaseId, body: CommentIn, state: State, user: CurrentUser
) -> CommentOut:
    """Start a thread (optionally on ``instance_id`` and its ``keypoint``) or reply to
    one (``parent_id``). The answer is the whole thread."""
    thread = state.ws.add_comment(
        item_id,
        user.id,
        body.body,
        instance_id=body.instance_id,
        keypoint=body.keypoint,
        parent_id=body.parent_id,
    )
    return CommentOut.model_validate(thread)


@router.patch(
    "/comments/{comment_id}",
    response_model=CommentOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.COMMENT)],
)
def patch_comment(
    comment_id: DatabaseId, body: CommentPatch, state: State, user: CurrentUser
) -> CommentOut:
    """Resolve or reopen the thread of a comment (any comment of it)."""
    return CommentOut.model_validate(state.ws.resolve_comment(comment_id, user.id, body.resolved))
