"""The format table: every dataset format posekit reads or writes, in one place.

The CLI's ``--format`` choices, the server's import/export routes and format
listing, and the store's import/export all read :data:`FORMATS`. Adding a format
is one module in :mod:`posekit.formats` plus one entry here.

Example:
    >>> from posekit.formats.registry import get_format, writable_formats
    >>> writable_formats()
    ['coco', 'yolo']
    >>> spec = get_format("yolo")
    >>> spec.kind, spec.capabilities.scores, spec.default_statuses
    ('folder', False, ('accepted',))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from posekit.dataset import PoseDataset
from posekit.formats import (
    coco,
    csv_tracks,
    cvat,
    deeplabcut,
    labelstudio,
    posetrack,
    sleap,
    supervisely,
    yolo,
)
from posekit.skeleton import Skeleton
from posekit.statuses import DEFAULT_EXPORT_STATUSES

__all__ = [
    "FORMATS",
    "FormatCapabilities",
    "FormatSpec",
    "UnknownFormatError",
    "get_format",
    "readable_formats",
    "writable_formats",
]

#: ``read(path, skeleton)``: the file or folder read into a dataset in ``skeleton``'s
#: layout (None: the shipped preset with the file's keypoint names).
Reader = Callable[[Path, Skeleton | None], PoseDataset]
#: ``write(dataset, destination, *, media=None, **options) -> Path``: ``media`` maps each
#: image ``file_name`` to its file (formats that carry images need it); ``options`` are
#: the format's own keyword options. Returns the main written file.
Writer = Callable[..., Path | None]


class UnknownFormatError(ValueError):
    """A format name that is not in the table; the message lists the known ones."""


@dataclass(frozen=True)
class FormatCapabilities:
    """What a format can carry; anything else is lost on export.

    Attributes:
        visibility_states: The keypoint visibility values it keeps (0 not labeled,
            1 labeled but occluded, 2 visible).
        scores: Instance and keypoint scores (predictions).
        tracks: Track ids across frames.
        boxes: Person boxes (else boxes are derived from the keypoints).
        video: Video files and frame indices (else still images only).
    """

    visibility_states: tuple[int, ...] = (0, 1, 2)
    scores: bool = False
    tracks: bool = False
    boxes: bool = False
    video: bool = False


@dataclass(frozen=True)
class FormatSpec:
    """One row of the format table.

    Attributes:
        name: Identifier used by the CLI (``--format``), the API and the store.
        title: Human readable name for menus.
        extensions: File name endings of the format (``(".json",)``); empty for folders.
        kind: ``"file"`` (one file) or ``"folder"`` (a folder of files).
        read: The reader (see :data:`Reader`), None if posekit does not read the format.
        write: The writer (see :data:`Writer`), None if posekit does not write it.
        capabilities: What the format can carry.
        default_statuses: Instance statuses exported unless the caller asks for others.
    """

    name: str
    title: str
    extensions: tuple[str, ...]
    kind: Literal["file", "folder"]
    read: Reader | None
    write: Writer | None
    capabilities: FormatCapabilities
    default_statuses: tuple[str, ...] = DEFAULT_EXPORT_STATUSES


#: The format table, by name.
FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            name="coco",
            title="COCO keypoints",
            extensions=(".json",),
            kind="file",
            read=coco.read_coco,
            write=coco.write_coco,
            capabilities=FormatCapabilities(scores=True, tracks=True, boxes=True),
        ),
        FormatSpec(
            name="yolo",
            title="Ultralytics YOLO pose",
            extensions=(),
            kind="folder",
            read=None,
            write=yolo.write_yolo_folder,
            capabilities=FormatCapabilities(boxes=True),
        ),
        FormatSpec(
            name="posetrack",
            title="PoseTrack18 JSON",
            extensions=(".json",),
            kind="file",
            read=posetrack.read_posetrack,
            write=posetrack.write_posetrack,
            capabilities=FormatCapabilities(scores=True, tracks=True, boxes=True, video=True),
        ),
        FormatSpec(
            name="labelstudio",
            title="Label Studio JSON",
            extensions=(".json",),
            kind="file",
            read=labelstudio.read_labelstudio,
            write=labelstudio.write_labelstudio,
            capabilities=FormatCapabilities(scores=True, boxes=True),
        ),
        FormatSpec(
            name="sleap",
            title="SLEAP labels (.slp)",
            extensions=(".slp",),
            kind="file",
            read=sleap.read_sleap,
            write=sleap.write_sleap,
            capabilities=FormatCapabilities(scores=True, tracks=True, video=True),
        ),
        FormatSpec(
            name="deeplabcut",
            title="DeepLabCut project",
            extensions=(),
            kind="folder",
            read=deeplabcut.read_deeplabcut,
            write=deeplabcut.write_deeplabcut,
            capabilities=FormatCapabilities(visibility_states=(0, 2), tracks=True, video=True),
        ),
        FormatSpec(
            name="cvat",
            title="CVAT for images / for video 1.1 (XML)",
            extensions=(".xml",),
            kind="file",
            read=cvat.read_cvat,
            write=cvat.write_cvat,
            # no boxes, no scores; track ids and keyframes in CVAT for video only
            capabilities=FormatCapabilities(tracks=True, video=True),
        ),
        FormatSpec(
            name="supervisely",
            title="Supervisely project (images / videos)",
            extensions=(),
            kind="folder",
            read=supervisely.read_supervisely,
            write=supervisely.write_supervisely,
            # no boxes, no scores, no keyframes; occlusion through a posekit tag
            capabilities=FormatCapabilities(tracks=True, video=True),
        ),
        FormatSpec(**csv_tracks.SPEC, capabilities=FormatCapabilities(**csv_tracks.CAPABILITIES)),
    )
}


def get_format(name: str) -> FormatSpec:
    """The table entry of a format.

    Raises:
        UnknownFormatError: an unknown name (the message lists the known ones).
    """
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        raise UnknownFormatError(
            f"unknown format {name!r}; known formats: {', '.join(FORMATS)}"
        ) from None


def readable_formats() -> list[str]:
    """Names of the formats posekit reads, in table order."""
    return [name for name, spec in FORMATS.items() if spec.read is not None]


def writable_formats() -> list[str]:
    """Names of the formats posekit writes, in table order."""
    return [name for name, spec in FORMATS.items() if spec.write is not None]
