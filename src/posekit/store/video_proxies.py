"""Seek proxies: a small, quickly seekable copy of a stored video, for display only.

A cold seek in a 1080p H.264 file decodes from the keyframe before the frame: half a
GOP on average (200-290 ms for a 30-frame GOP on a busy 2-core machine). The editor
shows frames at about 960 px, so a proxy (what editing software calls proxy media,
and CVAT's pre-decoded chunks) is built once per video: one H.264 file at the view's
size with a keyframe every :data:`PROXY_GOP` frames and no B-frames, tuned for fast
decoding, with a capped bit rate so that its disk cost is bounded
(:func:`proxy_bytes_bound`). Frame ``i`` of the proxy is frame ``i`` of the video
(one proxy frame per indexed frame, in order, whatever the original's timestamps).

The original stays the source of truth: exports, auto-labeling and full-resolution
views decode it; the proxy only serves pictures at or below its size.

Proxies live in ``<workspace>/proxies/``, named after the video's content hash and
size, with their :class:`~posekit.media.video.VideoIndex` beside them
(``.index.json``). A proxy counts as ready when both files exist; both are written
to temporary names and moved into place, so a failed or interrupted build leaves
nothing half-written.

Example:
    >>> from posekit.store.video_proxies import build_video_proxy, open_video_proxy
    >>> build_video_proxy(ws, video)                  # doctest: +SKIP
    >>> proxy = open_video_proxy(ws, video)           # doctest: +SKIP
    >>> proxy.frame(120)                              # (540, 960, 3) uint8
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from posekit.store.errors import StoreError
from posekit.store.videos import StoredVideo

if TYPE_CHECKING:
    from posekit.media.video import Video

__all__ = [
    "DEFAULT_PROXY_SIDE",
    "PROXY_GOP",
    "ProxyCancelled",
    "ProxyInfo",
    "build_video_proxy",
    "open_video_proxy",
    "proxy_bytes_bound",
    "proxy_info",
    "proxy_size",
    "prune_video_proxies",
    "remove_video_proxies",
]

log = logging.getLogger(__name__)

PROXY_DIR = "proxies"
#: Longer side of a proxy in pixels: the editor draws a 1080p frame 900 px wide.
DEFAULT_PROXY_SIDE = 960
#: Keyframe interval of a proxy: a cold seek decodes at most this many small frames.
PROXY_GOP = 5
#: x264 quality of a proxy (capped by :data:`PROXY_KBPS_AT_540P`).
PROXY_CRF = 23
#: Bit rate cap of a 960x540 proxy in kbit/s (scaled with the pixel count): the disk
#: bound, about a quarter of a phone's 16 Mbit/s 1080p recording.
PROXY_KBPS_AT_540P = 4000
#: ... and at most this share of the original's average bit rate (an original that
#: is already small on disk gets a proxy of at most half its size).
PROXY_MAX_SHARE = 0.5
#: The cap never goes below this (kbit/s).
PROXY_MIN_KBPS = 300
_PIXELS_540P = 960 * 540


class ProxyCancelled(Exception):
    """A proxy build was cancelled (the server is stopping); nothing was written."""


@dataclass(frozen=True)
class ProxyInfo:
    """Where a video's proxy is, and whether it is built.

    Attributes:
        path: The proxy file (``.mp4``), whether or not it exists yet.
        width, height: Its frame size (after rotation, like the video's).
        ready: Both the file and its index exist.
        bytes: Size of the file and its index on disk (0 when not ready).
        bound_bytes: The most the proxy can take on disk (bit rate cap x duration).
    """

    path: Path
    width: int
    height: int
    ready: bool
    bytes: int
    bound_bytes: int

    @property
    def index_path(self) -> Path:
        return _index_path(self.path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "width": self.width,
            "height": self.height,
            "ready": self.ready,
            "bytes": self.bytes,
            "bound_bytes": self.bound_bytes,
        }


def _index_path(path: Path) -> Path:
    return path.with_name(path.name + ".index.json")


def proxy_size(video: StoredVideo, max_side: int = DEFAULT_PROXY_SIDE) -> tuple[int, int] | None:
    """``(width, height)`` of the proxy (even, aspect kept, longer side ``max_side``),
    or None when the video needs none: not a video file, or not larger than that."""
    if video.kind != "file" or video.media_path is None or max_side <= 0:
        return None
    longer = max(video.width, video.height)
    if longer <= max_side:
        return None
    scale = max_side / longer
    width = max(2, round(video.width * scale / 2) * 2)
    height = max(2, round(video.height * scale / 2) * 2)
    return width, height


def _kbps(video: StoredVideo, size: tuple[int, int]) -> int:
    """The proxy's bit rate cap: :data:`PROXY_KBPS_AT_540P` scaled with the pixel
    count, and at most :data:`PROXY_MAX_SHARE` of the original's average bit rate."""
    cap = PROXY_KBPS_AT_540P * size[0] * size[1] / _PIXELS_540P
    if video.path is not None and video.duration > 0 and video.path.is_file():
        original = video.path.stat().st_size * 8 / video.duration / 1000
        cap = min(cap, PROXY_MAX_SHARE * original)
    return max(PROXY_MIN_KBPS, round(cap))


def proxy_bytes_bound(video: StoredVideo, size: tuple[int, int]) -> int:
    """The most a proxy of ``size`` can take on disk: with a VBV buffer of one second
    at the capped rate, the stream holds at most ``rate x (duration + 1 s)``; plus 2%
    and 64 KiB for the container and the index beside it."""
    seconds = max(video.duration, video.frame_count / max(video.fps, 1e-6))
    return int(_kbps(video, size) * 1000 / 8 * (seconds + 1) * 1.02) + 65536


def _proxy_name(video: StoredVideo) -> str:
    return video.sha256 or f"video-{video.id}"


def _proxy_path(root: Path, video: StoredVideo, size: tuple[int, int]) -> Path:
    return Path(root) / PROXY_DIR / f"{_proxy_name(video)}-{size[0]}x{size[1]}.mp4"


def remove_video_proxies(root: Path, name: str) -> int:
    """Delete the proxies (every size) named ``name`` (a video's content hash, or
    ``video-<id>``) in the workspace ``root``; returns how many files went."""
    folder = Path(root) / PROXY_DIR
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob(f"{name}-*x*.mp4*"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed


#: A proxy's files: the proxy, its index, and both while they are written.
_PROXY_FILE = re.compile(r"^\.?(?P<name>.+)-\d+x\d+(\.partial)?\.mp4(\.index\.json(\.partial)?)?$")


def prune_video_proxies(ws: Any) -> int:
    """Delete the proxies of videos the workspace no longer has (e.g. of a deleted
    project); returns how many files went. Other files in the folder are left alone."""
    from sqlalchemy import select

    from posekit.store.tables import VideoRow

    folder = Path(ws.root) / PROXY_DIR
    if not folder.is_dir():
        return 0
    with ws._read() as conn:
        rows = conn.execute(select(VideoRow.id, VideoRow.sha256)).all()
    keep = {sha for _, sha in rows if sha} | {f"video-{video_id}" for video_id, _ in rows}
    removed = 0
    for path in folder.iterdir():
        match = _PROXY_FILE.match(path.name)
        if match is not None and match["name"] not in keep and path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d seek proxy files of deleted videos", removed)
    return removed


def proxy_info(ws: Any, video: StoredVideo, max_side: int = DEFAULT_PROXY_SIDE) -> ProxyInfo | None:
    """The video's proxy (built or not), or None when the video needs none."""
    size = proxy_size(video, max_side)
    if size is None:
        return None
    path = _proxy_path(ws.root, video, size)
    index = _index_path(path)
    ready = path.is_file() and index.is_file()
    used = path.stat().st_size + index.stat().st_size if ready else 0
    return ProxyInfo(path, size[0], size[1], ready, used, proxy_bytes_bound(video, size))


def build_video_proxy(
    ws: Any,
    video: StoredVideo,
    max_side: int = DEFAULT_PROXY_SIDE,
    *,
    cancelled: Callable[[], bool] | None = None,
) -> ProxyInfo | None:
    """Build the video's proxy unless it exists; returns it (None: the video needs none).

    Decodes the original once, forward, straight to the proxy's size, and encodes it
    with x264 (``veryfast``, ``tune=fastdecode``, a keyframe every :data:`PROXY_GOP`
    frames, no B-frames, CRF :data:`PROXY_CRF` capped at the bit rate behind
    :func:`proxy_bytes_bound`). The proxy must come out with exactly the video's
    frame count, or it is deleted and the build fails.

    Args:
        cancelled: Polled once per frame; when it returns True the build stops
            (:class:`ProxyCancelled`) and nothing is left on disk.

    Raises:
        StoreError: The proxy does not match the video (frame count), or encoding failed.
        VideoError: The original cannot be decoded.
        ProxyCancelled: ``cancelled`` said so.
    """
    from posekit.media.video import build_video_index
    from posekit.render import RenderError
    from posekit.render.video import write_video

    info = proxy_info(ws, video, max_side)
    if info is None or info.ready:
        return info
    size = (info.width, info.height)
    info.path.parent.mkdir(parents=True, exist_ok=True)
    kbps = _kbps(video, size)
    source = ws.open_video(video, cache_frames=0)
    try:
        rate = video.fps if video.fps > 0 else 30.0

        def frames() -> Iterator[Any]:
            for n, image in enumerate(source.frames(size=size)):
                if cancelled is not None and n % 8 == 0 and cancelled():
                    raise ProxyCancelled(f"video {video.id}: proxy build cancelled")
                yield image

        try:
            written = write_video(
                info.path,
                frames(),
                rate,
                crf=PROXY_CRF,
                preset="veryfast",
                gop=PROXY_GOP,
                options={
                    "bf": "0",
                    "tune": "fastdecode",
                    "sc_threshold": "0",
                    "x264-params": f"vbv-maxrate={kbps}:vbv-bufsize={kbps}",
                },
            )
        except RenderError as exc:
            raise StoreError(f"video {video.id} ({video.file_name!r}): proxy: {exc}") from None
    finally:
        source.close()
    try:
        index = build_video_index(info.path)
        if written != video.frame_count or index.frame_count != video.frame_count:
            raise StoreError(
                f"video {video.id} ({video.file_name!r}): the proxy has {index.frame_count} "
                f"frames, the video {video.frame_count}; proxy deleted"
            )
        partial = info.index_path.with_name(info.index_path.name + ".partial")
        partial.write_text(json.dumps(index.to_dict()), encoding="utf-8")
        os.replace(partial, info.index_path)
    except BaseException:
        info.path.unlink(missing_ok=True)
        raise
    built = proxy_info(ws, video, max_side)
    log.info(
        "video %d: seek proxy %dx%d built, %.1f MB (bound %.1f MB)",
        video.id,
        size[0],
        size[1],
        built.bytes / 1e6,
        built.bound_bytes / 1e6,
    )
    return built


def open_video_proxy(
    ws: Any, video: StoredVideo, max_side: int = DEFAULT_PROXY_SIDE, *, cache_frames: int = 0
) -> Video | None:
    """The video's proxy opened for frame access (its stored index reused), or None
    when it is not built (or the video needs none). Close it after use."""
    from posekit.media.video import VideoError, VideoIndex, open_video

    info = proxy_info(ws, video, max_side)
    if info is None or not info.ready:
        return None
    try:
        index = VideoIndex.from_dict(json.loads(info.index_path.read_text(encoding="utf-8")))
        return open_video(info.path, index=index, cache_frames=cache_frames)
    except (OSError, ValueError, VideoError) as exc:
        log.warning("video %d: proxy %s unreadable (%s); not used", video.id, info.path, exc)
        return None
