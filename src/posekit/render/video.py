"""Writing videos (H.264 through PyAV) and drawing pose instances on video frames.

Example:
    >>> from posekit.media.video import open_video                 # doctest: +SKIP
    >>> from posekit.render.video import draw_video_frames, write_video  # doctest: +SKIP
    >>> with open_video("clip.mp4") as video:                       # doctest: +SKIP
    ...     drawn = draw_video_frames(video.frames(), instances_by_frame, skeleton)
    ...     write_video("drawn.mp4", drawn, fps=video.fps)

Needs the ``video`` extra (``pip install 'posekit[video]'``).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from posekit.core import Instance
from posekit.render.draw import RenderError, draw_instances, style_for_size
from posekit.skeleton import Skeleton

__all__ = ["draw_track_ids", "draw_video_frames", "render_video", "write_video"]

log = logging.getLogger(__name__)

#: Codecs whose quality is set with ``crf``.
_CRF_CODECS = frozenset({"libx264", "libx265"})

InstancesByFrame = Mapping[int, Sequence[Instance]] | Callable[[int], Sequence[Instance]]


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise RenderError(
            "writing video needs PyAV: pip install 'posekit[video]' (or pip install av)"
        ) from None
    return av


def _rate(fps: float | Fraction) -> Fraction:
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise RenderError(f"fps must be positive, got {fps}")
    return rate


def _even(image: np.ndarray) -> np.ndarray:
    """Pad odd heights/widths by one replicated row/column (yuv420p needs even sizes)."""
    pad_h, pad_w = image.shape[0] % 2, image.shape[1] % 2
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return image


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float | Fraction,
    *,
    codec: str = "libx264",
    crf: int = 20,
    preset: str = "medium",
    gop: int | None = None,
    options: Mapping[str, str] | None = None,
) -> int:
    """Encode RGB frames to a video file (H.264/yuv420p MP4 by default), streaming.

    Frames are encoded as they come (memory does not grow with length). Odd sizes are
    padded by one edge row/column to even. The file is written beside ``path`` first
    and moved into place when complete, so a failure leaves no half-written video.
    MP4/MOV outputs get ``+faststart`` (playable while downloading).

    Args:
        path: Output file; the container follows its extension (``.mp4``, ``.mkv``...).
        frames: ``(H, W, 3) uint8`` RGB frames, all the same size.
        fps: Frame rate (e.g. ``30`` or ``Fraction(30000, 1001)``).
        codec: FFmpeg encoder name.
        crf: Quality for x264/x265 (0 lossless ... 51 worst; 18-23 is visually good).
        preset: x264/x265 speed preset.
        gop: Keyframe interval in frames (default: the encoder's).
        options: More encoder options, passed through.

    Returns:
        Number of frames written.

    Raises:
        RenderError: No frames, frames of different sizes or not RGB uint8, or the
            encoder fails; the message names the file.
    """
    av = _import_av()
    path = Path(path)
    rate = _rate(fps)
    encoder_options = dict(options or {})
    if codec in _CRF_CODECS:
        encoder_options.setdefault("crf", str(int(crf)))
        encoder_options.setdefault("preset", preset)
    if gop is not None:
        encoder_options.setdefault("g", str(int(gop)))
    container_options = {}
    if path.suffix.lower() in {".mp4", ".m4v", ".mov"}:
        container_options["movflags"] = "+faststart"
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    count = 0
    shape: tuple[int, ...] | None = None
    container = None
    try:
        container = av.open(str(partial), "w", options=container_options)
        stream = None
        for frame in frames:
            if (
                not isinstance(frame, np.ndarray)
                or frame.dtype != np.uint8
                or frame.ndim != 3
                or frame.shape[2] != 3
            ):
                raise RenderError(
                    f"{path}: frame {count}: expected an (H, W, 3) uint8 RGB array, got "
                    f"{getattr(frame, 'dtype', type(frame).__name__)} "
                    f"{getattr(frame, 'shape', '')}"
                )
            if shape is None:
                shape = frame.shape
                even = _even(frame)
                stream = container.add_stream(codec, rate=rate, options=encoder_options)
                stream.width, stream.height = even.shape[1], even.shape[0]
                stream.pix_fmt = "yuv420p"
            elif frame.shape != shape:
                raise RenderError(
                    f"{path}: frame {count} is {frame.shape[1]}x{frame.shape[0]}, the first "
                    f"was {shape[1]}x{shape[0]}"
                )
            video_frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(_even(frame)), format="rgb24"
            )
            for packet in stream.encode(video_frame):
                container.mux(packet)
            count += 1
        if stream is None:
            raise RenderError(f"{path}: no frames to write")
        for packet in stream.encode():
            container.mux(packet)
        container.close()
        container = None
        os.replace(partial, path)
    except av.FFmpegError as exc:
        raise RenderError(f"{path}: video encoding failed ({exc})") from None
    finally:
        if container is not None:
            with contextlib.suppress(av.FFmpegError):
                container.close()
        if partial.exists():
            partial.unlink()
    log.info("wrote %d frames to %s (%s, %s fps)", count, path, codec, rate)
    return count


def _instances_for(instances: InstancesByFrame, i: int) -> Sequence[Instance]:
    if callable(instances):
        return instances(i)
    return instances.get(i, ())


def draw_track_ids(
    image: np.ndarray, instances: Sequence[Instance], *, thickness: int | None = None
) -> np.ndarray:
    """Write each instance's ``track_id`` (``#3``) at the bottom-left of its box, in place.

    Instances without a ``track_id`` or without labeled points are skipped.
    """
    line, _ = style_for_size(image.shape[1], image.shape[0], thickness)
    scale = max(0.4, line * 0.3)
    text_thickness = max(1, line // 2)
    for inst in instances:
        if inst.track_id is None:
            continue
        box = inst.bbox_or_keypoint_box()
        if box is None:
            continue
        text = f"#{inst.track_id}"
        (text_w, text_h), baseline = cv2.getTextSize(
            text, cv2.FONT_HERSHEY_SIMPLEX, scale, text_thickness
        )
        x = round(float(box[0]))
        y = round(float(box[3]))
        y = min(max(y, text_h + baseline + 2), image.shape[0] - 1)
        cv2.rectangle(image, (x, y - text_h - baseline - 2), (x + text_w + 2, y), (0, 0, 0), -1)
        cv2.putText(
            image,
            text,
            (x + 1, y - baseline - 1),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            text_thickness,
            cv2.LINE_AA,
        )
    return image


def draw_video_frames(
    frames: Iterable[np.ndarray],
    instances: InstancesByFrame,
    skeleton: Skeleton,
    *,
    start: int = 0,
    step: int = 1,
    track_ids: bool = True,
    **draw_options: Any,
) -> Iterator[np.ndarray]:
    """Draw each frame's instances on it, lazily (one frame in memory at a time).

    Args:
        frames: RGB frames, e.g. ``video.frames(start, stop, step)``.
        instances: Frame index -> instances on it, as a mapping (missing frames: none)
            or a callable.
        skeleton: Template to draw with.
        start, step: Frame index of the first frame and the step between frames (match
            the ``frames()`` call).
        track_ids: Write ``#track_id`` by each instance that has one.
        **draw_options: Passed to :func:`posekit.render.draw.draw_instances`.

    Yields:
        New ``(H, W, 3) uint8`` frames; the input frames are not modified.
    """
    for n, frame in enumerate(frames):
        index = start + n * step
        on_frame = list(_instances_for(instances, index))
        drawn = draw_instances(frame, on_frame, skeleton, **draw_options)
        if track_ids and on_frame:
            draw_track_ids(drawn, on_frame, thickness=draw_options.get("thickness"))
        yield drawn


def render_video(
    video: Any,
    instances: InstancesByFrame,
    skeleton: Skeleton,
    out_path: str | Path,
    *,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    codec: str = "libx264",
    crf: int = 20,
    track_ids: bool = True,
    **draw_options: Any,
) -> int:
    """Draw instances on a :class:`posekit.media.video.Video`'s frames into a new video.

    The output keeps the video's average frame rate divided by ``step``. Returns the
    number of frames written; see :func:`write_video` for errors.
    """
    out_path = Path(out_path)
    source = Path(getattr(video, "path", ""))
    if source.is_file() and out_path.exists() and out_path.resolve() == source.resolve():
        raise RenderError(f"{out_path}: output would overwrite the input video")
    fps = video.fps / step if video.fps > 0 else 25.0
    drawn = draw_video_frames(
        video.frames(start, stop, step),
        instances,
        skeleton,
        start=start,
        step=step,
        track_ids=track_ids,
        **draw_options,
    )
    return write_video(out_path, drawn, fps, codec=codec, crf=crf)
