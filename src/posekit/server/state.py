"""Per-app state: the workspace, loaded models, image caches and the job manager."""

from __future__ import annotations

import io
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from posekit.models.base import ModelError, PoseEstimator
from posekit.server.jobs import JobManager
from posekit.server.settings import Settings
from posekit.skeleton import Skeleton
from posekit.store import NotFoundError, StoreError, Workspace

__all__ = ["AppState", "ImageCache", "ModelPool"]

log = logging.getLogger(__name__)

#: Different model specs loaded at once for AI-assist (each may hold hundreds of MB).
MAX_LOADED_MODELS = 4


class ModelPool:
    """Pose estimators for AI-assist, created once per spec and reused.

    Each estimator has its own lock: backends such as TFLite interpreters are not
    thread-safe, and FastAPI runs sync routes on a thread pool.
    """

    def __init__(
        self,
        max_models: int = MAX_LOADED_MODELS,
        options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self._options = options or {}
        self._models: OrderedDict[str, tuple[PoseEstimator, threading.Lock]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_models = max_models

    def get(self, spec: str) -> tuple[PoseEstimator, threading.Lock]:
        """The estimator for ``spec`` and the lock to hold while using it.

        Raises:
            ModelError: Unknown spec or the model cannot be loaded.
        """
        from posekit.models import create_pose_estimator
        from posekit.models.registry import parse_spec

        spec = spec.strip()
        if not spec:
            raise ModelError("model spec is empty")
        # Creation is serialized: two first requests must not load a model twice.
        with self._lock:
            entry = self._models.get(spec)
            if entry is not None:
                self._models.move_to_end(spec)
                return entry
            log.info("loading pose estimator %r for AI-assist", spec)
            options = self._options.get(parse_spec(spec)[0], {})
            entry = (create_pose_estimator(spec, **options), threading.Lock())
            self._models[spec] = entry
            while len(self._models) > self._max_models:
                _, (old, old_lock) = self._models.popitem(last=False)
                with old_lock:
                    old.close()
            return entry

    def close(self) -> None:
        with self._lock:
            for estimator, lock in self._models.values():
                with lock:
                    estimator.close()
            self._models.clear()


class ImageCache:
    """Decoded images by item id, least recently used dropped beyond ``max_bytes``.

    Decoding a JPEG costs about as much as a BlazePose call, so AI-assist on the
    image a user is working on must not decode it again for every box.
    """

    def __init__(self, max_bytes: int) -> None:
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def get(self, item_id: int, path: Path) -> np.ndarray:
        """The decoded ``(H, W, 3) uint8`` image of an item (loaded on a miss)."""
        from posekit.media import load_image

        with self._lock:
            image = self._images.get(item_id)
            if image is not None:
                self._images.move_to_end(item_id)
                return image
        # Decode outside the lock; a concurrent miss on the same item decodes twice,
        # which is harmless and rarer than blocking every other request.
        image = load_image(path)
        image.setflags(write=False)
        with self._lock:
            if item_id not in self._images:
                self._images[item_id] = image
                self._bytes += image.nbytes
            while self._bytes > self._max_bytes and self._images:
                _, old = self._images.popitem(last=False)
                self._bytes -= old.nbytes
        return image


class BytesCache:
    """Small LRU of encoded blobs (thumbnails)."""

    def __init__(self, max_items: int) -> None:
        self._data: OrderedDict[Any, bytes] = OrderedDict()
        self._max_items = max_items
        self._lock = threading.Lock()

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: bytes) -> None:
        if self._max_items <= 0:
            return
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._max_items:
                self._data.popitem(last=False)


@dataclass(frozen=True)
class ItemMedia:
    """What serving an item's image needs (immutable once the item exists)."""

    item_id: int
    project_id: int
    path: Path
    etag: str
    media_type: str


class AppState:
    """Everything one app instance holds; created by :func:`posekit.server.create_app`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ws = Workspace(settings.workspace)
        self.models = ModelPool(options=settings.assist_options)
        self.images = ImageCache(settings.image_cache_bytes)
        self.thumbnails = BytesCache(settings.thumbnail_cache_items)
        self.jobs = JobManager(self.ws, queue_size=settings.job_queue_size)
        self._media: dict[int, ItemMedia] = {}
        self._templates: dict[int, Skeleton] = {}
        self._lock = threading.Lock()

    def item_media(self, item_id: int) -> ItemMedia:
        """Path, ETag and type of an item's image (cached: media never change).

        Raises:
            NotFoundError: No such item, or it has no image file.
        """
        media = self._media.get(item_id)
        if media is not None:
            return media
        from posekit.store.queries import project_id_of_item

        item = self.ws.get_item(item_id)
        if item.path is None:
            raise NotFoundError(f"item {item_id} ({item.file_name!r}) has no image file")
        if not item.path.is_file():
            raise NotFoundError(f"item {item_id} ({item.file_name!r}): image file is missing")
        media = ItemMedia(
            item_id=item_id,
            project_id=project_id_of_item(self.ws, item_id),
            path=item.path,
            etag=f'"{item.sha256 or item.media_path}"',
            media_type=_media_type(item.path),
        )
        with self._lock:
            if len(self._media) > 100_000:
                self._media.clear()
            self._media[item_id] = media
        return media

    def template(self, project_id: int) -> Skeleton:
        """A project's template (cached: a project keeps its template)."""
        template = self._templates.get(project_id)
        if template is None:
            from posekit.store.queries import get_project_by_id

            template = get_project_by_id(self.ws, project_id).template
            self._templates[project_id] = template
        return template

    def thumbnail(self, item_id: int, size: int) -> tuple[bytes, str]:
        """JPEG thumbnail (longest side ``size``) and its ETag."""
        from PIL import Image, ImageOps

        media = self.item_media(item_id)
        etag = f'"{media.etag.strip(chr(34))}-t{size}"'
        data = self.thumbnails.get((item_id, size))
        if data is None:
            try:
                with Image.open(media.path) as image:
                    image.draft("RGB", (size, size))  # JPEG: decode at reduced scale
                    image = ImageOps.exif_transpose(image).convert("RGB")
                    image.thumbnail((size, size))
                    out = io.BytesIO()
                    image.save(out, "JPEG", quality=80)
            except (OSError, ValueError) as exc:
                raise StoreError(f"item {item_id}: cannot read its image: {exc}") from None
            data = out.getvalue()
            self.thumbnails.put((item_id, size), data)
        return data, etag

    def close(self) -> None:
        self.jobs.close()
        self.models.close()
        self.ws.close()


_MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
_FORMAT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}


def _media_type(path: Path) -> str:
    """The image type by content (the stored name keeps the uploader's extension)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return _FORMAT_TYPES.get(image.format or "", "application/octet-stream")
    except (OSError, ValueError):
        return _MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
