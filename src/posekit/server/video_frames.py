"""The server's video frames: open decoders that stay positioned, encoded JPEGs in a
cache bounded in bytes, and seek proxies built in the background.

* An open video (LRU, :data:`MAX_OPEN_VIDEOS`) keeps its decoder where the last read
  left it, so a request for a later frame of the same GOP decodes on instead of
  seeking back to a keyframe (the page's prefetcher asks in that order).
* Frames are decoded straight to the size the view asked for (one swscale pass for
  the target frame only; the frames decoded on the way are never converted).
* Encoded JPEGs (frames and timeline strips) are kept in :class:`BytesLRU`.
* A video file larger than the view gets a seek proxy
  (:mod:`posekit.store.video_proxies`), built by one low-priority background thread
  the first time the editor opens the video; once it is ready, frames asked for at
  or below its size come from it (a cold seek decodes at most a few 960 px frames
  instead of up to a GOP of 1080p ones). The original serves everything larger.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from posekit.store.video_proxies import (
    ProxyCancelled,
    ProxyInfo,
    build_video_proxy,
    open_video_proxy,
    proxy_info,
    prune_video_proxies,
)
from posekit.store.videos import StoredVideo

__all__ = ["BytesLRU", "VideoFrames", "proxy_side", "scaled_size"]

log = logging.getLogger(__name__)

#: Open videos kept (originals and proxies; each holds a decoder and a few frames).
MAX_OPEN_VIDEOS = 6
#: Decoded frames kept per open video (at most the view's size when it asks so).
FRAMES_PER_VIDEO = 8
#: Bytes of encoded JPEGs kept, across videos (a 960x540 frame at q80: ~75 KiB).
JPEG_CACHE_BYTES = 64 * 2**20
#: Nice value of the proxy builder thread: requests of people go first.
BUILDER_NICE = 10


def proxy_side(settings: Any) -> int:
    """Longer side of seek proxies (0: none): the setting ``video_proxy_side``
    (environment ``POSEKIT_VIDEO_PROXY_SIDE``)."""
    return int(settings.video_proxy_side)


def scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The frame size served for ``max_side``: scaled down by the largest whole factor
    that keeps the longer side at least ``max_side`` (the frame's own size when
    ``max_side`` is None or not at most half of it)."""
    longer = max(width, height)
    if max_side is None or longer < 2 * max_side:
        return width, height
    factor = longer // max_side
    return -(-width // factor), -(-height // factor)


class BytesLRU:
    """A least-recently-used map of ``bytes`` values bounded by their total size.

    A value larger than the whole budget is not kept. Thread-safe.
    """

    def __init__(self, budget_bytes: int) -> None:
        self.budget = int(budget_bytes)
        self.bytes = 0
        self._data: OrderedDict[Any, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Any) -> bool:
        return key in self._data

    def get(self, key: Any) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: bytes) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self.bytes -= len(old)
            if len(value) > self.budget:
                return
            self._data[key] = value
            self.bytes += len(value)
            while self.bytes > self.budget:
                _, dropped = self._data.popitem(last=False)
                self.bytes -= len(dropped)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.bytes = 0


class VideoFrames:
    """Open videos and proxies (LRU, bounded), JPEGs (bounded in bytes), the proxy
    builder. Thread-safe; one per app."""

    def __init__(self, *, jpeg_bytes: int = JPEG_CACHE_BYTES) -> None:
        self._videos: OrderedDict[tuple[int, str], tuple[Any, threading.Lock]] = OrderedDict()
        self.jpegs = BytesLRU(jpeg_bytes)
        self._lock = threading.Lock()
        self._builds: dict[int, str] = {}  # video id -> "queued" | "building" | error
        self._queue: queue.Queue[tuple[Any, StoredVideo, int] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---------------------------------------------------------- decoders
    def _open(
        self, key: tuple[int, str], opener: Callable[[], Any]
    ) -> tuple[Any, threading.Lock] | None:
        with self._lock:
            entry = self._videos.get(key)
            if entry is not None:
                self._videos.move_to_end(key)
                return entry
            opened = opener()
            if opened is None:
                return None
            entry = (opened, threading.Lock())
            self._videos[key] = entry
            while len(self._videos) > MAX_OPEN_VIDEOS:
                _, (old, old_lock) = self._videos.popitem(last=False)
                with old_lock:
                    old.close()
            return entry

    def frame(
        self, ws: Any, video: StoredVideo, index: int, size: tuple[int, int] | None = None
    ) -> np.ndarray:
        """Frame ``index`` of the original at ``size`` (None: full size)."""
        entry = self._open(
            (video.id, "original"), lambda: ws.open_video(video, cache_frames=FRAMES_PER_VIDEO)
        )
        opened, lock = entry
        with lock:
            return opened.frame(index, size=size)

    def proxy_frame(
        self, ws: Any, video: StoredVideo, index: int, side: int, size: tuple[int, int]
    ) -> np.ndarray | None:
        """Frame ``index`` from the ready proxy at ``size``; None when there is none."""
        entry = self._open(
            (video.id, f"proxy{side}"),
            lambda: open_video_proxy(ws, video, side, cache_frames=FRAMES_PER_VIDEO),
        )
        if entry is None:
            return None
        opened, lock = entry
        with lock:
            return opened.frame(index, size=size)

    # ---------------------------------------------------------- proxies
    def proxy(self, ws: Any, video: StoredVideo, side: int, *, build: bool = True) -> dict | None:
        """The proxy's state for the API (None: the video needs none); ``build``:
        queue a build when it is neither ready nor being built (a failed one is not
        retried until the server restarts)."""
        info = proxy_info(ws, video, side)
        if info is None:
            return None
        state = "ready" if info.ready else self._builds.get(video.id, "missing")
        error = None
        if state not in ("ready", "missing", "queued", "building"):
            state, error = "failed", state
        if state == "missing" and build:
            state = self._queue_build(ws, video, side)
        return {**info.to_dict(), "state": state, "error": error}

    def ready_proxy(self, ws: Any, video: StoredVideo, side: int) -> ProxyInfo | None:
        """The proxy when it is ready (None otherwise: nothing is queued here)."""
        info = proxy_info(ws, video, side)
        return info if info is not None and info.ready else None

    def _queue_build(self, ws: Any, video: StoredVideo, side: int) -> str:
        with self._lock:
            if self._stopping.is_set():
                return "missing"
            if video.id in self._builds:
                return self._builds[video.id]
            self._builds[video.id] = "queued"
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._build_loop, name="posekit-video-proxies", daemon=True
                )
                self._worker.start()
        self._queue.put((ws, video, side))
        return "queued"

    def _build_loop(self) -> None:
        # Not Linux, or not allowed: normal priority.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BUILDER_NICE)
        pruned = False
        while True:
            job = self._queue.get()
            if job is None or self._stopping.is_set():
                return
            ws, video, side = job
            if not pruned:  # once per server: proxies of videos deleted meanwhile
                pruned = True
                try:
                    prune_video_proxies(ws)
                except Exception as exc:  # pruning is housekeeping: never stop building
                    log.warning("pruning seek proxies failed: %s", exc)
            self._builds[video.id] = "building"
            try:
                build_video_proxy(ws, video, side, cancelled=self._stopping.is_set)
            except ProxyCancelled:
                return
            except Exception as exc:  # any failure is the video's state, not the server's
                log.warning("video %d: seek proxy failed: %s", video.id, exc)
                self._builds[video.id] = str(exc) or type(exc).__name__
                continue
            self._builds.pop(video.id, None)

    def wait_idle(self, timeout: float) -> bool:
        """Whether every queued proxy build finished within ``timeout`` seconds (tests,
        benchmarks)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(s in ("queued", "building") for s in self._builds.values()):
                return True
            time.sleep(0.05)
        return False

    # ---------------------------------------------------------- JPEGs
    def jpeg(self, key: tuple[Any, ...], make: Callable[[], bytes]) -> bytes:
        data = self.jpegs.get(key)
        if data is None:
            data = make()
            self.jpegs.put(key, data)
        return data

    def close(self) -> None:
        """Stop the proxy builder (a build in progress is cancelled, nothing is left
        half-written) and close every decoder."""
        self._stopping.set()
        self._queue.put(None)
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=30)
        with self._lock:
            for opened, lock in self._videos.values():
                with lock:
                    opened.close()
            self._videos.clear()
        self.jpegs.clear()
