"""PyAV-backed :class:`~posekit.media.video.Video`: exact seeking on a :class:`VideoIndex`.

A decoder is one open container plus a generator of ``(frame index, av.VideoFrame)``
running forward from a keyframe. Random access seeks to the keyframe at or before the
wanted frame and decodes forward to its exact timestamp; a read just after the last
one continues the running generator instead of seeking again. Seeks are verified on
the first packet they land on (a keyframe at or before the target) and retried from
an earlier keyframe, then from the start of the file, where a demuxer seeks loosely.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from posekit.media.video import Video
from posekit.media.video_index import (
    VideoError,
    VideoIndex,
    apply_orientation,
    import_av,
    open_container,
    video_stream,
)

__all__ = ["AvVideo"]

log = logging.getLogger(__name__)

_AV_COLORSPACE_BT709 = 1
#: Decoders whose non-reference frames can be skipped on the way to a target frame:
#: no other frame is predicted from them, so the target's pixels do not change.
_SKIPPABLE_CODECS = frozenset({"h264", "hevc"})


class _SeekMissed(Exception):
    """A seek landed after the wanted keyframe, or not on a keyframe."""


class _Decoder:
    def __init__(self, path: Path, index: VideoIndex, threads: int) -> None:
        self.path = path
        self.index = index
        self.threads = threads
        self.container: Any = None
        self.stream: Any = None
        self._frames: Iterator[tuple[int, Any]] | None = None
        self.position = -1  # presentation index of the last frame produced
        self.skip_below: int | None = None  # skip non-reference frames with an earlier PTS
        self._can_skip = index.mode == "pts" and index.codec in _SKIPPABLE_CODECS
        self.had_error = False  # a packet failed to decode (frames may be lost in flight)

    def _open(self) -> None:
        self.close()
        self.container = open_container(self.path)
        self.stream = video_stream(self.container, self.path)
        self.stream.thread_type = "AUTO"
        if self.threads:
            self.stream.codec_context.thread_count = self.threads

    def close(self) -> None:
        self._frames = None
        if self.container is not None:
            self.container.close()
            self.container = None

    def can_continue_to(self, i: int) -> bool:
        """Whether decoding on from the current position is no slower than seeking."""
        if self._frames is None or i <= self.position:
            return False
        keyframe = int(self.index.keyframes[self.index.keyframe_before(i)])
        return keyframe <= self.position + 1

    def start(self, i: int) -> None:
        """Position the decoder so that frame ``i`` is ahead of it."""
        if self._can_skip:
            self.skip_below = int(self.index.pts[i])
        position = self.index.keyframe_before(i)
        candidates = sorted({position, max(position - 1, 0), 0}, reverse=True)
        for candidate in candidates:
            self.position = -1
            frames = self._run_from(candidate)
            try:
                first = next(frames)
            except _SeekMissed:
                log.debug("%s: seek to keyframe %d missed; trying earlier", self.path, candidate)
                continue
            except StopIteration:
                break
            self._frames = _prepend(first, frames)
            return
        self._frames = None
        raise VideoError(f"{self.path}: cannot position the decoder before frame {i}")

    def advance_to(self, i: int) -> Any:
        """Decode forward to frame ``i`` and return its ``av.VideoFrame``."""
        if self._frames is None:
            raise VideoError(f"{self.path}: decoder is not positioned")
        if self._can_skip:
            self.skip_below = int(self.index.pts[i])
        try:
            for j, frame in self._frames:
                if j == i:
                    return frame
                if j > i:
                    break
        except VideoError:
            self._frames = None
            raise
        self._frames = None
        raise VideoError(f"{self.path}: frame {i} cannot be decoded (the decoder skipped it)")

    def _run_from(self, position: int) -> Iterator[tuple[int, Any]]:
        av = import_av()
        index = self.index
        keyframe = int(index.keyframes[position])
        pts = index.pts
        count = keyframe
        first = True
        try:
            if position == 0 or self.container is None:
                self._open()
            if position != 0:
                self.container.seek(
                    int(index.keyframe_seek[position]), stream=self.stream, backward=True
                )
                self.stream.codec_context.flush_buffers()
            stream = self.stream
            context = stream.codec_context
            skipping = False
            for packet in self._packets(stream):
                if self._can_skip:
                    skip = (
                        self.skip_below is not None
                        and packet is not None
                        and packet.pts is not None
                        and packet.pts < self.skip_below
                    )
                    if skip != skipping:
                        context.skip_frame = "NONREF" if skip else "DEFAULT"
                        skipping = skip
                if first and packet is not None and packet.size:
                    first = False
                    if index.mode == "pts":
                        stamp = packet.pts
                        if position != 0 and (
                            not packet.is_keyframe or stamp is None or stamp > pts[keyframe]
                        ):
                            raise _SeekMissed
                    else:
                        stamp = packet.pts if packet.pts is not None else packet.dts
                        landed = np.flatnonzero(index.keyframe_seek == stamp)
                        if not len(landed) or int(index.keyframes[landed[0]]) > keyframe:
                            if position != 0:
                                raise _SeekMissed
                        else:
                            count = int(index.keyframes[landed[0]])
                if packet is not None and packet.is_corrupt:
                    log.debug("%s: skipping a corrupt packet", self.path)
                    continue
                try:
                    decoded = stream.decode(packet)
                except av.FFmpegError as exc:
                    self.had_error = True
                    if index.mode != "pts":  # counting frames: a lost one shifts the rest
                        raise
                    # the frames of this packet are lost; those before it still come out
                    log.warning(
                        "%s: a packet after frame %d cannot be decoded (%s)",
                        self.path,
                        self.position,
                        exc.strerror or exc,
                    )
                    continue
                for frame in decoded:
                    if index.mode == "pts":
                        stamp = frame.pts
                        if stamp is None or stamp < pts[keyframe]:
                            continue  # leading frames of an open GOP: not ours
                        j = int(np.searchsorted(pts, stamp))
                        if j >= len(pts) or pts[j] != stamp:
                            continue
                    else:
                        j = count
                        count += 1
                        if j >= len(pts):
                            return
                    if j <= self.position:
                        continue
                    self.position = j
                    yield j, frame
        except av.FFmpegError as exc:
            raise VideoError(
                f"{self.path}: decoding failed after frame {self.position} ({exc.strerror or exc})"
            ) from None

    def _packets(self, stream: Any) -> Iterator[Any]:
        """The stream's packets; a read error ends them with a flush (``None``)."""
        av = import_av()
        packets = self.container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except av.FFmpegError as exc:
                log.warning(
                    "%s: read error after frame %d (%s)",
                    self.path,
                    self.position,
                    exc.strerror or exc,
                )
                yield None
                return
            yield packet


def _prepend(first: tuple[int, Any], rest: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    yield first
    yield from rest


class AvVideo(Video):
    """A video file decoded through PyAV; create with :func:`posekit.media.open_video`."""

    def __init__(
        self, path: Path, index: VideoIndex, *, cache_frames: int, threads: int = 0
    ) -> None:
        quarter_turn = index.rotation in (90, 270)
        super().__init__(
            path,
            width=index.coded_height if quarter_turn else index.coded_width,
            height=index.coded_width if quarter_turn else index.coded_height,
            timestamps=index.timestamps,
            duration=index.duration,
            keyframes=index.keyframes,
            rotation=index.rotation,
            index=index,
            cache_frames=cache_frames,
        )
        self._index = index
        self._threads = threads
        self._decoder = _Decoder(path, index, threads)

    def _to_rgb(self, frame: Any, size: tuple[int, int] | None = None) -> np.ndarray:
        """The decoded frame as upright RGB; ``size``: (width, height) after rotation,
        converted and scaled in one swscale pass (area filter), not from a full-size
        RGB frame."""
        options: dict[str, Any] = {"format": "rgb24"}
        width, height = self._index.coded_width, self._index.coded_height
        if size is not None:
            width, height = size[::-1] if self._index.rotation in (90, 270) else size
            options["interpolation"] = "AREA"
        if (frame.width, frame.height) != (width, height):
            options.update(width=width, height=height)
        if frame.colorspace == _AV_COLORSPACE_BT709:
            options["src_colorspace"] = "ITU709"
        image = frame.to_ndarray(**options)
        return apply_orientation(image, self._index.rotation, self._index.hflip)

    def _read(self, decoder: _Decoder, i: int, count: bool) -> Any:
        if not decoder.can_continue_to(i):
            decoder.start(i)
            self.seek_count += count
        return decoder.advance_to(i)

    def _read_or_retry(self, decoder: _Decoder, i: int, count: bool = True) -> tuple[_Decoder, Any]:
        """Read frame ``i``; after a decode error, retry once without threads.

        A threaded decoder that hits a damaged packet may drop the frames it still had
        in flight; a single-threaded one gives every frame before the damage.
        """
        try:
            return decoder, self._read(decoder, i, count)
        except VideoError:
            if not decoder.had_error or decoder.threads == 1:
                raise
        log.info("%s: retrying frame %d with a single-threaded decoder", self.path, i)
        decoder.close()
        decoder = _Decoder(self.path, self._index, 1)
        return decoder, self._read(decoder, i, count)

    def _decode(self, i: int) -> np.ndarray:
        self._decoder, frame = self._read_or_retry(self._decoder, i)
        return self._to_rgb(frame)

    def _decode_scaled(self, i: int, size: tuple[int, int]) -> np.ndarray:
        self._decoder, frame = self._read_or_retry(self._decoder, i)
        return self._to_rgb(frame, size)

    def _iterate(self, start: int, stop: int, step: int) -> Iterator[np.ndarray]:
        return self._iterate_scaled(start, stop, step, None)

    def _iterate_scaled(
        self, start: int, stop: int, step: int, size: tuple[int, int] | None
    ) -> Iterator[np.ndarray]:
        decoder = _Decoder(self.path, self._index, self._threads)
        try:
            for i in range(start, stop, step):
                decoder, frame = self._read_or_retry(decoder, i, count=False)
                yield self._to_rgb(frame, size)
        finally:
            decoder.close()

    def close(self) -> None:
        super().close()
        self._decoder.close()
