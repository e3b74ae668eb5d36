"""Server settings, from arguments or ``POSEKIT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from posekit.media.image import MAX_PIXELS

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Settings of one server instance.

    Every field can be set with an environment variable ``POSEKIT_<FIELD>``, e.g.
    ``POSEKIT_WORKSPACE=/data/pk`` (the same variable the CLI reads) or
    ``POSEKIT_MAX_UPLOAD_BYTES=10000000``.

    Attributes:
        workspace: Workspace folder (database and media), created if missing.
        database_url: The workspace's database, e.g.
            ``postgresql+psycopg://user:password@host:5432/posekit`` (env
            ``POSEKIT_DATABASE_URL``, as for the CLI); None: SQLite ``posekit.db`` in the
            workspace folder. Never logged with its password.
        host: Interface to listen on; loopback by default.
        port: TCP port.
        max_upload_bytes: Largest accepted uploaded file (image or COCO json).
        max_request_bytes: Largest accepted multipart body (an upload or import, all
            files together), refused from the ``Content-Length`` header before the
            body is read (or as soon as a chunked body passes it).
        max_json_bytes: Largest accepted body of every other request (JSON: an
            instance is a few KB), refused the same way, before parsing.
        max_pixels: Largest accepted image (width x height) in uploads, the same
            limit the CLI and the library use (:data:`posekit.media.image.MAX_PIXELS`,
            env ``POSEKIT_MAX_PIXELS``); decoding never exceeds it.
        allowed_hosts: Host names the server answers to besides IP addresses and
            ``localhost`` (DNS rebinding protection), e.g. ``pose.lab.example`` or
            ``*.lab.example``; ``*`` answers any name. Env: comma-separated.
        allowed_origins: Origins besides the server's own from which browsers may
            change data (e.g. ``https://pose.lab.example`` behind a TLS proxy).
            Env: comma-separated.
        rate_limit_per_second: Requests a second per client address to ``/api``
            (0: no limit); editor saves are never limited.
        rate_limit_burst: Requests a client may make at once before the rate applies.
        assist_max_side: AI-assist decodes images at most this many pixels on their
            longest side (JPEG at reduced scale); larger images are assisted on the
            reduced image and the result scaled back.
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
        model_dirs: Folders holding model checkpoints (a folder with ``config.json``,
            folders of them, Ultralytics ``*.pt`` files) offered by ``GET /api/models``
            next to the local Hugging Face cache. Env ``POSEKIT_MODEL_DIRS``: separated
            by commas or the OS path separator.
        session_ttl_hours: How long a login lasts (default 7 days: a team member logs
            in about once a week); the browser drops the cookie then and the server no
            longer accepts the session. Logging out, or disabling the user, ends it
            at once.
        secure_cookies: ``auto``: the session cookie is ``Secure`` when the request came
            over HTTPS (behind a TLS proxy: run uvicorn with ``--proxy-headers``);
            ``always``: always ``Secure`` (the browser then sends it over HTTPS only).
        login_max_failures: Failed logins for one username, or from one client address,
            within ``login_failure_window_s`` before further attempts get 429 (with
            ``Retry-After``) until the window has passed; a successful login resets the
            username's and the address's count.
        login_failure_window_s: The window of ``login_max_failures``, seconds.
        login_link_ttl_s: How long a one-time login link (printed by ``posekit serve`` /
            ``posekit demo``, or made by an admin) stays valid.
    """

    model_config = SettingsConfigDict(env_prefix="POSEKIT_", extra="ignore")

    workspace: Path = Path("posekit-data")
    database_url: str | None = Field(default=None, repr=False)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_upload_bytes: int = Field(64 * 1024 * 1024, gt=0)
    max_request_bytes: int = Field(1024 * 1024 * 1024, gt=0)
    max_json_bytes: int = Field(1024 * 1024, gt=0)
    max_pixels: int = Field(MAX_PIXELS, gt=0)
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rate_limit_per_second: float = Field(50.0, ge=0)
    rate_limit_burst: int = Field(200, ge=1)
    assist_max_side: int = Field(4096, ge=256)
    max_files: int = Field(1000, gt=0)
    job_queue_size: int = Field(8, ge=1)
    image_cache_bytes: int = Field(256 * 1024 * 1024, ge=0)
    thumbnail_cache_items: int = Field(1024, ge=0)
    image_max_age: int = Field(86400, ge=0)
    assist_options: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"blazepose": {"refine_passes": 0}}
    )
    model_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    session_ttl_hours: float = Field(7 * 24.0, gt=0)
    secure_cookies: Literal["auto", "always"] = "auto"
    login_max_failures: int = Field(5, ge=1)
    login_failure_window_s: float = Field(900.0, gt=0)
    login_link_ttl_s: float = Field(3600.0, gt=0)
    # Seek proxies (posekit.store.video_proxies): a display-only copy of each video
    # whose longer side exceeds this, built in the background; 0 builds none.
    video_proxy_side: int = Field(960, ge=0, le=4096)

    @field_validator("model_dirs", mode="before")
    @classmethod
    def _path_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            import os
            import re

            parts = re.split(f"[,{re.escape(os.pathsep)}]", value)
            return [part.strip() for part in parts if part.strip()]
        return value

    @field_validator("allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
