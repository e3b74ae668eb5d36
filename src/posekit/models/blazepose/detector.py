"""MediaPipe's BlazePose person detector (224x224 SSD with alignment keypoints)."""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from posekit.core import Detections
from posekit.models.base import check_images
from posekit.models.blazepose.runtime import (
    DETECTOR_SIZE,
    TfliteModel,
    find_model_dir,
    sigmoid,
)
from posekit.models.boxes import weighted_nms
from posekit.models.geometry import (
    Letterbox,
    letterbox,
    letterbox_into,
    roi_from_alignment_points,
    roi_to_box,
)

__all__ = ["BlazePoseDetector", "DetectorViews", "generate_anchors"]

log = logging.getLogger(__name__)

# SSD anchor options of pose_detection_cpu.pbtxt.
_ANCHOR_STRIDES = (8, 16, 32, 32, 32)
_ANCHORS_PER_LAYER = 2  # aspect ratio 1.0 plus the interpolated-scale anchor


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


# ------------------------------------------------------------------------ detector
class BlazePoseDetector(TfliteModel):
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
            the detector on the grids of overlapping tiles in ``tile_grids`` and merge
            with NMS. The detector was trained on people filling a good part of its
            224x224 input; in a whole photo small people shrink below what it finds
            (on the COCO sample it finds 3 of 11 people without tiles, 10 with 2x2
            tiles, and the 30x96 px umpire of a 640 px photo only in a 3x3 grid).
            0 disables tiling.
        tile_grids: ``(n, fraction)`` or ``(n, fraction, min_score)``: an ``n`` x
            ``n`` grid of tiles, each ``fraction`` of the image's width and height,
            evenly spaced from edge to edge, whose detections must score at least
            ``min_score`` (default ``score_threshold``). The default 2x2 grid of 60%
            tiles finds people of medium size, the 3x3 grid of 40% tiles (a 640 px
            photo at about the detector's own resolution) people down to about
            30x90 px; a tile costs one detector run (about a tenth of one landmark
            run). At that resolution the detector is sure of the people it finds
            (the small players of the COCO sample score 0.9 and above) while the
            partial views of large people that tiles cut score lower, so the fine
            grid keeps only detections from 0.5 and spends no landmark runs on
            those.
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
        tile_grids: Sequence[tuple[float, ...]] = ((2, 0.6), (3, 0.4, 0.5)),
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
        grids = []
        for grid in tile_grids:
            n, fraction = int(grid[0]), float(grid[1])
            min_score = float(grid[2]) if len(grid) > 2 else self.score_threshold
            if n < 1 or not 0.0 < fraction <= 1.0 or n * fraction < 1.0:
                raise ValueError(
                    f"tile_grids: ({grid[0]}, {grid[1]}) must be n >= 1 tiles of a fraction in "
                    "(0, 1] that together cover the image (n x fraction >= 1)"
                )
            if not 0.0 <= min_score <= 1.0:
                raise ValueError(f"tile_grids: minimum score {min_score} is not in [0, 1]")
            grids.append((n, fraction, min_score))
        self.tile_grids = tuple(grids)
        detector_path, _ = find_model_dir(model_dir)
        outputs = self._open(detector_path, num_threads)
        # Identity: (1, 2254, 12) regressors; Identity_1: (1, 2254, 1) logits.
        by_width = {int(d["shape"][-1]): d["index"] for d in outputs}
        self._regressors, self._logits = by_width[12], by_width[1]
        self._anchors = generate_anchors() * DETECTOR_SIZE
        log.info("BlazePose detector loaded from %s on %s", detector_path, self.device)

    def detect_view(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One forward pass on a letterboxed view of ``image`` (no tiling): face boxes
        ``(N, 4)``, scores ``(N,)`` and alignment points ``(N, 4, 2)`` in its pixels."""
        return self._detect_canvas(*letterbox(image, DETECTOR_SIZE))

    def _detect_canvas(
        self, canvas: np.ndarray, transform: Letterbox
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`detect_view` on an already letterboxed ``(224, 224, 3) uint8`` view."""
        interpreter = self._require_open()
        # Range [-1, 1], the values of canvas.astype(np.float32) * (2.0 / 255.0) - 1.0.
        self._invoke_pixels(interpreter, canvas, 2.0 / 255.0, 1.0)
        logits = interpreter.get_tensor(self._logits)[0, :, 0]
        # Scores only for the anchors whose logit comes near the threshold (the same
        # values on fewer anchors: most views of a photo have none).
        candidates = np.flatnonzero(logits >= _min_logit(self.score_threshold))
        scores = sigmoid(np.clip(logits[candidates], -100.0, 100.0))  # score_clipping_thresh
        above = scores >= self.score_threshold
        keep, scores = candidates[above], scores[above]
        if len(keep) == 0:
            # what the full path gives for none
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), _no_points()
        regressors = interpreter.tensor(self._regressors)()
        try:
            raw = regressors[0][keep]  # the kept rows only (get_tensor copies them all)
        finally:
            del regressors  # the interpreter refuses to run while a view of it is alive
        anchors = self._anchors[keep]
        # Offsets are in model pixels relative to the anchor centre (x before y).
        centre = raw[:, 0:2] + anchors
        half = raw[:, 2:4] / 2.0
        face = np.concatenate([centre - half, centre + half], axis=1)
        points = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
        face, scores, points = weighted_nms(face, scores, points, self.iou_threshold)
        face_img = transform.to_image(face.reshape(-1, 2, 2)).reshape(-1, 4)
        return face_img, scores, transform.to_image(points)

    def _tiles(self, image: np.ndarray) -> list[tuple[int, int, float, np.ndarray]]:
        height, width = image.shape[:2]
        out = []
        for n, fraction, min_score in self.tile_grids:
            if n == 1 and fraction == 1.0:
                continue  # the whole image is always run
            tile_w, tile_h = max(1, int(width * fraction)), max(1, int(height * fraction))
            xs = np.linspace(0, width - tile_w, n).round().astype(int)
            ys = np.linspace(0, height - tile_h, n).round().astype(int)
            for y0 in ys.tolist():
                for x0 in xs.tolist():
                    out.append((x0, y0, min_score, image[y0 : y0 + tile_h, x0 : x0 + tile_w]))
        return out

    def prepare(self, image: np.ndarray) -> DetectorViews:
        """The inputs of every view :meth:`detect` runs on ``image`` (the whole image,
        then the tiles), without touching the model: safe to call from another thread
        while the model runs, e.g. on the next frame
        (:func:`posekit.pipeline.run.run_pipeline` does). :meth:`detect_prepared` on
        the result gives exactly what :meth:`detect` gives on ``image``.

        The letterboxed views are made by :meth:`DetectorViews.fill` (the decoding
        thread calls it right after) or, for any view it has not reached yet, by
        :meth:`detect_prepared` itself: the model starts on the whole image while the
        tiles are still being made.

        Raises:
            ValueError: ``image`` is not ``(H, W, 3) uint8`` (the message of
                :meth:`detect`).
        """
        check_images([image], "BlazePoseDetector.detect")
        return self._prepare(image)

    def _prepare(self, image: np.ndarray) -> DetectorViews:
        tiled = bool(self.tile_min_side) and max(image.shape[:2]) > self.tile_min_side
        crops = [(0, 0, self.score_threshold, image)]
        if tiled:
            crops += self._tiles(image)
        return DetectorViews(tuple(image.shape), tiled, crops)

    def detect_prepared(self, prepared: Sequence[DetectorViews]) -> list[Detections]:
        """:meth:`detect` on images already :meth:`prepare` d (one entry per image)."""
        return [self._detect_views(views) for views in prepared]

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Detections for each ``(H, W, 3) uint8`` RGB image.

        Returns:
            One :class:`Detections` per image: ``boxes (N, 4)`` xyxy pixels,
            ``scores (N,)``, ``keypoints (N, 4, 2)`` alignment points in pixels.
        """
        check_images(images, "BlazePoseDetector.detect")
        return [self._detect_views(self._prepare(image)) for image in images]

    def _detect_views(self, prepared: DetectorViews) -> Detections:
        whole = prepared.view(0)
        face, scores, points = self._detect_canvas(whole.canvas, whole.transform)
        if prepared.tiled:
            parts = [(face, scores, points)]
            for index in range(1, len(prepared)):
                view = prepared.view(index)
                f, s, p = self._detect_canvas(view.canvas, view.transform)
                keep = s >= view.min_score
                f, s, p = f[keep], s[keep], p[keep]
                offset = np.array(view.offset, np.float32)
                parts.append((f + np.tile(offset, 2), s, p + offset))
            face = np.concatenate([p[0] for p in parts])
            scores = np.concatenate([p[1] for p in parts])
            points = np.concatenate([p[2] for p in parts])
            face, scores, points = weighted_nms(face, scores, points, self.iou_threshold)
        order = np.argsort(-scores, kind="stable")[: self.max_people]
        scores, points = scores[order], points[order]
        return Detections(_alignment_boxes(points, prepared.shape), scores, points)


def _min_logit(threshold: float) -> float:
    """A logit below which no score reaches ``threshold``, with a margin of one (far
    beyond float32 rounding); -inf where scores saturate (thresholds near 0 or 1)."""
    if not 1e-30 < threshold < 0.999:
        return -math.inf
    return math.log(threshold / (1.0 - threshold)) - 1.0


def _no_points() -> np.ndarray:
    return np.zeros((0, 4, 2), np.float32)


class _View(NamedTuple):
    canvas: np.ndarray  # (224, 224, 3) uint8, letterboxed
    transform: Letterbox
    offset: tuple[int, int]  # of the view in the image, pixels
    min_score: float


class DetectorViews:
    """The detector inputs of one image (:meth:`BlazePoseDetector.prepare`): the whole
    image first, then the tiles, each letterboxed into a ``(224, 224, 3) uint8``
    canvas once, by whichever thread gets to it first.

    :meth:`fill` (the decoding thread) makes them in order; :meth:`view` returns one,
    made at once by the calling thread if nobody has started it, or waited for if
    another thread is making it. Either way a view is the same pixels, so the
    detections do not depend on who made which.

    Attributes:
        shape: The image's shape.
        tiled: Whether the tiles were added (the image is over ``tile_min_side``).
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        tiled: bool,
        crops: Sequence[tuple[int, int, float, np.ndarray]],
    ) -> None:
        self.shape = shape
        self.tiled = tiled
        self._crops = list(crops)  # (x0, y0, min_score, the image or a tile of it)
        self._views: list[_View | BaseException | None] = [None] * len(self._crops)
        self._started = [False] * len(self._crops)
        self._ready = threading.Condition()

    def __len__(self) -> int:
        return len(self._crops)

    @property
    def views(self) -> tuple[_View, ...]:
        """Every view (made now where not made yet)."""
        return tuple(self.view(i) for i in range(len(self)))

    def fill(self) -> None:
        """Make every view nobody has started, in order."""
        for index in range(len(self)):
            if self._claim(index):
                self._make(index)

    def view(self, index: int) -> _View:
        """View ``index``: made here if nobody has started it, else waited for.

        Raises:
            Whatever letterboxing it raised (in whichever thread).
        """
        if self._claim(index):
            self._make(index)
        with self._ready:
            while (made := self._views[index]) is None:
                self._ready.wait()
        if isinstance(made, BaseException):
            raise made
        return made

    def _claim(self, index: int) -> bool:
        with self._ready:
            if self._started[index]:
                return False
            self._started[index] = True
            return True

    def _make(self, index: int) -> None:
        x0, y0, min_score, crop = self._crops[index]
        made: _View | BaseException
        try:
            canvas = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.uint8)
            made = _View(canvas, letterbox_into(crop, canvas), (x0, y0), min_score)
        except BaseException as exc:  # handed to whoever needs the view
            made = exc
        with self._ready:
            self._views[index] = made
            self._ready.notify_all()


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
