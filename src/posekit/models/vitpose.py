"""ViTPose and ViTPose++ top-down pose estimation through Hugging Face transformers.

ViTPose: Xu et al., "ViTPose: Simple Vision Transformer Baselines for Human Pose
Estimation", NeurIPS 2022; ViTPose++: Xu et al., "ViTPose++: Vision Transformer
for Generic Body Pose Estimation", TPAMI 2023 (mixture-of-experts MLPs, one
expert per training dataset, chosen by a ``dataset_index`` per crop).

Spec: ``vitpose:<hub id or local folder>``, e.g.
``vitpose:usyd-community/vitpose-base-simple``. Needs the ``[transformers]``
extra; torch and transformers are imported only when a model is created.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from posekit.core import Detections, Instance
from posekit.models import heatmap_codec
from posekit.models.base import ModelError, check_pairs
from posekit.models.instances import predicted_instance
from posekit.models.torch_kit import TorchBackend, batched, describe_device, load_pretrained
from posekit.skeleton import (
    Skeleton,
    add_derived_points,
    derived_mapping,
    get_preset,
    names_mapping,
    normalize_keypoint_name,
)

__all__ = [
    "DATASET_INDEX_BY_TEMPLATE",
    "LAYOUT_BY_DATASET_INDEX",
    "VitPoseEstimator",
    "keypoint_name_from_label",
]

log = logging.getLogger(__name__)

#: ViTPose++ expert per project template (the order of the ViTPose++ training
#: datasets in the Hugging Face checkpoints' model cards).
DATASET_INDEX_BY_TEMPLATE: dict[str, int] = {
    "coco17": 0,
    "aic14": 1,
    "mpii16": 2,
    "ap10k17": 3,
    "apt36k": 4,
    "apt36k17": 4,
    "cocowholebody133": 5,
}
#: Keypoint layout (template preset name, keypoint count) of each ViTPose++ dataset.
LAYOUT_BY_DATASET_INDEX: dict[int, tuple[str, int]] = {
    0: ("coco17", 17),
    1: ("aic14", 14),
    2: ("mpii16", 16),
    3: ("ap10k17", 17),
    4: ("apt36k", 17),
    5: ("coco_wholebody133", 133),
}

# ImageNet statistics used by every ViTPose checkpoint (VitPoseImageProcessor defaults).
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
_GENERIC_LABEL = re.compile(r"^LABEL_\d+$")


# --------------------------------------------------------------------------- names
def keypoint_name_from_label(label: str) -> str:
    """Checkpoint keypoint label -> posekit style name: camel case split, then
    :func:`~posekit.skeleton.normalize_keypoint_name`, then the ``L_`` / ``R_``
    prefixes spelled out.

    ``"L_Shoulder"`` -> ``"left_shoulder"``, ``"RightEar"`` -> ``"right_ear"``,
    ``"Nose"`` -> ``"nose"``.
    """
    text = normalize_keypoint_name(re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", str(label)))
    return re.sub(r"^([lr])_", lambda m: "left_" if m[1] == "l" else "right_", text)


class VitPoseEstimator(TorchBackend):
    """ViTPose / ViTPose++ (any ``VitPoseForPoseEstimation`` checkpoint) on person boxes.

    All boxes of all images in a call are cropped with the UDP warp and run in
    batches of ``batch_size``; heatmaps are decoded with DARK (see
    :mod:`posekit.models.heatmap_codec`). Keypoint names come from the checkpoint's
    ``id2label`` and are mapped onto the target template by name; template
    keypoints the checkpoint lacks are not labeled (visibility 0). A mapped
    keypoint is labeled: visibility 2 when its score is at least
    ``visible_threshold`` and it lies inside the image, else 1.

    ``keypoint_scores`` are heatmap peak values clipped to [0, 1]. The instance
    ``score`` is the box score times the mean of the keypoint scores above 0.2
    (the rescoring of SimpleBaseline / ViTPose evaluation,
    :func:`heatmap_codec.rescore_instances`). Template points the checkpoint lacks
    but the template declares as derived are computed from the points they are
    defined from. Duplicate poses are removed later, by OKS, in
    :mod:`posekit.pipeline.postprocess`.

    Args:
        model: hub id (``usyd-community/vitpose-base-simple``) or local folder.
        device: ``"auto"`` (CUDA, MPS, CPU), or a torch device string.
        half: fp16 inference; default True on CUDA, False elsewhere.
        flip_test: also run mirrored crops and average heatmaps (about 2x compute,
            better accuracy; the published ViTPose figures use it).
        batch_size: crops per forward pass (a flip-test pass runs twice as many).
        dataset_index: ViTPose++ expert to use for every template; default: chosen
            from the template name (COCO 0, AIC 1, MPII 2, AP-10K 3, APT-36K 4,
            COCO-WholeBody 5).
        keypoint_names: keypoint names for checkpoints whose ``id2label`` is
            generic (``LABEL_0``...); else read from the config.
        dark: DARK refinement (else integer argmax).
        dark_sigma: DARK blur sigma (:data:`heatmap_codec.DARK_SIGMA`; 0.8 reproduces
            transformers' ``post_process_pose_estimation``).
        dark_reference: the reference DARK step (with ``dark_sigma=0.8``:
            transformers' decoding exactly); see :func:`heatmap_codec.refine_dark_udp`.
        padding: box enlargement (1.25).
        visible_threshold: keypoint score from which a point gets visibility 2.
        local_files_only: never contact the Hugging Face Hub.
        revision: hub revision.

    Example:
        >>> est = create_pose_estimator("vitpose:usyd-community/vitpose-base-simple")
        ... # doctest: +SKIP
    """

    name = "vitpose"
    _checkpoint = "ViTPose checkpoint"
    _model_types = frozenset({"vitpose"})
    _expected = "a ViTPose one (config model_type 'vitpose')"

    def __init__(
        self,
        model: str = "",
        *,
        device: str | None = None,
        half: bool | None = None,
        flip_test: bool = True,
        batch_size: int = 32,
        dataset_index: int | None = None,
        keypoint_names: Sequence[str] | None = None,
        dark: bool = True,
        dark_sigma: float = heatmap_codec.DARK_SIGMA,
        dark_reference: bool = False,
        padding: float = heatmap_codec.PADDING,
        visible_threshold: float = 0.3,
        local_files_only: bool = False,
        revision: str | None = None,
    ) -> None:
        if not model:
            raise ModelError(
                "vitpose needs a checkpoint: 'vitpose:<hub id or folder>', e.g. "
                "'vitpose:usyd-community/vitpose-base-simple'"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if padding <= 0:
            raise ValueError(f"padding must be positive, got {padding}")
        transformers = self._setup_torch(device, half)
        torch = self._torch
        self.model_id = str(model)
        self.flip_test = bool(flip_test)
        self.batch_size = int(batch_size)
        self.dark = bool(dark)
        self.dark_sigma = float(dark_sigma)
        self.dark_reference = bool(dark_reference)
        self.padding = float(padding)
        self.visible_threshold = float(visible_threshold)

        config, loading = self._load_config(transformers, revision, local_files_only)
        backbone = config.backbone_config
        image_h, image_w = (int(v) for v in backbone.image_size)
        self.input_size = (image_w, image_h)
        self.num_experts = int(getattr(backbone, "num_experts", 1) or 1)
        self._default_dataset_index = dataset_index
        if dataset_index is not None:
            self._check_dataset_index(int(dataset_index), "dataset_index option")

        self.keypoint_names = self._keypoint_names(config, keypoint_names)
        network = load_pretrained(
            transformers.VitPoseForPoseEstimation.from_pretrained,
            self.model_id,
            config=config,
            use_safetensors=True,
            **loading,
        )
        self._model = self._place(network)
        self._mean = torch.tensor(_MEAN, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(_STD, device=self.device).view(1, 3, 1, 1)
        self._mapping_cache: dict[int, tuple[Any, ...]] = {}
        #: Seconds spent in the model's forward passes (for benchmarks).
        self.inference_seconds = 0.0
        log.info(
            "ViTPose %s loaded: input %dx%d, %d keypoints, %d expert(s), device %s",
            self.model_id,
            image_w,
            image_h,
            len(self.keypoint_names),
            self.num_experts,
            describe_device(self.device, self.half),
        )

    # ----------------------------------------------------------------- configuration
    def _check_dataset_index(self, index: int, where: str) -> int:
        if not 0 <= index < self.num_experts:
            if self.num_experts == 1:
                raise ModelError(
                    f"{where}: dataset_index {index} given, but checkpoint {self.model_id!r} "
                    "is a single-expert ViTPose model (only index 0); dataset_index is for "
                    "ViTPose++ (mixture-of-experts) checkpoints"
                )
            raise ModelError(
                f"{where}: dataset_index {index} is out of range for checkpoint "
                f"{self.model_id!r}, which has {self.num_experts} experts (valid: 0.."
                f"{self.num_experts - 1})"
            )
        return index

    def _keypoint_names(self, config: Any, override: Sequence[str] | None) -> tuple[str, ...]:
        num_labels = int(config.num_labels)
        if override is not None:
            names = tuple(str(n) for n in override)
            if len(names) != num_labels:
                raise ModelError(
                    f"keypoint_names has {len(names)} names but checkpoint {self.model_id!r} "
                    f"predicts {num_labels} keypoints"
                )
            return names
        id2label = {int(k): str(v) for k, v in (config.id2label or {}).items()}
        labels = [id2label.get(i, f"LABEL_{i}") for i in range(num_labels)]
        if not all(_GENERIC_LABEL.match(label) for label in labels):
            return tuple(keypoint_name_from_label(label) for label in labels)
        # Generic labels: the layout is the one of the training dataset the expert
        # (or single-dataset model) was trained on, if the keypoint count agrees.
        index = 0 if self._default_dataset_index is None else int(self._default_dataset_index)
        preset_name, count = LAYOUT_BY_DATASET_INDEX.get(index, ("?", -1))
        if count != num_labels:
            raise ModelError(
                f"checkpoint {self.model_id!r} has generic keypoint labels (LABEL_0...) and "
                f"{num_labels} keypoints, which do not match dataset index {index} "
                f"({preset_name}, {count} keypoints); pass keypoint_names=[...] in the "
                "model's order"
            )
        try:
            preset = get_preset(preset_name)
        except ValueError:
            raise ModelError(
                f"checkpoint {self.model_id!r} has generic keypoint labels; its layout would "
                f"be {preset_name!r} (dataset index {index}) but posekit has no such "
                "template; pass keypoint_names=[...] in the model's order"
            ) from None
        log.info(
            "checkpoint %s has generic keypoint labels; using the %s layout of dataset "
            "index %d (%d keypoints)",
            self.model_id,
            preset.name,
            index,
            num_labels,
        )
        return tuple(preset.keypoints)

    def dataset_index_for(self, skeleton: Skeleton) -> int:
        """The ViTPose++ expert used for ``skeleton`` (0 for single-expert models).

        Raises:
            ModelError: the index (override or from the template) is out of range
                for this checkpoint's number of experts.
        """
        if self._default_dataset_index is not None:
            return self._check_dataset_index(int(self._default_dataset_index), "option")
        if self.num_experts == 1:
            return 0
        key = skeleton.name.lower().replace("-", "").replace("_", "")
        if key not in DATASET_INDEX_BY_TEMPLATE:
            log.info(
                "template %r is not one of the ViTPose++ datasets; using expert 0 (COCO); "
                "pass dataset_index to choose another",
                skeleton.name,
            )
            return 0
        return self._check_dataset_index(
            DATASET_INDEX_BY_TEMPLATE[key], f"template {skeleton.name!r}"
        )

    def _mapping(
        self, skeleton: Skeleton
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Template <- model index map, model flip index, which channels may be
        flip-averaged, and the template <- (model + derived points) index map with the
        derived points' weights (:func:`posekit.skeleton.derived_mapping`)."""
        cached = self._mapping_cache.get(id(skeleton))
        if cached is not None and cached[0] is skeleton:
            return cached[1:]
        mapping = names_mapping(self.keypoint_names, skeleton)
        if not np.any(mapping >= 0):
            raise ModelError(
                f"checkpoint {self.model_id!r} keypoints ({', '.join(self.keypoint_names[:5])}"
                f"...) share no names with template {skeleton.name!r}"
            )
        k = len(self.keypoint_names)
        flip_index = np.arange(k, dtype=np.int64)
        flippable = np.zeros(k, dtype=bool)
        for t, m in enumerate(mapping):
            if m < 0:
                continue
            partner = mapping[skeleton.flip_index[t]]
            if partner >= 0:
                flip_index[m] = partner
                flippable[m] = True
        index, weights = derived_mapping(self.keypoint_names, skeleton)
        result = (mapping, flip_index, flippable, index, weights)
        self._mapping_cache[id(skeleton)] = (skeleton, *result)
        return result

    # ----------------------------------------------------------------- inference
    def heatmaps(
        self,
        crops: np.ndarray,
        *,
        dataset_index: int = 0,
        flip_index: np.ndarray | None = None,
        flippable: np.ndarray | None = None,
    ) -> np.ndarray:
        """Heatmaps ``(N, K, h, w) float32`` for UDP crops ``(N, H, W, 3) uint8``.

        With ``flip_index`` (and flip test on), mirrored crops run in the same batch
        and their heatmaps, mirrored back with channels swapped, are averaged in;
        channels not in ``flippable`` keep the unflipped heatmap only.
        """
        torch = self._torch
        model = self._require_open("ViTPose estimator")
        outputs: list[np.ndarray] = []
        dtype = self.dtype
        flip = self.flip_test and flip_index is not None
        for batch in batched(crops, self.batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(batch))
            pixels = chunk.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
            pixels = ((pixels - self._mean) / self._std).to(dtype)
            n = pixels.shape[0]
            if flip:
                pixels = torch.cat([pixels, pixels.flip(3)], dim=0)
            kwargs: dict[str, Any] = {}
            if self.num_experts > 1:
                kwargs["dataset_index"] = torch.full(
                    (pixels.shape[0],), dataset_index, dtype=torch.long, device=self.device
                )
            tic = time.perf_counter()
            with torch.inference_mode():
                heat = model(pixel_values=pixels, **kwargs).heatmaps
            heat = heat.float().cpu().numpy()
            self.inference_seconds += time.perf_counter() - tic
            if flip:
                back = heatmap_codec.flip_heatmaps_back(heat[n:], flip_index)
                merged = heat[:n].copy()
                merged[:, flippable] = 0.5 * (heat[:n, flippable] + back[:, flippable])
                heat = merged
            outputs.append(heat)
        if not outputs:
            return np.zeros((0, len(self.keypoint_names), 1, 1), dtype=np.float32)
        return np.concatenate(outputs, axis=0)

    def estimate(
        self,
        images: Sequence[np.ndarray],
        detections: Sequence[Detections],
        skeleton: Skeleton,
    ) -> list[list[Instance]]:
        """One :class:`Instance` per detection box, on ``skeleton``'s keypoints.

        Args:
            images: ``(H, W, 3) uint8`` RGB images.
            detections: one :class:`Detections` per image.
            skeleton: target template; keypoints are mapped by name.

        Raises:
            ValueError: ``images`` and ``detections`` differ in length, or an image
                is not RGB uint8.
            ModelError: the template shares no keypoint with the checkpoint, or the
                ViTPose++ dataset index is out of range.
        """
        check_pairs(images, detections, "VitPoseEstimator.estimate")
        _, flip_index, flippable, index, weights = self._mapping(skeleton)
        dataset_index = self.dataset_index_for(skeleton)
        crops, centers, scales, owners = [], [], [], []
        for i, (image, dets) in enumerate(zip(images, detections)):
            if len(dets) == 0:
                continue
            c, s = heatmap_codec.box_to_center_scale(dets.boxes, self.input_size, self.padding)
            crops.append(heatmap_codec.warp_crops(image, c, s, self.input_size))
            centers.append(c)
            scales.append(s)
            owners.extend((i, j) for j in range(len(dets)))
        results: list[list[Instance]] = [[] for _ in images]
        if not owners:
            return results
        heat = self.heatmaps(
            np.concatenate(crops),
            dataset_index=dataset_index,
            flip_index=flip_index,
            flippable=flippable,
        )
        points, peak = heatmap_codec.decode_heatmaps(
            heat,
            np.concatenate(centers),
            np.concatenate(scales),
            dark=self.dark,
            dark_sigma=self.dark_sigma,
            dark_reference=self.dark_reference,
        )
        # Template points the checkpoint lacks but the template derives (MPII pelvis...).
        points, kp_scores = add_derived_points(points, np.clip(peak, 0.0, 1.0), weights)
        box_scores = np.array([detections[i].scores[j] for i, j in owners], np.float64)
        scores = heatmap_codec.rescore_instances(box_scores, kp_scores[:, index[index >= 0]])
        for row, (i, j) in enumerate(owners):
            height, width = images[i].shape[:2]
            results[i].append(
                predicted_instance(
                    points[row],
                    kp_scores[row],
                    index,
                    image_size=(width, height),
                    visible_threshold=self.visible_threshold,
                    box=detections[i].boxes[j],
                    score=float(scores[row]),
                    source="model:vitpose",
                )
            )
        return results
