"""Video errors, limits, orientation and the per-video frame index.

The index is built once per file by one demux pass over the video stream's packets
(no decoding): presentation timestamps (PTS) sorted into presentation order, keyframe
flags, and where the file is damaged. It is plain data (:meth:`VideoIndex.to_dict`),
so that a store can keep it and hand it back to ``open_video(index=...)``.

PyAV (``pip install posekit[video]``) is imported inside the functions that need it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "INDEX_VERSION",
    "FrameIndexError",
    "VideoError",
    "VideoIndex",
    "VideoLimitError",
    "VideoLimits",
    "apply_orientation",
    "build_video_index",
    "orientation_from_display_matrix",
]

log = logging.getLogger(__name__)

INDEX_VERSION = 1
#: Demuxers FFmpeg may use for ``open_video``: no playlists (hls, concat), no devices.
ALLOWED_DEMUXERS = "mov,mp4,matroska,webm,avi,gif"
_ATTACHED_PIC = 0x400  # AV_DISPOSITION_ATTACHED_PIC: cover art, not the video


class VideoError(ValueError):
    """A video cannot be read (missing, corrupt, truncated, unsupported); names the file."""


class VideoLimitError(VideoError):
    """A video exceeds a :class:`VideoLimits` bound; the message names the file and limit."""


class FrameIndexError(VideoError, IndexError):
    """A frame index outside the readable frames of a video."""


@dataclass(frozen=True)
class VideoLimits:
    """Bounds checked when a video is opened (before and during the index pass).

    Attributes:
        max_duration_s: Longest accepted duration in seconds.
        max_pixels: Largest accepted ``width * height`` of one frame.
        max_frames: Largest accepted number of frames.
    """

    max_duration_s: float = 4 * 3600.0
    max_pixels: int = 7680 * 4320
    max_frames: int = 1_000_000

    def check(
        self,
        path: Path | str,
        *,
        width: int = 0,
        height: int = 0,
        duration_s: float = 0.0,
        frames: int = 0,
    ) -> None:
        """Raise :class:`VideoLimitError` naming ``path`` when a value is over its bound."""
        if width * height > self.max_pixels:
            raise VideoLimitError(
                f"{path}: frames are {width}x{height} = {width * height} pixels, over the "
                f"limit of {self.max_pixels}"
            )
        if duration_s > self.max_duration_s:
            raise VideoLimitError(
                f"{path}: video lasts {duration_s:.1f} s, over the limit of "
                f"{self.max_duration_s:.1f} s"
            )
        if frames > self.max_frames:
            raise VideoLimitError(
                f"{path}: video has {frames} frames, over the limit of {self.max_frames}"
            )


# ------------------------------------------------------------------ orientation
def orientation_from_display_matrix(matrix: Sequence[int]) -> tuple[int, bool]:
    """``(rotation, hflip)`` that shows a frame upright, from an FFmpeg display matrix.

    ``matrix`` is the 3x3 row-major display matrix of ISO/IEC 14496-12 (nine int32,
    16.16 fixed point for the linear part) that maps a source point ``(p, q)`` to
    ``(a*p + c*q, b*p + d*q)`` in image coordinates (y down). The answer is applied as:
    mirror horizontally first when ``hflip``, then rotate ``rotation`` degrees
    clockwise (0, 90, 180 or 270). Angles that are not a multiple of 90 are rounded to
    the nearest one. The convention equals the legacy ``rotate`` tag: a phone video
    tagged ``rotate=90`` gives ``(90, False)``.
    """
    if len(matrix) != 9:
        raise VideoError(f"display matrix: expected 9 values, got {len(matrix)}")
    a, b, c, d = (float(v) / 65536.0 for v in (matrix[0], matrix[1], matrix[3], matrix[4]))
    hflip = a * d - b * c < 0
    if hflip:  # remove a mirror applied first: negate the p row of the linear map
        a, b = -a, -b
    # pure rotation left: [[cos, -sin], [sin, cos]] for a counter-clockwise angle
    counter_clockwise = math.degrees(math.atan2(-b, a))
    rotation = round(-counter_clockwise / 90.0) * 90 % 360
    if abs(((-counter_clockwise - rotation + 180) % 360) - 180) > 1.0:
        log.warning(
            "display matrix rotates by %.1f degrees; using %d", -counter_clockwise, rotation
        )
    return rotation, hflip


def apply_orientation(image: np.ndarray, rotation: int, hflip: bool = False) -> np.ndarray:
    """``image`` (H, W, C) mirrored (when ``hflip``) then rotated ``rotation`` deg clockwise."""
    if rotation % 90:
        raise VideoError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    if hflip:
        image = image[:, ::-1]
    turns = (rotation // 90) % 4
    if turns:
        image = np.rot90(image, k=-turns)
    if hflip or turns:
        image = np.ascontiguousarray(image)
    return image


def _rotation_from_tag(tag: str | None) -> int | None:
    if tag is None:
        return None
    try:
        return round(float(tag) / 90.0) * 90 % 360
    except ValueError:
        return None


# ------------------------------------------------------------------ index
@dataclass(eq=False)
class VideoIndex:
    """Presentation-order frame table of one video file.

    Attributes:
        pts: ``(N,) int64`` timestamp of each frame in presentation order, in
            ``time_base`` units (decode-order stamps when ``mode == "decode_order"``).
        keyframes: ``(M,) int64`` presentation indices of the keyframes, ascending.
        keyframe_seek: ``(M,) int64`` timestamp to seek to for each keyframe.
        time_base: Seconds per timestamp unit.
        mode: ``"pts"``: decoded frames are matched by PTS. ``"decode_order"``: the
            container's timestamps are not in presentation order (AVI with B-frames),
            frames are counted from the keyframe instead.
        last_duration: Duration of the last frame in ``time_base`` units.
        coded_width, coded_height: Frame size as decoded, before rotation.
        rotation, hflip: Orientation applied to every frame (see
            :func:`orientation_from_display_matrix`).
        codec, container_format: FFmpeg names.
        declared_frames: Frame count the container declares (0 when unknown).
        damaged: Why frames past ``len(pts)`` are unreadable, or None.
        file_size: Size in bytes of the file the index was built from.
    """

    pts: np.ndarray
    keyframes: np.ndarray
    keyframe_seek: np.ndarray
    time_base: Fraction
    mode: str = "pts"
    last_duration: int = 0
    coded_width: int = 0
    coded_height: int = 0
    rotation: int = 0
    hflip: bool = False
    codec: str = ""
    container_format: str = ""
    declared_frames: int = 0
    damaged: str | None = None
    file_size: int = 0

    def __post_init__(self) -> None:
        self.pts = np.asarray(self.pts, dtype=np.int64)
        self.keyframes = np.asarray(self.keyframes, dtype=np.int64)
        self.keyframe_seek = np.asarray(self.keyframe_seek, dtype=np.int64)
        self.time_base = Fraction(self.time_base)
        n = len(self.pts)
        if self.pts.ndim != 1 or (n > 1 and np.any(np.diff(self.pts) <= 0)):
            raise VideoError("video index: pts must be a strictly increasing 1-D array")
        if self.keyframes.shape != self.keyframe_seek.shape or self.keyframes.ndim != 1:
            raise VideoError(
                f"video index: keyframes {self.keyframes.shape} and keyframe_seek "
                f"{self.keyframe_seek.shape} must be 1-D arrays of the same length"
            )
        if n and (not len(self.keyframes) or self.keyframes[0] != 0):
            raise VideoError("video index: frame 0 must be a keyframe")
        if len(self.keyframes) and (
            np.any(np.diff(self.keyframes) <= 0) or self.keyframes[-1] >= n
        ):
            raise VideoError("video index: keyframes must be ascending indices below N")
        if self.mode not in ("pts", "decode_order"):
            raise VideoError(f"video index: unknown mode {self.mode!r}")
        if self.rotation not in (0, 90, 180, 270):
            raise VideoError(f"video index: rotation must be 0/90/180/270, got {self.rotation}")
        if self.time_base <= 0:
            raise VideoError(f"video index: time_base must be positive, got {self.time_base}")

    @property
    def frame_count(self) -> int:
        return len(self.pts)

    @property
    def timestamps(self) -> np.ndarray:
        """``(N,) float64`` presentation time of each frame in seconds, frame 0 at 0.0."""
        if not len(self.pts):
            return np.zeros(0, dtype=np.float64)
        return (self.pts - self.pts[0]).astype(np.float64) * float(self.time_base)

    @property
    def duration(self) -> float:
        """Seconds from the first frame's start to the last frame's end."""
        if not len(self.pts):
            return 0.0
        return float((int(self.pts[-1]) - int(self.pts[0]) + self.last_duration) * self.time_base)

    def keyframe_before(self, frame: int) -> int:
        """Position in ``keyframes`` of the last keyframe at or before ``frame``."""
        return int(np.searchsorted(self.keyframes, frame, side="right")) - 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; :meth:`from_dict` reads it back."""
        return {
            "version": INDEX_VERSION,
            "pts": self.pts.tolist(),
            "keyframes": self.keyframes.tolist(),
            "keyframe_seek": self.keyframe_seek.tolist(),
            "time_base": [self.time_base.numerator, self.time_base.denominator],
            "mode": self.mode,
            "last_duration": int(self.last_duration),
            "coded_width": int(self.coded_width),
            "coded_height": int(self.coded_height),
            "rotation": int(self.rotation),
            "hflip": bool(self.hflip),
            "codec": self.codec,
            "container_format": self.container_format,
            "declared_frames": int(self.declared_frames),
            "damaged": self.damaged,
            "file_size": int(self.file_size),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoIndex:
        """Rebuild an index from :meth:`to_dict` output; :class:`VideoError` if malformed."""
        if not isinstance(data, Mapping):
            raise VideoError(f"video index: expected a mapping, got {type(data).__name__}")
        if data.get("version") != INDEX_VERSION:
            raise VideoError(
                f"video index: version {data.get('version')!r} is not {INDEX_VERSION}; rebuild it"
            )
        try:
            num, den = data["time_base"]
            return cls(
                pts=np.asarray(data["pts"], dtype=np.int64),
                keyframes=np.asarray(data["keyframes"], dtype=np.int64),
                keyframe_seek=np.asarray(data["keyframe_seek"], dtype=np.int64),
                time_base=Fraction(int(num), int(den)),
                mode=str(data["mode"]),
                last_duration=int(data["last_duration"]),
                coded_width=int(data["coded_width"]),
                coded_height=int(data["coded_height"]),
                rotation=int(data["rotation"]),
                hflip=bool(data["hflip"]),
                codec=str(data["codec"]),
                container_format=str(data["container_format"]),
                declared_frames=int(data["declared_frames"]),
                damaged=None if data["damaged"] is None else str(data["damaged"]),
                file_size=int(data["file_size"]),
            )
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:
            if isinstance(exc, VideoError):
                raise
            raise VideoError(f"video index: malformed ({type(exc).__name__}: {exc})") from None


def import_av() -> Any:
    """The ``av`` module, or a :class:`VideoError` saying which extra to install."""
    try:
        import av
    except ImportError:
        raise VideoError(
            "reading video needs PyAV: pip install 'posekit[video]' (or pip install av)"
        ) from None
    return av


def open_container(path: Path) -> Any:
    """Open ``path`` with PyAV, local files and the allowed demuxers only."""
    av = import_av()
    if not path.is_file():
        raise VideoError(f"{path}: file not found")
    try:
        return av.open(
            str(path),
            container_options={
                "format_whitelist": ALLOWED_DEMUXERS,
                "protocol_whitelist": "file",
            },
        )
    except av.FFmpegError as exc:
        raise VideoError(f"{path}: not a readable video ({exc.strerror or exc})") from None


def video_stream(container: Any, path: Path) -> Any:
    """The first video stream that is not an attached picture (cover art)."""
    for stream in container.streams.video:
        try:  # PyAV < 13 has no Stream.disposition
            disposition = int(stream.disposition)
        except AttributeError:
            disposition = 0
        if not disposition & _ATTACHED_PIC:
            return stream
    raise VideoError(f"{path}: no video stream")


def orientation_of_frame(frame: Any) -> tuple[int, bool]:
    """Orientation from a decoded PyAV frame's display-matrix side data (0, False if none)."""
    av = import_av()
    for side in frame.side_data:
        if side.type == av.sidedata.sidedata.Type.DISPLAYMATRIX:
            raw = bytes(side)[:36]
            return orientation_from_display_matrix(np.frombuffer(raw, "<i4").tolist())
    return 0, False


def build_video_index(path: str | Path, *, limits: VideoLimits | None = None) -> VideoIndex:
    """Index a video file: one demux pass over its packets, no decoding (but frame 0's).

    Frame 0 is decoded once to read the display matrix (PyAV exposes it on frames).
    Packets flagged corrupt, or a read error, mark the file as damaged: frames that
    could be affected are left out of the index and ``damaged`` says why.

    Raises:
        VideoError: The file is missing, unreadable or has no video frames.
        VideoLimitError: The video is over one of ``limits``.
    """
    path = Path(path)
    limits = limits or VideoLimits()
    av = import_av()
    container = open_container(path)
    try:
        stream = video_stream(container, path)
        ctx = stream.codec_context
        width, height = int(ctx.width), int(ctx.height)
        declared_duration = (container.duration or 0) / 1_000_000
        limits.check(
            path,
            width=width,
            height=height,
            duration_s=declared_duration,
            frames=int(stream.frames or 0),
        )
        if stream.time_base is None:
            raise VideoError(f"{path}: the video stream has no time base")
        entries: list[tuple[int, bool, int]] = []  # (timestamp, keyframe, duration)
        orientation = None
        tagged = _rotation_from_tag(stream.metadata.get("rotate"))
        if tagged is not None:
            orientation = (tagged, False)
        pts_missing = False
        damaged: str | None = None
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as exc:
                damaged = f"read error after {len(entries)} packets ({exc.strerror or exc})"
                break
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.is_corrupt:
                damaged = f"packet {len(entries)} is corrupt or truncated"
                break
            stamp = packet.pts
            if stamp is None:
                pts_missing = True
                stamp = packet.dts
            if stamp is None:
                damaged = f"packet {len(entries)} has no timestamp"
                break
            entries.append((int(stamp), bool(packet.is_keyframe), int(packet.duration or 0)))
            if orientation is None:  # decode only until the first frame comes out
                try:
                    decoded = stream.decode(packet)
                except av.FFmpegError as exc:
                    raise VideoError(f"{path}: the first frame cannot be decoded ({exc})") from None
                if decoded:
                    orientation = orientation_of_frame(decoded[0])
            if len(entries) > limits.max_frames:
                limits.check(path, frames=len(entries))
        declared = int(stream.frames or 0)
        if damaged is None and declared and len(entries) < declared:
            # a file cut short: its last packet may be partial without being flagged
            damaged = f"the file ends after {len(entries)} of {declared} declared frames"
            entries = entries[:-1]
        if orientation is None and entries:
            try:
                decoded = stream.decode(None)
            except av.FFmpegError:
                decoded = []
            if decoded:
                orientation = orientation_of_frame(decoded[0])
        if not entries:
            raise VideoError(
                f"{path}: no video frames could be read" + (f" ({damaged})" if damaged else "")
            )
        stamps = np.array([e[0] for e in entries], dtype=np.int64)
        reorders = int(getattr(ctx, "reorder_depth", 0) or 0) or int(bool(ctx.has_b_frames))
        monotonic = bool(np.all(np.diff(stamps) > 0))
        mode = "decode_order" if (pts_missing or (reorders and monotonic)) else "pts"
        if mode == "decode_order" and not monotonic:
            raise VideoError(f"{path}: packets have neither presentation nor ordered timestamps")
        order = np.argsort(stamps, kind="stable")
        sorted_stamps = stamps[order]
        unique = np.concatenate(([True], np.diff(sorted_stamps) > 0))
        if not np.all(unique):
            log.warning(
                "%s: %d frames share a timestamp with another; keeping the first",
                path,
                int((~unique).sum()),
            )
        keep = order[unique]
        if damaged is not None:
            # Frames near the damage may wait in the decoder's reorder buffer for a frame
            # that is lost: keep only those guaranteed out before the damage.
            shift = int(np.max(np.arange(len(stamps))[order] - np.arange(len(stamps))))
            usable = max(0, len(keep) - max(reorders, shift))
            keep = keep[:usable]
            log.warning("%s: damaged (%s); %d frames usable", path, damaged, usable)
            if not len(keep):
                raise VideoError(f"{path}: no video frames could be read ({damaged})")
        keep_set = {int(k): rank for rank, k in enumerate(keep)}
        key_positions = sorted(keep_set[i] for i, e in enumerate(entries) if e[1] and i in keep_set)
        if not key_positions or key_positions[0] != 0:
            # first frame not flagged (some GIFs, broken muxers): decode from the start
            key_positions = [0, *[k for k in key_positions if k != 0]]
        pts = stamps[keep]
        keyframe_seek = pts[key_positions]
        last_duration = entries[int(keep[-1])][2]
        if last_duration <= 0:
            last_duration = int(np.median(np.diff(pts))) if len(pts) > 1 else 1
        rotation, hflip = orientation or (0, False)
        index = VideoIndex(
            pts=pts,
            keyframes=np.asarray(key_positions, dtype=np.int64),
            keyframe_seek=keyframe_seek,
            time_base=Fraction(stream.time_base),
            mode=mode,
            last_duration=last_duration,
            coded_width=width,
            coded_height=height,
            rotation=rotation,
            hflip=hflip,
            codec=str(ctx.name),
            container_format=str(container.format.name),
            declared_frames=int(stream.frames or 0),
            damaged=damaged,
            file_size=path.stat().st_size,
        )
    finally:
        container.close()
    limits.check(path, duration_s=index.duration, frames=index.frame_count)
    log.debug(
        "%s: indexed %d frames (%s, %d keyframes, mode %s)",
        path,
        index.frame_count,
        index.codec,
        len(index.keyframes),
        index.mode,
    )
    return index
