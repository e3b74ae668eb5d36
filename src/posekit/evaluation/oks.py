"""OKS keypoint AP/AR through pycocotools, with sigmas from the skeleton template.

The summary numbers are exactly those of ``pycocotools.cocoeval.COCOeval`` with
``iouType="keypoints"``: this module only prepares the inputs (template sigmas,
image ids matched by file name, keypoints reordered by name) and reads the
results back. On top of that it reports a per-keypoint breakdown over the
detections that COCOeval matched at OKS 0.5.

Decisions worth knowing:

* Sigmas always come from a template: the ``skeleton`` argument, or the shipped
  preset whose keypoint names (or aliases) are exactly the ground-truth
  category's names. There is no COCO fallback for other layouts and the
  template is never guessed from the number of keypoints.
* Keypoint names are compared case-insensitively with spaces and hyphens read
  as ``_`` ("Right Shoulder" == "right_shoulder"), through the template's aliases.
* Predictions given as a COCO dict are matched to ground-truth images by
  ``file_name`` (the whole relative path; failing that, the bare file name when it
  is unique in the ground truth). A predicted image that is not in the ground truth raises
  :class:`EvaluationError` (dropping it silently would hide a mismatch between
  the two files; scoring it would need ground truth that does not exist).
  Ground-truth images without predictions simply count as misses.
* Ground-truth annotations without ``area`` get the box area (``w * h``; the
  keypoint extent if there is no box), without ``num_keypoints`` the count of
  labeled points; pycocotools needs both. Inputs are never modified.
* Predictions without ``score`` are scored 1.0 (a warning is logged).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from posekit.skeleton import Skeleton, get_preset, list_presets

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
    """

    stats: dict[str, float]
    per_keypoint: list[KeypointStats]
    num_images: int
    num_gt: int
    num_pred: int
    sigmas: list[float] = field(default_factory=list)
    template: str = ""

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
        return out

    def format_table(self) -> str:
        """Readable text: the AP/AR summary, then one line per keypoint."""
        lines = [
            f"OKS keypoint evaluation ({self.template}): {self.num_images} images, "
            f"{self.num_gt} ground-truth instances, {self.num_pred} predictions",
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
def _normalize(name: str) -> str:
    return "_".join(str(name).strip().lower().replace("-", " ").replace("_", " ").split())


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


def template_for_names(names: Sequence[str]) -> Skeleton:
    """The shipped preset whose keypoints are exactly ``names`` (same count, every name
    known by name or alias). Raises :class:`EvaluationError` if there is none."""
    for preset in list_presets():
        template = get_preset(preset)
        if template.num_keypoints == len(names) and _map_names(names, template) is not None:
            return template
    raise EvaluationError(
        f"no shipped skeleton template has exactly the ground-truth keypoints "
        f"{list(names)}; pass skeleton=... (e.g. Skeleton.from_file('my_template.yaml')) "
        "so that the OKS sigmas come from your template"
    )


# ------------------------------------------------------------------ inputs
def _load_json(source: Any, what: str) -> Any:
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise EvaluationError(f"{what}: cannot read {path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise EvaluationError(f"{what}: {path} is not valid JSON: {exc}") from None
    # deep copy: pycocotools writes into the annotation dicts it is given
    return copy.deepcopy(source)


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


def _labeled_count(keypoints: Sequence[float]) -> int:
    return int(np.count_nonzero(np.asarray(keypoints, dtype=np.float64)[2::3] > 0))


def _prepare_gt(gt: dict, category_id: int, k: int) -> None:
    """Fill the fields pycocotools needs; check keypoint lengths."""
    if "images" not in gt or "annotations" not in gt:
        raise EvaluationError("ground truth: expected a COCO dict with 'images' and 'annotations'")
    for ann in gt["annotations"]:
        if ann.get("category_id") != category_id:
            continue
        kps = ann.get("keypoints")
        if kps is None:
            raise EvaluationError(f"ground truth: annotation {ann.get('id')} has no 'keypoints'")
        if len(kps) != 3 * k:
            raise EvaluationError(
                f"ground truth: annotation {ann.get('id')} has {len(kps)} keypoint values, "
                f"expected {3 * k} ({k} keypoints x 3)"
            )
        if "num_keypoints" not in ann:
            ann["num_keypoints"] = _labeled_count(kps)
        arr = np.asarray(kps, dtype=np.float64).reshape(k, 3)
        labeled = arr[arr[:, 2] > 0]
        if "bbox" not in ann:
            if len(labeled):
                x0, y0 = labeled[:, :2].min(0)
                x1, y1 = labeled[:, :2].max(0)
                ann["bbox"] = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
            else:
                ann["bbox"] = [0.0, 0.0, 0.0, 0.0]
        if "area" not in ann:
            ann["area"] = float(ann["bbox"][2]) * float(ann["bbox"][3])
        ann.setdefault("iscrowd", 0)


def _file_key(file_name: str) -> str:
    return str(PurePosixPath(str(file_name).replace("\\", "/")))


def _predictions_list(
    predictions: Any,
    gt: dict,
    gt_category: dict,
    template: Skeleton,
    gt_names: Sequence[str],
) -> list[dict]:
    """Predictions as a pycocotools results list on the ground truth's ids and order."""
    gt_id_by_file = {_file_key(img["file_name"]): img["id"] for img in gt["images"]}
    # fallback for predictions written with another folder prefix: the bare file name,
    # only where it is unique in the ground truth
    by_basename: dict[str, list[Any]] = {}
    for img in gt["images"]:
        by_basename.setdefault(PurePosixPath(_file_key(img["file_name"])).name, []).append(
            img["id"]
        )
    gt_ids = {img["id"] for img in gt["images"]}
    k = len(gt_names)
    reorder: np.ndarray | None = None
    if isinstance(predictions, Mapping):
        if "annotations" not in predictions:
            raise EvaluationError("predictions: a dict must be a COCO file with 'annotations'")
        id_map: dict[Any, Any] = {}
        for img in predictions.get("images", []):
            key = _file_key(img.get("file_name", ""))
            candidates = by_basename.get(PurePosixPath(key).name, [])
            if key in gt_id_by_file:
                id_map[img["id"]] = gt_id_by_file[key]
            elif len(candidates) == 1:
                id_map[img["id"]] = candidates[0]
            else:
                raise EvaluationError(
                    f"predictions: image {img.get('file_name')!r} (id {img.get('id')}) is not "
                    "in the ground truth (images are matched by file_name)"
                )
        pred_cats = [c for c in predictions.get("categories") or [] if c.get("keypoints")]
        if len(pred_cats) > 1:
            raise EvaluationError(
                f"predictions: several keypoint categories ({[c.get('id') for c in pred_cats]});"
                " give one category per evaluation"
            )
        pred_cat = pred_cats[0] if pred_cats else {}
        pred_names = pred_cat.get("keypoints") or []
        if pred_names and [_normalize(n) for n in pred_names] != [_normalize(n) for n in gt_names]:
            reorder = _name_reorder(pred_names, gt_names, template)
        anns = []
        for ann in predictions["annotations"]:
            if pred_cat and ann.get("category_id", pred_cat["id"]) != pred_cat["id"]:
                continue
            if ann["image_id"] not in id_map:
                raise EvaluationError(
                    f"predictions: annotation {ann.get('id')} refers to image id "
                    f"{ann['image_id']!r}, which is not in the predictions' 'images'"
                )
            ann = dict(ann, image_id=id_map[ann["image_id"]])
            anns.append(ann)
    elif isinstance(predictions, Sequence) and not isinstance(predictions, str | bytes):
        anns = [dict(a) for a in predictions]
    else:
        raise EvaluationError(
            "predictions: expected a COCO dict, a COCO results list, or a path to either"
        )
    out: list[dict] = []
    unscored = 0
    for i, ann in enumerate(anns):
        if not isinstance(ann, Mapping) or "keypoints" not in ann or "image_id" not in ann:
            raise EvaluationError(f"predictions: entry #{i} needs 'image_id' and 'keypoints'")
        if ann["image_id"] not in gt_ids:
            raise EvaluationError(
                f"predictions: entry #{i} has image_id {ann['image_id']!r}, which is not a "
                "ground-truth image id (results lists must use the ground truth's ids)"
            )
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1)
        if reorder is not None:
            src = kps.reshape(-1, 3)
            kps = np.where(reorder[:, None] >= 0, src[np.maximum(reorder, 0)], 0.0).reshape(-1)
        if kps.shape[0] != 3 * k:
            raise EvaluationError(
                f"predictions: entry #{i} has {kps.shape[0]} keypoint values, expected "
                f"{3 * k} ({k} keypoints x 3)"
            )
        if not np.all(np.isfinite(kps)):
            raise EvaluationError(f"predictions: entry #{i} has non-finite keypoint values")
        score = ann.get("score")
        if score is None:
            score = 1.0
            unscored += 1
        entry = {
            "image_id": ann["image_id"],
            "category_id": gt_category["id"],
            "keypoints": kps.tolist(),
            "score": float(score),
        }
        out.append(entry)
    if unscored:
        log.warning("%d predictions have no 'score'; they are scored 1.0", unscored)
    return out


def _name_reorder(
    pred_names: Sequence[str], gt_names: Sequence[str], template: Skeleton
) -> np.ndarray:
    """For each ground-truth keypoint, the prediction keypoint of the same name (via the
    template's aliases) or -1; raises if no name at all is shared."""
    lookup = _template_lookup(template)

    def key(name: str) -> Any:
        norm = _normalize(name)
        return ("template", lookup[norm]) if norm in lookup else ("name", norm)

    positions = {key(n): i for i, n in enumerate(pred_names)}
    reorder = np.array([positions.get(key(n), -1) for n in gt_names], dtype=np.int64)
    if not np.any(reorder >= 0):
        raise EvaluationError(
            f"predictions: keypoint names {list(pred_names)} share no name with the ground "
            f"truth's {list(gt_names)}"
        )
    missing = [n for n, r in zip(gt_names, reorder) if r < 0]
    if missing:
        log.warning("predictions have no %s; those points count as misses", ", ".join(missing))
    return reorder


# -------------------------------------------------------------- evaluation
def evaluate(
    ground_truth: dict | str | Path,
    predictions: dict | list | str | Path,
    skeleton: Skeleton | None = None,
    *,
    category_id: int | None = None,
) -> EvalResult:
    """OKS keypoint AP/AR of ``predictions`` against ``ground_truth`` (COCO layout).

    Args:
        ground_truth: COCO keypoints dict or path to one.
        predictions: A COCO dict (images matched to the ground truth by ``file_name``;
            keypoints mapped by name when its category names them differently), a COCO
            results list (``image_id`` = ground-truth ids), or a path to either.
        skeleton: Template giving the OKS sigmas; by default the shipped preset whose
            keypoint names equal the ground-truth category's.
        category_id: Ground-truth category to evaluate when there are several.

    Returns:
        An :class:`EvalResult`; ``stats`` are identical to ``COCOeval.summarize()``.

    Raises:
        EvaluationError: Unreadable inputs, no matching template, predictions on images
            or ids that the ground truth does not have, wrong keypoint counts.

    Example:
        >>> result = evaluate("person_keypoints.json", "results.json")  # doctest: +SKIP
        >>> print(result.format_table())  # doctest: +SKIP
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = _load_json(ground_truth, "ground truth")
    if not isinstance(gt, dict):
        raise EvaluationError("ground truth: expected a COCO dict")
    preds = _load_json(predictions, "predictions")
    category = _keypoint_category(gt, category_id, "ground truth")
    gt_names = [str(n) for n in category.get("keypoints") or []]

    if skeleton is None:
        if not gt_names:
            raise EvaluationError(
                "ground truth: the category lists no keypoint names, so no template can be "
                "chosen; pass skeleton=... to give the OKS sigmas"
            )
        template = template_for_names(gt_names)
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

    _prepare_gt(gt, category["id"], k)
    if not gt.get("categories"):
        gt["categories"] = [category]
    results = _predictions_list(preds, gt, category, template, gt_names)

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:
            # loadRes cannot take an empty list; an empty result set scores 0.
            coco_dt = COCO()
            coco_dt.dataset = {
                "images": list(gt["images"]),
                "categories": copy.deepcopy(gt["categories"]),
                "annotations": [],
            }
            coco_dt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = sigmas
        coco_eval.params.catIds = [category["id"]]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    stats = {name: float(v) for name, v in zip(STAT_NAMES, coco_eval.stats)}
    per_keypoint = _per_keypoint(coco_eval, coco_gt, coco_dt, gt_names, sigmas)
    counted = [
        a
        for a in coco_gt.loadAnns(coco_gt.getAnnIds(catIds=[category["id"]]))
        if not a.get("iscrowd") and a.get("num_keypoints", 0) > 0
    ]
    return EvalResult(
        stats=stats,
        per_keypoint=per_keypoint,
        num_images=len(coco_eval.params.imgIds),
        num_gt=len(counted),
        num_pred=len(results),
        sigmas=[float(s) for s in sigmas],
        template=template.name,
    )


def _per_keypoint(
    coco_eval: Any, coco_gt: Any, coco_dt: Any, names: Sequence[str], sigmas: np.ndarray
) -> list[KeypointStats]:
    params = coco_eval.params
    t = int(np.flatnonzero(np.isclose(params.iouThrs, _MATCH_OKS))[0])
    area_all = params.areaRng[params.areaRngLbl.index("all")]
    max_det = params.maxDets[-1]
    k = len(names)
    errors: list[list[float]] = [[] for _ in range(k)]
    hits: list[list[bool]] = [[] for _ in range(k)]
    variances = (2.0 * sigmas) ** 2
    for entry in coco_eval.evalImgs:
        if entry is None or entry["aRng"] != area_all or entry["maxDet"] != max_det:
            continue
        for g, gt_id in enumerate(entry["gtIds"]):
            dt_id = int(entry["gtMatches"][t, g])
            if dt_id <= 0 or entry["gtIgnore"][g]:
                continue
            gt_ann = coco_gt.anns[gt_id]
            dt_ann = coco_dt.anns[dt_id]
            g_kps = np.asarray(gt_ann["keypoints"], dtype=np.float64).reshape(k, 3)
            d_kps = np.asarray(dt_ann["keypoints"], dtype=np.float64).reshape(k, 3)
            area = float(gt_ann["area"])
            dist_sq = np.sum((d_kps[:, :2] - g_kps[:, :2]) ** 2, axis=1)
            # the same per-keypoint term COCOeval.computeOks averages
            oks = np.exp(-dist_sq / variances / (area + np.spacing(1)) / 2)
            scale = math.sqrt(area) if area > 0 else float("nan")
            for j in np.flatnonzero(g_kps[:, 2] > 0):
                errors[j].append(math.sqrt(dist_sq[j]) / scale)
                hits[j].append(bool(oks[j] >= 0.5))
    out = []
    for j, name in enumerate(names):
        count = len(errors[j])
        out.append(
            KeypointStats(
                name=name,
                mean_normalized_error=float(np.mean(errors[j])) if count else float("nan"),
                fraction_oks_50=float(np.mean(hits[j])) if count else float("nan"),
                count=count,
            )
        )
    return out
