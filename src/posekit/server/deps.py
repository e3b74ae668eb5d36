"""Route dependencies (the app state; a current-user dependency goes here), the route
class every router uses (JSON bodies parsed strictly, large ones off the event loop)
and documented error responses."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from posekit.server.schemas import ConflictOut, ErrorOut
from posekit.server.state import AppState

__all__ = ["DatabaseId", "JSONRoute", "State", "errors", "get_state", "parse_json_body"]

#: Largest integer a database id can be (SQLite and PostgreSQL BIGINT).
MAX_DATABASE_ID = 2**63 - 1
#: An id in a path: a number beyond what the database holds is a 422 naming the
#: parameter, never an overflow inside the database driver.
DatabaseId = Annotated[int, Path(ge=-MAX_DATABASE_ID, le=MAX_DATABASE_ID)]
#: JSON bodies up to this size are parsed on the event loop (faster than a thread hop).
INLINE_JSON_BYTES = 64 * 1024
#: Most digits of an integer in a JSON body (Python's own limit for int(str)).
MAX_INTEGER_DIGITS = 4300


class _HugeInteger:
    """Stands in for an integer literal with too many digits until its place is known."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _find(value: Any, marker: type, path: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    if isinstance(value, marker):
        return path
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, child in items:
        found = _find(child, marker, (*path, key))
        if found is not None:
            return found
    return None


def _refuse_constant(name: str) -> Any:
    raise HTTPException(422, f"body: {name} is not a JSON number (use a finite number or null)")


def parse_json_body(body: bytes) -> Any:
    """Parse a request body as strict JSON.

    Raises:
        json.JSONDecodeError: Not JSON (FastAPI answers 422 with the position).
        HTTPException: 400 nested too deeply; 422 ``NaN``/``Infinity``, or an integer
            of more than 4300 digits (the message names its element, e.g.
            ``body.keypoints.0.1``).
    """
    huge = False

    def parse_int(text: str) -> Any:
        nonlocal huge
        if len(text) > MAX_INTEGER_DIGITS:
            huge = True
            return _HugeInteger(len(text.lstrip("-")))
        return int(text)

    try:
        value = json.loads(body, parse_int=parse_int, parse_constant=_refuse_constant)
    except RecursionError:
        raise HTTPException(400, "request body: JSON is nested too deeply") from None
    if huge:
        try:
            where = _find(value, _HugeInteger) or ()
        except RecursionError:
            where = ()
        number = value
        for key in where:
            number = number[key]
        location = ".".join(str(p) for p in ("body", *where))
        raise HTTPException(
            422,
            f"{location}: integer of {number.digits} digits is too large "
            f"(at most {MAX_INTEGER_DIGITS} digits)",
        )
    return value


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            if len(body) > INLINE_JSON_BYTES:
                # Keep the loop free for other requests while a big body is parsed.
                self._json = await run_in_threadpool(parse_json_body, body)
            else:
                self._json = parse_json_body(body)
        return self._json


class JSONRoute(APIRoute):
    """The route class of every posekit router: JSON bodies go through
    :func:`parse_json_body` (bodies over 64 KB in a worker thread)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            request.__class__ = _StrictJSONRequest
            return await handler(request)

        return strict_json_handler


async def get_state(request: Request) -> AppState:
    """The :class:`AppState` of the app serving ``request``. A coroutine, though it only
    reads an attribute: FastAPI runs a plain function dependency in a worker thread,
    a hop (and a wake-up) on every request that takes :data:`State`."""
    return request.app.state.posekit


State = Annotated[AppState, Depends(get_state)]

_DESCRIPTIONS = {
    400: "Bad request",
    404: "Not found (the message names what)",
    409: "Conflict",
    413: "Too large (file size or pixel count; the message names the file)",
    415: "Not a supported image (checked by content; the message names the file)",
    422: "Invalid input (the message names the bad element)",
    429: "Too many requests (the job queue is full, or the client's rate limit: see "
    "Retry-After); retry later",
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
