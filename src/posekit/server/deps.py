"""Route dependencies (the app state; a current-user dependency goes here) and documented
error responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from posekit.server.schemas import ConflictOut, ErrorOut
from posekit.server.state import AppState

__all__ = ["State", "errors", "get_state"]


def get_state(request: Request) -> AppState:
    """The :class:`AppState` of the app serving ``request``."""
    return request.app.state.posekit


State = Annotated[AppState, Depends(get_state)]

_DESCRIPTIONS = {
    400: "Bad request",
    404: "Not found (the message names what)",
    409: "Conflict",
    413: "Too large (file size or pixel count; the message names the file)",
    415: "Not a supported image (checked by content; the message names the file)",
    422: "Invalid input (the message names the bad element)",
    429: "The job queue is full; retry later",
}


def errors(*codes: int, conflict_current: bool = False) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error codes (409 with ``current`` if asked)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        model = ConflictOut if code == 409 and conflict_current else ErrorOut
        description = _DESCRIPTIONS[code]
        if code == 409 and conflict_current:
            description = "Stale version: nothing was written; 'current' is the stored instance"
        out[code] = {"model": model, "description": description}
    return out
