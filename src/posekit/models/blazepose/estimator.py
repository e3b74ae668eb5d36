"""The BlazePose 33-landmark pose estimator on person crops."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence

import numpy as np

from posekit.core import Detections, Instance
from posekit.models.base import ModelError, check_pairs
from posekit.models.blazepose.crowd import face_conflicts, resolved, without_neighbour
from posekit.models.blazepose.detector import BlazePoseDetector
from posekit.models.blazepose.face import FACE_POINTS, FaceRefiner, face_rois, find_face_model
from posekit.models.blazepose.landmarks import (
    _SIGMAS33,
    HEATMAP_KERNEL,
    LandmarkOutput,
    heatmap_windows,
    keypoint_similarity,
    refine_with_heatmap_windows,
)
from posekit.models.blazepose.runtime import (
    BLAZEPOSE_KEYPOINTS,
    LANDMARK_SIZE,
    NUM_LANDMARKS,
    ROI_ENLARGE,
    TfliteModel,
    find_model_dir,
    sigmoid,
)
from posekit.models.blazepose.visibility import hidden_landmarks, outside_image
from posekit.models.geometry import box_to_roi, crop_rois, crop_to_image, roi_from_alignment_points
from posekit.models.heatmap_codec import rescore_instances
from posekit.models.instances import predicted_instance
from posekit.skeleton import Skeleton, add_derived_points, derived_mapping

__all__ = ["BlazePoseEstimator"]

log = logging.getLogger(__name__)


class BlazePoseEstimator(TfliteModel):
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

    In crowds the detector's alignment inside a caller's box can lock onto a
    neighbour: a pose that fits its own box badly, or duplicates another box's pose,
    is re-run from the upright box crop and the better-fitting pose is kept (see
    :meth:`landmarks`). Two caller boxes' poses on one face (one person behind
    another): the pose whose box holds that face less deeply is re-run without the
    other box's pixels outside its own (:mod:`~.crowd`).

    Faces: BlazePose places the face points from a crop of the whole body, where a
    face is often 10-30 px wide. With ``face_refine`` (default) each face is cropped
    from those points and MediaPipe's face landmark model (:mod:`~.face`) places the
    nose, eyes, ears and mouth corners on it; where that model finds no face
    (confidence below ``face_min_confidence``: helmets, goggles, faces turned away,
    faces a few pixels wide) BlazePose's points are kept.

    Keypoints map onto the target skeleton by name; template points the model lacks
    but the template declares as derived (MPII ``pelvis`` = mean of the hips,
    CrowdPose ``neck``...) are computed from the landmarks (BlazePose's, before the
    face refinement); the rest are not labeled
    (visibility 0). A mapped keypoint is labeled unless the model's own 3-D landmarks
    say annotators would leave it out (:mod:`~.visibility`: the far ear or eye of a
    face in profile, the eyes of a person seen from behind, a point clearly off the
    image or not present in the crop); a labeled point gets visibility 2 when it is
    inside the image and the model's visibility score is at least
    ``visible_threshold``, else 1 (labeled, probably occluded).

    ``keypoint_scores`` are the landmark heatmap's peak probabilities
    (:func:`keypoint_confidence`): unlike the model's presence and visibility outputs,
    which are near 1 on almost every point, they are low where the point is wrong. The
    instance ``score`` (:func:`instance_scores`) is the pose flag x the agreement (an
    OKS) between the last two passes x the mean of the keypoint scores above 0.2 (the
    SimpleBaseline / ViTPose rescoring); for plain boxes the flag is left out and the
    box's score (1 for a user's or ground-truth box) multiplies instead.

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
        hide_self_occluded: leave out the far ear/eye of faces in profile and the eyes
            of people seen from behind (:func:`~.visibility.hidden_landmarks`).
        min_presence: presence probability below which a landmark is left out
            (None: never).
        outside_tolerance: a point farther than this fraction of its crop side
            beyond the image border is left out (None: never).
        face_refine: refine the face points with the face landmark model (needs
            ``face_landmark.tflite``: :func:`~.face.find_face_model`).
        face_min_confidence: the face model's face probability from which its points
            replace BlazePose's.
        face_conflicts: re-run a caller box's pose that put its face on another
            box's face (:mod:`~.crowd`).
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
        hide_self_occluded: bool = True,
        min_presence: float | None = 0.5,
        outside_tolerance: float | None = 0.03,
        face_refine: bool = True,
        face_min_confidence: float = 0.5,
        face_conflicts: bool = True,
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
        if min_presence is not None and not 0.0 <= min_presence <= 1.0:
            raise ValueError(f"min_presence must be in [0, 1] or None, got {min_presence}")
        if outside_tolerance is not None and not outside_tolerance >= 0.0:
            raise ValueError(
                f"outside_tolerance must be 0 or more, or None, got {outside_tolerance}"
            )
        if not 0.0 <= face_min_confidence <= 1.0:
            raise ValueError(f"face_min_confidence must be in [0, 1], got {face_min_confidence}")
        self.face_min_confidence = float(face_min_confidence)
        self.face_conflicts = bool(face_conflicts)
        self.hide_self_occluded = bool(hide_self_occluded)
        self.min_presence = None if min_presence is None else float(min_presence)
        self.outside_tolerance = None if outside_tolerance is None else float(outside_tolerance)
        _, landmark_path = find_model_dir(model_dir)
        face_path = find_face_model(model_dir) if face_refine else None
        details = self._open(landmark_path, num_threads)
        outputs = {tuple(d["shape"][1:]): d["index"] for d in details}
        try:
            self._out_landmarks = outputs[(NUM_LANDMARKS * 5,)]
            self._out_flag = outputs[(1,)]
            self._heatmap_shape, self._out_heatmap = next(
                (s, i) for s, i in outputs.items() if len(s) == 3 and s[2] == NUM_LANDMARKS
            )
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
        self._mapping_cache: dict[int, tuple[Skeleton, np.ndarray, np.ndarray]] = {}
        self.box_align = box_align
        self._detector: BlazePoseDetector | None = None
        if box_align == "detector":
            self._detector = BlazePoseDetector(
                model_dir, score_threshold=0.1, num_threads=num_threads
            )
        self._face: FaceRefiner | None = None
        if face_path is not None:
            self._face = FaceRefiner(face_path, num_threads=num_threads)
        log.info("BlazePose landmark model loaded from %s on %s", landmark_path, self.device)

    # ------------------------------------------------------------------ inference
    def _infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw outputs for ``(N, 256, 256, 3) uint8`` crops: landmarks (N, 39, 5),
        pose flag (N,), and the heatmap logits around each regressed landmark
        (N, 39, kernel, kernel; :func:`heatmap_windows`)."""
        interpreter = self._require_open()
        n = crops.shape[0]
        landmarks = np.empty((n, NUM_LANDMARKS, 5), np.float32)
        flags = np.empty((n,), np.float32)
        windows = np.empty((n, NUM_LANDMARKS, HEATMAP_KERNEL, HEATMAP_KERNEL), np.float32)
        # One crop per invoke: batched invokes are not faster with XNNPACK on CPU and
        # resizing the input reallocates every tensor. The crop goes in as
        # crop.astype(np.float32) * (1 / 255), written into the input tensor.
        for i in range(n):
            self._invoke_pixels(interpreter, crops[i], 1.0 / 255.0)
            landmarks[i] = interpreter.get_tensor(self._out_landmarks).reshape(NUM_LANDMARKS, 5)
            flags[i] = interpreter.get_tensor(self._out_flag).reshape(-1)[0]
            # The heatmap gives the keypoint confidences even when not refining; only
            # the windows around the landmarks are read (1/80 of its 640 KB).
            view = interpreter.tensor(self._out_heatmap)()
            try:
                windows[i] = heatmap_windows(view[0], landmarks[i, :, 0:2])
            finally:
                del view  # the interpreter refuses to run while a view of it is alive
        return landmarks, flags, windows

    def _decode_crop(
        self, crops: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Crop-space points (N, 39, 2); depth, visibility and presence logits
        (N, 39, 3); flags (N,) and heatmap peaks (N, 39)."""
        landmarks, flags, windows = self._infer(crops)
        points = landmarks[..., 0:2].copy()
        refined, peaks = refine_with_heatmap_windows(points, windows, self._heatmap_shape[:2])
        if self.heatmap_refine:
            points = refined
        return points, landmarks[..., 2:5], flags, peaks

    def _run(self, image: np.ndarray, rois: np.ndarray) -> LandmarkOutput:
        crops = crop_rois(image, rois, LANDMARK_SIZE)
        points, logits, flags, peaks = self._decode_crop(crops)
        flip_agreement = None
        if self.flip_test:
            f_points, f_logits, f_flags, f_peaks = self._decode_crop(crops[:, :, ::-1])
            f_points[..., 0] = LANDMARK_SIZE - f_points[..., 0]
            f_points = f_points[:, self._flip_index]
            crop_roi = np.zeros((len(rois), 4))
            crop_roi[:, 2] = LANDMARK_SIZE  # the points are in crop pixels
            flip_agreement = keypoint_similarity(points[:, :33], f_points[:, :33], crop_roi)
            points = (points + f_points) / 2.0
            logits = (logits + f_logits[:, self._flip_index]) / 2.0
            flags = (flags + f_flags) / 2.0
            peaks = (peaks + f_peaks[:, self._flip_index]) / 2.0
        image_points = crop_to_image(points, rois, LANDMARK_SIZE)
        out = LandmarkOutput(
            image_points,
            sigmoid(logits[..., 1]),
            sigmoid(logits[..., 2]),
            flags,
            heat_peak=peaks,
            flip_agreement=flip_agreement,
        )
        out.depth = (logits[..., 0] * (rois[:, 2:3] / LANDMARK_SIZE)).astype(np.float32)
        return out

    def _passes(self, image: np.ndarray, rois: np.ndarray, passes: int) -> LandmarkOutput:
        """The landmark model on ``rois``, then ``passes`` re-crops from its own
        alignment landmarks (``rois`` is updated in place to the last crops)."""
        rois[:, 2] = np.maximum(rois[:, 2], 4.0)
        out = self._run(image, rois)
        for _ in range(passes):
            new_rois = roi_from_alignment_points(out.points[:, 33], out.points[:, 34], ROI_ENLARGE)
            # A crop with no person gives arbitrary alignment points; keep the first
            # crop there rather than chase them.
            ok = (out.pose_flag >= 0.5) & np.isfinite(new_rois).all(axis=1) & (new_rois[:, 2] >= 4)
            if not np.any(ok):
                break
            rois[ok] = new_rois[ok]
            second = self._run(image, rois[ok])
            idx = np.flatnonzero(ok)
            similarity = keypoint_similarity(out.points[idx, :33], second.points[:, :33], rois[ok])
            second.keypoint_agreement = similarity
            second.agreement = similarity.mean(axis=1)
            out.assign(idx, second)
        return out

    def landmarks(
        self, image: np.ndarray, detections: Detections
    ) -> tuple[LandmarkOutput, np.ndarray]:
        """All 39 landmarks for each detection in one image, and the final ROIs.

        Plain boxes are first cropped from the pose detector's alignment inside the box
        (see ``box_align``). In a crowd that alignment may lock onto a neighbour whose
        hips fall inside the box; so a pose that fits its own box badly (its landmark
        extent overlaps the box by IoU < :data:`BOX_FIT_MIN`), or that duplicates
        another box's pose, is re-run from the upright box crop, and the pose that
        fits the box better is kept.
        """
        if detections.keypoints is not None and detections.keypoints.shape[1] >= 2:
            rois = roi_from_alignment_points(
                detections.keypoints[:, 0], detections.keypoints[:, 1], ROI_ENLARGE
            )
            return self._passes(image, rois, self.aligned_refine_passes), rois
        boxes = np.asarray(detections.boxes, np.float64)
        upright = box_to_roi(boxes, self.box_enlarge)
        rois = upright.copy()
        aligned = np.zeros(len(boxes), bool)
        if self._detector is not None:
            rois, aligned = self._align_boxes(image, boxes, upright)
        out = self._passes(image, rois, self.refine_passes)
        if not aligned.any():
            return out, rois
        fit = box_fit(out.points[:, :33], boxes)
        redo = aligned & ((fit < BOX_FIT_MIN) | _duplicated(out, fit))
        if redo.any():
            idx = np.flatnonzero(redo)
            alt_rois = upright[idx].copy()
            alt = self._passes(image, alt_rois, self.refine_passes)
            alt_fit = box_fit(alt.points[:, :33], boxes[idx])
            better = alt_fit > fit[idx]
            if better.any():
                out.assign(idx[better], alt.take(np.flatnonzero(better)))
                rois[idx[better]] = alt_rois[better]
        return out, rois

    def _align_boxes(
        self, image: np.ndarray, boxes: np.ndarray, rois: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Aligned ROIs for plain boxes: run the pose detector inside each enlarged box
        and take the alignment points of the best detection whose hip centre lies in the
        box; boxes where it finds nobody keep their upright square ROI. Also returns
        which boxes were aligned."""
        height, width = image.shape[:2]
        out = rois.copy()
        aligned = np.zeros(len(boxes), bool)
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
            _, scores, points = self._detector.detect_view(image[y0:y1, x0:x1])
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
            aligned[i] = True
        return out, aligned

    def _mapping(self, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray]:
        """Template <- landmark index (into the 33 landmarks plus the template's derived
        points) and the derived points' weights, cached per template."""
        cached = self._mapping_cache.get(id(skeleton))
        if cached is None or cached[0] is not skeleton:
            cached = (skeleton, *derived_mapping(BLAZEPOSE_KEYPOINTS, skeleton))
            self._mapping_cache[id(skeleton)] = cached
        return cached[1], cached[2]

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
            skeleton: target template; keypoints are mapped by name, and the
                template's derived points (``pelvis``, ``neck``...) are computed from
                the landmarks they are defined from.

        Raises:
            ValueError: ``images`` and ``detections`` differ in length, or an image is
                not RGB uint8.
        """
        check_pairs(images, detections, "BlazePoseEstimator.estimate")
        mapping, derived_weights = self._mapping(skeleton)
        known = mapping[mapping >= 0]
        results: list[list[Instance]] = []
        for image, dets in zip(images, detections):
            if len(dets) == 0:
                results.append([])
                continue
            out, rois = self.landmarks(image, dets)
            if self.face_conflicts and dets.keypoints is None and len(dets) > 1:
                self._resolve_face_conflicts(image, dets, out, rois)
            # Derived template points (head top, neck...) are affine combinations
            # defined on BlazePose's own landmarks: computed before the face refinement
            # (from the face mesh's ears they measured worse on PoseTrack and AIC).
            confidence = keypoint_confidence(out)
            points, confidence = add_derived_points(out.points[:, :33], confidence, derived_weights)
            if self._face is not None:
                self._refine_faces(image, out)
                points[:, :33] = out.points[:, :33]
            height, width = image.shape[:2]
            plain_boxes = dets.keypoints is None
            _, visibility = add_derived_points(
                out.points[:, :33], out.visibility[:, :33], derived_weights
            )
            scores = instance_scores(out, confidence[:, known], use_flag=not plain_boxes)
            labeled = self._labeled(out, points, rois, (width, height))
            instances = []
            for i in range(len(dets)):
                score = float(scores[i])
                if plain_boxes:
                    # A caller's box score (another detector's confidence) is evidence
                    # too: rank by pose x box confidence, as top-down methods do. The
                    # BlazePose detector's own score is left out: it ranked worse on the
                    # COCO sample (AP 0.522 with it, 0.540 without).
                    score *= float(np.clip(dets.scores[i], 0.0, 1.0))
                    box = dets.boxes[i]
                else:
                    box = _points_box(out.points[i, :33], width, height)
                instances.append(
                    predicted_instance(
                        points[i],
                        # a point left out has no score (the backends' contract)
                        np.where(labeled[i], confidence[i], 0.0),
                        mapping,
                        image_size=(width, height),
                        visible_threshold=self.visible_threshold,
                        box=box,
                        score=score,
                        source="model:blazepose",
                        visibility_scores=visibility[i],
                        labeled=labeled[i],
                    )
                )
            results.append(instances)
        return results

    def _resolve_face_conflicts(
        self, image: np.ndarray, dets: Detections, out: LandmarkOutput, rois: np.ndarray
    ) -> None:
        """Two caller boxes' poses on one face (:func:`~.crowd.face_conflicts`): the
        pose whose box holds that face less deeply is re-run alone on the image without
        the other box's part outside its own (:func:`~.crowd.without_neighbour`), and
        kept if its face then lies elsewhere."""
        for loser, winner in face_conflicts(out.points[:, :33], dets.boxes):
            view = without_neighbour(image, dets.boxes[loser], dets.boxes[winner])
            if view is image:
                continue
            one = slice(loser, loser + 1)
            again, again_rois = self.landmarks(view, Detections(dets.boxes[one], dets.scores[one]))
            if resolved(again.points[0, :33], out.points[winner, :33]):
                out.assign(np.array([loser]), again)
                rois[loser] = again_rois[0]

    def _refine_faces(self, image: np.ndarray, out: LandmarkOutput) -> None:
        """Replace the face landmarks of :data:`~.face.FACE_POINTS` (nose, eyes, ears,
        mouth corners) with the face mesh's where the face model finds a face
        (confidence >= ``face_min_confidence``); other faces keep BlazePose's points."""
        assert self._face is not None
        if len(out.points) == 0:
            return
        before = self._face.inference_seconds
        rois = face_rois(out.points[:, :33])
        points, conf = self._face.face_points(image, rois)
        # the face model's runs count as this model's inference (benchmarks read it)
        self.inference_seconds += self._face.inference_seconds - before
        use = np.flatnonzero(conf >= self.face_min_confidence)
        targets = np.asarray(list(FACE_POINTS), np.int64)
        out.points[use[:, None], targets[None, :]] = points[use]

    def _labeled(
        self,
        out: LandmarkOutput,
        points: np.ndarray,
        rois: np.ndarray,
        image_size: tuple[int, int],
    ) -> np.ndarray:
        """``(N, 33 + D) bool``: which landmarks and derived points to label
        (:mod:`~.visibility`); derived points follow the image-border rule only."""
        n, m = points.shape[:2]
        labeled = np.ones((n, m), bool)
        xyz = np.concatenate([out.points[:, :33], out.depth[:, :33, None]], axis=-1)
        labeled[:, :33] &= ~hidden_landmarks(
            xyz,
            out.presence,
            self_occlusion=self.hide_self_occluded,
            min_presence=self.min_presence,
        )
        if self.outside_tolerance is not None:
            labeled &= ~outside_image(points, rois[:, 2], image_size, self.outside_tolerance)
        return labeled

    def close(self) -> None:
        """Release the interpreters (this model's, the aligning detector's and the face
        model's)."""
        super().close()
        if self._detector is not None:
            self._detector.close()
        if self._face is not None:
            self._face.close()


#: A pose whose landmark extent overlaps its given box by less than this IoU is
#: re-run from the upright box crop (it probably took a neighbour's body).
BOX_FIT_MIN = 0.5


def box_fit(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``(N,)`` IoU between each pose's landmark extent ``(N, M, 2)`` and its box."""
    lo, hi = points.min(axis=1), points.max(axis=1)
    extent = np.concatenate([lo, hi], axis=1).astype(np.float64)
    low = np.maximum(extent[:, :2], boxes[:, :2])
    high = np.minimum(extent[:, 2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=1)
    area_e = (extent[:, 2] - extent[:, 0]) * (extent[:, 3] - extent[:, 1])
    area_b = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    union = area_e + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def _duplicated(out: LandmarkOutput, fit: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``(N,) bool``: poses that are (OKS >= ``threshold``, either way) the same body as
    another box's pose that fits its own box better."""
    n = len(fit)
    flags = np.zeros(n, bool)
    if n < 2:
        return flags
    points = out.points[:, :33].astype(np.float64)
    lo, hi = points.min(axis=1), points.max(axis=1)
    areas = np.maximum(np.prod(hi - lo, axis=1), 1.0)
    d2 = ((points[:, None] - points[None, :]) ** 2).sum(axis=-1)  # (N, N, 33)
    var = (2.0 * _SIGMAS33) ** 2
    oks = np.exp(-d2 / (2.0 * areas[:, None, None] * var)).mean(axis=-1)
    same = np.maximum(oks, oks.T) >= threshold
    np.fill_diagonal(same, False)
    for i in range(n):
        flags[i] = bool(np.any(same[i] & (fit > fit[i])))
    return flags


def keypoint_confidence(out: LandmarkOutput) -> np.ndarray:
    """``(N, 33)`` per-landmark confidence that the point is where it should be.

    The landmark model's presence and visibility outputs saturate near 1 on nearly
    every point (wrong ones included), so they cannot rank points by error. The
    heatmap peak can: around a well-located landmark the heatmap is sharp and
    high, around a guessed one (occluded, out of the crop, another person's limb)
    it is flat.
    """
    return np.clip(out.heat_peak[:, :33], 0.0, 1.0).astype(np.float32)


def instance_scores(
    out: LandmarkOutput, confidence: np.ndarray, *, use_flag: bool = True
) -> np.ndarray:
    """``(N,)`` instance scores: pose flag x agreement between passes x mean of the
    template keypoints' confidences above 0.2
    (:func:`posekit.models.heatmap_codec.rescore_instances`).

    Each factor is a probability-like quality in [0, 1] that is low on junk: the flag
    when the crop holds no person, the agreement when the pose moves on re-cropping
    (the model is guessing), the keypoint confidences when the heatmaps are flat.

    Args:
        out: the landmark output.
        confidence: ``(N, K)`` confidences of the template's mapped keypoints.
        use_flag: include the pose flag. Off for a caller's boxes: a box asserts a
            person (its score says how surely), and the flag drops to ~0 on real but
            occluded or truncated people inside such boxes.
    """
    flag = out.pose_flag if use_flag else 1.0
    return rescore_instances(flag * out.agreement, confidence).astype(np.float32)


def _points_box(points: np.ndarray, width: int, height: int) -> np.ndarray:
    x1, y1 = np.clip(points.min(axis=0), -0.5, [width - 0.5, height - 0.5])
    x2, y2 = np.clip(points.max(axis=0), -0.5, [width - 0.5, height - 0.5])
    return np.array([x1, y1, max(x1, x2), max(y1, y2)], np.float32)
