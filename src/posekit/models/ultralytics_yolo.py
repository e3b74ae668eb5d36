"""Ultralytics YOLO (v8 / 11) person detector and one-stage YOLO-pose backend.

Optional ``[ultralytics]`` extra, never the default: Ultralytics is licensed
AGPL-3.0, which binds the software you distribute with it. Spec:
``yolo:<weights name or path>``, e.g. ``yolo:yolov8n.pt`` (detector) or
``yolo:yolov8n-pose.pt`` (pose). ``ultralytics`` is imported only when a model is
created.

Weights: Ultralytics ``.pt`` files are pickles. posekit only loads them from a
path the user names (or the official release names Ultralytics downloads itself);
prefer exported ``.onnx`` / ``.safetensors`` weights from sources you trust.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from posekit.core import Detections, Instance
from posekit.models.base import ModelError, check_images, check_pairs
from posekit.models.boxes import filter_person_boxes, match_boxes
from posekit.models.instances import predicted_instance
from posekit.skeleton import Skeleton, get_preset, names_mapping

__all__ = ["DEFAULT_YOLO", "DEFAULT_YOLO_POSE", "YoloDetector", "YoloPoseEstimator"]

log = logging.getLogger(__name__)

DEFAULT_YOLO = "yolov8n.pt"
DEFAULT_YOLO_POSE = "yolov8n-pose.pt"
_INSTALL_HINT = (
    "install the optional extra: pip install 'posekit[ultralytics]' "
    "(Ultralytics is AGPL-3.0 licensed)"
)


def _load_yolo(weights: str) -> Any:
    try:
        from ultralytics import YOLO
    except ImportError as exc:
        raise ModelError(f"the yolo backend needs ultralytics ({exc}); {_INSTALL_HINT}") from None
    try:
        return YOLO(weights)
    except Exception as exc:  # ultralytics raises many types for missing/bad weights
        raise ModelError(
            f"cannot load YOLO weights {weights!r}: {type(exc).__name__}: {exc}. Pass a path "
            "to a downloaded .pt/.onnx file, or an official name such as 'yolov8n.pt' on a "
            "machine with network"
        ) from None


def _yolo_device(device: str | None) -> str | None:
    if device in (None, "auto"):
        return None  # Ultralytics picks CUDA, MPS or CPU itself
    return device


class _YoloBase:
    #: What the "loaded" log line calls the model.
    _what = "YOLO model"

    def __init__(
        self,
        weights: str,
        device: str | None,
        half: bool | None,
        score_threshold: float,
        iou_threshold: float,
        imgsz: int,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        self.weights = str(weights)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.imgsz = int(imgsz)
        self._model = _load_yolo(self.weights)
        names = {int(k): str(v) for k, v in dict(getattr(self._model, "names", {})).items()}
        persons = [i for i, n in names.items() if n.lower() == "person"]
        if not persons:
            raise ModelError(
                f"YOLO weights {self.weights!r} have no 'person' class "
                f"(classes: {', '.join(list(names.values())[:10])})"
            )
        self.person_class = persons[0]
        self._check_weights()
        self._device = _yolo_device(device)
        self._half = half
        self.device = device or "auto"
        log.info("%s %s loaded", self._what, self.weights)

    def _check_weights(self) -> None:
        """Raise :class:`ModelError` if the loaded weights cannot serve this backend."""

    def _predict(self, images: Sequence[np.ndarray]) -> list[Any]:
        if self._model is None:
            raise ModelError("YOLO model is closed")
        if not images:  # Ultralytics refuses an empty source; an empty batch has no results
            return []
        # Ultralytics takes numpy images as BGR (OpenCV order).
        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]
        options: dict[str, Any] = {
            "conf": self.score_threshold,
            "iou": self.iou_threshold,
            "classes": [self.person_class],
            "imgsz": self.imgsz,
            "verbose": False,
        }
        if self._device is not None:
            options["device"] = self._device
        if self._half is not None:
            options["half"] = bool(self._half)
        results = self._model.predict(bgr, **options)
        if results:
            self.device = str(getattr(self._model, "device", "unknown"))
        return list(results)

    def close(self) -> None:
        """Release the model."""
        self._model = None


class YoloDetector(_YoloBase):
    """Ultralytics YOLO person detector.

    Args:
        weights: weights name (``yolov8n.pt``, ``yolo11n.pt``) or path.
        device: ``"auto"`` (Ultralytics' choice) or a device string.
        half: fp16 inference (CUDA).
        score_threshold: minimum person score.
        iou_threshold: NMS IoU.
        min_box_size: minimum box width and height in pixels.
        imgsz: inference size.
    """

    name = "yolo"
    _what = "YOLO detector"

    def __init__(
        self,
        weights: str = DEFAULT_YOLO,
        *,
        device: str | None = None,
        half: bool | None = None,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.7,
        min_box_size: float = 4.0,
        imgsz: int = 640,
    ) -> None:
        self.min_box_size = float(min_box_size)
        super().__init__(weights, device, half, score_threshold, iou_threshold, imgsz)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Person boxes for each ``(H, W, 3) uint8`` RGB image."""
        check_images(images, "YoloDetector.detect")
        out = []
        for image, result in zip(images, self._predict(images)):
            boxes = result.boxes
            height, width = image.shape[:2]
            out.append(
                filter_person_boxes(
                    boxes.xyxy.cpu().numpy(),
                    boxes.conf.cpu().numpy(),
                    score_threshold=self.score_threshold,
                    iou_threshold=self.iou_threshold,
                    min_box_size=self.min_box_size,
                    width=width,
                    height=height,
                )
            )
        if images:
            log.info("YOLO detector ran on %s", self.device)
        return out


class YoloPoseEstimator(_YoloBase):
    """One-stage YOLO-pose (COCO-17 keypoints) behind the top-down protocol.

    YOLO-pose finds people and keypoints in one pass over the whole image; each
    given detection box is paired with the predicted person whose box overlaps
    it most (IoU at least ``match_iou``); unmatched detections get an instance
    with no labeled keypoints and score 0.

    Keypoint confidences are read raw from ``keypoints.data`` (Ultralytics'
    convenience fields hide points under 0.5). Where a version of Ultralytics
    has zeroed a point's coordinates, that point is not labeled (visibility 0)
    but keeps its raw score.

    Args:
        weights: pose weights (``yolov8n-pose.pt``, ``yolo11n-pose.pt``) or path.
        match_iou: minimum IoU to pair a detection with a predicted person.
        visible_threshold: keypoint confidence from which a point gets v=2.
        Other arguments as :class:`YoloDetector`.
    """

    name = "yolo"
    _what = "YOLO pose model"

    def __init__(
        self,
        weights: str = DEFAULT_YOLO_POSE,
        *,
        device: str | None = None,
        half: bool | None = None,
        score_threshold: float = 0.25,
        iou_threshold: float = 0.7,
        match_iou: float = 0.3,
        visible_threshold: float = 0.5,
        imgsz: int = 640,
    ) -> None:
        self.keypoint_names = get_preset("coco17").keypoints
        self.match_iou = float(match_iou)
        self.visible_threshold = float(visible_threshold)
        super().__init__(weights, device, half, score_threshold, iou_threshold, imgsz)

    def _check_weights(self) -> None:
        kpt_shape = getattr(getattr(self._model, "model", None), "kpt_shape", None)
        if kpt_shape is None:
            kpt_shape = getattr(getattr(self._model, "model", None), "yaml", {}).get("kpt_shape")
        if kpt_shape is None or int(kpt_shape[0]) != 17:
            raise ModelError(
                f"YOLO weights {self.weights!r} are not a COCO-17 pose model "
                f"(kpt_shape {kpt_shape}); use e.g. 'yolov8n-pose.pt'"
            )

    def estimate(
        self,
        images: Sequence[np.ndarray],
        detections: Sequence[Detections],
        skeleton: Skeleton,
    ) -> list[list[Instance]]:
        """One :class:`Instance` per detection box, on ``skeleton``'s keypoints."""
        check_pairs(images, detections, "YoloPoseEstimator.estimate")
        mapping = names_mapping(self.keypoint_names, skeleton)
        results: list[list[Instance]] = []
        predictions = self._predict(images) if images else []
        for image, dets, pred in zip(images, detections, predictions):
            height, width = image.shape[:2]
            if pred.keypoints is None:
                raise ModelError(f"YOLO weights {self.weights!r} returned no keypoints")
            data = pred.keypoints.data.cpu().numpy().reshape(-1, 17, 3)
            boxes = pred.boxes.xyxy.cpu().numpy()
            person_scores = pred.boxes.conf.cpu().numpy()
            best, iou = match_boxes(dets.boxes, boxes)
            instances = []
            for j in range(len(dets)):
                k = skeleton.num_keypoints
                if best[j] < 0 or iou[j] < self.match_iou:
                    instances.append(
                        Instance(
                            np.zeros((k, 2)),
                            np.zeros(k, np.uint8),
                            keypoint_scores=np.zeros(k, np.float32),
                            box=dets.boxes[j],
                            score=0.0,
                            source="model:yolo",
                            status="predicted",
                        )
                    )
                    continue
                points = data[best[j]]
                xy = points[:, :2]
                instances.append(
                    predicted_instance(
                        xy,
                        np.clip(points[:, 2], 0.0, 1.0),
                        mapping,
                        image_size=(width, height),
                        visible_threshold=self.visible_threshold,
                        box=dets.boxes[j],
                        score=float(person_scores[best[j]]),
                        source="model:yolo",
                        # Some Ultralytics versions zero the points they did not find.
                        labeled=(xy[:, 0] != 0) | (xy[:, 1] != 0),
                    )
                )
            results.append(instances)
        return results
