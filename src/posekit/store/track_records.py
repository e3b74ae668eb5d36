"""The records of pose tracks (:class:`TrackInfo`, :class:`FrameInstance`) and the
keyframe rule, shared by :mod:`posekit.store.tracks` and its readers.

A stored instance is a *keyframe* of its track when a person set it: the keyframe
flag is set, or it is ``accepted``, or its source is ``manual``; never when it is
``rejected`` (see :mod:`posekit.store.tracks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_

from posekit.core import Instance
from posekit.store.tables import InstanceRow

__all__ = ["FrameInstance", "TrackInfo", "is_keyframe_clause", "is_keyframe_row"]


def is_keyframe_clause() -> Any:
    """SQL condition: the instance row is a keyframe (see the module docstring)."""
    return and_(
        InstanceRow.status != "rejected",
        or_(
            InstanceRow.keyframe.is_(True),
            InstanceRow.status == "accepted",
            InstanceRow.source == "manual",
        ),
    )


def is_keyframe_row(row: Any) -> bool:
    """:func:`is_keyframe_clause` for a fetched instance row."""
    return row.status != "rejected" and (
        bool(row.keyframe) or row.status == "accepted" or row.source == "manual"
    )


@dataclass(frozen=True)
class TrackInfo:
    """One track of a video.

    Attributes:
        track_id: The ``Instance.track_id`` of its instances.
        keyframes: Frames with a keyframe instance, ascending.
        frames: Frames with any stored instance (keyframe or prediction), ascending.
        outside: Frames where a segment of the track ends, ascending.
    """

    video_id: int
    track_id: int
    label: str | None
    keyframes: tuple[int, ...]
    frames: tuple[int, ...]
    outside: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "video_id": self.video_id,
            "track_id": self.track_id,
            "label": self.label,
            "keyframes": list(self.keyframes),
            "frames": list(self.frames),
            "outside": list(self.outside),
        }


@dataclass(frozen=True, eq=False)
class FrameInstance:
    """An instance shown on a frame: stored (``instance_id``/``version`` set) or
    interpolated from the track's keyframes (``previous_keyframe``/``next_keyframe``)."""

    frame_index: int
    instance: Instance
    track_id: int | None
    keyframe: bool
    stored: bool
    instance_id: int | None = None
    version: int | None = None
    previous_keyframe: int | None = None
    next_keyframe: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def interpolated(self) -> bool:
        return not self.stored
