"""The in-memory pose dataset: images with their person instances, format-neutral.

Every format module reads into and writes from these types
(:mod:`posekit.formats`); the store builds them for exports. Keypoints are in
the dataset template's layout (:class:`~posekit.skeleton.Skeleton`), in absolute
pixels (:class:`~posekit.core.Instance`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from posekit.core import Instance
from posekit.skeleton import Skeleton

__all__ = [
    "ImageRecord",
    "LabeledImage",
    "PoseDataset",
    "TrackRecord",
    "VideoRecord",
    "fill_missing_ids",
]


@dataclass
class ImageRecord:
    """One image of a dataset (one entry of COCO ``images``).

    Attributes:
        file_name: Path of the image relative to the image folder, as in the file.
        width: Image width in pixels.
        height: Image height in pixels.
        id: Image id in the source file, or None for a new image (an id is
            assigned on export).
        extra: Other image fields (COCO ``license``, ``coco_url``, ``frame_id``...),
            carried verbatim.
        video: For a video frame, the ``VideoRecord.name`` of its video, else None.
        frame_index: For a video frame, its 0-based index in the video.
        timestamp: For a video frame, its presentation time in seconds, if known.
    """

    file_name: str
    width: int
    height: int
    id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    video: str | None = None
    frame_index: int | None = None
    timestamp: float | None = None


@dataclass
class VideoRecord:
    """A video whose frames are images of the dataset.

    Frames are :class:`ImageRecord` entries with ``video`` set to this record's
    ``name`` and ``frame_index`` set to the frame's 0-based index (``timestamp``:
    its presentation time in seconds, when known). Only frames that hold
    annotations (or that a format lists) need to be present.

    Attributes:
        name: Unique name of the video in the dataset (formats use the file name
            or their own video id); frames refer to it.
        width: Frame width in pixels (after rotation).
        height: Frame height in pixels.
        frame_count: Number of frames of the video, when known.
        fps: Average frame rate, when known.
        file_name: The video file (relative path) when the format names one.
        id: Video id in the source file, or None.
        extra: Other fields of the source format, verbatim.
    """

    name: str
    width: int
    height: int
    frame_count: int | None = None
    fps: float | None = None
    file_name: str | None = None
    id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrackRecord:
    """What a track has beyond its per-frame instances (which carry ``track_id``).

    Attributes:
        video: ``VideoRecord.name`` of the video the track is in.
        track_id: The ``Instance.track_id`` of its instances.
        keyframes: Frame indices where the track's instance was set by a person
            (or accepted); instances on other frames are interpolated or predicted.
        outside: Frame indices where the track ends a segment (the person left
            the view); nothing is interpolated from there to the next keyframe.
        label: The track's label in the source format, if any.
        extra: Other fields of the source format, verbatim.
    """

    video: str
    track_id: int
    keyframes: set[int] = field(default_factory=set)
    outside: set[int] = field(default_factory=set)
    label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class LabeledImage:
    """An image and its person instances (in the dataset template's layout)."""

    image: ImageRecord
    instances: list[Instance]


@dataclass
class PoseDataset:
    """A keypoint dataset in posekit types.

    The last fields hold what a COCO file carries beyond images and instances;
    they are kept verbatim so that a COCO file reads and writes back unchanged
    (other formats leave them at their defaults).

    Attributes:
        skeleton: The template all instances follow (``K`` keypoints).
        images: Images in file order, each with its instances.
        category_id: COCO id of the keypoint category.
        info: COCO ``info`` block, verbatim, or None if absent.
        licenses: COCO ``licenses`` list, verbatim, or None if absent.
        category: The COCO keypoint category entry as read, verbatim; written back
            while its keypoints are the template's (same order, names or aliases),
            otherwise the template's own category is written.
        extra_categories: Other COCO categories, verbatim.
        extra_annotations: COCO annotations of other categories, verbatim.
        extra: Unknown top-level COCO fields, verbatim.
        videos: Videos whose frames are among ``images`` (empty for still images).
        tracks: Keyframes and outside frames of the tracks in ``videos``.
    """

    skeleton: Skeleton
    images: list[LabeledImage]
    category_id: int = 1
    info: dict[str, Any] | None = None
    licenses: list[Any] | None = None
    category: dict[str, Any] | None = None
    extra_categories: list[dict[str, Any]] = field(default_factory=list)
    extra_annotations: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    videos: list[VideoRecord] = field(default_factory=list)
    tracks: list[TrackRecord] = field(default_factory=list)

    @property
    def num_instances(self) -> int:
        """Number of instances over all images."""
        return sum(len(item.instances) for item in self.images)


def fill_missing_ids(existing: Sequence[int | None], reserved: Iterable[int] = ()) -> list[int]:
    """``existing`` with every None replaced by a new id, counting up after the largest
    id used (in ``existing`` or ``reserved``).

    Example:
        >>> fill_missing_ids([7, None, 3, None])
        [7, 8, 3, 9]
    """
    used = {i for i in existing if i is not None} | set(reserved)
    next_id = max(used, default=0) + 1
    out = []
    for value in existing:
        if value is None:
            value = next_id
            next_id += 1
        out.append(value)
    return out
