"""Instance history: listing an instance's versions with their authors, and restoring
an older version as a new one (:mod:`posekit.store.history`)."""

from __future__ import annotations

from fastapi import APIRouter, Path

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.history_schemas import InstanceHistoryOut, InstanceVersionOut, RestoreRequest
from posekit.server.schemas import InstanceOut

router = APIRouter(prefix="/api/instances", tags=["history"], route_class=JSONRoute)


@router.get(
    "/{instance_id}/history",
    response_model=InstanceHistoryOut,
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def instance_history(instance_id: DatabaseId, state: State) -> InstanceHistoryOut:
    """Every version of an instance, oldest first, with who wrote it and when and what
    replaced it; the current version last. A deleted instance's history stays listed
    (``deleted: true``)."""
    versions = state.ws.instance_history(instance_id)
    return InstanceHistoryOut(
        instance_id=instance_id,
        deleted=not versions[-1].current,
        versions=[InstanceVersionOut.model_validate(v) for v in versions],
    )


@router.post(
    "/{instance_id}/history/{version}/restore",
    response_model=InstanceOut,
    responses=errors(404, 409, 422, conflict_current=True),
    dependencies=[allow(Permission.ANNOTATE)],
)
def restore_version(
    instance_id: DatabaseId,
    body: RestoreRequest,
    state: State,
    user: CurrentUser,
    version: int = Path(ge=1, le=2**31 - 1, description="the version to restore"),
) -> InstanceOut:
    """Write an older version's values as a new version (the caller its author), if
    the instance is still at ``expected_version`` (else 409 with its current state).
    A deleted instance is recreated with its id. 422: the version does not fit the
    project's template any more (written before a template change)."""
    record = state.ws.restore_instance_version(
        instance_id, version, author_id=user.id, expected_version=body.expected_version
    )
    return InstanceOut.model_validate(record)
