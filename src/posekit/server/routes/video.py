"""Videos for the editor: metadata, frames as JPEG (bounded decoded-frame cache),
timeline thumbnails, tracks, the instances a frame shows (stored or interpolated),
keyframe / outside edits, split / merge, and "propagate forward N frames".

Frames are decoded on demand from the stored video (frame-exact seeking through the
stored index), straight to the size the view asks for, or from the video's seek proxy
once it is built (:mod:`posekit.server.video_frames`, :mod:`posekit.store.video_proxies`);
open decoders and encoded JPEGs are kept in memory, both bounded. Every edit is one
library call (:mod:`posekit.store.tracks`) in one transaction.
"""

from __future__ import annotations

import io
import threading
import time
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import State, errors
from posekit.server.schemas import InstanceFields, InstanceIn, InstanceOut
from posekit.server.video_frames import VideoFrames, proxy_side, scaled_size
from posekit.store.tracks import FrameInstance, TrackInfo
from posekit.store.videos import StoredVideo

router = APIRouter(prefix="/api/videos", tags=["videos"])

#: Frames propagation may run in one request.
MAX_PROPAGATE = 300

_JPEG = {200: {"content": {"image/jpeg": {}}, "description": "JPEG"}, **errors(404, 422)}


# ------------------------------------------------------------------ schemas
class ProxyOut(BaseModel):
    """The video's seek proxy: a small, quickly seekable copy at the view's size that
    serves frames asked for at or below its size (display only; the original serves
    exports, auto-labeling and larger views)."""

    state: Literal["missing", "queued", "building", "ready", "failed"]
    width: int
    height: int
    bytes: int = Field(description="disk use when ready")
    bound_bytes: int = Field(description="the most it can take on disk (capped bit rate)")
    error: str | None = None


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
    proxy: ProxyOut | None = Field(
        None, description="seek proxy (``?proxy=true``; null: the video needs none)"
    )
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
    """The instance a person set on a frame, with the version it was edited from."""

    version: int | None = Field(
        None,
        ge=0,
        description="the stored instance's version as read; 0: the frame showed an "
        "interpolated instance (409 with current if one has been stored since); omitted: "
        "overwrite",
    )


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
    fields = set(VideoOut.model_fields) - {"timestamps", "proxy"}
    return VideoOut.model_validate({name: getattr(video, name) for name in fields})


# ------------------------------------------------------------------ frames
_frames_lock = threading.Lock()


def _frames(request: Request) -> VideoFrames:
    with _frames_lock:
        frames = getattr(request.app.state, "posekit_video_frames", None)
        if frames is None:
            frames = request.app.state.posekit_video_frames = VideoFrames()
        return frames


def _encode(image: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _proxy_for(request: Request, state: Any, video: StoredVideo, max_side: int | None) -> Any:
    """The ready proxy that serves frames for ``max_side`` (None: the original does)."""
    if max_side is None or video.media_path is None:
        return None
    proxy = _frames(request).ready_proxy(state.ws, video, proxy_side(state.settings))
    return proxy if proxy is not None and max(proxy.width, proxy.height) >= max_side else None


def _decoded(
    request: Request,
    state: Any,
    video: StoredVideo,
    index: int,
    max_side: int | None = None,
    proxy: Any = None,
) -> np.ndarray:
    """Frame ``index`` scaled for ``max_side`` (see :func:`scaled_size`), from ``proxy``
    when given (a :class:`~posekit.store.video_proxies.ProxyInfo`)."""
    from posekit.media import ImageError, load_image
    from posekit.media.video import VideoError, scale_rgb

    index = video.check_frame(index)
    try:
        if video.media_path is None:
            # Frames imported as images (a PoseTrack file next to its frames): no video
            # file, the frame's own image.
            item = state.ws.frame_item(video, index, create=False)
            if item.media_path is None:
                raise HTTPException(404, f"video {video.id}: frame {index} has no stored image")
            image = load_image(state.media_source(item.media_path))
            size = scaled_size(image.shape[1], image.shape[0], max_side)
            return scale_rgb(image, size)
        frames = _frames(request)
        if proxy is not None:
            size = scaled_size(proxy.width, proxy.height, max_side)
            side = proxy_side(state.settings)
            image = frames.proxy_frame(state.ws, video, index, side, size)
            if image is not None:
                return image
        size = scaled_size(video.width, video.height, max_side)
        return frames.frame(state.ws, video, index, size)
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
def get_video(
    video_id: int, request: Request, state: State, timestamps: bool = False, proxy: bool = False
) -> VideoOut:
    """A video's metadata (frame rate, frame count, duration, size, rotation); with
    ``proxy``, its seek proxy's state, and a missing proxy is queued for building
    (the editor asks so when it opens the video)."""
    video = state.ws.get_video(video_id)
    out = _video_out(video)
    if timestamps:
        out.timestamps = [float(t) for t in video.timestamps()]
    if proxy:
        found = _frames(request).proxy(state.ws, video, proxy_side(state.settings))
        out.proxy = None if found is None else ProxyOut.model_validate(found)
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
    ``max_side`` pixels, from the video's seek proxy once it is ready and at least that
    large (then the picture is the proxy's size, scaled likewise). ``Server-Timing``
    tells the time spent decoding and scaling (``decode``) and encoding the JPEG
    (``encode``), and ``proxy`` when the proxy served it; ``cache`` when the JPEG was
    cached."""
    video = state.ws.get_video(video_id)
    proxy = _proxy_for(request, state, video, max_side)
    source = "p" if proxy is not None else "o"
    etag = f'"{video.sha256 or video.id}-{frame_index}-q{quality}-m{max_side or 0}-{source}"'
    timing: list[str] = []

    def make() -> bytes:
        started = time.perf_counter()
        image = _decoded(request, state, video, frame_index, max_side, proxy)
        decoded = time.perf_counter()
        data = _encode(image, quality)
        timing.append(f"decode;dur={(decoded - started) * 1000:.1f}")
        timing.append(f"encode;dur={(time.perf_counter() - decoded) * 1000:.1f}")
        if proxy is not None:
            timing.append("proxy")
        return data

    key = (video.id, frame_index, quality, max_side, source)
    data = _frames(request).jpeg(key, make)
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
    proxy = _proxy_for(request, state, video, max(width, height))

    def make() -> bytes:
        strip = Image.new("RGB", (width * len(indices), height))
        for n, index in enumerate(indices):
            image = _decoded(request, state, video, index, max(width, height), proxy)
            strip.paste(Image.fromarray(np.asarray(image)).resize((width, height)), (n * width, 0))
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
