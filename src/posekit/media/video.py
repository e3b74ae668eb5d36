"""Videos as sequences of RGB frames: files through PyAV, animated WebP, frame folders.

Frame ``i`` is always the same pixels, whether reached by seeking or by decoding from
the start: random access seeks to the keyframe at or before ``i`` and decodes forward
to its exact presentation timestamp, using a :class:`VideoIndex` built once per file.

Example:
    >>> from posekit.media.video import open_video          # doctest: +SKIP
    >>> with open_video("clip.mp4") as video:                # doctest: +SKIP
    ...     rgb = video.frame(120)                           # (H, W, 3) uint8
    ...     for number, frame in enumerate(video.frames(step=10)):
    ...         ...

Needs the ``video`` extra (``pip install 'posekit[video]'``, PyAV) for video files;
frame folders and animated WebP only need Pillow.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from posekit.media.image import IMAGE_EXTENSIONS, ImageError, image_size, load_image
from posekit.media.video_index import (
    FrameIndexError,
    VideoError,
    VideoIndex,
    VideoLimitError,
    VideoLimits,
    apply_orientation,
    build_video_index,
    orientation_from_display_matrix,
)

__all__ = [
    "VIDEO_EXTENSIONS",
    "FrameIndexError",
    "Video",
    "VideoError",
    "VideoIndex",
    "VideoLimitError",
    "VideoLimits",
    "apply_orientation",
    "build_video_index",
    "open_frame_folder",
    "open_video",
    "orientation_from_display_matrix",
    "scale_rgb",
]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".gif", ".webp"})
DEFAULT_CACHE_FRAMES = 8


def scale_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An ``(H, W, 3)`` RGB frame scaled down to ``size`` = ``(width, height)`` (area
    average, Pillow's box filter)."""
    from PIL import Image

    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    picture = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(picture.resize(tuple(size), Image.Resampling.BOX), dtype=np.uint8)


class Video:
    """A video: ``frame_count`` RGB frames of ``height x width`` (after rotation).

    Attributes:
        path: The file (or folder) read.
        frame_count: Number of readable frames.
        fps: Average frame rate (``frame_count / duration``).
        width, height: Frame size after rotation.
        rotation: Degrees clockwise applied to show frames upright (0/90/180/270).
        duration: Seconds from the first frame's start to the last frame's end.
        timestamps: ``(N,) float64`` presentation time of each frame in seconds (frame 0
            at 0.0); variable frame rate shows as uneven steps.
        keyframes: ``(M,) int64`` indices of the frames decoding can start from.
        index: The :class:`VideoIndex` (None for frame folders and animated WebP).
        seek_count: Seeks done so far by :meth:`frame` (sequential reads do none).

    Frames returned by :meth:`frame` are read-only (they may be cached): copy one to
    draw on it in place. Subclasses implement ``_decode`` and ``_iterate``.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        timestamps: np.ndarray,
        duration: float,
        keyframes: np.ndarray,
        rotation: int = 0,
        index: VideoIndex | None = None,
        cache_frames: int = DEFAULT_CACHE_FRAMES,
    ) -> None:
        self.path = path
        self.width = int(width)
        self.height = int(height)
        self.timestamps = np.asarray(timestamps, dtype=np.float64)
        self.timestamps.flags.writeable = False
        self.duration = float(duration)
        self.keyframes = np.asarray(keyframes, dtype=np.int64)
        self.rotation = int(rotation)
        self.index = index
        self.seek_count = 0
        self._cache: OrderedDict[int | tuple[int, int, int], np.ndarray] = OrderedDict()
        self._cache_frames = max(0, int(cache_frames))
        self._closed = False

    # -------------------------------------------------------------- properties
    @property
    def frame_count(self) -> int:
        return len(self.timestamps)

    @property
    def fps(self) -> float:
        return self.frame_count / self.duration if self.duration > 0 else 0.0

    def __len__(self) -> int:
        return self.frame_count

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({str(self.path)!r}, {self.frame_count} frames, "
            f"{self.width}x{self.height}, {self.fps:.3f} fps)"
        )

    # -------------------------------------------------------------- access
    def _check_open(self) -> None:
        if self._closed:
            raise VideoError(f"{self.path}: video is closed")

    def _check_frame(self, i: int) -> int:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise TypeError(f"frame index must be an int, got {type(i).__name__}")
        i = int(i)
        if i < 0:
            i += self.frame_count
        if not 0 <= i < self.frame_count:
            damaged = self.index.damaged if self.index is not None else None
            declared = self.index.declared_frames if self.index is not None else 0
            if damaged and i >= self.frame_count and (not declared or i < declared):
                raise FrameIndexError(
                    f"{self.path}: frame {i} is past the damaged part of the file "
                    f"({damaged}); only frames 0-{self.frame_count - 1} are readable"
                )
            raise FrameIndexError(
                f"{self.path}: frame {i} out of range (video has {self.frame_count} frames)"
            )
        return i

    def _check_size(self, size: tuple[int, int] | None) -> tuple[int, int] | None:
        """``size`` as ``(width, height)`` ints, None for the frame's own size."""
        if size is None:
            return None
        try:
            width, height = (int(v) for v in size)
        except (TypeError, ValueError):
            raise TypeError(f"size must be (width, height), got {size!r}") from None
        if not (1 <= width <= self.width and 1 <= height <= self.height):
            raise ValueError(
                f"{self.path}: size {width}x{height} must be between 1x1 and the frame's "
                f"{self.width}x{self.height} (frames are only scaled down)"
            )
        return None if (width, height) == (self.width, self.height) else (width, height)

    def frame(self, i: int, *, size: tuple[int, int] | None = None) -> np.ndarray:
        """Frame ``i`` as a read-only ``(H, W, 3) uint8`` RGB array (negative from the end).

        Args:
            i: The frame index.
            size: ``(width, height)`` to scale the frame down to (e.g. the size a view
                draws it at). Video files convert only this frame, straight to that
                size (no full-size RGB frame is made); the frames decoded on the way
                to it are never converted.

        Raises:
            FrameIndexError: ``i`` is not a readable frame (out of range, or past damage).
            VideoError: The frame cannot be decoded; the message names the file.
            ValueError: ``size`` is larger than the frame.
        """
        self._check_open()
        i = self._check_frame(i)
        scaled = self._check_size(size)
        key: int | tuple[int, int, int] = i if scaled is None else (i, *scaled)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        image = self._decode(i) if scaled is None else self._decode_scaled(i, scaled)
        image.flags.writeable = False
        if self._cache_frames:
            self._cache[key] = image
            while len(self._cache) > self._cache_frames:
                self._cache.popitem(last=False)
        return image

    def __getitem__(self, i: int) -> np.ndarray:
        return self.frame(i)

    def frames(
        self,
        start: int = 0,
        stop: int | None = None,
        step: int = 1,
        *,
        size: tuple[int, int] | None = None,
    ) -> Iterator[np.ndarray]:
        """Stream frames ``start, start + step, ...`` below ``stop`` (default: the end).

        Decodes forward without caching (memory does not grow with length) and
        independently of :meth:`frame`'s decoder. Frames are the same pixels as
        :meth:`frame` gives for the same index (and ``size``).
        """
        self._check_open()
        scaled = self._check_size(size)
        if step < 1:
            raise ValueError(f"step must be at least 1, got {step}")
        stop = self.frame_count if stop is None else min(int(stop), self.frame_count)
        start = int(start)
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        if start >= stop:
            return iter(())
        if scaled is None:
            return self._iterate(start, stop, step)
        return self._iterate_scaled(start, stop, step, scaled)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self.frames()

    # -------------------------------------------------------------- backend
    def _decode(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def _decode_scaled(self, i: int, size: tuple[int, int]) -> np.ndarray:
        """Frame ``i`` at ``size``; backends that can decode to a size override this."""
        return scale_rgb(self._decode(i), size)

    def _iterate(self, start: int, stop: int, step: int) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def _iterate_scaled(
        self, start: int, stop: int, step: int, size: tuple[int, int]
    ) -> Iterator[np.ndarray]:
        """:meth:`_iterate` at ``size``; backends that can decode to a size override it."""
        return (scale_rgb(image, size) for image in self._iterate(start, stop, step))

    def close(self) -> None:
        """Release the decoder and the cache; further reads raise :class:`VideoError`."""
        self._cache.clear()
        self._closed = True

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not self._closed:
                self.close()
        except Exception:  # interpreter shutdown: nothing to report to
            pass


# ------------------------------------------------------------------ frame folders
_NUMBER = re.compile(r"(\d+)")


def _natural_key(name: str) -> tuple[Any, ...]:
    return tuple(int(part) if part.isdigit() else part.lower() for part in _NUMBER.split(name))


class _FolderVideo(Video):
    def __init__(self, folder: Path, files: list[Path], fps: float, **kwargs: Any) -> None:
        width, height = image_size(files[0])
        count = len(files)
        super().__init__(
            folder,
            width=width,
            height=height,
            timestamps=np.arange(count, dtype=np.float64) / fps,
            duration=count / fps,
            keyframes=np.arange(count, dtype=np.int64),
            **kwargs,
        )
        self.files = files

    def _load(self, i: int) -> np.ndarray:
        path = self.files[i]
        try:
            image = load_image(path)
        except ImageError as exc:
            raise VideoError(f"{self.path}: frame {i}: {exc}") from None
        if image.shape[:2] != (self.height, self.width):
            raise VideoError(
                f"{self.path}: frame {i} ({path.name}) is {image.shape[1]}x{image.shape[0]}, "
                f"but the folder's frames are {self.width}x{self.height}"
            )
        return image

    def _decode(self, i: int) -> np.ndarray:
        return self._load(i)

    def _iterate(self, start: int, stop: int, step: int) -> Iterator[np.ndarray]:
        for i in range(start, stop, step):
            yield self._load(i)


def open_frame_folder(
    folder: str | Path,
    fps: float,
    *,
    limits: VideoLimits | None = None,
    cache_frames: int = DEFAULT_CACHE_FRAMES,
) -> Video:
    """A folder of numbered images (``frame_0001.png``, ``12.jpg``...) as one video.

    Frames are ordered by natural sort of the names (``2`` before ``10``); every image
    name must contain a number. Images keep their EXIF orientation.

    Raises:
        VideoError: The folder is missing or empty, or a name has no number.
        VideoLimitError: Over one of ``limits``.
    """
    folder = Path(folder)
    limits = limits or VideoLimits()
    if not folder.is_dir():
        raise VideoError(f"{folder}: not a folder")
    fps = float(fps)
    if not fps > 0:
        raise VideoError(f"{folder}: fps must be positive, got {fps}")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise VideoError(
            f"{folder}: no frames (images with extensions {', '.join(sorted(IMAGE_EXTENSIONS))})"
        )
    unnumbered = sorted(p.name for p in files if not _NUMBER.search(p.stem))
    if unnumbered:
        raise VideoError(
            f"{folder}: frame names must be numbered; {len(unnumbered)} are not, e.g. "
            f"{', '.join(unnumbered[:3])}"
        )
    files.sort(key=lambda p: _natural_key(p.name))
    limits.check(folder, frames=len(files), duration_s=len(files) / fps)
    try:
        video = _FolderVideo(folder, files, fps, cache_frames=cache_frames)
    except ImageError as exc:
        raise VideoError(f"{folder}: first frame: {exc}") from None
    limits.check(folder, width=video.width, height=video.height)
    log.debug("%s: %d frames at %.3f fps", folder, video.frame_count, fps)
    return video


# ------------------------------------------------------------------ animated WebP
class _PillowAnimation(Video):
    """Animated WebP through Pillow (FFmpeg's WebP decoder reads still images only)."""

    def __init__(self, path: Path, image: Any, **kwargs: Any) -> None:
        count = int(getattr(image, "n_frames", 1))
        durations = []
        for i in range(count):  # Pillow reads a frame's duration when it decodes it
            image.seek(i)
            image.load()
            durations.append(max(float(image.info.get("duration", 0) or 0), 0.0) / 1000.0)
        if not any(durations):
            durations = [0.1] * count  # no timing: 10 fps, like browsers' default
        durations_arr = np.asarray(durations, dtype=np.float64)
        starts = np.concatenate(([0.0], np.cumsum(durations_arr)[:-1]))
        super().__init__(
            path,
            width=image.width,
            height=image.height,
            timestamps=starts,
            duration=float(durations_arr.sum()),
            keyframes=np.arange(count, dtype=np.int64),
            **kwargs,
        )
        self._image = image

    def _decode(self, i: int) -> np.ndarray:
        try:
            self._image.seek(i)
            return np.asarray(self._image.convert("RGB"), dtype=np.uint8).copy()
        except (OSError, ValueError, EOFError) as exc:
            raise VideoError(f"{self.path}: frame {i} cannot be decoded ({exc})") from None

    def _iterate(self, start: int, stop: int, step: int) -> Iterator[np.ndarray]:
        for i in range(start, stop, step):
            yield self._decode(i)

    def close(self) -> None:
        super().close()
        self._image.close()


def _open_webp(path: Path, limits: VideoLimits, cache_frames: int) -> Video:
    from PIL import Image

    try:
        image = Image.open(path)
    except (OSError, ValueError) as exc:
        raise VideoError(f"{path}: not a readable WebP ({exc})") from None
    try:
        limits.check(
            path, width=image.width, height=image.height, frames=int(getattr(image, "n_frames", 1))
        )
        video = _PillowAnimation(path, image, cache_frames=cache_frames)
        limits.check(path, duration_s=video.duration)
    except (OSError, ValueError, EOFError) as exc:
        image.close()
        if isinstance(exc, VideoError):
            raise
        raise VideoError(f"{path}: not a readable WebP ({exc})") from None
    except BaseException:
        image.close()
        raise
    return video


# ------------------------------------------------------------------ open_video
def open_video(
    path: str | Path,
    *,
    limits: VideoLimits | None = None,
    index: VideoIndex | dict[str, Any] | None = None,
    cache_frames: int = DEFAULT_CACHE_FRAMES,
    threads: int = 0,
) -> Video:
    """Open a video file (mp4/mov/mkv/avi/webm, animated GIF or WebP) for frame access.

    Args:
        path: The file.
        limits: Duration, frame size and frame count bounds (default :class:`VideoLimits`).
        index: A :class:`VideoIndex` (or its ``to_dict()``) kept from an earlier open;
            rebuilt with a warning when it does not match the file's size.
        cache_frames: How many decoded frames :meth:`Video.frame` keeps (LRU).
        threads: Decoder threads (0: FFmpeg picks).

    Raises:
        VideoError: The file is missing, not a video, or damaged before its first frame.
        VideoLimitError: Over one of ``limits``.
    """
    path = Path(path)
    limits = limits or VideoLimits()
    if path.is_dir():
        raise VideoError(f"{path}: is a folder; open numbered frames with open_frame_folder")
    if not path.is_file():
        raise VideoError(f"{path}: file not found")
    if path.suffix.lower() == ".webp":
        return _open_webp(path, limits, cache_frames)
    from posekit.media.video_av import AvVideo

    if isinstance(index, dict):
        index = VideoIndex.from_dict(index)
    if index is not None and index.file_size != path.stat().st_size:
        log.warning("%s: the given index is for another file size; rebuilding it", path)
        index = None
    if index is None:
        index = build_video_index(path, limits=limits)
    else:
        limits.check(
            path,
            width=index.coded_width,
            height=index.coded_height,
            duration_s=index.duration,
            frames=index.frame_count,
        )
    return AvVideo(path, index, cache_frames=cache_frames, threads=threads)
