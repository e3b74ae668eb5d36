"""BlazePose backend: MediaPipe's pose detector and 33-landmark model on TFLite.

The offline default models. The ``.tflite`` files ship inside the
``mediapipe==0.10.21`` wheel and run with ``ai-edge-litert``; both are imported
only when a model is created (``pip install 'posekit[mediapipe]'``).

The pipeline follows the published MediaPipe graphs
(``mediapipe/modules/pose_detection/pose_detection_cpu.pbtxt``,
``mediapipe/modules/pose_landmark/*.pbtxt``): SSD anchors and decoding of the
224x224 detector, weighted NMS, alignment-point ROIs enlarged 1.25x, the
256x256 landmark model, heatmap refinement and projection back to the image.
Unlike MediaPipe's single-person graph it keeps every detection, so several
people per image are found, and it also builds crops from plain boxes (user,
ground-truth or detector boxes), re-cropping once from the model's own
alignment landmarks.

Example:
    >>> from posekit.models import create_detector, create_pose_estimator
    >>> from posekit.skeleton import get_preset
    >>> detector = create_detector("blazepose")          # doctest: +SKIP
    >>> estimator = create_pose_estimator("blazepose")   # doctest: +SKIP
    >>> dets = detector.detect([image])                  # doctest: +SKIP
    >>> people = estimator.estimate([image], dets, get_preset("coco17"))  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.models.base import (
    Detections,
    ModelError,
    register_detector,
    register_pose_estimator,
    spec_factory,
)
from posekit.models.geometry import (
    box_to_roi,
    crop_rois,
    crop_to_image,
    letterbox,
    roi_from_alignment_points,
    roi_to_box,
)
from posekit.skeleton import Skeleton, names_mapping

__all__ = [
    "BLAZEPOSE_KEYPOINTS",
    "BlazePoseDetector",
    "BlazePoseEstimator",
    "find_model_dir",
    "generate_anchors",
]

log = logging.getLogger(__name__)

#: Landmark names in model output order (the ``mediapipe33`` preset).
BLAZEPOSE_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip

DETECTOR_FILE = "pose_detection.tflite"
LANDMARK_FILE = "pose_landmark_full.tflite"
INSTALL_HINT = "pip install 'posekit[mediapipe]'"
ENV_MODEL_DIR = "POSEKIT_BLAZEPOSE_DIR"

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_LANDMARKS = 39  # 33 body landmarks + auxiliary points (33: hip centre, 34: scale point)
HEATMAP_KERNEL = 7  # RefineLandmarksFromHeatmapCalculator kernel_size in MediaPipe's graph
HEATMAP_MIN_CONFIDENCE = 0.5
#: Side of the alignment ROI relative to twice the centre->scale-point distance
#: (RectTransformationCalculator scale 1.25 in pose_detection_to_roi / landmarks_to_roi).
ROI_ENLARGE = 1.25

# SSD anchor options of pose_detection_cpu.pbtxt.
_ANCHOR_STRIDES = (8, 16, 32, 32, 32)
_ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 plus the interpolated-scale anchor


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


# ----------------------------------------------------------------------------- files
def find_model_dir(model_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """Paths of the detector and landmark ``.tflite`` files.

    Looks in ``model_dir`` (or ``$POSEKIT_BLAZEPOSE_DIR``) first, accepting either a flat
    folder with both files or a MediaPipe-style ``modules/pose_*/`` tree; otherwise in the
    installed ``mediapipe`` package, found without importing it (importing mediapipe takes
    seconds and pulls in protobuf/matplotlib).

    Raises:
        ModelError: the files are not there; the message names the folder searched.
    """
    explicit = model_dir if model_dir is not None else os.environ.get(ENV_MODEL_DIR)
    if explicit:
        root = Path(explicit)
        candidates = [
            (root / DETECTOR_FILE, root / LANDMARK_FILE),
            (
                root / "modules" / "pose_detection" / DETECTOR_FILE,
                root / "modules" / "pose_landmark" / LANDMARK_FILE,
            ),
        ]
        for det, lmk in candidates:
            if det.is_file() and lmk.is_file():
                return det, lmk
        raise ModelError(
            f"BlazePose model files not found in {root}: expected {DETECTOR_FILE} and "
            f"{LANDMARK_FILE} there (or under modules/pose_detection and "
            "modules/pose_landmark)"
        )
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the BlazePose models need the mediapipe package (which ships them): {INSTALL_HINT}"
            f", or set {ENV_MODEL_DIR} to a folder holding {DETECTOR_FILE} and {LANDMARK_FILE}"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    det = package / "modules" / "pose_detection" / DETECTOR_FILE
    lmk = package / "modules" / "pose_landmark" / LANDMARK_FILE
    for path in (det, lmk):
        if not path.is_file():
            raise ModelError(
                f"{path} is missing from the installed mediapipe package; install the "
                f"release that ships it: {INSTALL_HINT}"
            )
    return det, lmk


def _interpreter(path: Path, num_threads: int) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ModelError(
            f"running the BlazePose models needs ai-edge-litert: {INSTALL_HINT}"
        ) from None
    try:
        interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: cannot load TFLite model: {exc}") from None
    return interpreter


def _default_threads() -> int:
    # TFLite's XNNPACK scales well to the physical cores; more threads than cores
    # only adds contention.
    return max(1, min(4, os.cpu_count() or 1))


# --------------------------------------------------------------------------- anchors
def generate_anchors(input_size: int = DETECTOR_SIZE) -> np.ndarray:
    """SSD anchor centres ``(2254, 2)`` in [0, 1] for the 224x224 pose detector.

    Follows MediaPipe's SsdAnchorsCalculator with the options of
    ``pose_detection_cpu.pbtxt`` (5 layers, strides 8/16/32/32/32, aspect ratio 1 plus
    one interpolated scale per layer, offsets 0.5, fixed anchor size): consecutive
    layers with the same stride share a grid, each layer adds two anchors per cell.
    Anchor width and height are 1 (fixed size), so only centres are returned.
    """
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(_ANCHOR_STRIDES):
        stride = _ANCHOR_STRIDES[layer]
        same = 0
        while layer + same < len(_ANCHOR_STRIDES) and _ANCHOR_STRIDES[layer + same] == stride:
            same += 1
        per_cell = same * _ANCHORS_PER_LAYER
        cells = math.ceil(input_size / stride)
        grid = (np.arange(cells, dtype=np.float64) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, per_cell, axis=0))
        layer += same
    return np.concatenate(centres, axis=0).astype(np.float32)


# ----------------------------------------------------------------------------- NMS
def _iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MediaPipe's WEIGHTED non-maximum suppression.

    Candidates overlapping the best remaining one by more than ``iou_threshold`` are
    merged into it: box and keypoints become their score-weighted mean (steadier than
    keeping the single best anchor), the score stays the best one's.

    Args:
        boxes: ``(N, 4)`` xyxy.
        scores: ``(N,)``.
        points: ``(N, M, 2)`` keypoints carried along.
    """
    order = np.argsort(-scores, kind="stable")
    boxes, scores, points = boxes[order], scores[order], points[order]
    remaining = np.ones(len(scores), dtype=bool)
    out_boxes, out_scores, out_points = [], [], []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        candidates = np.flatnonzero(remaining)
        overlap = _iou_one_to_many(boxes[i], boxes[candidates])
        cluster = candidates[overlap > iou_threshold]
        cluster = np.union1d(cluster, [i])
        weights = scores[cluster][:, None]
        total = float(weights.sum())
        out_boxes.append((boxes[cluster] * weights).sum(axis=0) / total)
        out_points.append((points[cluster] * weights[:, :, None]).sum(axis=0) / total)
        out_scores.append(scores[i])
        remaining[cluster] = False
    if not out_scores:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0, *points.shape[1:]), np.float32),
        )
    return (
        np.asarray(out_boxes, np.float32),
        np.asarray(out_scores, np.float32),
        np.asarray(out_points, np.float32),
    )


def _check_images(images: Sequence[np.ndarray], who: str) -> None:
    for i, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            shape = getattr(image, "shape", type(image).__name__)
            raise ValueError(f"{who}: image #{i} must be (H, W, 3) uint8 RGB, got {shape}")
        if image.dtype != np.uint8:
            raise ValueError(f"{who}: image #{i} must be uint8, got {image.dtype}")


# ------------------------------------------------------------------------ detector
class BlazePoseDetector:
    """MediaPipe's BlazePose person detector, keeping every person it finds.

    Each detection carries the 4 alignment keypoints (hip centre, full-body scale
    point, shoulder centre, upper-body scale point) that
    :class:`BlazePoseEstimator` uses to align its crop. The box is the axis-aligned
    box of the full-body alignment circle (hip centre, radius = distance to the scale
    point), clipped to the image.

    Args:
        model_dir: folder with the ``.tflite`` files (default: ``$POSEKIT_BLAZEPOSE_DIR``
            or the installed mediapipe package).
        score_threshold: minimum detection score. MediaPipe uses 0.5 for its single
            most prominent person; people further away score lower, and 0.3 kept them
            without adding false positives on the COCO sample.
        iou_threshold: NMS overlap of the detector's face boxes (MediaPipe: 0.3).
        max_people: keep at most this many detections per image, best first.
        tile_min_side: when the image's long side exceeds this many pixels, also run
            the detector on a 2x2 grid of overlapping tiles (each 60% of the image
            side) and merge with NMS. The detector was trained on people filling a
            good part of its 224x224 input; in a whole photo small people shrink below
            what it finds (on the COCO sample it finds 3 of 11 people without tiles,
            10 with). 0 disables tiling.
        num_threads: TFLite CPU threads.
    """

    name = "blazepose"

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        score_threshold: float = 0.3,
        iou_threshold: float = 0.3,
        max_people: int = 20,
        tile_min_side: int = 2 * DETECTOR_SIZE,
        num_threads: int | None = None,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        if max_people < 1:
            raise ValueError(f"max_people must be >= 1, got {max_people}")
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.max_people = int(max_people)
        self.tile_min_side = int(tile_min_side)
        detector_path, _ = find_model_dir(model_dir)
        self._interpreter = _interpreter(detector_path, num_threads or _default_threads())
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = self._interpreter.get_output_details()
        # Identity: (1, 2254, 12) regressors; Identity_1: (1, 2254, 1) logits.
        by_width = {int(d["shape"][-1]): d["index"] for d in outputs}
        self._regressors, self._logits = by_width[12], by_width[1]
        self._anchors = generate_anchors() * DETECTOR_SIZE
        self.device = "cpu (tflite)"
        #: Seconds spent inside ``interpreter.invoke`` since creation (for benchmarks).
        self.inference_seconds = 0.0
        log.info("BlazePose detector loaded from %s on %s", detector_path, self.device)

    # -- one forward pass on a letterboxed view; points in image pixels
    def _run(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        canvas, transform = letterbox(image, DETECTOR_SIZE)
        tensor = canvas.astype(np.float32)[None] * (2.0 / 255.0) - 1.0  # range [-1, 1]
        interpreter = self._interpreter
        interpreter.set_tensor(self._input, tensor)
        start = time.perf_counter()
        interpreter.invoke()
        self.inference_seconds += time.perf_counter() - start
        raw = interpreter.get_tensor(self._regressors)[0]
        logits = interpreter.get_tensor(self._logits)[0, :, 0]
        scores = _sigmoid(np.clip(logits, -100.0, 100.0))  # score_clipping_thresh 100
        keep = np.flatnonzero(scores >= self.score_threshold)
        raw, scores, anchors = raw[keep], scores[keep], self._anchors[keep]
        # Offsets are in model pixels relative to the anchor centre (x before y).
        centre = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2.0
        face = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
        face, scores, points = weighted_nms(face, scores, points, self.iou_threshold)
        face_img = transform.to_image(face.reshape(-1, 2, 2)).reshape(-1, 4)
        return face_img, scores, transform.to_image(points)

    def _tiles(self, image: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        height, width = image.shape[:2]
        tile_w, tile_h = int(width * 0.6), int(height * 0.6)
        out = []
        for y0 in (0, height - tile_h):
            for x0 in (0, width - tile_w):
                out.append((x0, y0, image[y0 : y0 + tile_h, x0 : x0 + tile_w]))
        return out

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each ``(H, W, 3) uint8`` RGB image.

        Returns:
            One :class:`Detections` per image: ``boxes (N, 4)`` xyxy pixels,
            ``scores (N,)``, ``keypoints (N, 4, 2)`` alignment points in pixels.
        """
        _check_images(images, "BlazePoseDetector.detect")
        results = []
        for image in images:
            face, scores, points = self._run(image)
            if self.tile_min_side and max(image.shape[:2]) > self.tile_min_side:
                parts = [(face, scores, points)]
                for x0, y0, tile in self._tiles(image):
                    f, s, p = self._run(tile)
                    offset = np.array([x0, y0], np.float32)
                    parts.append((f + np.tile(offset, 2), s, p + offset))
                face = np.concatenate([p[0] for p in parts])
                scores = np.concatenate([p[1] for p in parts])
                points = np.concatenate([p[2] for p in parts])
                face, scores, points = weighted_nms(face, scores, points, self.iou_threshold)
            order = np.argsort(-scores, kind="stable")[: self.max_people]
            scores, points = scores[order], points[order]
            results.append(Detections(_alignment_boxes(points, image.shape), scores, points))
        return results

    def close(self) -> None:
        """Release the interpreter."""
        self._interpreter = None

    def __enter__(self) -> BlazePoseDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _alignment_boxes(points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Upright boxes of the full-body alignment circles, clipped to the image."""
    if len(points) == 0:
        return np.zeros((0, 4), np.float32)
    rois = roi_from_alignment_points(points[:, 0], points[:, 1], enlarge=1.0)
    rois[:, 3] = 0.0
    boxes = roi_to_box(rois)
    height, width = shape[:2]
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], -0.5, width - 0.5)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], -0.5, height - 0.5)
    return boxes


# ------------------------------------------------------------------------ landmarks
class _LandmarkOutput:
    """Decoded landmark-model output for a batch of crops (image pixel coordinates)."""

    __slots__ = ("agreement", "points", "pose_flag", "presence", "visibility")

    def __init__(
        self, points: np.ndarray, visibility: np.ndarray, presence: np.ndarray, flag: np.ndarray
    ) -> None:
        self.points = points  # (N, 39, 2)
        self.visibility = visibility  # (N, 39)
        self.presence = presence  # (N, 39)
        self.pose_flag = flag  # (N,)
        self.agreement = np.ones_like(flag)  # (N,) OKS-like similarity of successive passes


#: OKS sigmas of the 33 landmarks (the mediapipe33 preset's values).
_SIGMAS33 = np.array(
    [0.026, 0.025, 0.025, 0.025, 0.025, 0.025, 0.025, 0.035, 0.035, 0.025, 0.025,
     0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062, 0.062,
     0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.066, 0.066, 0.068, 0.068]
)  # fmt: skip


def _agreement(first: np.ndarray, second: np.ndarray, rois: np.ndarray) -> np.ndarray:
    """OKS between two predictions of the same people ``(N, 33, 2)``, the person's area
    taken as half the square of the un-enlarged ROI side (a box-to-segment ratio)."""
    area = 0.5 * (rois[:, 2] / ROI_ENLARGE) ** 2
    d2 = ((first - second) ** 2).sum(axis=-1)
    e = d2 / (2.0 * area[:, None] * (2.0 * _SIGMAS33[None]) ** 2 + 1e-9)
    return np.exp(-e).mean(axis=1).astype(np.float32)


def refine_with_heatmap(
    points: np.ndarray, heatmaps: np.ndarray, kernel: int = HEATMAP_KERNEL
) -> np.ndarray:
    """Refine ``(N, K, 2)`` landmark positions (crop pixels, 0..256) with the model's
    ``(N, H, W, K)`` heatmap logits.

    As in MediaPipe's RefineLandmarksFromHeatmapCalculator: around each landmark's
    heatmap cell, the sigmoid-weighted mean cell position in a ``kernel`` x ``kernel``
    window replaces the regressed position when the window's peak is at least 0.5.
    Cell ``col`` reads as crop position ``col / W`` (not the cell centre): that is how
    MediaPipe decodes this model's heatmap; the cell-centre reading measured a
    systematic half-cell shift on COCO.
    """
    n, height, width, k = heatmaps.shape
    if n == 0:
        return points
    scale = LANDMARK_SIZE / width
    col = np.floor(points[..., 0] / scale).astype(np.int64)  # (N, K)
    row = np.floor(points[..., 1] / scale).astype(np.int64)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    offsets = np.arange(kernel) - (kernel - 1) // 2
    cols = col[..., None] + offsets  # (N, K, kernel)
    rows = row[..., None] + offsets
    col_ok = (cols >= 0) & (cols < width)
    row_ok = (rows >= 0) & (rows < height)
    cols_c = np.clip(cols, 0, width - 1)
    rows_c = np.clip(rows, 0, height - 1)
    batch = np.arange(n)[:, None, None, None]
    chan = np.arange(k)[None, :, None, None]
    window = heatmaps[batch, rows_c[:, :, :, None], cols_c[:, :, None, :], chan]
    weights = _sigmoid(window) * (row_ok[:, :, :, None] & col_ok[:, :, None, :])
    total = weights.sum(axis=(2, 3))
    peak = weights.max(axis=(2, 3))
    safe = np.maximum(total, 1e-9)
    mean_col = (weights.sum(axis=2) * cols_c).sum(axis=2) / safe
    mean_row = (weights.sum(axis=3) * rows_c).sum(axis=2) / safe
    refine = inside & (peak >= HEATMAP_MIN_CONFIDENCE) & (total > 0)
    out = points.copy()
    out[..., 0] = np.where(refine, mean_col * scale, points[..., 0])
    out[..., 1] = np.where(refine, mean_row * scale, points[..., 1])
    return out


class BlazePoseEstimator:
    """BlazePose 33-landmark model (``pose_landmark_full``) on person crops.

    Crops: detections that carry the detector's alignment keypoints get MediaPipe's
    rotated, aligned crop. Plain boxes get an upright square crop around the box
    centre (side = longest box side x ``box_enlarge``), unless ``box_align`` is
    ``"detector"`` (default): then the pose detector runs inside the enlarged box and,
    if it finds a person whose hip centre lies in the box, its alignment points give
    the crop. Then, ``refine_passes`` times (``aligned_refine_passes`` for the
    detector's own detections, whose crop is already what the model was trained on),
    the person is re-cropped from the model's own alignment landmarks (hip centre and
    scale point, auxiliary landmarks 33/34) exactly as MediaPipe's tracking does
    between video frames, which recovers the rotation and scale the model expects.

    Keypoints map onto the target skeleton by name; keypoints the model lacks are
    not labeled (visibility 0). Every mapped keypoint is labeled: visibility 2 when it
    is inside the image and the model's visibility score is at least
    ``visible_threshold``, else 1 (labeled, probably occluded or off-image).

    ``keypoint_scores`` are the model's presence probabilities. The instance ``score``
    is the pose-presence flag times the agreement (an OKS) between the last two
    passes: the flag and keypoint probabilities saturate near 1 even for wrong poses,
    while a pose the model is unsure of moves when it is re-cropped. With no
    refinement pass the score is the flag alone. For plain boxes it is further
    multiplied by the box's score (1 for a user's or ground-truth box).

    Args:
        model_dir: folder with the ``.tflite`` files.
        box_enlarge: square side / longest box side for crops from plain boxes.
        refine_passes: re-crops from the model's own alignment landmarks for plain
            boxes.
        aligned_refine_passes: the same for detections with alignment keypoints.
        box_align: ``"detector"`` or ``"box"`` (upright square crop from the box).
        heatmap_refine: refine positions with the heatmap output (MediaPipe does).
        flip_test: also run on mirrored crops and average (about 2x slower).
        visible_threshold: visibility probability above which a point gets v=2.
        num_threads: TFLite CPU threads.
    """

    name = "blazepose"

    def __init__(
        self,
        model_dir: str | os.PathLike[str] | None = None,
        *,
        box_enlarge: float = 1.25,
        refine_passes: int = 2,
        aligned_refine_passes: int = 1,
        heatmap_refine: bool = True,
        flip_test: bool = False,
        visible_threshold: float = 0.5,
        box_align: str = "detector",
        num_threads: int | None = None,
    ) -> None:
        if box_enlarge <= 0:
            raise ValueError(f"box_enlarge must be positive, got {box_enlarge}")
        if refine_passes < 0:
            raise ValueError(f"refine_passes must be >= 0, got {refine_passes}")
        self.box_enlarge = float(box_enlarge)
        if box_align not in ("detector", "box"):
            raise ValueError(f"box_align must be 'detector' or 'box', got {box_align!r}")
        self.refine_passes = int(refine_passes)
        self.aligned_refine_passes = int(aligned_refine_passes)
        self.heatmap_refine = bool(heatmap_refine)
        self.flip_test = bool(flip_test)
        self.visible_threshold = float(visible_threshold)
        _, landmark_path = find_model_dir(model_dir)
        self._interpreter = _interpreter(landmark_path, num_threads or _default_threads())
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {
            tuple(d["shape"][1:]): d["index"] for d in self._interpreter.get_output_details()
        }
        try:
            self._out_landmarks = outputs[(NUM_LANDMARKS * 5,)]
            self._out_flag = outputs[(1,)]
            self._out_heatmap = next(i for s, i in outputs.items() if len(s) == 3 and s[2] == 39)
        except (KeyError, StopIteration):
            raise ModelError(
                f"{landmark_path}: unexpected outputs {sorted(outputs)}; expected the "
                "pose_landmark_full model (195 landmark values, pose flag, 39-channel heatmap)"
            ) from None
        self._flip_index = np.arange(NUM_LANDMARKS)
        names = list(BLAZEPOSE_KEYPOINTS)
        for i, name in enumerate(names):
            for a, b in (("left", "right"), ("right", "left")):
                if a in name:
                    self._flip_index[i] = names.index(name.replace(a, b))
        self._mapping_cache: dict[int, np.ndarray] = {}
        self.box_align = box_align
        self._detector: BlazePoseDetector | None = None
        if box_align == "detector":
            self._detector = BlazePoseDetector(
                model_dir, score_threshold=0.1, num_threads=num_threads
            )
        self.device = "cpu (tflite)"
        self.inference_seconds = 0.0
        log.info("BlazePose landmark model loaded from %s on %s", landmark_path, self.device)

    # ------------------------------------------------------------------ inference
    def _infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs for ``(N, 256, 256, 3) uint8`` crops: landmarks (N, 39, 5),
        pose flag (N,), heatmaps (N, 64, 64, 39)."""
        interpreter = self._interpreter
        if interpreter is None:
            raise ModelError("BlazePoseEstimator is closed")
        n = crops.shape[0]
        landmarks = np.empty((n, NUM_LANDMARKS, 5), np.float32)
        flags = np.empty((n,), np.float32)
        heatmaps = None
        tensor = crops.astype(np.float32) * (1.0 / 255.0)
        # One crop per invoke: batched invokes are not faster with XNNPACK on CPU and
        # resizing the input reallocates every tensor.
        for i in range(n):
            interpreter.set_tensor(self._input, tensor[i : i + 1])
            start = time.perf_counter()
            interpreter.invoke()
            self.inference_seconds += time.perf_counter() - start
            landmarks[i] = interpreter.get_tensor(self._out_landmarks).reshape(NUM_LANDMARKS, 5)
            flags[i] = interpreter.get_tensor(self._out_flag).reshape(-1)[0]
            if self.heatmap_refine:
                heat = interpreter.get_tensor(self._out_heatmap)
                if heatmaps is None:
                    heatmaps = np.empty((n, *heat.shape[1:]), np.float32)
                heatmaps[i] = heat[0]
        return landmarks, flags, heatmaps

    def _decode_crop(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Crop-space points (N, 39, 2), visibility and presence logits (N, 39, 2), flags."""
        landmarks, flags, heatmaps = self._infer(crops)
        points = landmarks[..., 0:2].copy()
        if heatmaps is not None:
            points = refine_with_heatmap(points, heatmaps)
        return points, landmarks[..., 3:5], flags

    def _run(self, image: np.ndarray, rois: np.ndarray) -> _LandmarkOutput:
        crops = crop_rois(image, rois, LANDMARK_SIZE)
        points, logits, flags = self._decode_crop(crops)
        if self.flip_test:
            f_points, f_logits, f_flags = self._decode_crop(crops[:, :, ::-1])
            f_points[..., 0] = LANDMARK_SIZE - f_points[..., 0]
            points = (points + f_points[:, self._flip_index]) / 2.0
            logits = (logits + f_logits[:, self._flip_index]) / 2.0
            flags = (flags + f_flags) / 2.0
        image_points = crop_to_image(points, rois, LANDMARK_SIZE)
        return _LandmarkOutput(
            image_points, _sigmoid(logits[..., 0]), _sigmoid(logits[..., 1]), flags
        )

    def landmarks(
        self, image: np.ndarray, detections: Detections
    ) -> tuple[_LandmarkOutput, np.ndarray]:
        """All 39 landmarks for each detection in one image, and the final ROIs."""
        passes = self.refine_passes
        if detections.keypoints is not None and detections.keypoints.shape[1] >= 2:
            passes = self.aligned_refine_passes
            rois = roi_from_alignment_points(
                detections.keypoints[:, 0], detections.keypoints[:, 1], ROI_ENLARGE
            )
        else:
            rois = box_to_roi(detections.boxes, self.box_enlarge)
            if self._detector is not None:
                rois = self._align_boxes(image, detections.boxes, rois)
        rois[:, 2] = np.maximum(rois[:, 2], 4.0)
        out = self._run(image, rois)
        for _ in range(passes):
            new_rois = roi_from_alignment_points(out.points[:, 33], out.points[:, 34], ROI_ENLARGE)
            # A crop with no person gives arbitrary alignment points; keep the first
            # crop there rather than chase them.
            ok = (out.pose_flag >= 0.5) & np.isfinite(new_rois).all(axis=1) & (new_rois[:, 2] >= 4)
            if not np.any(ok):
                break
            rois = np.where(ok[:, None], new_rois, rois)
            second = self._run(image, rois[ok])
            idx = np.flatnonzero(ok)
            out.agreement[idx] = _agreement(out.points[idx, :33], second.points[:, :33], rois[ok])
            out.points[idx] = second.points
            out.visibility[idx] = second.visibility
            out.presence[idx] = second.presence
            out.pose_flag[idx] = second.pose_flag
        return out, rois

    def _align_boxes(self, image: np.ndarray, boxes: np.ndarray, rois: np.ndarray) -> np.ndarray:
        """Aligned ROIs for plain boxes: run the pose detector inside each enlarged box
        and take the alignment points of the best detection whose hip centre lies in the
        box; boxes where it finds nobody keep their upright square ROI."""
        height, width = image.shape[:2]
        out = rois.copy()
        for i, box in enumerate(boxes):
            cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
            half_w = (box[2] - box[0]) / 2.0 * self.box_enlarge + 1.0
            half_h = (box[3] - box[1]) / 2.0 * self.box_enlarge + 1.0
            x0, y0 = max(0, int(cx - half_w)), max(0, int(cy - half_h))
            x1, y1 = (
                min(width, math.ceil(cx + half_w)),
                min(height, math.ceil(cy + half_h)),
            )
            if x1 - x0 < 4 or y1 - y0 < 4:
                continue
            _, scores, points = self._detector._run(image[y0:y1, x0:x1])
            if len(scores) == 0:
                continue
            hips = points[:, 0] + np.array([x0, y0], np.float32)
            inside = (
                (hips[:, 0] >= box[0])
                & (hips[:, 0] <= box[2])
                & (hips[:, 1] >= box[1])
                & (hips[:, 1] <= box[3])
            )
            if not np.any(inside):
                continue
            best = int(np.flatnonzero(inside)[np.argmax(scores[inside])])
            out[i] = roi_from_alignment_points(
                hips[best : best + 1], points[best : best + 1, 1] + np.array([x0, y0]), ROI_ENLARGE
            )[0]
        return out

    def _mapping(self, skeleton: Skeleton) -> np.ndarray:
        key = id(skeleton)
        if key not in self._mapping_cache:
            self._mapping_cache[key] = names_mapping(BLAZEPOSE_KEYPOINTS, skeleton)
        return self._mapping_cache[key]

    def estimate(
        self,
        images: Sequence[np.ndarray],
        detections: Sequence[Detections],
        skeleton: Skeleton,
    ) -> list[list[Instance]]:
        """One :class:`Instance` per detection, on ``skeleton``'s keypoints.

        Args:
            images: ``(H, W, 3) uint8`` RGB images.
            detections: one :class:`Detections` per image (plain boxes or the
                BlazePose detector's output with alignment keypoints).
            skeleton: target template; keypoints are mapped by name.

        Raises:
            ValueError: ``images`` and ``detections`` differ in length, or an image is
                not RGB uint8.
        """
        if len(images) != len(detections):
            raise ValueError(
                f"BlazePoseEstimator.estimate: {len(images)} images but "
                f"{len(detections)} detections"
            )
        _check_images(images, "BlazePoseEstimator.estimate")
        mapping = self._mapping(skeleton)
        valid = mapping >= 0
        safe = np.where(valid, mapping, 0)
        results: list[list[Instance]] = []
        for image, dets in zip(images, detections):
            if len(dets) == 0:
                results.append([])
                continue
            out, _ = self.landmarks(image, dets)
            height, width = image.shape[:2]
            plain_boxes = dets.keypoints is None
            instances = []
            for i in range(len(dets)):
                points = out.points[i, :33]
                kp = np.where(valid[:, None], points[safe], 0.0)
                visibility_prob = out.visibility[i, :33][safe]
                presence = out.presence[i, :33][safe]
                inside = (
                    (kp[:, 0] >= -0.5)
                    & (kp[:, 0] <= width - 0.5)
                    & (kp[:, 1] >= -0.5)
                    & (kp[:, 1] <= height - 0.5)
                )
                vis = np.where(
                    valid, np.where(inside & (visibility_prob >= self.visible_threshold), 2, 1), 0
                ).astype(np.uint8)
                kp_scores = np.where(valid, presence, 0.0).astype(np.float32)
                score = float(out.pose_flag[i]) * float(out.agreement[i])
                if plain_boxes:
                    # A caller's box score (another detector's confidence) is evidence
                    # too: rank by pose x box confidence, as top-down methods do. The
                    # BlazePose detector's own score is left out: it ranked worse on the
                    # COCO sample (AP 0.522 with it, 0.540 without).
                    score *= float(np.clip(dets.scores[i], 0.0, 1.0))
                if plain_boxes:
                    box = dets.boxes[i]
                else:
                    box = _points_box(out.points[i, :33], width, height)
                instances.append(
                    Instance(
                        keypoints=kp,
                        visibility=vis,
                        keypoint_scores=kp_scores,
                        box=box,
                        score=score,
                        source="model:blazepose",
                        status="predicted",
                    )
                )
            results.append(instances)
        return results

    def close(self) -> None:
        """Release the interpreter."""
        self._interpreter = None

    def __enter__(self) -> BlazePoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _points_box(points: np.ndarray, width: int, height: int) -> np.ndarray:
    x1, y1 = np.clip(points.min(axis=0), -0.5, [width - 0.5, height - 0.5])
    x2, y2 = np.clip(points.max(axis=0), -0.5, [width - 0.5, height - 0.5])
    return np.array([x1, y1, max(x1, x2), max(y1, y2)], np.float32)


register_detector("blazepose", spec_factory(BlazePoseDetector, "model_dir"))
register_pose_estimator("blazepose", spec_factory(BlazePoseEstimator, "model_dir"))
