"""Per-app state: the workspace, loaded models, image caches and the job manager."""

from __future__ import annotations

import io
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from posekit.models.base import ModelError, PoseEstimator
from posekit.server.jobs import JobManager
from posekit.server.settings import Settings
from posekit.skeleton import Skeleton
from posekit.store import NotFoundError, StoreError, Workspace
from posekit.store.storage import MediaStorage

__all__ = ["AppState", "DecodedImage", "ImageCache", "ModelPool"]

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


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image and the scale from its pixels to the item's coordinates.

    ``pixels`` is ``(H, W, 3) uint8``; an image larger than the assist limit is kept
    reduced, and ``scale_x`` / ``scale_y`` (item pixels per array pixel, 1.0 when
    full size) map coordinates back.
    """

    pixels: np.ndarray
    scale_x: float = 1.0
    scale_y: float = 1.0


class ImageCache:
    """Decoded images by item id, least recently used dropped beyond ``max_bytes``.

    Decoding a JPEG costs about as much as a BlazePose call, so AI-assist on the
    image a user is working on must not decode it again for every box. Images are
    decoded at most ``max_side`` pixels on their longest side (a JPEG at reduced
    scale), so one image never takes more than ``3 * max_side**2`` bytes here, and
    one that would not fit the cache at all is not decoded for it ahead of time.
    """

    def __init__(self, max_bytes: int, max_side: int = 4096) -> None:
        self._images: OrderedDict[int, DecodedImage] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._max_side = max_side
        self._lock = threading.Lock()

    def get(
        self,
        item_id: int,
        path: Path | Callable[[], Path | BinaryIO],
        size: tuple[int, int] | None = None,
    ) -> DecodedImage:
        """The decoded image of an item (loaded on a miss).

        Args:
            item_id: The item.
            path: Its image file, or a function giving what to decode (a media
                storage without local files: called on a miss only).
            size: The item's ``(width, height)`` (for the scale); default: read from
                the file's header.
        """
        from posekit.media import image_size, load_image

        with self._lock:
            image = self._images.get(item_id)
            if image is not None:
                self._images.move_to_end(item_id)
                return image
        # Decode outside the lock; a concurrent miss on the same item decodes twice,
        # which is harmless and rarer than blocking every other request.
        source = path() if callable(path) else path
        pixels = load_image(source, max_side=self._max_side)
        pixels.setflags(write=False)
        if size is None and not isinstance(source, Path):
            source.seek(0)
        width, height = size or image_size(source)
        image = DecodedImage(
            pixels, width / max(1, pixels.shape[1]), height / max(1, pixels.shape[0])
        )
        with self._lock:
            if item_id not in self._images and pixels.nbytes <= self._max_bytes:
                self._images[item_id] = image
                self._bytes += pixels.nbytes
            while self._bytes > self._max_bytes and self._images:
                _, old = self._images.popitem(last=False)
                self._bytes -= old.pixels.nbytes
        return image

    def prefetch(
        self,
        item_id: int,
        path: Path | Callable[[], Path | BinaryIO],
        size: tuple[int, int] | None = None,
    ) -> None:
        """Decode into the cache ahead of an assist request (errors only logged: the
        image was already sent; assist will report them)."""
        from posekit.media import ImageError

        try:
            self.get(item_id, path, size)
        except (ImageError, OSError, MemoryError) as exc:
            log.warning("item %d: not decoded for AI-assist: %s", item_id, exc)


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
    #: The key in the workspace's media storage (``Item.media_path``).
    key: str
    #: The local file when the storage keeps one, else None (bytes are streamed).
    path: Path | None
    etag: str
    media_type: str
    width: int = 0
    height: int = 0

    @property
    def size(self) -> tuple[int, int] | None:
        """``(width, height)`` as stored for the item, None if unknown."""
        return (self.width, self.height) if self.width > 0 and self.height > 0 else None


class AppState:
    """Everything one app instance holds; created by :func:`posekit.server.create_app`."""

    def __init__(self, settings: Settings, *, storage: MediaStorage | None = None) -> None:
        self.settings = settings
        self.ws = Workspace(settings.workspace, database_url=settings.database_url, storage=storage)
        self.models = ModelPool(options=settings.assist_options)
        self.images = ImageCache(settings.image_cache_bytes, settings.assist_max_side)
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
        if item.media_path is None:
            raise NotFoundError(f"item {item_id} ({item.file_name!r}) has no image file")
        if not (item.path.is_file() if item.path else self.ws.storage.exists(item.media_path)):
            raise NotFoundError(f"item {item_id} ({item.file_name!r}): image file is missing")
        media = ItemMedia(
            item_id=item_id,
            project_id=project_id_of_item(self.ws, item_id),
            key=item.media_path,
            path=item.path,
            etag=f'"{item.sha256 or item.media_path}"',
            media_type=_media_type(self.media_source(item.media_path), item.media_path),
            width=int(item.width or 0),
            height=int(item.height or 0),
        )
        with self._lock:
            if len(self._media) > 100_000:
                self._media.clear()
            self._media[item_id] = media
        return media

    def media_source(self, key: str) -> Path | BinaryIO:
        """What a decoder reads for a media key: the local file, or the bytes of a
        storage without local files (:func:`posekit.store.storage.media_source`)."""
        from posekit.store.storage import media_source

        return media_source(self.ws.storage, key)

    def media_opener(self, media: ItemMedia) -> Path | Callable[[], Path | BinaryIO]:
        """The image of ``media`` for :class:`ImageCache` (read only on a cache miss)."""
        return media.path if media.path is not None else lambda: self.media_source(media.key)

    def template(self, project_id: int) -> Skeleton:
        """A project's template (cached until :meth:`forget_template`)."""
        template = self._templates.get(project_id)
        if template is None:
            from posekit.store.queries import get_project_by_id

            template = get_project_by_id(self.ws, project_id).template
            self._templates[project_id] = template
        return template

    def forget_template(self, project_id: int) -> None:
        """Drop the cached template of a project whose template was changed."""
        self._templates.pop(project_id, None)

    def thumbnail(self, item_id: int, size: int) -> tuple[bytes, str]:
        """JPEG thumbnail (longest side ``size``) and its ETag."""
        from PIL import Image

        from posekit.media import load_image

        media = self.item_media(item_id)
        etag = f'"{media.etag.strip(chr(34))}-t{size}"'
        data = self.thumbnails.get((item_id, size))
        if data is None:
            try:
                # The pixel limit applies; a JPEG is decoded at reduced scale.
                pixels = load_image(self.media_source(media.key), max_side=size)
                out = io.BytesIO()
                Image.fromarray(pixels).save(out, "JPEG", quality=80)
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


def _media_type(source: Path | BinaryIO, key: str) -> str:
    """The image type by content (the stored name keeps the uploader's extension)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Only the header is read; the pixel limit is checked where pixels are decoded.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                return _FORMAT_TYPES.get(image.format or "", "application/octet-stream")
    except (OSError, ValueError):
        return _MEDIA_TYPES.get(Path(key).suffix.lower(), "application/octet-stream")
