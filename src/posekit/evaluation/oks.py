"""OKS keypoint AP/AR with sigmas from the skeleton template, as COCOeval computes it.

The summary numbers are exactly those of ``pycocotools.cocoeval.COCOeval`` with
``iouType="keypoints"`` (maxDets 20, the all/medium/large area ranges, crowd regions),
bit for bit. The default engine, ``"posekit"`` (:mod:`posekit.evaluation.engines`),
computes the OKS matrices of all images at once in pycocotools' own floating-point
order, matches greedily as ``evaluateImg`` does (vectorised over images, thresholds
and area ranges) and accumulates as ``accumulate`` does. ``engine="pycocotools"``
runs the reference; ``engine="faster-coco-eval"`` runs that library's C++ matching
and accumulation on the same OKS matrices (it agrees to about 1e-16; see
:mod:`posekit.evaluation.engines` for why it is not bit-identical).
The tests check all three on the same cases. On top of the summary the result
has a per-keypoint breakdown over the detections that COCOeval matched at OKS 0.5.

Decisions worth knowing:

* Sigmas always come from a template: the ``skeleton`` argument, or the shipped
  preset whose keypoint names (or aliases) are exactly the ground-truth
  category's names. There is no COCO fallback for other layouts and the
  template is never guessed from the number of keypoints.
* Keypoint names are compared case-insensitively with spaces and hyphens read
  as ``_`` ("Right Shoulder" == "right_shoulder"), through the template's aliases.
  A ground-truth point the predictions do not name, but that the template declares
  as derived (MPII ``pelvis``/``thorax``/``upper_neck``/``head_top``, CrowdPose and
  AIC ``neck``/``head_top``, PoseTrack ``head_bottom``/``head_top``), is computed from
  the predicted points it is defined from, as the prediction path does (so COCO-17
  predictions scored against MPII keep those points). Each averaged group uses its
  labeled points (a hidden ear left out still leaves a head); a group with none
  leaves the derived point unlabeled.
* Predictions given as a COCO dict are matched to ground-truth images by
  ``file_name`` (the whole relative path; failing that, the bare file name when it
  is unique in the ground truth). A predicted image that is not in an image ground
  truth raises :class:`EvaluationError` (dropping it silently would hide a mismatch
  between the two files; scoring it would need ground truth that does not exist).
  Ground-truth images without predictions simply count as misses.
* Video ground truth (images with ``vid_id``, ``video_id``, ``frame_id`` or
  ``is_labeled``, as PoseTrack18 and posekit's video export write them) is scored on
  its labeled frames: ``is_labeled`` true, or, without that flag, at least one
  annotation of the category. Predictions on other frames, or on images that the
  video ground truth does not have, are ignored and counted
  (``EvalResult.num_pred_ignored``, and a log line), because a video is predicted on
  every frame and labeled on a few.
* Ground-truth annotations without ``area`` get the box area (``w * h``; the
  keypoint extent if there is no box), without ``num_keypoints`` the count of
  labeled points; pycocotools needs both. Inputs are never modified.
* Predictions without ``score`` are scored 1.0 (a warning is logged); their area
  (for the area ranges) is the extent of all their points, as ``COCO.loadRes`` gives.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posekit.evaluation.engines import (
    ENGINES,
    EngineUnavailableError,
    oks_matrices,
    run_faster_coco_eval,
    run_posekit,
    run_pycocotools,
)
from posekit.evaluation.inputs import (
    EvaluationInputError,
    GroundTruthArrays,
    KeypointMap,
    PredictionArrays,
    ground_truth_arrays,
    load_json,
    prediction_arrays,
)
from posekit.skeleton import (
    Skeleton,
    SkeletonError,
    normalize_keypoint_name,
    template_for_names,
)

__all__ = [
    "STAT_NAMES",
    "EvalResult",
    "EvaluationError",
    "KeypointStats",
    "evaluate",
    "template_for_names",
]

log = logging.getLogger(__name__)

#: The order of ``COCOeval.stats`` for keypoints (see ``COCOeval.summarize``).
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
#: OKS threshold whose matches feed the per-keypoint breakdown.
_MATCH_OKS = 0.5


class EvaluationError(ValueError):
    """Ground truth or predictions cannot be evaluated; the message says why."""


@dataclass
class KeypointStats:
    """Per-keypoint errors over the prediction/ground-truth pairs matched at OKS 0.5.

    Attributes:
        name: Keypoint name (ground-truth category's spelling).
        mean_normalized_error: Mean of ``d / sqrt(area)`` over matched pairs where the
            ground-truth point is labeled; ``d`` is the pixel distance and ``area``
            the ground-truth object area (the OKS scale ``s**2``). NaN if ``count`` is 0.
        fraction_oks_50: Fraction of those pairs whose per-keypoint OKS term
            ``exp(-d**2 / (2 * area * (2 * sigma)**2))`` is at least 0.5.
        count: Number of matched pairs with a labeled ground-truth point.
    """

    name: str
    mean_normalized_error: float
    fraction_oks_50: float
    count: int


@dataclass
class EvalResult:
    """Result of :func:`evaluate`.

    Attributes:
        stats: ``AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl`` exactly as
            ``COCOeval.summarize`` computes them (-1 where pycocotools gives -1:
            no ground truth in that area range).
        per_keypoint: One :class:`KeypointStats` per ground-truth keypoint, in order.
        num_images: Ground-truth images evaluated.
        num_gt: Ground-truth instances that count (not crowd, at least one labeled point).
        num_pred: Predicted instances.
        sigmas: The OKS sigmas used, in ground-truth keypoint order.
        template: Name of the template the sigmas came from.
        num_pred_ignored: Predictions not scored: on video frames that are not
            labeled, or on images the video ground truth does not have.
        engine: The engine that computed ``stats``.
    """

    stats: dict[str, float]
    per_keypoint: list[KeypointStats]
    num_images: int
    num_gt: int
    num_pred: int
    sigmas: list[float] = field(default_factory=list)
    template: str = ""
    num_pred_ignored: int = 0
    engine: str = "posekit"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict: the ten stats at top level, then the details.

        NaN (a keypoint without matched pairs) becomes ``None``.
        """

        def clean(value: Any) -> Any:
            if isinstance(value, float) and math.isnan(value):
                return None
            return value

        out: dict[str, Any] = {name: float(self.stats[name]) for name in STAT_NAMES}
        out["per_keypoint"] = [
            {key: clean(value) for key, value in asdict(k).items()} for k in self.per_keypoint
        ]
        out["num_images"] = self.num_images
        out["num_gt"] = self.num_gt
        out["num_pred"] = self.num_pred
        out["sigmas"] = [float(s) for s in self.sigmas]
        out["template"] = self.template
        out["num_pred_ignored"] = self.num_pred_ignored
        out["engine"] = self.engine
        return out

    def format_table(self) -> str:
        """Readable text: the AP/AR summary, then one line per keypoint."""
        lines = [
            f"OKS keypoint evaluation ({self.template}): {self.num_images} images, "
            f"{self.num_gt} ground-truth instances, {self.num_pred} predictions"
            + (
                f" ({self.num_pred_ignored} on unlabeled or unknown frames ignored)"
                if self.num_pred_ignored
                else ""
            ),
            "  ".join(f"{name:>5}" for name in STAT_NAMES),
            "  ".join(f"{self.stats[name]:5.3f}" for name in STAT_NAMES),
            "",
        ]
        width = max([len("keypoint")] + [len(k.name) for k in self.per_keypoint])
        lines.append(f"{'keypoint':<{width}}  {'mean d/sqrt(area)':>17}  {'OKS>=0.5':>8}  count")
        for k in self.per_keypoint:
            err = "-" if math.isnan(k.mean_normalized_error) else f"{k.mean_normalized_error:.4f}"
            frac = "-" if math.isnan(k.fraction_oks_50) else f"{k.fraction_oks_50:.3f}"
            lines.append(f"{k.name:<{width}}  {err:>17}  {frac:>8}  {k.count:5d}")
        return "\n".join(lines)


# ------------------------------------------------------------------- names
# One name rule and one preset lookup for the package: posekit.skeleton.inference
# (template_for_names is re-exported from here for posekit.evaluation users).
_normalize = normalize_keypoint_name


def _template_lookup(template: Skeleton) -> dict[str, int]:
    """Normalised name or alias -> keypoint index."""
    lookup: dict[str, int] = {}
    for i, name in enumerate(template.keypoints):
        for candidate in (name, *template.aliases.get(name, ())):
            lookup.setdefault(_normalize(candidate), i)
    return lookup


def _map_names(names: Sequence[str], template: Skeleton) -> list[int] | None:
    """Template index of each name, or None if some name is unknown or two names collide."""
    lookup = _template_lookup(template)
    indices = [lookup.get(_normalize(n), -1) for n in names]
    if -1 in indices or len(set(indices)) != len(indices):
        return None
    return indices


# ------------------------------------------------------------------ inputs
def _keypoint_category(dataset: Mapping[str, Any], category_id: int | None, what: str) -> dict:
    categories = dataset.get("categories") or []
    if category_id is not None:
        for cat in categories:
            if cat.get("id") == category_id:
                return cat
        raise EvaluationError(f"{what}: no category with id {category_id}")
    with_kps = [c for c in categories if c.get("keypoints")]
    if len(with_kps) == 1:
        return with_kps[0]
    if not with_kps:
        ids = sorted({a.get("category_id") for a in dataset.get("annotations", [])})
        if len(categories) == 1 or len(ids) == 1:
            return categories[0] if categories else {"id": ids[0], "keypoints": []}
        raise EvaluationError(f"{what}: no category lists keypoint names; pass category_id")
    raise EvaluationError(
        f"{what}: several keypoint categories ({[c.get('id') for c in with_kps]}); pass category_id"
    )


def _name_reorder(
    pred_names: Sequence[str], gt_names: Sequence[str], template: Skeleton
) -> KeypointMap:
    """For each ground-truth keypoint, the prediction keypoint of the same name (via the
    template's aliases); else, when the template declares the point as derived
    (:attr:`Skeleton.derived`, e.g. MPII ``pelvis`` = mean of the hips) from points the
    predictions all name, that combination of them (as the prediction path computes it,
    :func:`posekit.skeleton.derived_mapping`); else -1. Raises if nothing maps."""
    lookup = _template_lookup(template)

    def key(name: str) -> Any:
        norm = _normalize(name)
        return ("template", lookup[norm]) if norm in lookup else ("name", norm)

    positions = {key(n): i for i, n in enumerate(pred_names)}
    reorder = np.array([positions.get(key(n), -1) for n in gt_names], dtype=np.int64)
    derived: list[Any] = []
    for j in np.flatnonzero(reorder < 0).tolist():
        definition = template.derived.get(template.keypoints[lookup[_normalize(gt_names[j])]])
        if definition is None:
            continue
        terms = tuple(tuple(positions.get(key(n), -1) for n in term) for term in definition.terms)
        if any(p < 0 for term in terms for p in term):
            continue
        reorder[j] = len(pred_names) + len(derived)
        derived.append((terms, tuple(definition.weights)))
    if not np.any(reorder >= 0):
        raise EvaluationError(
            f"predictions: keypoint names {list(pred_names)} share no name with the ground "
            f"truth's {list(gt_names)}"
        )
    missing = [n for n, r in zip(gt_names, reorder) if r < 0]
    if missing:
        log.warning("predictions have no %s; those points count as misses", ", ".join(missing))
    if derived:
        log.info(
            "derived %s from the predictions' keypoints (template %r)",
            ", ".join(n for n, r in zip(gt_names, reorder) if r >= len(pred_names)),
            template.name,
        )
    return KeypointMap(reorder, tuple(derived))


# -------------------------------------------------------------- evaluation
def evaluate(
    ground_truth: dict | str | Path,
    predictions: dict | list | str | Path,
    skeleton: Skeleton | None = None,
    *,
    category_id: int | None = None,
    engine: str = "posekit",
) -> EvalResult:
    """OKS keypoint AP/AR of ``predictions`` against ``ground_truth`` (COCO layout).

    Args:
        ground_truth: COCO keypoints dict or path to one. Video ground truth
            (PoseTrack style) is scored on its labeled frames only.
        predictions: A COCO dict (images matched to the ground truth by ``file_name``;
            keypoints mapped by name when its category names them differently), a COCO
            results list (``image_id`` = ground-truth ids), or a path to either. Points
            the ground truth has and the predictions lack are derived from them where
            the template declares how (see the module notes).
        skeleton: Template giving the OKS sigmas; by default the shipped preset whose
            keypoint names equal the ground-truth category's.
        category_id: Ground-truth category to evaluate when there are several.
        engine: ``"posekit"`` (default: vectorised, bit-identical to pycocotools),
            ``"pycocotools"`` (the reference, several times slower) or
            ``"faster-coco-eval"`` (its C++ matching and accumulation on the same OKS;
            equal to about 1e-16). See :mod:`posekit.evaluation.engines`.

    Returns:
        An :class:`EvalResult`; ``stats`` are identical to ``COCOeval.summarize()``.

    Raises:
        EvaluationError: Unreadable inputs, no matching template, predictions on images
            or ids that an image ground truth does not have, wrong keypoint counts, an
            engine that is not installed.

    Example:
        >>> result = evaluate("person_keypoints.json", "results.json")  # doctest: +SKIP
        >>> print(result.format_table())  # doctest: +SKIP
    """
    if engine not in ENGINES:
        raise EvaluationError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    try:
        gt = load_json(ground_truth, "ground truth")
        if not isinstance(gt, dict):
            raise EvaluationError("ground truth: expected a COCO dict")
        preds = load_json(predictions, "predictions")
    except EvaluationInputError as exc:
        raise EvaluationError(str(exc)) from None
    category = _keypoint_category(gt, category_id, "ground truth")
    gt_names = [str(n) for n in category.get("keypoints") or []]

    if skeleton is None:
        if not gt_names:
            raise EvaluationError(
                "ground truth: the category lists no keypoint names, so no template can be "
                "chosen; pass skeleton=... to give the OKS sigmas"
            )
        try:
            template = template_for_names(gt_names)
        except SkeletonError as exc:
            raise EvaluationError(f"ground truth: {exc}") from None
    else:
        template = skeleton
    if gt_names:
        indices = _map_names(gt_names, template)
        if indices is None:
            unknown = [n for n in gt_names if _normalize(n) not in _template_lookup(template)]
            raise EvaluationError(
                f"template {template.name!r} does not name every ground-truth keypoint "
                f"(unknown or duplicate: {unknown or gt_names}); pass the template of this data"
            )
    else:
        indices = list(range(template.num_keypoints))
        gt_names = list(template.keypoints)
    sigmas = template.sigmas[indices].astype(np.float64)
    k = len(gt_names)

    def reorder_for(pred_names: Sequence[str]) -> KeypointMap | None:
        if [_normalize(n) for n in pred_names] == [_normalize(n) for n in gt_names]:
            return None
        return _name_reorder(pred_names, gt_names, template)

    try:
        gt_arrays = ground_truth_arrays(gt, category["id"], k)
        pred_arrays = prediction_arrays(preds, gt_arrays, k, reorder_for)
        if engine == "pycocotools":
            raw, matches = run_pycocotools(gt_arrays, pred_arrays, sigmas)
        else:
            pairs = oks_matrices(gt_arrays, pred_arrays, sigmas)
            raw, matches = run_posekit(gt_arrays, pred_arrays, pairs)
            if engine == "faster-coco-eval":
                raw = run_faster_coco_eval(gt_arrays, pred_arrays, sigmas, pairs)
    except (EvaluationInputError, EngineUnavailableError) as exc:
        raise EvaluationError(str(exc)) from None
    stats = {name: float(v) for name, v in zip(STAT_NAMES, raw)}
    counted = ~gt_arrays.iscrowd & (gt_arrays.num_keypoints > 0)
    return EvalResult(
        stats=stats,
        per_keypoint=_per_keypoint(gt_arrays, pred_arrays, matches, gt_names, sigmas),
        num_images=len(gt_arrays.image_ids),
        num_gt=int(np.count_nonzero(counted)),
        num_pred=len(pred_arrays.score),
        sigmas=[float(s) for s in sigmas],
        template=template.name,
        num_pred_ignored=pred_arrays.dropped_unlabeled + pred_arrays.dropped_unknown,
        engine=engine,
    )


def _per_keypoint(
    gt: GroundTruthArrays,
    pred: PredictionArrays,
    matches: Mapping[int, int],
    names: Sequence[str],
    sigmas: np.ndarray,
) -> list[KeypointStats]:
    """Errors over the matched (ground truth, prediction) pairs, per keypoint."""
    # in ground-truth order, so that every engine sums the same numbers in the same order
    gt_index = np.array(sorted(matches), dtype=np.int64).reshape(-1)
    dt_index = np.array([matches[g] for g in gt_index.tolist()], dtype=np.int64).reshape(-1)
    g_kps = gt.keypoints[gt_index]
    d_kps = pred.keypoints[dt_index]
    area = gt.area[gt_index][:, None]
    dist_sq = np.sum((d_kps[:, :, :2] - g_kps[:, :, :2]) ** 2, axis=2)
    variances = (2.0 * sigmas) ** 2
    # the same per-keypoint term COCOeval.computeOks averages
    oks = np.exp(-dist_sq / variances / (area + np.spacing(1)) / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(area > 0, np.sqrt(np.maximum(area, 0.0)), np.nan)
        errors = np.sqrt(dist_sq) / scale
    labeled = g_kps[:, :, 2] > 0
    out = []
    for j, name in enumerate(names):
        rows = labeled[:, j]
        count = int(np.count_nonzero(rows))
        out.append(
            KeypointStats(
                name=name,
                mean_normalized_error=float(np.mean(errors[rows, j])) if count else math.nan,
                fraction_oks_50=float(np.mean(oks[rows, j] >= 0.5)) if count else math.nan,
                count=count,
            )
        )
    return out
