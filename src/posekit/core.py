"""Core types: one annotated or predicted person (:class:`Instance`) and the person
boxes a detector finds in one image (:class:`Detections`).

All coordinates are absolute pixels in the image the instance belongs to.
Visibility is its own array and never encoded in the coordinates:
0 = not labeled, 1 = labeled but occluded, 2 = labeled and visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from posekit.statuses import INSTANCE_STATUSES

__all__ = [
    "NOT_LABELED",
    "OCCLUDED",
    "REVIEW_STATUSES",
    "VISIBLE",
    "Detections",
    "Instance",
    "InstanceError",
    "box_from_keypoints",
]

NOT_LABELED, OCCLUDED, VISIBLE = 0, 1, 2
REVIEW_STATUSES = INSTANCE_STATUSES  # alias kept for existing callers


class InstanceError(ValueError):
    """An instance is malformed; the message says which field and why."""


def _array(value: Any, shape: tuple[int, ...], dtype: Any, field_name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InstanceError(f"{field_name}: cannot convert to {np.dtype(dtype)}: {exc}") from None
    if arr.shape != shape:
        raise InstanceError(f"{field_name}: expected shape {shape}, got {arr.shape}")
    return arr


def box_from_keypoints(keypoints: np.ndarray, visibility: np.ndarray) -> np.ndarray | None:
    """Tight ``(4,) float32`` xyxy box around labeled keypoints, or None if none are."""
    labeled = visibility > 0
    if not np.any(labeled):
        return None
    pts = keypoints[labeled]
    return np.array(
        [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()], dtype=np.float32
    )


@dataclass(eq=False)
class Instance:
    """One person (or animal, hand...) in one image.

    Attributes:
        keypoints: ``(K, 2) float32`` x, y in absolute pixels. Values at
            not-labeled points are meaningless (kept as 0).
        visibility: ``(K,) uint8`` in {0 not labeled, 1 occluded, 2 visible}.
        keypoint_scores: ``(K,) float32`` model confidences in [0, 1], or None
            for manual annotations.
        box: ``(4,) float32`` x1, y1, x2, y2 (absolute pixels), or None.
        score: Instance confidence in [0, 1], or None.
        source: ``"manual"`` or ``"model:<name>"``.
        status: Review status, one of ``predicted``, ``accepted``, ``rejected``.
        track_id: Identity across video frames, or None.
        iscrowd: COCO crowd region (keypoints usually all 0).
        area: COCO ``area`` if known (segment area), else None.
        segmentation: COCO ``segmentation`` as read (polygons or RLE), kept
            verbatim so that export loses nothing.
        id: Database / file id, or None for new instances.
        extra: Unknown per-annotation fields from imported files, kept verbatim.

    Example:
        >>> import numpy as np
        >>> inst = Instance(np.zeros((17, 2)), np.zeros(17))
        >>> inst.num_keypoints
        17
    """

    keypoints: np.ndarray
    visibility: np.ndarray
    keypoint_scores: np.ndarray | None = None
    box: np.ndarray | None = None
    score: float | None = None
    source: str = "manual"
    status: str = "accepted"
    track_id: int | None = None
    iscrowd: bool = False
    area: float | None = None
    segmentation: Any = None
    id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kps = np.asarray(self.keypoints, dtype=np.float32)
        if kps.ndim != 2 or kps.shape[1] != 2:
            raise InstanceError(f"keypoints: expected shape (K, 2), got {kps.shape}")
        k = kps.shape[0]
        vis_raw = np.asarray(self.visibility)
        if vis_raw.shape != (k,):
            raise InstanceError(f"visibility: expected shape ({k},), got {vis_raw.shape}")
        if vis_raw.size and (
            not np.all(np.isfinite(vis_raw.astype(np.float64)))
            or not np.all(np.isin(vis_raw, (0, 1, 2)))
        ):
            bad = int(np.flatnonzero(~np.isin(vis_raw, (0, 1, 2)))[0])
            raise InstanceError(
                f"visibility: keypoint {bad} has value {vis_raw[bad].item()!r}, expected 0, 1 or 2"
            )
        vis = vis_raw.astype(np.uint8)
        labeled = vis > 0
        if not np.all(np.isfinite(kps[labeled])):
            bad = int(np.flatnonzero(labeled & ~np.all(np.isfinite(kps), axis=1))[0])
            raise InstanceError(f"keypoints: keypoint {bad} is labeled but not finite")
        kps = np.where(labeled[:, None], kps, 0.0).astype(np.float32)
        self.keypoints = kps
        self.visibility = vis
        if self.keypoint_scores is not None:
            ks = _array(self.keypoint_scores, (k,), np.float32, "keypoint_scores")
            if not np.all(np.isfinite(ks)):
                raise InstanceError("keypoint_scores: values must be finite")
            self.keypoint_scores = ks
        if self.box is not None:
            box = _array(self.box, (4,), np.float32, "box")
            if not np.all(np.isfinite(box)):
                raise InstanceError(f"box: values must be finite, got {box.tolist()}")
            if box[2] < box[0] or box[3] < box[1]:
                raise InstanceError(f"box: expected x1 <= x2 and y1 <= y2, got {box.tolist()}")
            self.box = box
        if self.score is not None:
            score = float(self.score)
            if not math.isfinite(score):
                raise InstanceError(f"score: must be finite, got {self.score!r}")
            self.score = score
        if self.status not in REVIEW_STATUSES:
            raise InstanceError(
                f"status: {self.status!r} is not one of {', '.join(REVIEW_STATUSES)}"
            )
        if not isinstance(self.source, str) or not (
            self.source == "manual" or self.source.startswith("model:")
        ):
            raise InstanceError(f"source: expected 'manual' or 'model:<name>', got {self.source!r}")
        if self.track_id is not None:
            self.track_id = int(self.track_id)
        self.iscrowd = bool(self.iscrowd)

    @classmethod
    def trusted(
        cls,
        keypoints: np.ndarray,
        visibility: np.ndarray,
        *,
        keypoint_scores: np.ndarray | None = None,
        box: np.ndarray | None = None,
        score: float | None = None,
        source: str = "manual",
        status: str = "accepted",
        track_id: int | None = None,
        iscrowd: bool = False,
        area: float | None = None,
        segmentation: Any = None,
        id: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Instance:
        """An instance built from fields the caller has already validated, without
        :meth:`__post_init__` (which costs ~100 us; bulk readers check whole arrays
        at once and build 100k instances this way).

        The caller guarantees what ``__post_init__`` would establish: ``keypoints``
        ``(K, 2) float32`` finite where labeled and 0 elsewhere, ``visibility``
        ``(K,) uint8`` in {0, 1, 2}, ``keypoint_scores`` ``(K,) float32`` finite or
        None, ``box`` ``(4,) float32`` finite x1 <= x2, y1 <= y2 or None, ``score`` a
        finite float or None, a valid ``source`` and ``status``, an int or None
        ``track_id`` and a bool ``iscrowd``. Nothing is checked or converted.
        """
        instance = object.__new__(cls)
        instance.__dict__ = {
            "keypoints": keypoints, "visibility": visibility,
            "keypoint_scores": keypoint_scores, "box": box, "score": score,
            "source": source, "status": status, "track_id": track_id, "iscrowd": iscrowd,
            "area": area, "segmentation": segmentation, "id": id,
            "extra": {} if extra is None else extra,
        }  # fmt: skip
        return instance

    @property
    def num_keypoints(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def num_labeled(self) -> int:
        return int(np.count_nonzero(self.visibility))

    def bbox_or_keypoint_box(self) -> np.ndarray | None:
        """The box, or the tight box around labeled keypoints if there is none."""
        if self.box is not None:
            return self.box
        return box_from_keypoints(self.keypoints, self.visibility)

    def remap(self, index: np.ndarray) -> Instance:
        """Instance on another template: ``index[t]`` is this instance's keypoint for
        target keypoint ``t`` or -1 (which becomes not labeled)."""
        index = np.asarray(index, dtype=np.int64)
        valid = index >= 0
        safe = np.where(valid, index, 0)
        kps = np.where(valid[:, None], self.keypoints[safe], 0.0)
        vis = np.where(valid, self.visibility[safe], 0).astype(np.uint8)
        scores = None
        if self.keypoint_scores is not None:
            scores = np.where(valid, self.keypoint_scores[safe], 0.0)
        return replace(self, keypoints=kps, visibility=vis, keypoint_scores=scores)

    def flipped(self, flip_index: np.ndarray, image_width: float) -> Instance:
        """Mirror horizontally in an image of ``image_width`` pixels, swapping left/right
        keypoints by the template's ``flip_index``. Uses the pixel-centre convention
        x' = W - 1 - x (continuous coordinates where pixel i covers [i-0.5, i+0.5])."""
        kps = self.keypoints[flip_index].copy()
        vis = self.visibility[flip_index].copy()
        kps[:, 0] = np.where(vis > 0, image_width - 1 - kps[:, 0], 0.0)
        scores = None if self.keypoint_scores is None else self.keypoint_scores[flip_index]
        box = None
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            box = np.array([image_width - 1 - x2, y1, image_width - 1 - x1, y2], np.float32)
        return replace(self, keypoints=kps, visibility=vis, keypoint_scores=scores, box=box)

    def copy(self, **changes: Any) -> Instance:
        return replace(self, **changes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Instance):
            return NotImplemented

        def same(a: Any, b: Any) -> bool:
            if a is None or b is None:
                return a is None and b is None
            return np.array_equal(np.asarray(a), np.asarray(b))

        return (
            same(self.keypoints, other.keypoints)
            and same(self.visibility, other.visibility)
            and same(self.keypoint_scores, other.keypoint_scores)
            and same(self.box, other.box)
            and self.score == other.score
            and self.source == other.source
            and self.status == other.status
            and self.track_id == other.track_id
            and self.iscrowd == other.iscrowd
            and self.area == other.area
            and self.segmentation == other.segmentation
            and self.id == other.id
            and self.extra == other.extra
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass
class Detections:
    """Person boxes found in one image.

    Attributes:
        boxes: ``(N, 4) float32`` xyxy in absolute pixels.
        scores: ``(N,) float32`` in [0, 1].
        keypoints: optional ``(N, M, 2) float32`` detector-specific points
            (BlazePose's detector gives hip centre and a point above the head,
            which the landmark model uses to align its crop), else None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if self.scores.shape[0] != self.boxes.shape[0]:
            raise ValueError(
                f"Detections: {self.boxes.shape[0]} boxes but {self.scores.shape[0]} scores"
            )
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
            if self.keypoints.ndim != 3 or self.keypoints.shape[0] != self.boxes.shape[0]:
                raise ValueError(
                    f"Detections: keypoints shape {self.keypoints.shape} does not match "
                    f"{self.boxes.shape[0]} boxes"
                )

    def __len__(self) -> int:
        return int(self.boxes.shape[0])

    def subset(self, index: np.ndarray | Sequence[int] | Sequence[bool]) -> Detections:
        """The detections selected by integer positions or by a boolean mask."""
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(
                    f"Detections.subset: mask has shape {index.shape}, expected ({len(self)},)"
                )
            index = np.flatnonzero(index)
        index = index.astype(np.int64)
        kps = None if self.keypoints is None else self.keypoints[index]
        return Detections(self.boxes[index], self.scores[index], kps)


def stack_keypoints(instances: Sequence[Instance]) -> tuple[np.ndarray, np.ndarray]:
    """``(N, K, 2) float32`` keypoints and ``(N, K) uint8`` visibility of instances."""
    if not instances:
        return np.zeros((0, 0, 2), np.float32), np.zeros((0, 0), np.uint8)
    return (
        np.stack([i.keypoints for i in instances]),
        np.stack([i.visibility for i in instances]),
    )
