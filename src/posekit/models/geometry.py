"""Crop geometry for top-down pose models: letterboxing and rotated square ROIs.

Coordinates are image pixel coordinates in the pixel-centre convention used
throughout posekit (pixel ``i`` covers ``[i - 0.5, i + 0.5]``), so crops made
with :func:`crop_rois` and points mapped back with :func:`crop_to_image` agree
with :class:`posekit.core.Instance` coordinates.

A *ROI* is a row ``(cx, cy, size, rotation)``: a square of side ``size``
pixels centred at ``(cx, cy)`` and rotated by ``rotation`` radians (clockwise
on screen, since y points down), the convention of MediaPipe's
``NormalizedRect``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "Letterbox",
    "box_to_roi",
    "crop_rois",
    "crop_to_image",
    "letterbox",
    "letterbox_into",
    "roi_from_alignment_points",
    "roi_to_box",
]


class Letterbox:
    """Aspect-preserving resize of an image into a ``size`` x ``size`` square.

    Attributes:
        scale: model pixels per image pixel.
        pad_x: left padding in model pixels.
        pad_y: top padding in model pixels.
    """

    __slots__ = ("pad_x", "pad_y", "scale", "size")

    def __init__(self, width: int, height: int, size: int) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"letterbox: image size must be positive, got {width}x{height}")
        self.size = size
        self.scale = size / max(width, height)
        # Centred padding, as MediaPipe's ImageToTensorCalculator does with keep_aspect_ratio.
        self.pad_x = (size - width * self.scale) / 2.0
        self.pad_y = (size - height * self.scale) / 2.0

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Map ``(..., 2)`` continuous model coordinates (0..size, edge at 0) to image
        pixel-centre coordinates."""
        out = np.empty_like(points, dtype=np.float32)
        out[..., 0] = (points[..., 0] - self.pad_x) / self.scale - 0.5
        out[..., 1] = (points[..., 1] - self.pad_y) / self.scale - 0.5
        return out


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    """``(size, size, 3) uint8`` letterboxed copy of ``image`` (black borders) and the
    transform that maps model coordinates back to the image."""
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    return canvas, letterbox_into(image, canvas)


def letterbox_into(image: np.ndarray, canvas: np.ndarray) -> Letterbox:
    """Letterbox ``image`` into ``canvas`` (a square ``(size, size, 3) uint8`` array,
    black or with the borders it should keep) and return the transform; the resize
    writes straight into the canvas (no intermediate copy)."""
    height, width = image.shape[:2]
    size = canvas.shape[0]
    box = Letterbox(width, height, size)
    new_w = max(1, min(size, round(width * box.scale)))
    new_h = max(1, min(size, round(height * box.scale)))
    x0 = min(round(box.pad_x), size - new_w)
    y0 = min(round(box.pad_y), size - new_h)
    # INTER_AREA when shrinking avoids the aliasing that a bilinear warp would give
    # large photos (a 4000 px image shrinks ~18x to 224).
    interp = cv2.INTER_AREA if box.scale < 1.0 else cv2.INTER_LINEAR
    region = canvas[y0 : y0 + new_h, x0 : x0 + new_w]
    written = cv2.resize(image, (new_w, new_h), dst=region, interpolation=interp)
    if written is not region and not np.shares_memory(written, region):
        region[...] = written  # OpenCV allocated its own output after all
    # Exact offsets after rounding, so the inverse mapping matches the pixels written.
    box.pad_x = float(x0)
    box.pad_y = float(y0)
    box.scale = 1.0 / 2.0 * (new_w / width + new_h / height)
    return box


def roi_from_alignment_points(
    center: np.ndarray, scale_point: np.ndarray, enlarge: float, target_angle: float = 90.0
) -> np.ndarray:
    """ROIs ``(N, 4)`` from two alignment points per person.

    The square is centred on ``center`` (e.g. the hip centre), its side is twice the
    distance to ``scale_point`` times ``enlarge``, and it is rotated so that the
    vector center -> scale_point points at ``target_angle`` degrees (90 = up), the rule
    of MediaPipe's AlignmentPointsRectsCalculator followed by RectTransformation.

    Args:
        center: ``(N, 2)`` pixel coordinates.
        scale_point: ``(N, 2)`` pixel coordinates.
        enlarge: factor on the side length (MediaPipe trains BlazePose with 1.25).
        target_angle: angle in degrees the vector is rotated to.
    """
    center = np.asarray(center, dtype=np.float64).reshape(-1, 2)
    scale_point = np.asarray(scale_point, dtype=np.float64).reshape(-1, 2)
    delta = scale_point - center
    size = 2.0 * np.hypot(delta[:, 0], delta[:, 1]) * enlarge
    # y points down in images, hence the minus sign to get a mathematical angle.
    angle = math.radians(target_angle) - np.arctan2(-delta[:, 1], delta[:, 0])
    angle = angle - 2.0 * math.pi * np.floor((angle + math.pi) / (2.0 * math.pi))
    return np.stack([center[:, 0], center[:, 1], size, angle], axis=1).astype(np.float64)


def box_to_roi(boxes: np.ndarray, enlarge: float) -> np.ndarray:
    """Upright square ROIs ``(N, 4)`` around xyxy ``boxes``: centred on the box centre,
    side = longest box side times ``enlarge``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2.0
    cy = (boxes[:, 1] + boxes[:, 3]) / 2.0
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    side = np.maximum(side, 1.0) * enlarge
    return np.stack([cx, cy, side, np.zeros_like(cx)], axis=1)


def roi_to_box(rois: np.ndarray) -> np.ndarray:
    """Axis-aligned xyxy boxes ``(N, 4)`` enclosing rotated square ROIs."""
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    half = rois[:, 2] / 2.0 * (np.abs(np.cos(rois[:, 3])) + np.abs(np.sin(rois[:, 3])))
    return np.stack(
        [rois[:, 0] - half, rois[:, 1] - half, rois[:, 0] + half, rois[:, 1] + half], axis=1
    ).astype(np.float32)


def _crop_matrix(roi: np.ndarray, out_size: int) -> np.ndarray:
    """2x3 affine matrix taking crop pixel-centre coordinates to image coordinates."""
    cx, cy, side, angle = (float(v) for v in roi)
    step = side / out_size
    cos_a, sin_a = math.cos(angle) * step, math.sin(angle) * step
    half = out_size / 2.0 - 0.5  # crop pixel j has its centre at (j + 0.5) / out_size
    return np.array(
        [
            [cos_a, -sin_a, cx - cos_a * half + sin_a * half],
            [sin_a, cos_a, cy - sin_a * half - cos_a * half],
        ],
        dtype=np.float64,
    )


def crop_rois(
    image: np.ndarray,
    rois: np.ndarray,
    out_size: int,
    border: int = cv2.BORDER_REPLICATE,
) -> np.ndarray:
    """Cut rotated square ROIs out of ``image`` as ``(N, out_size, out_size, 3) uint8``.

    ``border`` follows MediaPipe's ImageToTensorCalculator default (replicate edge
    pixels), which is what the landmark model was trained with.
    """
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    out = np.empty((rois.shape[0], out_size, out_size, 3), dtype=np.uint8)
    shrunk: dict[int, np.ndarray] = {}
    for i, roi in enumerate(rois):
        step = roi[2] / out_size
        # A bilinear warp that shrinks more than ~3x aliases badly; such ROIs are cut
        # from an INTER_AREA-shrunk copy of the image (made once per factor).
        if step > 3.0:
            factor = int(step // 2)
            if factor not in shrunk:
                shrunk[factor] = cv2.resize(
                    image,
                    (max(1, image.shape[1] // factor), max(1, image.shape[0] // factor)),
                    interpolation=cv2.INTER_AREA,
                )
            small = shrunk[factor]
            scaled = roi.copy()
            sx = small.shape[1] / image.shape[1]
            sy = small.shape[0] / image.shape[0]
            scaled[0] = (roi[0] + 0.5) * sx - 0.5
            scaled[1] = (roi[1] + 0.5) * sy - 0.5
            scaled[2] = roi[2] * (sx + sy) / 2.0
            matrix = _crop_matrix(scaled, out_size)
            source = small
        else:
            matrix = _crop_matrix(roi, out_size)
            source = image
        cv2.warpAffine(
            source,
            matrix,
            (out_size, out_size),
            dst=out[i],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=border,
        )
    return out


def crop_to_image(points: np.ndarray, rois: np.ndarray, out_size: int) -> np.ndarray:
    """Map ``(N, K, 2)`` continuous crop coordinates (0..out_size, edge at 0) of each
    ROI's crop back to image pixel-centre coordinates."""
    points = np.asarray(points, dtype=np.float64)
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    step = (rois[:, 2] / out_size)[:, None]
    u = (points[..., 0] - out_size / 2.0) * step
    v = (points[..., 1] - out_size / 2.0) * step
    cos_a = np.cos(rois[:, 3])[:, None]
    sin_a = np.sin(rois[:, 3])[:, None]
    x = rois[:, 0][:, None] + cos_a * u - sin_a * v
    y = rois[:, 1][:, None] + sin_a * u + cos_a * v
    return np.stack([x, y], axis=-1).astype(np.float32)
