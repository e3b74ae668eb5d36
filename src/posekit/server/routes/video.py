"""Videos for the editor: metadata, frames as JPEG (bounded decoded-frame cache),
timeline thumbnails, tracks, the instances a frame shows (stored or interpolated),
keyframe / outside edits, split / merge, and "propagate forward N frames".

Frames are decoded on demand from the stored video (frame-exact seeking through the
stored index); the last decoded frames of each open video and the last encoded JPEGs
are kept in memory, both bounded. Every edit is one library call
(:mod:`posekit.store.tracks`) in one transaction.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import State, errors
from posekit.server.schemas import InstanceFields, InstanceIn, InstanceOut
from posekit.store.tracks import FrameInstance, TrackInfo
from posekit.store.videos import StoredVideo

router = APIRouter(prefix="/api/videos", tags=["videos"])

#: Open videos kept (each holds a decoder and its own small decoded-frame cache).
MAX_OPEN_VIDEOS = 4
#: Decoded frames kept per open video (1080p RGB: 6 MB each).
FRAMES_PER_VIDEO = 8
#: Encoded JPEGs kept (frames and thumbnails), across videos.
MAX_JPEGS = 256
#: Frames propagation may run in one request.
MAX_PROPAGATE = 300

_JPEG = {200: {"content": {"image/jpeg": {}}, "description": "JPEG"}, **errors(404, 422)}


# ------------------------------------------------------------------ schemas
class VideoOut(BaseModel):
    """A stored video. ``timestamps`` (seconds per frame) only with ``?timestamps=true``."""

    id: int
    dataset_id: int
    file_name: str
    kind: str = Field(description="'file' (a video file) or 'frames' (numbered images)")
    fps: float
    frame_count: int
    duration: float = Field(description="seconds")
    width: int
    height: int
    rotation: int = Field(description="degrees clockwise applied to show frames upright")
    status: str = Field(description="new, predicted or reviewed")
    timestamps: list[float] | None = None


class TrackOut(BaseModel):
    video_id: int
    track_id: int
    label: str | None
    keyframes: list[int] = Field(description="frames with a keyframe (set by a person)")
    frames: list[int] = Field(description="frames with any stored instance")
    outside: list[int] = Field(description="frames where a segment of the track ends")


class FrameInstanceOut(InstanceFields):
    """An instance shown on a frame: stored (``id``, ``version``) or interpolated
    (``id`` null, ``interpolated`` true, from ``previous_keyframe`` towards
    ``next_keyframe``; null next: held)."""

    model_config = ConfigDict(extra="ignore")

    id: int | None
    version: int | None
    frame_index: int
    keyframe: bool
    interpolated: bool
    previous_keyframe: int | None = None
    next_keyframe: int | None = None


class KeyframeIn(InstanceIn):
    """The instance a person set on a frame; ``version``: the stored instance's version
    as read (omit when the frame showed an interpolated instance)."""

    version: int | None = Field(None, ge=1)


class OutsideIn(BaseModel):
    outside: bool = True


class SplitIn(BaseModel):
    frame_index: int = Field(ge=0)


class MergeIn(BaseModel):
    other_track_id: int


class TrackIn(BaseModel):
    label: str | None = Field(None, max_length=200)


class PropagateIn(BaseModel):
    from_frame: int = Field(ge=0, description="a frame where the track has an instance")
    count: int = Field(10, ge=1, le=MAX_PROPAGATE, description="frames to track forward")
    model: str = Field("blazepose", description="pose estimator spec", max_length=300)


class PropagateOut(BaseModel):
    frames: list[int] = Field(description="frames that got a predicted instance")
    instances: list[FrameInstanceOut]


def _instance_fields(instance: Any) -> dict[str, Any]:
    return {
        "keypoints": instance.keypoints.tolist(),
        "visibility": instance.visibility.tolist(),
        "keypoint_scores": None
        if instance.keypoint_scores is None
        else instance.keypoint_scores.tolist(),
        "box": None if instance.box is None else instance.box.tolist(),
        "score": instance.score,
        "source": instance.source,
        "status": instance.status,
        "track_id": instance.track_id,
    }


def _frame_out(found: FrameInstance) -> FrameInstanceOut:
    return FrameInstanceOut(
        **_instance_fields(found.instance),
        id=found.instance_id,
        version=found.version,
        frame_index=found.frame_index,
        keyframe=found.keyframe,
        interpolated=found.interpolated,
        previous_keyframe=found.previous_keyframe,
        next_keyframe=found.next_keyframe,
    )


def _track_out(track: TrackInfo) -> TrackOut:
    return TrackOut.model_validate(track.to_dict())


def _video_out(video: StoredVideo) -> VideoOut:
    fields = set(VideoOut.model_fields) - {"timestamps"}
    return VideoOut.model_validate({name: getattr(video, name) for name in fields})


# ------------------------------------------------------------------ frame cache
class VideoFrames:
    """Open videos (LRU, bounded) and encoded JPEGs (LRU, bounded), thread-safe."""

    def __init__(self) -> None:
        self._videos: OrderedDict[int, tuple[Any, threading.Lock]] = OrderedDict()
        self._jpegs: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _video(self, ws: Any, video: StoredVideo) -> tuple[Any, threading.Lock]:
        with self._lock:
            entry = self._videos.get(video.id)
            if entry is not None:
                self._videos.move_to_end(video.id)
                return entry
            entry = (ws.open_video(video, cache_frames=FRAMES_PER_VIDEO), threading.Lock())
            self._videos[video.id] = entry
            while len(self._videos) > MAX_OPEN_VIDEOS:
                _, (old, old_lock) = self._videos.popitem(last=False)
                with old_lock:
                    old.close()
            return entry

    def frame(self, ws: Any, video: StoredVideo, index: int) -> np.ndarray:
        opened, lock = self._video(ws, video)
        with lock:
            return opened.frame(index)

    def jpeg(self, key: tuple[Any, ...], make: Any) -> bytes:
        with self._lock:
            data = self._jpegs.get(key)
            if data is not None:
                self._jpegs.move_to_end(key)
                return data
        data = make()
        with self._lock:
            self._jpegs[key] = data
            while len(self._jpegs) > MAX_JPEGS:
                self._jpegs.popitem(last=False)
        return data

    def close(self) -> None:
        with self._lock:
            for opened, lock in self._videos.values():
                with lock:
                    opened.close()
            self._videos.clear()
            self._jpegs.clear()


_frames_lock = threading.Lock()


def _frames(request: Request) -> VideoFrames:
    with _frames_lock:
        frames = getattr(request.app.state, "posekit_video_frames", None)
        if frames is None:
            frames = request.app.state.posekit_video_frames = VideoFrames()
        return frames


def _encode(image: np.ndarray, quality: int, max_side: int | None = None) -> bytes:
    from PIL import Image

    picture = Image.fromarray(np.asarray(image))
    if max_side is not None and max(picture.size) >= 2 * max_side:
        # A whole factor (box filter): several times faster than resampling a 1080p
        # frame, and never smaller than the view draws it.
        picture = picture.reduce(max(picture.size) // max_side)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _decoded(request: Request, state: Any, video: StoredVideo, index: int) -> np.ndarray:
    from posekit.media import ImageError, load_image
    from posekit.media.video import VideoError

    index = video.check_frame(index)
    try:
        if video.media_path is None:
            # Frames imported as images (a PoseTrack file next to its frames): no video
            # file, the frame's own image.
            item = state.ws.frame_item(video, index, create=False)
            if item.media_path is None:
                raise HTTPException(404, f"video {video.id}: frame {index} has no stored image")
            return load_image(state.media_source(item.media_path))
        return _frames(request).frame(state.ws, video, index)
    except (VideoError, ImageError) as exc:
        raise HTTPException(422, str(exc)) from None


def _jpeg_response(request: Request, state: Any, data: bytes, etag: str) -> Response:
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={state.settings.image_max_age}"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="image/jpeg", headers=headers)


# ------------------------------------------------------------------ routes
@router.get(
    "", response_model=list[VideoOut], responses=errors(404), dependencies=[allow(Permission.VIEW)]
)
def list_videos(state: State, project_id: int = Query(...)) -> list[VideoOut]:
    """The videos of a project."""
    from posekit.store.queries import get_project_by_id

    project = get_project_by_id(state.ws, project_id)
    return [_video_out(v) for v in state.ws.list_videos(project)]


@router.get(
    "/{video_id}",
    response_model=VideoOut,
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def get_video(video_id: int, state: State, timestamps: bool = False) -> VideoOut:
    """A video's metadata (frame rate, frame count, duration, size, rotation)."""
    video = state.ws.get_video(video_id)
    out = _video_out(video)
    if timestamps:
        out.timestamps = [float(t) for t in video.timestamps()]
    return out


@router.get(
    "/{video_id}/frames/{frame_index}",
    response_class=Response,
    responses=_JPEG,
    dependencies=[allow(Permission.VIEW)],
)
def get_frame(
    video_id: int,
    frame_index: int,
    request: Request,
    state: State,
    quality: int = Query(85, ge=30, le=95),
    max_side: int | None = Query(
        None, ge=64, le=8192, description="scale down towards this size (the view's pixels)"
    ),
) -> Response:
    """Frame ``frame_index`` as a JPEG (exact frame, rotation applied). With ``max_side``,
    scaled down by the largest whole factor that keeps its longer side at least
    ``max_side`` pixels. ``Server-Timing`` tells the time spent decoding (``decode``)
    and scaling + encoding (``encode``); ``cache`` when the JPEG was cached."""
    video = state.ws.get_video(video_id)
    etag = f'"{video.sha256 or video.id}-{frame_index}-q{quality}-m{max_side or 0}"'
    timing: list[str] = []

    def make() -> bytes:
        started = time.perf_counter()
        image = _decoded(request, state, video, frame_index)
        decoded = time.perf_counter()
        data = _encode(image, quality, max_side)
        timing.append(f"decode;dur={(decoded - started) * 1000:.1f}")
        timing.append(f"encode;dur={(time.perf_counter() - decoded) * 1000:.1f}")
        return data

    data = _frames(request).jpeg((video.id, frame_index, quality, max_side), make)
    response = _jpeg_response(request, state, data, etag)
    response.headers["Server-Timing"] = ", ".join(timing) or "cache;desc=hit"
    return response


@router.get(
    "/{video_id}/thumbnails",
    response_class=Response,
    responses=_JPEG,
    dependencies=[allow(Permission.VIEW)],
)
def get_thumbnails(
    video_id: int,
    request: Request,
    state: State,
    count: int = Query(20, ge=1, le=100, description="thumbnails, evenly spaced"),
    height: int = Query(48, ge=16, le=256, description="thumbnail height in pixels"),
) -> Response:
    """A timeline strip: ``count`` thumbnails side by side in one JPEG; the header
    ``X-Frame-Indices`` lists the frame each one shows, left to right."""
    from PIL import Image

    video = state.ws.get_video(video_id)
    indices = np.unique(np.linspace(0, video.frame_count - 1, count).round().astype(int)).tolist()
    if video.decode_index is not None:
        # The keyframe at or before each: one needs no frames before it decoded, so the
        # strip costs a frame per thumbnail, not up to a GOP each (and does not hold the
        # decoder for seconds while the view opens).
        from posekit.media.video_index import VideoIndex

        keyframes = VideoIndex.from_dict(video.decode_index).keyframes
        before = np.searchsorted(keyframes, indices, side="right") - 1
        indices = keyframes[np.maximum(before, 0)].astype(int).tolist()
    width = max(1, round(height * video.width / max(video.height, 1)))

    def make() -> bytes:
        strip = Image.new("RGB", (width * len(indices), height))
        for n, index in enumerate(indices):
            picture = Image.fromarray(np.asarray(_decoded(request, state, video, index)))
            strip.paste(picture.resize((width, height)), (n * width, 0))
        buffer = io.BytesIO()
        strip.save(buffer, "JPEG", quality=75)
        return buffer.getvalue()

    data = _frames(request).jpeg((video.id, "strip", count, height), make)
    response = _jpeg_response(
        request, state, data, f'"{video.sha256 or video.id}-s{count}-{height}"'
    )
    response.headers["X-Frame-Indices"] = ",".join(map(str, indices))
    return response


@router.get(
    "/{video_id}/tracks",
    response_model=list[TrackOut],
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def list_tracks(video_id: int, state: State) -> list[TrackOut]:
    """The video's tracks with their keyframes, stored frames and outside frames."""
    return [_track_out(t) for t in state.ws.list_tracks(video_id)]


@router.post(
    "/{video_id}/tracks",
    response_model=TrackOut,
    status_code=201,
    responses=errors(404),
    dependencies=[allow(Permission.ANNOTATE)],
)
def create_track(video_id: int, body: TrackIn, state: State) -> TrackOut:
    """A new empty track (the next free track id)."""
    return _track_out(state.ws.create_track(video_id, label=body.label))


@router.get(
    "/{video_id}/frames/{frame_index}/instances",
    response_model=list[FrameInstanceOut],
    responses=errors(404, 422),
    dependencies=[allow(Permission.VIEW)],
)
def frame_instances(video_id: int, frame_index: int, state: State) -> list[FrameInstanceOut]:
    """What the frame shows: its stored instances, then each track's interpolated
    instance where the track has none stored there."""
    return [_frame_out(f) for f in state.ws.frame_view(video_id, frame_index)]


@router.put(
    "/{video_id}/tracks/{track_id}/keyframes/{frame_index}",
    response_model=InstanceOut,
    responses=errors(404, 409, 422, conflict_current=True),
    dependencies=[allow(Permission.ANNOTATE)],
)
def set_keyframe(
    video_id: int, track_id: int, frame_index: int, body: KeyframeIn, state: State,
    user: CurrentUser,
) -> InstanceOut:  # fmt: skip
    """Store the instance a person set on a frame as the track's keyframe (editing an
    interpolated frame makes it a keyframe; a stored one is replaced, versioned)."""
    instance = body.to_instance()
    record = state.ws.set_keyframe(
        video_id, frame_index, track_id, instance, expected_version=body.version,
        author_id=user.id,
    )  # fmt: skip
    return InstanceOut.model_validate(record)


@router.put(
    "/{video_id}/tracks/{track_id}/outside/{frame_index}",
    response_model=TrackOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.ANNOTATE)],
)
def set_outside(
    video_id: int, track_id: int, frame_index: int, body: OutsideIn, state: State,
    user: CurrentUser,
) -> TrackOut:  # fmt: skip
    """Mark (``outside: true``) or unmark the frame where a segment of the track ends;
    marking removes the track's stored instance on that frame."""
    return _track_out(
        state.ws.set_outside(video_id, track_id, frame_index, body.outside, author_id=user.id)
    )


@router.post(
    "/{video_id}/tracks/{track_id}/split",
    response_model=TrackOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.ANNOTATE)],
)
def split_track(
    video_id: int, track_id: int, body: SplitIn, state: State, user: CurrentUser
) -> TrackOut:
    """Split at ``frame_index``: from there on the instances form a new track (returned)."""
    split = state.ws.split_track(video_id, track_id, body.frame_index, author_id=user.id)
    return _track_out(split)


@router.post(
    "/{video_id}/tracks/{track_id}/merge",
    response_model=TrackOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.ANNOTATE)],
)
def merge_tracks(
    video_id: int, track_id: int, body: MergeIn, state: State, user: CurrentUser
) -> TrackOut:
    """Move ``other_track_id``'s instances into this track (422 if both have one on a
    frame)."""
    merged = state.ws.merge_tracks(video_id, track_id, body.other_track_id, author_id=user.id)
    return _track_out(merged)


@router.post(
    "/{video_id}/tracks/{track_id}/propagate",
    response_model=PropagateOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.ANNOTATE)],
)
def propagate(video_id: int, track_id: int, body: PropagateIn, state: State) -> PropagateOut:
    """Track forward: from the track's instance on ``from_frame``, run the pose model on
    each next frame in the box carried from the previous one; the results are stored
    as ``predicted`` instances of the same track (for review). Stops before a frame
    where the track already has an instance or an outside mark."""
    from posekit.engines.local_video import propagate as run

    estimator, lock = state.models.get(body.model)
    with lock:
        found = run(state.ws, video_id, track_id, body.from_frame, body.count, estimator)
    frames = sorted(found)
    shown = []
    for frame in frames:
        shown.extend(
            _frame_out(f) for f in state.ws.frame_view(video_id, frame) if f.track_id == track_id
        )
    return PropagateOut(frames=frames, instances=shown)
