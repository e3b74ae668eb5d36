"""OKS AP/AR engines: posekit's own (default), faster-coco-eval and pycocotools.

All three give ``COCOeval.stats`` for ``iouType="keypoints"`` on the same prepared
inputs (:mod:`posekit.evaluation.inputs`):

* ``"posekit"``: :func:`oks_matrices` computes the OKS of every (prediction, ground
  truth) pair of every image at once, with the same floating-point operations in the
  same order as ``COCOeval.computeOks`` (so the values are bit-identical; the tests
  check it); :func:`match_images` is ``COCOeval.evaluateImg``'s greedy matching,
  vectorised over images, thresholds and area ranges; :func:`accumulate` and
  :func:`summarize` are ``COCOeval.accumulate`` / ``summarize`` in numpy with the
  same arithmetic. The ten numbers equal pycocotools' exactly.
* ``"faster-coco-eval"``: that library's C++ matching and accumulation
  (``COCOeval_faster``, 1.8.x) on the OKS matrices above. It is not bit-identical:
  where pycocotools' precision ``tp / (tp + fp + np.spacing(1))`` gives 1 - 2.2e-16
  for one hit and no false positive, faster-coco-eval gives 1.0, which moves some
  averages by about 1e-16 (the tests allow 1e-9).
* ``"pycocotools"``: the reference implementation, run on the same inputs.

Why not faster-coco-eval by default: the evaluation must equal pycocotools exactly
(the tests say so), and its Python ``computeOks`` loop over images is most of its
time; with the vectorised OKS and matching here nothing slow is left.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from posekit.evaluation.inputs import GroundTruthArrays, PredictionArrays

ENGINES = ("posekit", "faster-coco-eval", "pycocotools")
#: COCOeval's keypoint defaults (``Params.setKpParams``).
MAX_DETS = 20
AREA_RANGES = ((0.0, 1e5**2), (32.0**2, 96.0**2), (96.0**2, 1e5**2))
AREA_LABELS = ("all", "medium", "large")
#: Pairs per step of :func:`oks_matrices`.
_OKS_CHUNK = 8192


class EngineUnavailableError(ImportError):
    """The chosen engine's library is not installed."""


@dataclass
class OksPairs:
    """OKS of every scored (prediction, ground truth) pair on the same image.

    Predictions are ranked per image as COCOeval ranks them (score descending, ties in
    input order) and only the first :data:`MAX_DETS` per image are kept.

    Attributes:
        order: (D',) prediction indices, by image then rank (the kept predictions).
        image_of: (D',) image index of each entry of ``order``.
        dt_start: (I + 1,) offsets of each image's kept predictions in ``order``.
        gt_start: (I + 1,) offsets of each image's ground truth in ``gt_order``.
        gt_order: (G,) ground-truth indices grouped by image (file order inside).
        pair_dt: (P,) index into ``order`` of each pair's prediction.
        pair_col: (P,) position of each pair's ground truth among its image's.
        values: (P,) float64 OKS of each pair; an image's pairs are its (n_dt, n_gt)
            matrix in row-major order.
    """

    order: np.ndarray
    image_of: np.ndarray
    dt_start: np.ndarray
    gt_start: np.ndarray
    gt_order: np.ndarray
    pair_dt: np.ndarray
    pair_col: np.ndarray
    values: np.ndarray

    def matrices(self) -> dict[int, np.ndarray]:
        """Image index -> (n_dt, n_gt) OKS matrix, for images with both."""
        n_dt = np.diff(self.dt_start)
        n_gt = np.diff(self.gt_start)
        first_pair = np.cumsum(n_dt * n_gt) - n_dt * n_gt
        out: dict[int, np.ndarray] = {}
        for i in np.flatnonzero((n_dt > 0) & (n_gt > 0)).tolist():
            rows, cols = int(n_dt[i]), int(n_gt[i])
            first = int(first_pair[i])
            out[i] = self.values[first : first + rows * cols].reshape(rows, cols)
        return out


def _segments(index: np.ndarray, n: int) -> np.ndarray:
    """Start offsets (n + 1,) of the runs of a sorted group index."""
    return np.concatenate([[0], np.cumsum(np.bincount(index, minlength=n))]).astype(np.int64)


def oks_matrices(gt: GroundTruthArrays, pred: PredictionArrays, sigmas: np.ndarray) -> OksPairs:
    """OKS matrices for all images, computed like ``COCOeval.computeOks``.

    For a ground truth with labeled points, the mean over its labeled points of
    ``exp(-d**2 / (2 * area * (2 * sigma)**2))``; for one without (crowd regions), the
    same over all points with ``d`` the distance to the box grown by its size on each
    side. Pairs are grouped by the number of points averaged so that every mean is a
    numpy sum over a contiguous row, as in pycocotools.
    """
    n_images = len(gt.image_ids)
    # COCOeval: per image, predictions by descending score (stable), first maxDets kept
    ranked = np.lexsort((-pred.score, pred.image_index))
    image_sorted = pred.image_index[ranked]
    starts = _segments(image_sorted, n_images)
    rank = np.arange(len(ranked)) - starts[image_sorted]
    keep = rank < MAX_DETS
    order = ranked[keep]
    image_of = image_sorted[keep]
    dt_start = _segments(image_of, n_images)
    gt_order = np.argsort(gt.image_index, kind="stable")
    gt_start = _segments(gt.image_index[gt_order], n_images)

    n_gt = np.diff(gt_start)
    # every (kept prediction, ground truth) pair of an image, row-major per image
    per_dt = n_gt[image_of]
    pair_dt = np.repeat(np.arange(len(order)), per_dt)
    first_pair = (np.cumsum(per_dt) - per_dt).astype(np.int64)
    offset = np.arange(len(pair_dt)) - np.repeat(first_pair, per_dt)
    pair_gt = gt_order[gt_start[image_of[pair_dt]] + offset]
    oks = np.empty(len(pair_dt), dtype=np.float64)

    variances = (sigmas * 2) ** 2
    visible = gt.keypoints[:, :, 2] > 0
    k1 = np.count_nonzero(visible, axis=1)
    xd_all = np.ascontiguousarray(pred.keypoints[:, :, 0])
    yd_all = np.ascontiguousarray(pred.keypoints[:, :, 1])
    xg_all = np.ascontiguousarray(gt.keypoints[:, :, 0])
    yg_all = np.ascontiguousarray(gt.keypoints[:, :, 1])
    area_eps = gt.area + np.spacing(1)
    # in chunks of pairs: the temporaries stay small (and in cache) on 10^5-10^6 pairs
    for lo in range(0, len(pair_dt), _OKS_CHUNK):
        hi = min(lo + _OKS_CHUNK, len(pair_dt))
        dts = order[pair_dt[lo:hi]]
        gts = pair_gt[lo:hi]
        counts = k1[gts]
        # (dx**2 + dy**2) / vars / (area + eps) / 2, operation by operation as pycocotools
        e = xd_all[dts]
        e -= xg_all[gts]
        np.square(e, out=e)
        dy = yd_all[dts]
        dy -= yg_all[gts]
        np.square(dy, out=dy)
        e += dy
        region = np.flatnonzero(counts == 0)
        if len(region):
            # no labeled point (crowd regions): distance to the box grown by its size
            bb = gt.bbox[gts[region]]
            xr, yr = xd_all[dts[region]], yd_all[dts[region]]
            x0 = (bb[:, 0] - bb[:, 2])[:, None]
            x1 = (bb[:, 0] + bb[:, 2] * 2)[:, None]
            y0 = (bb[:, 1] - bb[:, 3])[:, None]
            y1 = (bb[:, 1] + bb[:, 3] * 2)[:, None]
            dxr = np.maximum(0.0, x0 - xr) + np.maximum(0.0, xr - x1)
            dyr = np.maximum(0.0, y0 - yr) + np.maximum(0.0, yr - y1)
            e[region] = dxr**2 + dyr**2
        e /= variances
        e /= area_eps[gts][:, None]
        e /= 2
        out = oks[lo:hi]
        if len(region):
            out[region] = np.exp(-e[region]).sum(axis=1) / e.shape[1]
        by_count = np.argsort(counts, kind="stable")
        bounds = np.searchsorted(counts[by_count], np.arange(e.shape[1] + 2))
        for count in range(1, e.shape[1] + 1):
            rows = by_count[bounds[count] : bounds[count + 1]]
            if not len(rows):
                continue
            # the labeled points of each pair, in keypoint order, as contiguous rows
            values = e[rows][visible[gts[rows]]].reshape(len(rows), count)
            out[rows] = np.exp(-values).sum(axis=1) / count

    return OksPairs(
        order=order,
        image_of=image_of,
        dt_start=dt_start,
        gt_start=gt_start,
        gt_order=gt_order,
        pair_dt=pair_dt,
        pair_col=offset,
        values=oks,
    )


def prediction_areas(pred: PredictionArrays) -> np.ndarray:
    """(D,) area as ``COCO.loadRes`` gives keypoint results: the extent of all points."""
    x = pred.keypoints[:, :, 0]
    y = pred.keypoints[:, :, 1]
    if not len(x):
        return np.zeros(0, dtype=np.float64)
    return (x.max(axis=1) - x.min(axis=1)) * (y.max(axis=1) - y.min(axis=1))


# ------------------------------------------------------------ faster-coco-eval
def run_faster_coco_eval(
    gt: GroundTruthArrays, pred: PredictionArrays, sigmas: np.ndarray, pairs: OksPairs
) -> np.ndarray:
    """The ten keypoint stats from faster-coco-eval's C++ evaluation on ``pairs``."""
    try:
        from faster_coco_eval.core.faster_eval_api import COCOeval_faster
    except ImportError as exc:
        raise EngineUnavailableError(
            "engine='faster-coco-eval' needs the faster-coco-eval package "
            "(pip install 'faster-coco-eval>=1.8,<1.9', or posekit[test]); the default "
            "engine='posekit' needs nothing more"
        ) from exc

    category = 1
    n_images = len(gt.image_ids)
    # engine ids: image i -> i + 1, ground truth g -> g + 1, prediction d -> d + 1
    ignore = gt.ignore.tolist()
    crowd = gt.iscrowd.tolist()
    area = gt.area.tolist()
    image = gt.image_index.tolist()
    gt_dicts = [
        (
            image[g] + 1,
            {"id": g + 1, "area": area[g], "iscrowd": int(crowd[g]), "ignore": int(ignore[g])},
        )
        for g in pairs.gt_order.tolist()
    ]
    dt_area = prediction_areas(pred).tolist()
    score = pred.score.tolist()
    dt_image = pred.image_index.tolist()
    dt_dicts = [
        (dt_image[d] + 1, {"id": d + 1, "area": dt_area[d], "score": score[d]})
        for d in range(len(score))
    ]
    matrices = {i + 1: m for i, m in pairs.matrices().items()}

    class _Evaluator(COCOeval_faster):
        """COCOeval_faster on prepared annotations and precomputed OKS matrices."""

        def _prepare(self) -> None:
            self.gt_dataset.clean()
            self.dt_dataset.clean()
            for image_id, ann in gt_dicts:
                self.gt_dataset.append_ref(image_id, category, ann)
            for image_id, ann in dt_dicts:
                self.dt_dataset.append_ref(image_id, category, ann)
            self._nonempty_iou_pairs = {(image_id, category) for image_id in matrices}

        def computeOks(self, imgId: Any, catId: Any) -> Any:
            return matrices.get(int(imgId), [])

    evaluator = _Evaluator(None, None, "keypoints", kpt_oks_sigmas=sigmas, print_function=_quiet)
    params = evaluator.params
    params.imgIds = list(range(1, n_images + 1))
    params.catIds = [category]
    params.maxDets = [MAX_DETS]
    params.areaRng = [list(r) for r in AREA_RANGES]
    params.areaRngLbl = list(AREA_LABELS)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return np.asarray(evaluator.stats[:10], dtype=np.float64)


def _quiet(*_args: Any, **_kwargs: Any) -> None:
    return None


# ----------------------------------------------------------------- pycocotools
def run_pycocotools(
    gt: GroundTruthArrays, pred: PredictionArrays, sigmas: np.ndarray
) -> tuple[np.ndarray, dict[int, int]]:
    """The ten keypoint stats from ``pycocotools.cocoeval.COCOeval``, and its matches at
    OKS 0.5 for the "all" area range (ground-truth index -> prediction index)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise EngineUnavailableError(
            "engine='pycocotools' needs the pycocotools package (pip install pycocotools)"
        ) from exc

    category = 1
    k = gt.keypoints.shape[1]
    gt_kps = gt.keypoints.reshape(len(gt.area), 3 * k).tolist()
    dataset = {
        "images": [{"id": i + 1} for i in range(len(gt.image_ids))],
        "categories": [{"id": category, "name": "object"}],
        "annotations": [
            {
                "id": g + 1,
                "image_id": int(gt.image_index[g]) + 1,
                "category_id": category,
                "keypoints": gt_kps[g],
                "num_keypoints": int(gt.num_keypoints[g]),
                "area": float(gt.area[g]),
                "bbox": gt.bbox[g].tolist(),
                "iscrowd": int(gt.iscrowd[g]),
            }
            for g in range(len(gt_kps))
        ],
    }
    dt_kps = pred.keypoints.reshape(len(pred.score), 3 * k).tolist()
    results = [
        {
            "image_id": int(pred.image_index[d]) + 1,
            "category_id": category,
            "keypoints": dt_kps[d],
            "score": float(pred.score[d]),
        }
        for d in range(len(dt_kps))
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(results)
        else:  # loadRes cannot take an empty list; an empty result set scores 0
            coco_dt = COCO()
            coco_dt.dataset = {
                "images": list(dataset["images"]),
                "categories": list(dataset["categories"]),
                "annotations": [],
            }
            coco_dt.createIndex()
        coco_eval = COCOeval(coco_gt, coco_dt, iouType="keypoints")
        coco_eval.params.kpt_oks_sigmas = sigmas
        coco_eval.params.catIds = [category]
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    params = coco_eval.params
    t = int(np.flatnonzero(np.isclose(params.iouThrs, 0.5))[0])
    matches: dict[int, int] = {}
    for entry in coco_eval.evalImgs:
        if entry is None or entry["aRng"] != params.areaRng[0] or entry["maxDet"] != MAX_DETS:
            continue
        for g, gt_id in enumerate(entry["gtIds"]):
            dt_id = int(entry["gtMatches"][t, g])
            if dt_id > 0 and not entry["gtIgnore"][g]:
                matches[gt_id - 1] = dt_id - 1
    return np.asarray(coco_eval.stats, dtype=np.float64), matches


# --------------------------------------------------------- posekit (exact numpy)
#: COCOeval's OKS thresholds and recall points (``Params.__init__``), built the same way.
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclass
class ImageMatches:
    """COCOeval's ``evaluateImg`` results for every image, concatenated in image order.

    Attributes:
        matched: (A, T, D') bool, kept prediction ``j`` (``OksPairs.order[j]``) matched at
            threshold ``t`` in area range ``a``.
        ignored: (A, T, D') bool, COCOeval's ``dtIgnore``.
        gt_ignored: (A, G) bool, COCOeval's ``gtIgnore`` (ignore flag or area out of range).
        matches_50_all: ground-truth index -> prediction index at OKS 0.5, "all" range,
            for ground truth that is not ignored (``gtMatches``).
    """

    matched: np.ndarray
    ignored: np.ndarray
    gt_ignored: np.ndarray
    matches_50_all: dict[int, int]


def match_images(gt: GroundTruthArrays, pred: PredictionArrays, pairs: OksPairs) -> ImageMatches:
    """COCOeval's greedy matching (``evaluateImg``) for every image, threshold and area range.

    Per image, predictions in rank order each take the ground truth of best OKS (at
    least the threshold) that is not taken yet (crowd regions can be taken again),
    preferring ground truth that is not ignored, and on equal OKS the later one (in
    COCOeval's order: not ignored first); an unmatched prediction outside the area
    range is ignored. Vectorised over images, thresholds and ground truth: one step
    per prediction rank, on images grouped by their number of ground truth.
    """
    n_kept = len(pairs.order)
    n_t = len(IOU_THRESHOLDS)
    n_a = len(AREA_RANGES)
    matched = np.zeros((n_a, n_t, n_kept), dtype=bool)
    hit_ignored = np.zeros((n_a, n_t, n_kept), dtype=bool)
    gt_ignored = np.zeros((n_a, len(gt.area)), dtype=bool)
    for a, (lo, hi) in enumerate(AREA_RANGES):
        gt_ignored[a] = gt.ignore | (gt.area < lo) | (gt.area > hi)
    matches_50_all: dict[int, int] = {}

    n_dt = np.diff(pairs.dt_start)
    n_gt = np.diff(pairs.gt_start)
    images = np.flatnonzero((n_dt > 0) & (n_gt > 0))
    # groups of images padded to the same number of ground truth (powers of two)
    width = 1 << np.ceil(np.log2(np.maximum(n_gt[images], 1))).astype(np.int64)
    pair_image = pairs.image_of[pairs.pair_dt]
    pair_rank = pairs.pair_dt - pairs.dt_start[pair_image]
    thresholds = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, None, :, None]
    for cols in np.unique(width).tolist():
        group = images[width == cols]
        group = group[np.argsort(-n_dt[group], kind="stable")]  # most predictions first
        rows = int(n_dt[group[0]])
        slot = np.full(len(n_dt), -1, dtype=np.int64)
        slot[group] = np.arange(len(group))
        # axes: ground-truth column first, so every reduction is over whole slabs
        oks = np.full((rows, cols, len(group)), -np.inf)
        in_group = slot[pair_image] >= 0
        oks[pair_rank[in_group], pairs.pair_col[in_group], slot[pair_image[in_group]]] = (
            pairs.values[in_group]
        )
        col = np.arange(cols)[:, None]
        valid = col < n_gt[group][None, :]
        position = np.minimum(pairs.gt_start[group][None, :] + col, len(pairs.gt_order) - 1)
        gt_index = np.where(valid, pairs.gt_order[position], 0)  # (cols, B)
        crowd = (gt.iscrowd[gt_index] & valid)[:, None, None, :]
        ignored = np.moveaxis(gt_ignored[:, gt_index], 0, 1)[:, :, None, :]  # (cols, A, 1, B)
        taken = np.zeros((cols, n_a, n_t, len(group)), dtype=bool)
        for r in range(rows):
            nb = int(np.count_nonzero(n_dt[group] > r))
            value = oks[r, :, :nb][:, None, None, :]
            candidate = (~taken[..., :nb] | crowd[..., :nb]) & (value >= thresholds)
            preferred = candidate & ~ignored[..., :nb]
            choice = np.where(preferred.any(axis=0), preferred, candidate)
            scored = np.where(choice, value, -np.inf)
            best = choice & (scored == scored.max(axis=0))
            pick = np.full(best.shape[1:], -1, dtype=np.int64)  # (A, T, nb): the last best
            for c in range(cols):
                pick[best[c]] = c
            hit = pick >= 0
            a_hit, t_hit, b_hit = np.nonzero(hit)
            c_hit = pick[a_hit, t_hit, b_hit]
            taken[c_hit, a_hit, t_hit, b_hit] = True
            kept = pairs.dt_start[group[:nb]] + r
            picked_ignored = np.zeros_like(hit)
            picked_ignored[a_hit, t_hit, b_hit] = ignored[c_hit, a_hit, 0, b_hit]
            matched[:, :, kept] = hit
            hit_ignored[:, :, kept] = picked_ignored
            won = np.flatnonzero(hit[0, 0] & ~picked_ignored[0, 0])
            gts = gt_index[pick[0, 0, won], won].tolist()
            matches_50_all.update(zip(gts, pairs.order[kept[won]].tolist()))
    dt_area = prediction_areas(pred)[pairs.order]
    dt_ignored = np.empty_like(hit_ignored)
    for a, (lo, hi) in enumerate(AREA_RANGES):
        outside = (dt_area < lo) | (dt_area > hi)
        dt_ignored[a] = hit_ignored[a] | (~matched[a] & outside[None, :])
    return ImageMatches(matched, dt_ignored, gt_ignored, matches_50_all)


def accumulate(pred: PredictionArrays, pairs: OksPairs, matches: ImageMatches) -> dict:
    """COCOeval's ``accumulate`` for one category and maxDets 20: ``precision`` (T, R, 1, A, 1)
    and ``recall`` (T, 1, A, 1), -1 where an area range has no ground truth."""
    n_t, n_r, n_a = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(AREA_RANGES)
    precision = -np.ones((n_t, n_r, 1, n_a, 1))
    recall = -np.ones((n_t, 1, n_a, 1))
    scores = pred.score[pairs.order]
    if not len(scores) and not len(matches.gt_ignored[0]):
        return {"precision": precision, "recall": recall}
    inds = np.argsort(-scores, kind="mergesort")
    for a in range(n_a):
        npig = int(np.count_nonzero(matches.gt_ignored[a] == 0))
        if npig == 0:
            continue
        dtm = matches.matched[a][:, inds]
        dt_ig = matches.ignored[a][:, inds]
        tps = np.logical_and(dtm, np.logical_not(dt_ig))
        fps = np.logical_and(np.logical_not(dtm), np.logical_not(dt_ig))
        tp_sum = np.cumsum(tps, axis=1).astype(dtype=float)
        fp_sum = np.cumsum(fps, axis=1).astype(dtype=float)
        nd = tp_sum.shape[1]
        rc = tp_sum / npig
        pr = tp_sum / (fp_sum + tp_sum + np.spacing(1))
        # the precision envelope: the best precision at this recall or beyond
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(n_t):
            recall[t, 0, a, 0] = rc[t, -1] if nd else 0
            q = np.zeros((n_r,))
            at = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
            valid = at < nd
            q[valid] = pr[t, at[valid]]
            precision[t, :, 0, a, 0] = q
    return {"precision": precision, "recall": recall}


def summarize(evaluation: Mapping[str, np.ndarray]) -> np.ndarray:
    """The ten keypoint stats, as ``COCOeval.summarize`` reads them from ``accumulate``."""

    def one(ap: int, iou: float | None = None, area: str = "all") -> float:
        aind = [i for i, label in enumerate(AREA_LABELS) if label == area]
        mind = [0]
        if ap == 1:
            s = evaluation["precision"]
            if iou is not None:
                s = s[np.where(iou == IOU_THRESHOLDS)[0]]
            s = s[:, :, :, aind, mind]
        else:
            s = evaluation["recall"]
            if iou is not None:
                s = s[np.where(iou == IOU_THRESHOLDS)[0]]
            s = s[:, :, aind, mind]
        return -1.0 if len(s[s > -1]) == 0 else float(np.mean(s[s > -1]))

    return np.array(
        [
            one(1),
            one(1, 0.5),
            one(1, 0.75),
            one(1, area="medium"),
            one(1, area="large"),
            one(0),
            one(0, 0.5),
            one(0, 0.75),
            one(0, area="medium"),
            one(0, area="large"),
        ]
    )


def run_posekit(
    gt: GroundTruthArrays, pred: PredictionArrays, pairs: OksPairs
) -> tuple[np.ndarray, dict[int, int]]:
    """The ten keypoint stats, bit-identical to pycocotools, and the OKS 0.5 matches."""
    matches = match_images(gt, pred, pairs)
    return summarize(accumulate(pred, pairs, matches)), matches.matches_50_all
