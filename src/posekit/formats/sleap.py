"""SLEAP labels (``.slp``) through ``sleap-io`` (optional: ``pip install posekit[sleap]``).

``sleap-io`` is imported only when a SLEAP file is read or written. The mapping:

* skeleton: node names -> template keypoints. Without a template, the shipped preset
  with exactly the node names (SLEAP's 17-node COCO human -> ``coco17``), else a
  template built from the nodes, edges and symmetries (-> flip pairs) with a
  uniform OKS sigma of 0.07 (SLEAP has no sigmas; ``sigmas_source`` says so).
  With a template, nodes are matched by name; a node it lacks is an error.
* videos -> :class:`~posekit.dataset.VideoRecord` (``name``: the file's base name,
  ``file_name``: its relative path as stored, else the base name; size, frame count
  and fps from the video when it opens, else from the file's metadata, else ``0``
  (unknown) unless ``video_sizes`` gives it); a single-image "video" is a still image.
* labeled frames -> images ``<video name>/frame_000012.png`` with ``video`` and
  ``frame_index`` set (empty labeled frames too).
* user instances -> ``accepted`` / ``manual``; predicted instances -> ``predicted``,
  ``source="model:sleap"``, with the instance score and point scores (SLEAP scores
  are not probabilities and are kept as they are; the file stores the instance
  score as float32). A user instance made from a
  prediction is imported beside it (SLEAP keeps both; posekit's review shows both).
* points: NaN -> not labeled (0); ``visible`` -> visible (2); a point with
  coordinates but ``visible=False`` -> occluded (1), and occluded points are
  written that way (SLEAP's trainer ignores invisible points, as it would a missing one).
* tracks -> ``track_id``: ``n`` for SLEAP's default names ``track_<n>`` (when every
  track is named so), else the track's position in the file's track list (posekit
  writes named tracks at the position of their id, with empty ``track_<i>`` tracks
  for unused ids below 10,000); :class:`~posekit.dataset.TrackRecord`
  per (video, track) with the frames of its user instances as keyframes and the
  track name as ``label`` (None for ``track_<id>``).

Not carried: boxes, crowd flags, ``rejected`` instances (not written, with a
warning), instance ids, OKS sigmas and colours of custom templates.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.files import atomic_path
from posekit.formats.sleap_frames import fast_frame_tables
from posekit.formats.sleap_points import point_arrays
from posekit.gc_pause import gc_paused
from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.skeleton import (
    Skeleton,
    SkeletonError,
    names_mapping,
    preset_for_names,
    uniform_sigma_template,
)

if TYPE_CHECKING:
    import sleap_io

__all__ = [
    "DEFAULT_SIGMA",
    "SleapFormatError",
    "from_sleap",
    "read_sleap",
    "to_sleap",
    "write_sleap",
]

log = logging.getLogger(__name__)

#: OKS sigma of templates built from a SLEAP skeleton (SLEAP has none); the
#: template's ``sigmas_source`` says so. Pass ``skeleton=`` to use real ones.
DEFAULT_SIGMA = 0.07
PREDICTED_SOURCE = "model:sleap"
_TRACK_NAME = re.compile(r"track_(\d+)")
_MAX_PADDED_TRACKS = 10_000
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


class SleapFormatError(ValueError):
    """A SLEAP file cannot be read or written; the message names the element."""


def _sleap_io() -> Any:
    try:
        import sleap_io
    except ImportError:
        raise SleapFormatError(
            "reading and writing SLEAP files needs sleap-io: pip install 'posekit[sleap]'"
        ) from None
    return sleap_io


def frame_file_name(video: str, frame: int) -> str:
    """File name of a frame of a SLEAP video: ``<video name>/frame_000012.png``."""
    return f"{video}/frame_{frame:06d}.png"


# ------------------------------------------------------------------ import


def _template(skeleton: Any, source: str) -> Skeleton:
    names = list(skeleton.node_names)
    preset = preset_for_names(names)
    if preset is not None:
        return preset
    try:
        template = uniform_sigma_template(
            skeleton.name or "sleap",
            names,
            skeleton.edge_inds,
            sigma=DEFAULT_SIGMA,
            why="SLEAP skeletons carry no OKS sigmas",
        )
        data = template.to_dict()
        # flip pairs from SLEAP's symmetries, not from the names
        index = {n: i for i, n in enumerate(names)}
        data["flip_pairs"] = [
            [template.keypoints[index[a]], template.keypoints[index[b]]]
            for a, b in (sorted(node.name for node in sym.nodes) for sym in skeleton.symmetries)
        ]
        return Skeleton.from_dict(data, source=f"{source}: skeleton {skeleton.name!r}")
    except SkeletonError as exc:
        raise SleapFormatError(f"{source}: skeleton {skeleton.name!r}: {exc}") from None


def _video_name(video: Any) -> str:
    stored = (getattr(video, "backend_metadata", None) or {}).get("filename", video.filename)
    if isinstance(stored, list | tuple):
        stored = stored[0] if stored else "video"
    return str(stored).replace("\\", "/")


def _relative_or_base(stored: str) -> str:
    try:
        return safe_relative_name(stored)
    except UnsafePathError:
        return PurePosixPath(stored).name or "video"


def _video_shape(video: Any) -> tuple[int | None, int | None, int | None]:
    """``(frames, height, width)`` from the opened video or the stored metadata."""
    shape = None
    try:
        shape = video.shape
    except Exception:  # a missing or unreadable file: sleap-io's backends raise anything
        shape = None
    if shape is None:
        shape = (getattr(video, "backend_metadata", None) or {}).get("shape")
    if shape is None or len(shape) < 3:
        return None, None, None
    return int(shape[0]), int(shape[1]), int(shape[2])


def from_sleap(
    labels: sleap_io.Labels,
    skeleton: Skeleton | None = None,
    *,
    video_sizes: Mapping[str, tuple[int, int]] | None = None,
    source: str = "SLEAP labels",
) -> PoseDataset:
    """A ``sleap_io.Labels`` as a :class:`PoseDataset` (see the module docstring).

    Args:
        labels: What ``sleap_io.load_slp`` returned.
        skeleton: The project template (nodes matched by name), or None.
        video_sizes: ``(width, height)`` by video name (base name) for videos that
            cannot be opened and whose file does not record a size.
        source: What to call the input in error messages.

    Raises:
        SleapFormatError: naming the bad element (a node not in the template, two
            skeletons in use, a malformed instance).
    """
    used = []
    for lf in labels.labeled_frames:
        for inst in lf.instances:
            if all(inst.skeleton is not s for s in used):
                used.append(inst.skeleton)
    if len(used) > 1:
        raise SleapFormatError(
            f"{source}: instances use {len(used)} skeletons "
            f"({', '.join(repr(s.name) for s in used)}); posekit reads one template per dataset"
        )
    sleap_skeleton = used[0] if used else (labels.skeletons[0] if labels.skeletons else None)
    if sleap_skeleton is None:
        raise SleapFormatError(f"{source}: no skeleton")
    node_names = list(sleap_skeleton.node_names)
    if skeleton is None:
        skeleton = _template(sleap_skeleton, source)
    try:
        mapping = names_mapping(node_names, skeleton, strict=True)
    except SkeletonError as exc:
        raise SleapFormatError(f"{source}: skeleton {sleap_skeleton.name!r}: {exc}") from None
    valid = mapping >= 0
    safe = np.where(valid, mapping, 0)

    track_names = [t.name for t in labels.tracks]
    numbers = [_TRACK_NAME.fullmatch(str(n)) for n in track_names]
    by_number = all(numbers) and len({int(m.group(1)) for m in numbers}) == len(numbers)
    track_ids = {
        id(t): (int(numbers[i].group(1)) if by_number else i) for i, t in enumerate(labels.tracks)
    }
    sizes = dict(video_sizes or {})

    videos: dict[int, VideoRecord | None] = {}  # id(sleap video) -> record (None: stills)
    still_names: dict[int, list[str]] = {}
    names_used: set[str] = set()
    out_videos: list[VideoRecord] = []
    for v, video in enumerate(labels.videos):
        stored = video.filename
        frames, height, width = _video_shape(video)
        if isinstance(stored, list | tuple) or (
            PurePosixPath(str(stored)).suffix.lower() in _IMAGE_SUFFIXES
        ):
            files = list(stored) if isinstance(stored, list | tuple) else [_video_name(video)]
            still_names[id(video)] = [_relative_or_base(str(f).replace("\\", "/")) for f in files]
            videos[id(video)] = None
            continue
        stored_name = _video_name(video)
        file_name = _relative_or_base(stored_name)
        name = PurePosixPath(file_name).name
        if name in names_used:
            name = f"{name}#{v}"
        names_used.add(name)
        if width is None and name in sizes:
            width, height = (int(x) for x in sizes[name])
        if width is None:
            log.warning("%s: video %r: frame size unknown (recorded as 0x0)", source, stored_name)
        fps = getattr(video, "fps", None) or (video.backend_metadata or {}).get("fps")
        record = VideoRecord(
            name=name,
            width=width or 0,
            height=height or 0,
            frame_count=frames,
            fps=float(fps) if fps else None,
            file_name=file_name,
        )
        videos[id(video)] = record
        out_videos.append(record)

    images: list[LabeledImage] = []
    tracks: dict[tuple[str, int], TrackRecord] = {}
    seen: dict[str, int] = {}
    frames_found: list[tuple[ImageRecord, list[tuple[int, Any, bool, int | None]]]] = []
    pending: list[tuple[Any, bool]] = []  # (sleap instance, predicted) in file order
    where_of: list[str] = []
    for f, lf in enumerate(labels.labeled_frames):
        where = f"{source}: labeled_frames[{f}] (frame {lf.frame_idx})"
        record_video = videos.get(id(lf.video))
        frame = int(lf.frame_idx)
        if record_video is None:
            files = still_names.get(id(lf.video))
            if files is None or not 0 <= frame < len(files):
                _raise_first_overflow(pending, where_of, valid, safe)
                raise SleapFormatError(f"{where}: its video is not in the file's video list")
            _, height, width = _video_shape(lf.video)
            image = ImageRecord(files[frame], width or 0, height or 0)
        else:
            image = ImageRecord(
                frame_file_name(record_video.name, frame),
                record_video.width,
                record_video.height,
                video=record_video.name,
                frame_index=frame,
            )
        if image.file_name in seen:
            _raise_first_overflow(pending, where_of, valid, safe)
            raise SleapFormatError(
                f"{where}: frame {image.file_name!r} is also "
                f"labeled_frames[{seen[image.file_name]}]"
            )
        seen[image.file_name] = f
        found: list[tuple[int, Any, bool, int | None]] = []
        for i, inst in enumerate(lf.instances):
            if len(inst.points) != len(node_names):
                _raise_first_overflow(pending, where_of, valid, safe)
                raise SleapFormatError(
                    f"{where}: instance {i} has {len(inst.points)} points, skeleton has "
                    f"{len(node_names)}"
                )
            predicted = type(inst).__name__.startswith("Predicted")
            track_id = track_ids.get(id(inst.track)) if inst.track is not None else None
            found.append((i, inst, predicted, track_id))
            pending.append((inst, predicted))
            where_of.append(f"{where}: instance {i}")
            if track_id is not None and record_video is not None:
                key = (record_video.name, track_id)
                track = tracks.get(key)
                if track is None:
                    label = inst.track.name
                    track = tracks[key] = TrackRecord(
                        record_video.name,
                        track_id,
                        label=None if label == f"track_{track_id}" else label,
                    )
                if not predicted:
                    track.keyframes.add(frame)
        frames_found.append((image, found))
    arrays = point_arrays(pending, valid, safe)
    if arrays.overflow.any():
        raise SleapFormatError(
            f"{where_of[int(np.argmax(arrays.overflow))]}: a value is beyond float32 range"
        )
    n = 0
    for image, found in frames_found:
        instances: list[Instance] = []
        for _, inst, predicted, track_id in found:
            score = getattr(inst, "score", None) if predicted else None
            if score is not None and not math.isfinite(score):
                score = None
            # The arrays were built in bulk (0/1/2 flags, zeros at unlabeled points,
            # finite scores): skip Instance's re-validation, which dominates big imports.
            instances.append(
                Instance.trusted(
                    arrays.keypoints[n],
                    arrays.visibility[n],
                    keypoint_scores=arrays.scores[n] if predicted else None,
                    score=None if score is None else float(score),
                    source=PREDICTED_SOURCE if predicted else "manual",
                    status="predicted" if predicted else "accepted",
                    track_id=track_id,
                )
            )
            n += 1
        images.append(LabeledImage(image, instances))
    return PoseDataset(
        skeleton=skeleton,
        images=images,
        videos=out_videos,
        tracks=sorted(tracks.values(), key=lambda t: (t.video, t.track_id)),
    )


def _raise_first_overflow(
    pending: list[tuple[Any, bool]], where_of: list[str], valid: np.ndarray, safe: np.ndarray
) -> None:
    """Before an error found later in the file: the error of an earlier instance with
    a value beyond float32 range, which a one-by-one reader would have met first."""
    overflow = point_arrays(pending, valid, safe).overflow
    if overflow.any():
        raise SleapFormatError(
            f"{where_of[int(np.argmax(overflow))]}: a value is beyond float32 range"
        )


# ------------------------------------------------------------------ export


def to_sleap(dataset: PoseDataset) -> sleap_io.Labels:
    """The dataset as ``sleap_io.Labels`` (one skeleton from the template; a video
    per :class:`VideoRecord`, a one-image video per still image; tracks named by
    their ``TrackRecord.label`` or ``track_<id>``).

    Raises:
        SleapFormatError: an image names a video the dataset does not have, or an
            instance does not fit the template.
    """
    sio = _sleap_io()
    template = dataset.skeleton
    skeleton = sio.Skeleton(
        nodes=[sio.Node(name) for name in template.keypoints], name=template.name
    )
    for a, b in template.edges:
        skeleton.add_edge(a, b)
    for a, b in template.flip_pairs:
        skeleton.add_symmetry(a, b)
    k = template.num_keypoints

    records = {video.name: video for video in dataset.videos}
    last_frame: dict[str, int] = {}
    for item in dataset.images:
        if item.image.video is not None:
            frame = int(item.image.frame_index or 0)
            last_frame[item.image.video] = max(last_frame.get(item.image.video, 0), frame)
    sleap_videos: dict[str, Any] = {}
    for video in dataset.videos:
        frames = (
            video.frame_count
            if video.frame_count is not None
            else last_frame.get(video.name, 0) + 1
        )
        metadata: dict[str, Any] = {"shape": [int(frames), int(video.height), int(video.width), 3]}
        if video.fps is not None:
            metadata["fps"] = float(video.fps)
        sleap_videos[video.name] = sio.Video(
            filename=video.file_name or video.name,
            backend=None,
            backend_metadata=metadata,
            open_backend=False,
        )
    labels_tracks: dict[int, Any] = {}
    track_labels = {t.track_id: t.label for t in dataset.tracks if t.label}

    def track_for(track_id: int | None) -> Any:
        if track_id is None:
            return None
        track = labels_tracks.get(track_id)
        if track is None:
            track = labels_tracks[track_id] = sio.Track(
                track_labels.get(track_id) or f"track_{track_id}"
            )
        return track

    frames_out = []
    extra_videos = []
    rejected = 0
    for item in dataset.images:
        record = item.image
        if record.video is not None:
            video = sleap_videos.get(record.video)
            if video is None or record.video not in records:
                raise SleapFormatError(
                    f"image {record.file_name!r}: video {record.video!r} is not in dataset.videos"
                )
            frame = int(record.frame_index or 0)
        else:
            video = sio.Video(
                filename=record.file_name,
                backend=None,
                backend_metadata={"shape": [1, int(record.height), int(record.width), 3]},
                open_backend=False,
            )
            extra_videos.append(video)
            frame = 0
        instances = []
        for instance in item.instances:
            if instance.num_keypoints != k:
                raise SleapFormatError(
                    f"image {record.file_name!r}: an instance has {instance.num_keypoints} "
                    f"keypoints, template {template.name!r} has {k}"
                )
            if instance.status == "rejected":
                rejected += 1
                continue
            xy = instance.keypoints.astype(np.float64)
            xy[instance.visibility == 0] = np.nan
            track = track_for(instance.track_id)
            if instance.status == "predicted":
                point_scores = (
                    instance.keypoint_scores.astype(np.float64)
                    if instance.keypoint_scores is not None
                    else np.where(instance.visibility > 0, 1.0, 0.0)
                )
                inst = sio.PredictedInstance.from_numpy(
                    xy,
                    skeleton=skeleton,
                    point_scores=point_scores,
                    score=float(instance.score) if instance.score is not None else 0.0,
                    track=track,
                )
            else:
                inst = sio.Instance.from_numpy(xy, skeleton=skeleton, track=track)
            inst.points["visible"] = instance.visibility == 2
            instances.append(inst)
        frames_out.append(sio.LabeledFrame(video=video, frame_idx=frame, instances=instances))
    if rejected:
        log.warning("%d rejected instance(s) not written", rejected)
    track_list = [labels_tracks[t] for t in sorted(labels_tracks)]
    if any(t.name != f"track_{i}" for i, t in labels_tracks.items()):
        # A SLEAP track has only a name: with named tracks the reader takes a track's
        # position as its id, so unused ids are filled with empty default tracks.
        top = max(labels_tracks)
        if top < _MAX_PADDED_TRACKS:
            track_list = [labels_tracks.get(i) or sio.Track(f"track_{i}") for i in range(top + 1)]
        else:
            log.warning("track ids up to %d: named tracks are renumbered by position", top)
    return sio.Labels(
        labeled_frames=frames_out,
        videos=[*sleap_videos.values(), *extra_videos],
        skeletons=[skeleton],
        tracks=track_list,
    )


# ------------------------------------------------------------------ files


def read_sleap(
    path: str | os.PathLike[str],
    skeleton: Skeleton | None = None,
    *,
    video_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> PoseDataset:
    """Read a SLEAP ``.slp`` file (see :func:`from_sleap`). Videos are looked for where
    the file says and next to it (sleap-io's rule), only to learn their size.

    SLEAP's old JSON format (``.json``, jsonpickle) is refused: open it in SLEAP and
    save it as ``.slp``.

    Raises:
        SleapFormatError: not a SLEAP file, the old JSON format, or bad content.
    """
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.lstrip()[:1] in (b"{", b"["):
        raise SleapFormatError(
            f"{path}: SLEAP's old JSON labels format is not supported (it is jsonpickle, "
            "which posekit does not decode); open it in SLEAP and save it as .slp"
        )
    if head != b"\x89HDF\r\n\x1a\n":
        raise SleapFormatError(f"{path}: not a SLEAP .slp file (no HDF5 signature)")
    sio = _sleap_io()
    try:
        with gc_paused():  # sleap-io builds an object per instance and point array
            labels = sio.load_slp(str(path))
    except Exception as exc:  # h5py / sleap-io raise many kinds on damaged files
        raise SleapFormatError(f"{path}: cannot read the SLEAP file: {exc}") from None
    try:
        with gc_paused():
            return from_sleap(labels, skeleton, video_sizes=video_sizes, source=str(path))
    finally:
        for video in labels.videos:
            try:
                video.close()
            except Exception:  # closing a backend that never opened
                log.debug("could not close %r", video.filename)


def write_sleap(
    dataset: PoseDataset,
    path: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
) -> Path:
    """Write the dataset as a SLEAP ``.slp`` file (through ``sleap_io.save_slp``) to a
    temporary file that then replaces ``path``. ``media`` is not used: the file
    names its videos and images, it does not embed them."""
    del media
    path = Path(path)
    sio = _sleap_io()
    with gc_paused():
        labels = to_sleap(dataset)
    with atomic_path(path, suffix=".slp") as tmp, gc_paused(), fast_frame_tables():
        sio.save_slp(labels, str(tmp), verbose=False)
    return path
