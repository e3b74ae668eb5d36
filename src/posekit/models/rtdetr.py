"""RT-DETR person detector through Hugging Face transformers (Apache-2.0 path).

RT-DETR: Zhao et al., "DETRs Beat YOLOs on Real-time Object Detection", CVPR 2024.
Spec: ``rtdetr`` (default checkpoint ``PekingU/rtdetr_r50vd_coco_o365``) or
``rtdetr:<hub id or local folder>``. Needs the ``[transformers]`` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from posekit.core import Detections
from posekit.models.base import ModelError, check_images
from posekit.models.boxes import filter_person_boxes
from posekit.models.torch_kit import TorchBackend, batched, describe_device, load_pretrained

__all__ = ["DEFAULT_RTDETR", "RTDetrDetector"]

log = logging.getLogger(__name__)

#: Default checkpoint: RT-DETR R50vd, Objects365 pre-trained, COCO fine-tuned.
DEFAULT_RTDETR = "PekingU/rtdetr_r50vd_coco_o365"


class RTDetrDetector(TorchBackend):
    """Person detector on any ``RTDetrForObjectDetection`` checkpoint.

    The person class is found by name in the config's ``id2label``. Images are
    resized to the checkpoint's input size (its ``preprocessor_config.json``, else
    640x640) as its image processor does, and run in batches.

    Args:
        model: hub id or local folder.
        device: ``"auto"`` (CUDA, MPS, CPU) or a torch device string.
        half: fp16 inference; default True on CUDA.
        score_threshold: minimum person score.
        iou_threshold: NMS IoU (RT-DETR is trained NMS-free; this only removes
            near-duplicates).
        min_box_size: minimum box width and height in pixels.
        person_label: class name to detect.
        batch_size: images per forward pass.
        local_files_only: never contact the Hugging Face Hub.
        revision: hub revision.
    """

    name = "rtdetr"
    _checkpoint = "RT-DETR checkpoint"
    _model_types = frozenset({"rt_detr", "rt_detr_v2"})
    _expected = "an RT-DETR one"

    def __init__(
        self,
        model: str = DEFAULT_RTDETR,
        *,
        device: str | None = None,
        half: bool | None = None,
        score_threshold: float = 0.5,
        iou_threshold: float = 0.7,
        min_box_size: float = 4.0,
        person_label: str = "person",
        batch_size: int = 8,
        local_files_only: bool = False,
        revision: str | None = None,
    ) -> None:
        if not 0.0 <= score_threshold <= 1.0:
            raise ValueError(f"score_threshold must be in [0, 1], got {score_threshold}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        transformers = self._setup_torch(device, half)
        self.model_id = str(model)
        self.score_threshold = float(score_threshold)
        self.iou_threshold = float(iou_threshold)
        self.min_box_size = float(min_box_size)
        self.batch_size = int(batch_size)
        config, loading = self._load_config(transformers, revision, local_files_only)
        labels = {int(k): str(v) for k, v in (config.id2label or {}).items()}
        matches = [i for i, name in labels.items() if name.lower() == person_label.lower()]
        if not matches:
            raise ModelError(
                f"checkpoint {self.model_id!r} has no {person_label!r} class in id2label "
                f"(classes: {', '.join(list(labels.values())[:10])}...)"
            )
        self.person_class = matches[0]
        model_cls = transformers.RTDetrForObjectDetection
        if config.model_type == "rt_detr_v2":
            model_cls = getattr(transformers, "RTDetrV2ForObjectDetection", model_cls)
        network = load_pretrained(
            model_cls.from_pretrained, self.model_id, config=config, use_safetensors=True, **loading
        )
        self._model = self._place(network)
        self._read_preprocessing(transformers, loading)
        log.info(
            "RT-DETR %s loaded: input %dx%d, person class %d, device %s",
            self.model_id,
            self.input_size[0],
            self.input_size[1],
            self.person_class,
            describe_device(self.device, self.half),
        )

    def _read_preprocessing(self, transformers: Any, loading: dict[str, Any]) -> None:
        # Defaults of RTDetrImageProcessor: 640x640, rescale 1/255, no mean/std.
        self.input_size = (640, 640)
        self._rescale = 1.0 / 255.0
        self._mean_std: tuple[np.ndarray, np.ndarray] | None = None
        try:
            processor = load_pretrained(
                transformers.AutoImageProcessor.from_pretrained, self.model_id, **loading
            )
        except ModelError:
            log.info("%s has no image processor config; using 640x640 input", self.model_id)
            return
        size = getattr(processor, "size", None) or {}
        size = dict(size) if not isinstance(size, dict) else size
        if size.get("height") and size.get("width"):
            self.input_size = (int(size["width"]), int(size["height"]))
        if getattr(processor, "do_rescale", True):
            self._rescale = float(getattr(processor, "rescale_factor", 1.0 / 255.0))
        else:
            self._rescale = 1.0
        if getattr(processor, "do_normalize", False):
            self._mean_std = (
                np.asarray(processor.image_mean, np.float32),
                np.asarray(processor.image_std, np.float32),
            )

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        import cv2

        width, height = self.input_size
        shrink = image.shape[1] > width or image.shape[0] > height
        resized = cv2.resize(
            image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
        pixels = resized.astype(np.float32) * self._rescale
        if self._mean_std is not None:
            pixels = (pixels - self._mean_std[0]) / self._mean_std[1]
        return pixels.transpose(2, 0, 1)

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        """Person boxes for each ``(H, W, 3) uint8`` RGB image."""
        check_images(images, "RTDetrDetector.detect")
        model = self._require_open("RT-DETR detector")
        torch = self._torch
        dtype = self.dtype
        results: list[Detections] = []
        for chunk in batched(images, self.batch_size):
            pixels = torch.from_numpy(np.stack([self._prepare(im) for im in chunk]))
            with torch.inference_mode():
                out = model(pixel_values=pixels.to(self.device, dtype=dtype))
            logits = out.logits[..., self.person_class].float()
            # Focal-loss checkpoints score classes with a sigmoid; others with softmax.
            if getattr(model.config, "use_focal_loss", True):
                person = logits.sigmoid()
            else:
                person = out.logits.float().softmax(-1)[..., self.person_class]
            person = person.cpu().numpy()
            centres = out.pred_boxes.float().cpu().numpy()  # (B, Q, 4) cx, cy, w, h in [0, 1]
            for image, scores, cxcywh in zip(chunk, person, centres):
                height, width = image.shape[:2]
                xyxy = np.concatenate(
                    [cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], 1
                ) * np.array([width, height, width, height])
                results.append(
                    filter_person_boxes(
                        xyxy,
                        scores,
                        score_threshold=self.score_threshold,
                        iou_threshold=self.iou_threshold,
                        min_box_size=self.min_box_size,
                        width=width,
                        height=height,
                    )
                )
        return results
