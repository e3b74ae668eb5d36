"""PoseTrack18 JSON: COCO-style keypoint files of video frames, with person tracks.

A PoseTrack18 file is a COCO keypoints file (read and written by
:func:`~posekit.formats.coco_read.from_coco` / :func:`~posekit.formats.coco_write.to_coco`,
so every COCO round-trip rule applies) whose images are frames of videos:
``vid_id``, ``frame_id``, ``nframes``, ``is_labeled`` and the ``ignore_regions_x/y``
polygons on each image, ``track_id`` and ``bbox_head`` on each annotation.

On import:
    * each ``vid_id`` becomes a :class:`~posekit.dataset.VideoRecord` (``name`` is the
      ``vid_id``, ``frame_count`` is ``nframes``, the size that of its frames);
    * each image gets ``video`` (its ``vid_id``) and ``frame_index``: the last four
      digits of ``frame_id`` when it has PoseTrack's ``1 + vid_id + 4 digits`` form,
      else the number in the file name (``000041.jpg`` -> 41), else the image's
      position among the video's images;
    * each (video, ``track_id``) becomes a :class:`~posekit.dataset.TrackRecord` whose
      keyframes are the frames where the track has an annotation (PoseTrack has no
      interpolation, so every annotated frame is a keyframe; it has no "outside" state);
    * image and annotation fields (ignore regions, ``bbox_head``, ``scores``...) are
      kept verbatim in ``ImageRecord.extra`` / ``Instance.extra``.

Original PoseTrack18 files have no ``width``/``height`` on their images: the reader
then takes each video's frame size from the first of its frames found on disk
(:func:`read_posetrack`, ``image_root``) or from ``image_sizes``, and the writer
leaves the size out again for those videos, so a file reads and writes back the same.

On export, images of a video get ``vid_id`` (the video's ``extra["vid_id"]`` or its
``name``), ``nframes`` (its ``frame_count``), ``frame_id`` (kept, else the image id)
and ``is_labeled`` (kept, else whether the frame has annotations); still images
are written as plain COCO images. Track keyframes and outside frames beyond the
annotated frames are not carried.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from posekit.dataset import PoseDataset, TrackRecord, VideoRecord
from posekit.formats.coco import load_coco_json
from posekit.formats.coco_read import from_coco
from posekit.formats.coco_schema import CocoFormatError
from posekit.formats.coco_write import to_coco
from posekit.formats.files import atomic_write_bytes, stored_image_size
from posekit.media.paths import UnsafePathError, safe_relative_path
from posekit.skeleton import Skeleton

__all__ = [
    "PoseTrackFormatError",
    "from_posetrack",
    "read_posetrack",
    "to_posetrack",
    "write_posetrack",
]

#: ``VideoRecord.extra`` flag: the file gave no width/height for this video's frames.
SIZE_ABSENT_KEY = "posetrack_size_absent"
_FRAME_NUMBER_RE = re.compile(r"(\d+)$")


class PoseTrackFormatError(CocoFormatError):
    """A PoseTrack file is malformed; the message names the bad element."""


def _frame_index(image: Mapping[str, Any], vid_id: str, position: int) -> int:
    frame_id = image.get("frame_id")
    if type(frame_id) is int and vid_id.isdigit() and frame_id // 10000 == int("1" + vid_id):
        return frame_id % 10000
    match = _FRAME_NUMBER_RE.search(PurePosixPath(str(image.get("file_name", ""))).stem)
    if match:
        return int(match.group(1))
    return position


def from_posetrack(
    data: Mapping[str, Any],
    skeleton: Skeleton | None = None,
    *,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    source: str = "PoseTrack file",
) -> PoseDataset:
    """Read a PoseTrack18 dict into a :class:`PoseDataset` with videos and tracks.

    Args:
        data: The parsed JSON object (COCO layout plus PoseTrack's fields).
        skeleton: The project template (default: the preset with the file's keypoint
            names, ``posetrack17`` for PoseTrack18 files).
        image_sizes: ``(width, height)`` by ``vid_id`` (or by image ``file_name``) for
            images without ``width``/``height``.
        source: What to call the input in error messages.

    Raises:
        PoseTrackFormatError: naming the bad element; nothing is returned half-read.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("images"), list):
        raise PoseTrackFormatError(f"{source}: expected a JSON object with an 'images' list")
    images = data["images"]
    patched: list[Any] = []
    video_of: list[str | None] = []
    absent_size: set[str] = set()
    sizes = dict(image_sizes or {})
    for i, image in enumerate(images):
        if not isinstance(image, dict):
            raise PoseTrackFormatError(f"{source}: images[{i}] is not an object")
        vid = image.get("vid_id")
        if vid is not None and not isinstance(vid, str | int):
            raise PoseTrackFormatError(
                f"{source}: images[{i}] (id {image.get('id')}): 'vid_id' must be a string, "
                f"got {vid!r}"
            )
        vid = None if vid is None else str(vid)
        video_of.append(vid)
        if "width" in image or "height" in image:
            patched.append(image)
            continue
        size = sizes.get(str(image.get("file_name"))) or (sizes.get(vid) if vid else None)
        if size is None:
            raise PoseTrackFormatError(
                f"{source}: images[{i}] (id {image.get('id')}, {image.get('file_name')!r}) has "
                "no width/height and its size is unknown; read the file with "
                "read_posetrack(..., image_root=...) next to the frames, or pass image_sizes"
            )
        patched.append({**image, "width": int(size[0]), "height": int(size[1])})
        if vid is not None:
            absent_size.add(vid)
    try:
        dataset = from_coco({**data, "images": patched}, skeleton, source=source)
    except CocoFormatError as exc:
        raise PoseTrackFormatError(str(exc)) from None

    videos: dict[str, VideoRecord] = {}
    position_in_video: dict[str, int] = {}
    frames_seen: dict[tuple[str, int], int] = {}
    for i, (item, raw, vid) in enumerate(zip(dataset.images, images, video_of)):
        if vid is None:
            continue
        record = item.image
        position = position_in_video.get(vid, 0)
        position_in_video[vid] = position + 1
        record.video = vid
        record.frame_index = _frame_index(raw, vid, position)
        if (vid, record.frame_index) in frames_seen:
            raise PoseTrackFormatError(
                f"{source}: images[{i}] (id {raw.get('id')}): frame {record.frame_index} of "
                f"video {vid!r} is also images[{frames_seen[vid, record.frame_index]}]"
            )
        frames_seen[vid, record.frame_index] = i
        nframes = raw.get("nframes")
        video = videos.get(vid)
        if video is None:
            video = VideoRecord(name=vid, width=record.width, height=record.height)
            if vid in absent_size:
                video.extra[SIZE_ABSENT_KEY] = True
            videos[vid] = video
        if type(nframes) is int and (video.frame_count is None or nframes > video.frame_count):
            video.frame_count = nframes
    tracks: dict[tuple[str, int], TrackRecord] = {}
    for item in dataset.images:
        vid = item.image.video
        if vid is None:
            continue
        for instance in item.instances:
            if instance.track_id is None:
                continue
            key = (vid, instance.track_id)
            track = tracks.get(key)
            if track is None:
                track = tracks[key] = TrackRecord(video=vid, track_id=instance.track_id)
            track.keyframes.add(int(item.image.frame_index))
    dataset.videos = list(videos.values())
    dataset.tracks = sorted(tracks.values(), key=lambda t: (t.video, t.track_id))
    return dataset


def to_posetrack(dataset: PoseDataset) -> dict[str, Any]:
    """Write a :class:`PoseDataset` as a PoseTrack18 dict (see the module docstring).

    Raises:
        PoseTrackFormatError: an image names a video the dataset does not have, or an
            instance does not fit the template.
    """
    try:
        data = to_coco(dataset)
    except CocoFormatError as exc:
        raise PoseTrackFormatError(str(exc)) from None
    videos = {video.name: video for video in dataset.videos}
    for item, image in zip(dataset.images, data["images"]):
        record = item.image
        if record.video is None:
            continue
        video = videos.get(record.video)
        if video is None:
            raise PoseTrackFormatError(
                f"image {record.file_name!r}: video {record.video!r} is not in dataset.videos"
            )
        image["vid_id"] = str(video.extra.get("vid_id", video.name))
        if video.frame_count is not None:
            image["nframes"] = int(video.frame_count)
        image.setdefault("frame_id", image["id"])
        image.setdefault("is_labeled", bool(item.instances))
        if video.extra.get(SIZE_ABSENT_KEY):
            del image["width"], image["height"]
    return data


def _sizes_from_disk(data: Any, roots: list[Path]) -> dict[str, tuple[int, int]]:
    """Frame size by ``vid_id`` for the videos whose images lack width/height: the
    size of the first of the video's frames found under one of ``roots``."""
    sizes: dict[str, tuple[int, int]] = {}
    if not isinstance(data, Mapping) or not isinstance(data.get("images"), list):
        return sizes
    for image in data["images"]:
        if not isinstance(image, dict) or "width" in image or "height" in image:
            continue
        vid = image.get("vid_id")
        if vid is None or str(vid) in sizes:
            continue
        try:
            relative = safe_relative_path(image.get("file_name"))
        except (UnsafePathError, TypeError):
            continue
        for root in roots:
            size = stored_image_size(root / relative)
            if size is not None:
                sizes[str(vid)] = size
                break
    return sizes


def read_posetrack(
    path: str | os.PathLike[str],
    skeleton: Skeleton | None = None,
    *,
    image_root: str | os.PathLike[str] | None = None,
) -> PoseDataset:
    """Read a PoseTrack18 JSON file (``val.json`` or one of the per-video files).

    Args:
        path: The JSON file.
        skeleton: The project template (see :func:`from_posetrack`).
        image_root: The folder image ``file_name`` values are relative to, used only
            for images without ``width``/``height`` (default: tried in the file's
            folder and the two folders above it, which is PoseTrack's layout
            ``<root>/annotations/val/<video>.json`` with ``<root>/images/...``).

    Raises:
        PoseTrackFormatError: invalid JSON or content (the message starts with the path).
        OSError: the file cannot be read.
    """
    path = Path(path)
    try:
        data = load_coco_json(path)
    except CocoFormatError as exc:
        raise PoseTrackFormatError(str(exc)) from None
    roots = (
        [Path(image_root)]
        if image_root is not None
        else [path.parent, path.parent.parent, path.parent.parent.parent]
    )
    sizes = _sizes_from_disk(data, roots)
    return from_posetrack(data, skeleton, image_sizes=sizes, source=str(path))


def write_posetrack(
    dataset: PoseDataset,
    path: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
) -> Path:
    """Write ``dataset`` as a PoseTrack18 JSON file, atomically (temporary file, then
    ``os.replace``). ``media`` is not used: the file names its frames."""
    del media
    path = Path(path)
    data = to_posetrack(dataset)
    try:
        import orjson

        payload = orjson.dumps(data)  # as write_coco: several times faster than json
    except TypeError:  # integers beyond 64 bits in fields carried verbatim
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        payload = payload.encode("utf-8")
    return atomic_write_bytes(path, payload)
