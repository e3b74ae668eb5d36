"""Items: detail, image bytes, thumbnails, new instances, AI-assist and review."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.schemas import (
    AssistRequest,
    InstanceIn,
    InstanceOut,
    ItemDetailOut,
    ItemOut,
    ReviewOut,
    ReviewRequest,
)
from posekit.server.state import AppState
from posekit.store import StoreError
from posekit.store.queries import item_summary

router = APIRouter(prefix="/api/items", tags=["items"], route_class=JSONRoute)

_IMAGE_RESPONSES = {
    200: {"content": {"image/jpeg": {}, "image/png": {}}, "description": "The image"},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
    **errors(404),
}


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return etag in tags


@router.get(
    "/{item_id}",
    response_model=ItemDetailOut,
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def get_item(item_id: DatabaseId, state: State) -> ItemDetailOut:
    """An item with all its instances (and their versions)."""
    summary = item_summary(state.ws, item_id)
    records = state.ws.get_instance_records(item_id)
    return ItemDetailOut(
        item=ItemOut.model_validate(summary),
        instances=[InstanceOut.model_validate(r) for r in records],
    )


@router.get(
    "/{item_id}/image",
    response_class=FileResponse,
    responses=_IMAGE_RESPONSES,
    dependencies=[allow(Permission.VIEW)],
)
def get_image(item_id: DatabaseId, request: Request, state: State) -> Response:
    """The image file as stored, with an ETag (its content hash) and private caching.

    After sending it the server decodes it into the AI-assist cache, so the first
    assist request on the image a user opened does not pay for the decode.
    """
    media = state.item_media(item_id)
    headers = {
        "ETag": media.etag,
        "Cache-Control": f"private, max-age={state.settings.image_max_age}",
    }
    if _etag_matches(request.headers.get("if-none-match"), media.etag):
        return Response(status_code=304, headers=headers)
    prefetch = BackgroundTask(state.images.prefetch, item_id, state.media_opener(media), media.size)
    if media.path is not None:
        return FileResponse(
            media.path, media_type=media.media_type, headers=headers, background=prefetch
        )
    # A media storage without local files: stream the object.
    return StreamingResponse(
        _chunks(state.ws.storage.open(media.key)),
        media_type=media.media_type,
        headers={**headers, "Content-Length": str(state.ws.storage.size(media.key))},
        background=prefetch,
    )


def _chunks(stream: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(size):
            yield chunk


@router.get(
    "/{item_id}/thumbnail",
    response_class=Response,
    responses=_IMAGE_RESPONSES,
    dependencies=[allow(Permission.VIEW)],
)
def get_thumbnail(
    item_id: DatabaseId,
    request: Request,
    state: State,
    size: int = Query(256, ge=16, le=1024, description="longest side in pixels"),
) -> Response:
    """A JPEG thumbnail (kept in memory after the first request)."""
    media = state.item_media(item_id)
    etag = f'"{media.etag.strip(chr(34))}-t{size}"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={state.settings.image_max_age}"}
    if _etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    data, _ = state.thumbnail(item_id, size)
    return Response(data, media_type="image/jpeg", headers=headers)


@router.post(
    "/{item_id}/instances",
    response_model=InstanceOut,
    status_code=201,
    responses=errors(404, 422),
    dependencies=[allow(Permission.ANNOTATE)],
)
def create_instance(
    item_id: DatabaseId, body: InstanceIn, state: State, user: CurrentUser
) -> InstanceOut:
    """Store a new instance on an item (version 1). With ``template_version``, refused
    (409) when the project's template changed since."""
    from posekit.server.template_guard import check_item_template

    check_item_template(state, item_id, body.template_version)
    record = state.ws.add_instance(item_id, body.to_instance(), author_id=user.id)
    return InstanceOut.model_validate(record)


def _assist_model(state: AppState, project_id: int) -> str:
    from posekit.models.available import DEFAULT_MODEL
    from posekit.store.settings_lookup import project_setting

    # One query of the settings column (not the whole project with its template).
    return project_setting(state.ws, project_id, "assist_model") or DEFAULT_MODEL


@router.post(
    "/{item_id}/assist",
    response_model=InstanceOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.ANNOTATE)],
)
def assist_box(item_id: DatabaseId, body: AssistRequest, request: Request) -> InstanceOut:
    """AI-assist: the pose of the person in ``box``, as a predicted instance that is
    NOT saved (``id`` null, ``version`` 0); save it with POST .../instances. The model
    is ``model``, else the project's ``assist_model`` setting; ``produced_by`` names it
    with the model's latency in milliseconds."""
    from posekit.pipeline.assist import assist

    # The app state straight from the request (what deps.get_state reads): as a sync
    # dependency it would cost one more worker-thread hop where a user waits.
    state: AppState = request.app.state.posekit
    media = state.item_media(item_id)
    template = state.template(media.project_id)
    box = np.asarray(body.box, dtype=np.float32)
    if not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
        raise StoreError(f"box {list(body.box)} is not an x1, y1, x2, y2 box with x1 < x2, y1 < y2")
    image = state.images.get(item_id, state.media_opener(media), media.size)
    # A large image is decoded reduced (Settings.assist_max_side): box in, pose out scaled.
    scale = np.array([image.scale_x, image.scale_y], dtype=np.float32)
    spec = body.model or _assist_model(state, media.project_id)
    estimator, lock = state.models.get(spec)
    started = time.perf_counter()
    with lock:
        instance = assist(image.pixels, box / np.tile(scale, 2), template, estimator)[0]
    latency_ms = round((time.perf_counter() - started) * 1000.0, 1)
    instance = instance.copy(
        extra={**instance.extra, "assist": {"model": spec, "latency_ms": latency_ms}}
    )
    if image.scale_x != 1.0 or image.scale_y != 1.0:
        instance = instance.copy(
            keypoints=instance.keypoints * scale,
            box=box,
            area=None if instance.area is None else instance.area * float(scale.prod()),
        )
    return InstanceOut.unsaved(instance, item_id)


@router.post(
    "/{item_id}/review",
    response_model=ReviewOut,
    responses=errors(404, 422, 409, conflict_current=True),
    dependencies=[allow(Permission.ANNOTATE)],
)
def review(item_id: DatabaseId, body: ReviewRequest, state: State, user: CurrentUser) -> ReviewOut:
    """Accept or reject instances of an item (each at its current version; an
    instance changed meanwhile gives 409 with its current state), in one
    transaction. When no predicted instance is left, the item's status becomes
    ``reviewed`` (the store's rule)."""
    decisions = dict.fromkeys(body.instance_ids, body.action)
    records = state.ws.review(item_id, decisions, author_id=user.id)
    return ReviewOut(instances=[InstanceOut.model_validate(r) for r in records])
