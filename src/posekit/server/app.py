"""The FastAPI application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from posekit.server.auth import UploadsNeedLogin
from posekit.server.authz import document_permissions
from posekit.server.docs import install_docs
from posekit.server.jobs import JobConflictError, QueueFullError
from posekit.server.routes import auth as auth_routes
from posekit.server.routes import comments as comment_routes
from posekit.server.routes import history as history_routes
from posekit.server.routes import instances, items, jobs, meta, projects, setup, transfer, video
from posekit.server.routes import users as user_routes
from posekit.server.routes import workflow as workflow_routes
from posekit.server.schemas import InstanceOut
from posekit.server.security import install_security
from posekit.server.settings import Settings
from posekit.server.state import AppState
from posekit.server.uploads import UploadRefused
from posekit.store.storage import MediaStorage

__all__ = ["STATIC_DIR", "create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


def _error(status: int):
    def handler(request: Request, exc: Exception) -> JSONResponse:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return JSONResponse({"detail": str(message)}, status_code=status)

    return handler


def _stale(request: Request, exc: Exception) -> JSONResponse:
    current = exc.current  # type: ignore[attr-defined]
    body = {
        "detail": str(exc),
        "current": InstanceOut.model_validate(current).model_dump(mode="json"),
    }
    return JSONResponse(body, status_code=409)


def _refused(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)  # type: ignore[attr-defined]


def _validation(request: Request, exc: Exception) -> JSONResponse:
    errors: list[dict[str, Any]] = list(exc.errors())  # type: ignore[attr-defined]
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    detail = "; ".join(parts) + more if parts else "invalid request"
    # 'errors' keeps the machine-readable list next to the human message.
    safe = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
    return JSONResponse({"detail": detail, "errors": safe}, status_code=422)


def _overflow(request: Request, exc: Exception) -> JSONResponse:
    # A number the database cannot hold (over 2**63 - 1) that no schema bound caught.
    detail = "a number in the request is too large (the database holds integers up to 2**63-1)"
    return JSONResponse({"detail": detail}, status_code=422)


def _install_error_handlers(app: FastAPI) -> None:
    from posekit.core import InstanceError
    from posekit.formats.coco import CocoFormatError
    from posekit.formats.yolo import YoloFormatError
    from posekit.media import ImageError
    from posekit.models.base import ModelError
    from posekit.skeleton import SkeletonError
    from posekit.store import (
        AlreadyExistsError,
        NotFoundError,
        StaleVersionError,
        StoreError,
        TemplateVersionError,
    )
    from posekit.store.database import DatabaseUnavailableError, WriteConflictError
    from posekit.store.history import StaleRestoreError
    from posekit.store.workflow import StageError, WorkflowPermissionError

    # Starlette picks the handler of the most specific class in the exception's MRO.
    app.add_exception_handler(NotFoundError, _error(404))
    app.add_exception_handler(AlreadyExistsError, _error(409))
    app.add_exception_handler(StaleVersionError, _stale)
    app.add_exception_handler(TemplateVersionError, _error(409))
    app.add_exception_handler(StaleRestoreError, _error(409))
    app.add_exception_handler(StoreError, _error(422))
    # PostgreSQL: a write aborted by concurrent writers every time it was retried, or
    # the database went away: the request may succeed when sent again.
    app.add_exception_handler(WriteConflictError, _error(503))
    app.add_exception_handler(DatabaseUnavailableError, _error(503))
    app.add_exception_handler(StageError, _error(409))  # the team workflow (issue 12)
    app.add_exception_handler(WorkflowPermissionError, _error(403))
    app.add_exception_handler(JobConflictError, _error(409))
    app.add_exception_handler(QueueFullError, _error(429))
    app.add_exception_handler(UploadRefused, _refused)
    app.add_exception_handler(RequestValidationError, _validation)
    for cls in (
        InstanceError,
        SkeletonError,
        CocoFormatError,
        YoloFormatError,
        ImageError,
        ModelError,
    ):
        app.add_exception_handler(cls, _error(422))
    app.add_exception_handler(KeyError, _error(404))  # jobs: unknown id
    app.add_exception_handler(OverflowError, _overflow)


def create_app(settings: Settings | None = None, *, storage: MediaStorage | None = None) -> FastAPI:
    """Build the posekit web app on one workspace.

    Args:
        settings: Server settings; default from ``POSEKIT_*`` environment variables.
        storage: Where the workspace keeps media files (default: its ``media/``
            folder, :class:`~posekit.store.storage.LocalStorage`).

    Returns:
        A FastAPI app serving the JSON API under ``/api`` and the UI at ``/``.
        Its state (``app.state.posekit``, an :class:`AppState`) is closed on shutdown:
        running jobs are cancelled, models closed.

    Example:
        >>> import uvicorn  # doctest: +SKIP
        >>> uvicorn.run(create_app(Settings(workspace="data")), host="127.0.0.1")  # doctest: +SKIP
    """
    from posekit import __version__

    settings = settings or Settings()
    state = AppState(settings, storage=storage)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            # The video frame service (routes/video.py creates it on first use): its
            # proxy builder is cancelled (nothing half-written), its decoders closed.
            frames = getattr(app.state, "posekit_video_frames", None)
            if frames is not None:
                frames.close()
            state.close()

    app = FastAPI(
        title="posekit",
        version=__version__,
        description="2D human pose annotation and auto-labeling. Errors are "
        '`{"detail": "<message naming the bad element>"}`.',
        lifespan=lifespan,
        # /docs is served from local files (posekit.server.docs): no CDN, works offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.posekit = state
    _install_error_handlers(app)
    routers = (auth_routes, user_routes, meta, projects, items, instances, jobs, transfer, video)
    for module in (*routers, workflow_routes, comment_routes, history_routes, setup):
        app.include_router(module.router)
    install_docs(app)
    document_permissions(app.routes)
    # Innermost of the middleware: a multipart body is read only from a logged-in user.
    app.add_middleware(UploadsNeedLogin)
    install_security(app, settings)
    _mount_static(app)
    return app


def _mount_static(app: FastAPI) -> None:
    from fastapi.staticfiles import StaticFiles

    if not (STATIC_DIR / "index.html").is_file():
        log.warning("UI files not found in %s; serving the API only", STATIC_DIR)
        return
    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="ui")
