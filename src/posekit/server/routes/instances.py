"""Instance updates and deletes with optimistic versioning."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.schemas import InstanceOut, InstanceUpdate

router = APIRouter(prefix="/api/instances", tags=["instances"], route_class=JSONRoute)


@router.put(
    "/{instance_id}",
    response_model=InstanceOut,
    responses=errors(404, 422, 409, conflict_current=True),
    dependencies=[allow(Permission.ANNOTATE)],
)
def update_instance(
    instance_id: DatabaseId, body: InstanceUpdate, state: State, user: CurrentUser
) -> InstanceOut:
    """Update an instance if ``version`` is still current; the answer has version + 1.

    Fields left out keep their stored values. A stale ``version`` gives 409 with the
    current instance, and nothing is written. The caller is the new version's author;
    the version replaced stays in the instance's history.
    """
    from posekit.server.template_guard import check_instance_template

    check_instance_template(state, instance_id, body.template_version)
    record = state.ws.patch_instance(instance_id, body.changes(), body.version, author_id=user.id)
    return InstanceOut.model_validate(record)


@router.delete(
    "/{instance_id}",
    status_code=204,
    response_class=Response,
    responses=errors(404, 409, conflict_current=True),
    dependencies=[allow(Permission.ANNOTATE)],
)
def delete_instance(
    instance_id: DatabaseId,
    state: State,
    user: CurrentUser,
    version: int | None = Query(None, ge=1, description="delete only if still this version"),
) -> Response:
    """Delete an instance (with ``version``: only if unchanged, else 409 with it)."""
    state.ws.delete_instance(instance_id, version, author_id=user.id)
    return Response(status_code=204)
