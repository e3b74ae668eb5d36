"""Decoding of the BlazePose landmark model: heatmap refinement and the agreement
between successive crops."""

from __future__ import annotations

import functools

import numpy as np

from posekit.models.blazepose.runtime import LANDMARK_SIZE, ROI_ENLARGE, sigmoid

__all__ = [
    "HEATMAP_KERNEL",
    "LandmarkOutput",
    "heatmap_windows",
    "keypoint_similarity",
    "pass_agreement",
    "refine_with_heatmap",
    "refine_with_heatmap_peaks",
    "refine_with_heatmap_windows",
]

HEATMAP_KERNEL = 7  # RefineLandmarksFromHeatmapCalculator kernel_size in MediaPipe's graph
#: Window peak from which the heatmap refines a landmark (MediaPipe's graph: 0.5).
#: Refining more landmarks (0.3, or all) helped with ground-truth boxes on some shared
#: sample sets but cost the own-detector AP on COCO (0.607 -> 0.56), so it stays 0.5.
HEATMAP_MIN_CONFIDENCE = 0.5


class LandmarkOutput:
    """Decoded landmark-model output for a batch of crops (image pixel coordinates)."""

    __slots__ = (
        "agreement",
        "depth",
        "flip_agreement",
        "heat_peak",
        "keypoint_agreement",
        "points",
        "pose_flag",
        "presence",
        "visibility",
    )

    def __init__(
        self,
        points: np.ndarray,
        visibility: np.ndarray,
        presence: np.ndarray,
        flag: np.ndarray,
        heat_peak: np.ndarray | None = None,
        flip_agreement: np.ndarray | None = None,
    ) -> None:
        self.points = points  # (N, 39, 2)
        self.visibility = visibility  # (N, 39)
        self.presence = presence  # (N, 39)
        self.pose_flag = flag  # (N,)
        self.agreement = np.ones_like(flag)  # (N,) OKS-like similarity of successive passes
        n, k = presence.shape
        #: (N, 39) the model's depth per landmark, image pixels (larger = farther).
        self.depth = np.zeros((n, k), np.float32)
        #: (N, 39) heatmap peak probability around each landmark (1 without heatmap).
        self.heat_peak = np.ones((n, k), np.float32) if heat_peak is None else heat_peak
        #: (N, 33) per-landmark similarity between the last two passes (1 if one pass).
        self.keypoint_agreement = np.ones((n, 33), np.float32)
        #: (N, 33) per-landmark similarity between the crop and its mirror (1 if none).
        self.flip_agreement = (
            np.ones((n, 33), np.float32) if flip_agreement is None else flip_agreement
        )

    def take(self, rows: np.ndarray) -> LandmarkOutput:
        """A copy holding only ``rows``."""
        out = LandmarkOutput.__new__(LandmarkOutput)
        for name in self.__slots__:
            setattr(out, name, getattr(self, name)[rows].copy())
        return out

    def assign(self, rows: np.ndarray, other: LandmarkOutput) -> None:
        """Overwrite ``rows`` with ``other``'s (one row of ``other`` per index)."""
        for name in self.__slots__:
            getattr(self, name)[rows] = getattr(other, name)


#: OKS sigmas of the 33 landmarks (the mediapipe33 preset's values).
_SIGMAS33 = np.array(
    [0.026, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.035, 0.035, 0.025, 0.025,
     0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062,
     0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.066, 0.066, 0.068, 0.068]
)  # fmt: skip


def keypoint_similarity(first: np.ndarray, second: np.ndarray, rois: np.ndarray) -> np.ndarray:
    """Per-landmark OKS term ``(N, 33)`` between two predictions of the same people
    ``(N, 33, 2)``, the person's area taken as half the square of the un-enlarged ROI
    side (a box-to-segment ratio)."""
    area = 0.5 * (rois[:, 2] / ROI_ENLARGE) ** 2
    d2 = ((first - second) ** 2).sum(axis=-1)
    e = d2 / (2.0 * area[:, None] * (2.0 * _SIGMAS33[None]) ** 2 + 1e-9)
    return np.exp(-e).astype(np.float32)


def pass_agreement(first: np.ndarray, second: np.ndarray, rois: np.ndarray) -> np.ndarray:
    """OKS ``(N,)`` between two predictions of the same people ``(N, 33, 2)`` (the mean
    of :func:`keypoint_similarity`)."""
    return keypoint_similarity(first, second, rois).mean(axis=1).astype(np.float32)


def refine_with_heatmap(
    points: np.ndarray,
    heatmaps: np.ndarray,
    kernel: int = HEATMAP_KERNEL,
    min_confidence: float = HEATMAP_MIN_CONFIDENCE,
) -> np.ndarray:
    """Refined ``(N, K, 2)`` positions (see :func:`refine_with_heatmap_peaks`)."""
    return refine_with_heatmap_peaks(points, heatmaps, kernel, min_confidence)[0]


def refine_with_heatmap_peaks(
    points: np.ndarray,
    heatmaps: np.ndarray,
    kernel: int = HEATMAP_KERNEL,
    min_confidence: float = HEATMAP_MIN_CONFIDENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine ``(N, K, 2)`` landmark positions (crop pixels, 0..256) with the model's
    ``(N, H, W, K)`` heatmap logits.

    As in MediaPipe's RefineLandmarksFromHeatmapCalculator: around each landmark's
    heatmap cell, the sigmoid-weighted mean cell position in a ``kernel`` x ``kernel``
    window replaces the regressed position when the window's peak is at least
    ``min_confidence`` (MediaPipe: 0.5; default :data:`HEATMAP_MIN_CONFIDENCE`).
    Cell ``col`` reads as crop position ``col / W`` (not the cell centre): that is how
    MediaPipe decodes this model's heatmap; the cell-centre reading measured a
    systematic half-cell shift on COCO.

    The same as :func:`heatmap_windows` per crop then
    :func:`refine_with_heatmap_windows` (which the estimator calls, so that it never
    copies a whole heatmap out of the interpreter).

    Returns:
        The positions and ``(N, K)`` the window's peak probability (0 for points
        outside the heatmap).
    """
    n, height, width, k = heatmaps.shape
    if n == 0:
        return points, np.zeros(points.shape[:2], np.float32)
    cells = _Cells(points, height, width, kernel)
    batch = np.arange(n)[:, None, None, None]
    chan = np.arange(k)[None, :, None, None]
    windows = heatmaps[batch, cells.rows[:, :, :, None], cells.cols[:, :, None, :], chan]
    return _refine(points, windows, cells, min_confidence)


def heatmap_windows(
    heatmap: np.ndarray, points: np.ndarray, kernel: int = HEATMAP_KERNEL
) -> np.ndarray:
    """The ``(K, kernel, kernel)`` logits around each of the ``(K, 2)`` landmark
    positions of one crop in its ``(H, W, K)`` heatmap (cells clamped to the edge;
    :func:`refine_with_heatmap_windows` masks the clamped ones)."""
    # The clamped cells of _Cells, with less per-call overhead (once per crop).
    height, width, k = heatmap.shape
    scale = LANDMARK_SIZE / width
    offsets = _offsets(kernel)
    cells = np.floor(points / scale).astype(np.int64)[:, :, None] + offsets  # (K, 2, kernel)
    cols = np.minimum(np.maximum(cells[:, 0], 0), width - 1)
    rows = np.minimum(np.maximum(cells[:, 1], 0), height - 1)
    return heatmap[rows[:, :, None], cols[:, None, :], _channels(k)]


@functools.cache
def _offsets(kernel: int) -> np.ndarray:
    return _frozen(np.arange(kernel) - (kernel - 1) // 2)


@functools.cache
def _channels(k: int) -> np.ndarray:
    return _frozen(np.arange(k)[:, None, None])


def _frozen(array: np.ndarray) -> np.ndarray:
    """``array`` made read-only: the cached index arrays are shared by every call."""
    array.flags.writeable = False
    return array


def refine_with_heatmap_windows(
    points: np.ndarray,
    windows: np.ndarray,
    heatmap_size: tuple[int, int],
    min_confidence: float = HEATMAP_MIN_CONFIDENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`refine_with_heatmap_peaks` from the crops' :func:`heatmap_windows`
    ``(N, K, kernel, kernel)`` (``heatmap_size``: the heatmap's ``(H, W)``); the
    same values, bit for bit."""
    if len(points) == 0:
        return points, np.zeros(points.shape[:2], np.float32)
    height, width = heatmap_size
    cells = _Cells(points, height, width, windows.shape[-1])
    return _refine(points, windows, cells, min_confidence)


class _Cells:
    """The heatmap cells of ``(N, K, 2)`` crop positions and their windows."""

    __slots__ = ("col_ok", "cols", "inside", "row_ok", "rows", "scale")

    def __init__(self, points: np.ndarray, height: int, width: int, kernel: int) -> None:
        self.scale = LANDMARK_SIZE / width
        col = np.floor(points[..., 0] / self.scale).astype(np.int64)  # (N, K)
        row = np.floor(points[..., 1] / self.scale).astype(np.int64)
        self.inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        offsets = np.arange(kernel) - (kernel - 1) // 2
        cols = col[..., None] + offsets  # (N, K, kernel)
        rows = row[..., None] + offsets
        self.col_ok = (cols >= 0) & (cols < width)
        self.row_ok = (rows >= 0) & (rows < height)
        self.cols = np.clip(cols, 0, width - 1)
        self.rows = np.clip(rows, 0, height - 1)


def _refine(
    points: np.ndarray, windows: np.ndarray, cells: _Cells, min_confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    weights = sigmoid(windows) * (cells.row_ok[:, :, :, None] & cells.col_ok[:, :, None, :])
    total = weights.sum(axis=(2, 3))
    peak = weights.max(axis=(2, 3))
    safe = np.maximum(total, 1e-9)
    mean_col = (weights.sum(axis=2) * cells.cols).sum(axis=2) / safe
    mean_row = (weights.sum(axis=3) * cells.rows).sum(axis=2) / safe
    refine = cells.inside & (peak >= min_confidence) & (total > 0)
    scale = cells.scale
    out = points.copy()
    out[..., 0] = np.where(refine, mean_col * scale, points[..., 0])
    out[..., 1] = np.where(refine, mean_row * scale, points[..., 1])
    return out, np.where(cells.inside, peak, 0.0).astype(np.float32)
