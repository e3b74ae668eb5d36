"""Server settings, from arguments or ``POSEKIT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Settings of one server instance.

    Every field can be set with an environment variable ``POSEKIT_<FIELD>``, e.g.
    ``POSEKIT_WORKSPACE=/data/pk`` (the same variable the CLI reads) or
    ``POSEKIT_MAX_UPLOAD_BYTES=10000000``.

    Attributes:
        workspace: Workspace folder (database and media), created if missing.
        host: Interface to listen on; loopback by default (the app has no login).
        port: TCP port.
        max_upload_bytes: Largest accepted uploaded file (image or COCO json).
        max_request_bytes: Largest accepted request body (all files together),
            refused from the ``Content-Length`` header before the body is read.
        max_pixels: Largest accepted image (width x height) in uploads.
        max_files: Most files in one upload request.
        job_queue_size: Jobs that may wait in the queue (beyond that: 429).
        image_cache_bytes: Memory for decoded images kept for AI-assist.
        thumbnail_cache_items: Encoded thumbnails kept in memory.
        image_max_age: ``Cache-Control`` max-age of image responses, seconds
            (item media never change, so this can be long).
        assist_options: Options for AI-assist models by model name, passed to the
            model factory (env: JSON). The default trades a little accuracy for
            interactive latency: BlazePose without its re-crop refinement passes
            (the pose detector still aligns the crop inside the user's box); see
            ``benchmarks/assist_http.py``. Auto-label jobs use the models' defaults.
    """

    model_config = SettingsConfigDict(env_prefix="POSEKIT_", extra="ignore")

    workspace: Path = Path("posekit-data")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_upload_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_request_bytes: int = Field(1024 * 1024 * 1024, gt=0)
    max_pixels: int = Field(100_000_000, gt=0)
    max_files: int = Field(1000, gt=0)
    job_queue_size: int = Field(8, ge=1)
    image_cache_bytes: int = Field(256 * 1024 * 1024, ge=0)
    thumbnail_cache_items: int = Field(1024, ge=0)
    image_max_age: int = Field(86400, ge=0)
    assist_options: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"blazepose": {"refine_passes": 0}}
    )
