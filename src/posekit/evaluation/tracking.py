"""Multi-person pose tracking metrics: keypoint MOTA, MOTP, precision and recall.

The definition is the one of the PoseTrack benchmark (Andriluka et al., "PoseTrack:
A Benchmark for Human Pose Estimation and Tracking", CVPR 2018, section 4) as its
evaluation tool ``poseval`` computes it (github.com/leonid-pishchulin/poseval,
``evaluateTracking.py`` and ``eval_helpers.assignGTmulti``, with
py-motmetrics' CLEAR-MOT accumulator). This is an independent implementation:

* Every **joint is tracked separately**: for joint ``j``, the objects of a frame are
  the ground-truth people whose joint ``j`` is labeled (visibility > 0), keyed by
  their ``track_id``; the hypotheses are the predicted people whose joint ``j`` is
  labeled (and scores at least ``min_keypoint_score``), keyed by their ``track_id``.
* **PCKh-style gating**: the distance between a ground-truth and a predicted joint
  is ``||p_gt - p_pred|| / head_size(gt)``, where ``head_size = 0.6 *`` the diagonal
  of the ground-truth head box (as in MPII's PCKh and poseval's ``getHeadSize``).
  A pair can match only if this is ``<= distance_threshold`` (0.5).
* **CLEAR-MOT matching** per joint and frame (Bernardin and Stiefelhagen, 2008):
  a ground-truth track matched to a predicted track in an earlier frame keeps that
  match if both are present and the pair is within the threshold; the remaining
  objects and hypotheses are matched by a Hungarian assignment that minimises the
  summed distance among the pairs within the threshold. A match of a ground-truth
  track to a predicted track other than the one it was last matched to is an
  **identity switch**. Unmatched objects are misses, unmatched hypotheses false
  positives. Matching restarts for every video.
* Per joint: ``MOTA = 1 - (misses + switches + false positives) / objects``,
  ``MOTP = 1 - sum(matched distances) / matches`` (0.0 when nothing matched, as
  poseval reports it), ``precision = matches / (matches + false positives)``,
  ``recall = matches / objects``. Counts are summed over videos first.
* **Total**: like poseval, the mean of the per-joint values over the joints where
  they are defined (not a pooled ratio); ``num_switches`` is the sum.

Values are fractions (poseval prints percentages: multiply by 100).

Where posekit differs from poseval, on purpose:

* Head size: from the ground-truth instance's ``extra["bbox_head"]`` (PoseTrack18's
  ``[x, y, w, h]``), or a ``head_size`` function. Ground truth without a head box
  falls back to ``HEAD_SIZE_PER_PERSON_SIZE * sqrt(w * h)`` of the person's box (the
  keypoints' box when there is none), logged once and counted in
  ``TrackingEvalResult.head_size_sources``; numbers computed that way are not
  comparable with PoseTrack's.
* A ground-truth frame with people but no predictions counts every labeled joint
  as a miss (poseval counts one miss and one false positive per joint there), and a
  frame present in the ground truth with no people still counts predictions on it
  as false positives (poseval drops frames without people). Predicted frames that
  are not in the ground truth are ignored (only labeled frames are scored).
* poseval skips the last frame of each sequence (``imgidxs[:-1]``); pass
  ``drop_last_frame=True`` to reproduce that. Ignore regions are not supported.
* poseval scores 15 joints on PoseTrack18 (the ears are not annotated); pass
  ``keypoints=POSETRACK_JOINTS`` with the ``posetrack17`` template to match it.

Example:
    >>> from posekit.skeleton import get_preset
    >>> result = evaluate_tracking_video({}, {}, get_preset("coco17"))
    >>> result.num_frames
    0
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.skeleton.template import Skeleton

__all__ = [
    "HEAD_SIZE_PER_PERSON_SIZE",
    "POSETRACK_JOINTS",
    "JointTrackingStats",
    "TrackingEvalResult",
    "TrackingEvaluationError",
    "evaluate_tracking",
    "evaluate_tracking_video",
    "head_size_from_annotation",
]

log = logging.getLogger(__name__)

#: Fallback head size as a fraction of ``sqrt(w * h)`` of the person box:
#: 0.6 (PCKh) times a head-box diagonal of about 0.3 person sizes (the median over
#: the PoseTrack18 sample annotations shipped for the tests was 0.33).
HEAD_SIZE_PER_PERSON_SIZE = 0.6 * 0.3

#: The 15 joints poseval scores, named as in posekit's ``posetrack17`` template.
POSETRACK_JOINTS = (
    "nose",
    "head_bottom",
    "head_top",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

_INFEASIBLE = 1e9

Frames = Mapping[int, Sequence[Instance]]


class TrackingEvaluationError(ValueError):
    """Ground truth or predictions cannot be scored for tracking; the message says why."""


@dataclass
class JointTrackingStats:
    """CLEAR-MOT counts and metrics of one joint (or the total).

    Attributes:
        name: Keypoint name, or ``"total"``.
        num_objects: Labeled ground-truth joints over all scored frames.
        num_predictions: Predicted joints over all scored frames.
        num_matches: Matched pairs.
        num_misses: Ground-truth joints left unmatched.
        num_false_positives: Predicted joints left unmatched.
        num_switches: Identity switches.
        sum_distance: Sum of the head-normalised distances of the matches.
        mota, motp, precision, recall: See the module docstring; NaN where the
            denominator is 0 (MOTP is 0.0 then, as poseval reports it).
    """

    name: str
    num_objects: int = 0
    num_predictions: int = 0
    num_matches: int = 0
    num_misses: int = 0
    num_false_positives: int = 0
    num_switches: int = 0
    sum_distance: float = 0.0
    mota: float = math.nan
    motp: float = math.nan
    precision: float = math.nan
    recall: float = math.nan

    def finish(self) -> None:
        """Compute the ratios from the counts."""
        objects, matches, fp = self.num_objects, self.num_matches, self.num_false_positives
        self.mota = (
            1.0 - (self.num_misses + self.num_switches + fp) / objects if objects else math.nan
        )
        self.motp = 1.0 - self.sum_distance / matches if matches else 0.0
        self.precision = matches / (matches + fp) if matches + fp else math.nan
        self.recall = matches / objects if objects else math.nan


@dataclass
class TrackingEvalResult:
    """Keypoint tracking metrics.

    Attributes:
        joints: One :class:`JointTrackingStats` per scored keypoint, template order.
        total: Means of the per-joint ratios where defined, sums of the counts.
        num_videos: Videos scored.
        num_frames: Ground-truth frames scored.
        distance_threshold: The PCKh threshold used.
        head_size_sources: How many ground-truth instances got their head size from
            ``"head_box"``, ``"function"`` or ``"person_box"`` (the fallback).
    """

    joints: list[JointTrackingStats]
    total: JointTrackingStats
    num_videos: int
    num_frames: int
    distance_threshold: float
    head_size_sources: dict[str, int] = field(default_factory=dict)

    @property
    def mota(self) -> float:
        return self.total.mota

    @property
    def motp(self) -> float:
        return self.total.motp

    @property
    def precision(self) -> float:
        return self.total.precision

    @property
    def recall(self) -> float:
        return self.total.recall

    def joint(self, name: str) -> JointTrackingStats:
        for stats in self.joints:
            if stats.name == name:
                return stats
        raise KeyError(f"keypoint {name!r} was not scored")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def head_size_from_annotation(instance: Instance) -> float | None:
    """``0.6 *`` the diagonal of ``extra["bbox_head"]`` (``[x, y, w, h]``), or None
    when the instance has no usable head box."""
    raw = instance.extra.get("bbox_head") if instance.extra else None
    if raw is None:
        return None
    try:
        values = [float(v) for v in raw]
    except (TypeError, ValueError):
        return None
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        return None
    size = 0.6 * math.hypot(values[2], values[3])
    return size if size > 0 else None


def _person_box_head_size(instance: Instance) -> float | None:
    box = instance.bbox_or_keypoint_box()
    if box is None:
        return None
    area = max(float(box[2] - box[0]), 0.0) * max(float(box[3] - box[1]), 0.0)
    return HEAD_SIZE_PER_PERSON_SIZE * math.sqrt(area) if area > 0 else None


class _Accumulator:
    """CLEAR-MOT state of one joint in one video."""

    def __init__(self, stats: JointTrackingStats) -> None:
        self.stats = stats
        self.last_match: dict[int, int] = {}

    def update(self, gt_ids: list[int], pred_ids: list[int], dist: np.ndarray) -> None:
        from scipy.optimize import linear_sum_assignment

        s = self.stats
        s.num_objects += len(gt_ids)
        s.num_predictions += len(pred_ids)
        feasible = np.isfinite(dist)
        matches: list[tuple[int, int]] = []
        gt_free = set(range(len(gt_ids)))
        pred_free = set(range(len(pred_ids)))
        pred_pos = {pid: c for c, pid in enumerate(pred_ids)}
        # Keep last frame's correspondences that are still valid.
        for r, gid in enumerate(gt_ids):
            previous = self.last_match.get(gid)
            c = pred_pos.get(previous) if previous is not None else None
            if c is not None and c in pred_free and feasible[r, c]:
                matches.append((r, c))
                gt_free.discard(r)
                pred_free.discard(c)
        rows, cols = sorted(gt_free), sorted(pred_free)
        if rows and cols:
            sub = dist[np.ix_(rows, cols)]
            sub_ok = np.isfinite(sub)
            if np.any(sub_ok):
                cost = np.where(sub_ok, sub, _INFEASIBLE)
                for i, j in zip(*linear_sum_assignment(cost)):
                    if sub_ok[i, j]:
                        r, c = rows[i], cols[j]
                        gid, pid = gt_ids[r], pred_ids[c]
                        if gid in self.last_match and self.last_match[gid] != pid:
                            s.num_switches += 1
                        matches.append((r, c))
                        gt_free.discard(r)
                        pred_free.discard(c)
        for r, c in matches:
            self.last_match[gt_ids[r]] = pred_ids[c]
            s.sum_distance += float(dist[r, c])
        s.num_matches += len(matches)
        s.num_misses += len(gt_free)
        s.num_false_positives += len(pred_free)


def _check_ids(instances: Sequence[Instance], what: str, video: str, frame: int) -> list[int]:
    ids: list[int] = []
    for n, inst in enumerate(instances):
        if inst.track_id is None:
            raise TrackingEvaluationError(
                f"{what} instance {n} in video {video!r} frame {frame} has no track_id"
            )
        ids.append(int(inst.track_id))
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise TrackingEvaluationError(
            f"{what} track_id {dup} appears twice in video {video!r} frame {frame}"
        )
    return ids


def evaluate_tracking(
    ground_truth: Mapping[str, Frames],
    predictions: Mapping[str, Frames],
    template: Skeleton,
    *,
    distance_threshold: float = 0.5,
    keypoints: Sequence[str] | None = None,
    head_size: Callable[[Instance], float] | None = None,
    min_keypoint_score: float = 0.0,
    drop_last_frame: bool = False,
) -> TrackingEvalResult:
    """Keypoint MOTA/MOTP/precision/recall over videos (see the module docstring).

    Args:
        ground_truth: ``{video_name: {frame_index: [Instance, ...]}}``, the labeled
            frames only, every instance with a ``track_id``.
        predictions: The same layout; a video missing here scores as all misses, a
            video not in the ground truth is an error.
        template: The skeleton both sides use.
        distance_threshold: PCKh threshold on ``distance / head_size``.
        keypoints: Names of the keypoints to score (default: all of the template).
        head_size: ``f(gt_instance) -> px``; default: the head box, else the fallback.
        min_keypoint_score: Predicted joints scoring under this are left out.
        drop_last_frame: Skip each video's last ground-truth frame, as poseval does.

    Returns:
        A :class:`TrackingEvalResult`.

    Raises:
        TrackingEvaluationError: Missing or duplicate track ids, unknown videos,
            instances with the wrong number of keypoints, a bad head size.
    """
    if not (math.isfinite(distance_threshold) and distance_threshold > 0):
        raise TrackingEvaluationError(f"distance_threshold must be > 0, got {distance_threshold!r}")
    unknown = sorted(set(predictions) - set(ground_truth))
    if unknown:
        raise TrackingEvaluationError(
            f"predictions for video {unknown[0]!r}, which is not in the ground truth "
            f"(ground-truth videos: {', '.join(map(repr, sorted(ground_truth))) or 'none'})"
        )
    names = list(template.keypoints) if keypoints is None else list(keypoints)
    joint_index = [template.index(n) for n in names]
    stats = [JointTrackingStats(name=n) for n in names]
    k = template.num_keypoints
    sources: dict[str, int] = {}
    warned = False
    num_frames = 0

    for video in sorted(ground_truth):
        gt_frames = ground_truth[video]
        pred_frames = predictions.get(video)
        if pred_frames is None:
            log.warning("no predictions for video %r: every joint counts as a miss", video)
            pred_frames = {}
        frame_list = sorted(int(f) for f in gt_frames)
        if drop_last_frame and frame_list:
            frame_list = frame_list[:-1]
        ignored = len(set(int(f) for f in pred_frames) - set(int(f) for f in gt_frames))
        if ignored:
            log.debug("video %r: %d predicted frames are not labeled, ignored", video, ignored)
        accumulators = [_Accumulator(s) for s in stats]
        for frame in frame_list:
            num_frames += 1
            gts = list(gt_frames[frame])
            preds = list(pred_frames.get(frame, ()))
            for what, group in (("ground-truth", gts), ("predicted", preds)):
                for n, inst in enumerate(group):
                    if inst.num_keypoints != k:
                        raise TrackingEvaluationError(
                            f"{what} instance {n} in video {video!r} frame {frame} has "
                            f"{inst.num_keypoints} keypoints, template {template.name!r} has {k}"
                        )
            gt_ids = _check_ids(gts, "ground-truth", video, frame)
            pred_ids = _check_ids(preds, "predicted", video, frame)
            heads = np.empty(len(gts))
            for n, inst in enumerate(gts):
                if not np.any(inst.visibility > 0):
                    heads[n] = 1.0  # no labeled joint: never an object, size unused
                    continue
                size, source = _head_size(inst, head_size)
                if size is None:
                    raise TrackingEvaluationError(
                        f"ground-truth instance {n} in video {video!r} frame {frame}: "
                        "no head box, no person box and no labeled extent to size it"
                    )
                if source == "person_box" and not warned:
                    log.warning(
                        "ground truth without head boxes (extra['bbox_head']): head size "
                        "estimated as %.2f x sqrt(box area); not comparable with PoseTrack",
                        HEAD_SIZE_PER_PERSON_SIZE,
                    )
                    warned = True
                sources[source] = sources.get(source, 0) + 1
                heads[n] = size
            gt_xy = _stack(gts, k)
            pr_xy = _stack(preds, k)
            for acc, j in zip(accumulators, joint_index):
                g_rows = [n for n, g in enumerate(gts) if g.visibility[j] > 0]
                p_rows = [
                    n
                    for n, p in enumerate(preds)
                    if p.visibility[j] > 0
                    and (p.keypoint_scores is None or p.keypoint_scores[j] >= min_keypoint_score)
                ]
                if g_rows and p_rows:
                    diff = gt_xy[g_rows, j][:, None, :] - pr_xy[p_rows, j][None, :, :]
                    dist = np.linalg.norm(diff, axis=-1) / heads[g_rows][:, None]
                    dist = np.where(dist <= distance_threshold, dist, np.inf)
                else:
                    dist = np.full((len(g_rows), len(p_rows)), np.inf)
                acc.update([gt_ids[n] for n in g_rows], [pred_ids[n] for n in p_rows], dist)

    for s in stats:
        s.finish()
    total = JointTrackingStats(name="total")
    for attr in (
        "num_objects",
        "num_predictions",
        "num_matches",
        "num_misses",
        "num_false_positives",
        "num_switches",
    ):
        setattr(total, attr, sum(getattr(s, attr) for s in stats))
    total.sum_distance = float(sum(s.sum_distance for s in stats))
    for attr in ("mota", "motp", "precision", "recall"):
        values = [getattr(s, attr) for s in stats if not math.isnan(getattr(s, attr))]
        setattr(total, attr, float(np.mean(values)) if values else math.nan)
    return TrackingEvalResult(
        joints=stats,
        total=total,
        num_videos=len(ground_truth),
        num_frames=num_frames,
        distance_threshold=float(distance_threshold),
        head_size_sources=sources,
    )


def _stack(instances: Sequence[Instance], k: int) -> np.ndarray:
    if not instances:
        return np.zeros((0, k, 2))
    return np.stack([inst.keypoints for inst in instances]).astype(np.float64)


def _head_size(
    instance: Instance, head_size: Callable[[Instance], float] | None
) -> tuple[float | None, str]:
    if head_size is not None:
        size = float(head_size(instance))
        if not (math.isfinite(size) and size > 0):
            raise TrackingEvaluationError(f"head_size returned {size!r}; expected > 0 px")
        return size, "function"
    size = head_size_from_annotation(instance)
    if size is not None:
        return size, "head_box"
    return _person_box_head_size(instance), "person_box"


def evaluate_tracking_video(
    ground_truth: Frames,
    predictions: Frames,
    template: Skeleton,
    **options: Any,
) -> TrackingEvalResult:
    """:func:`evaluate_tracking` for one video: ``{frame_index: [Instance, ...]}``."""
    return evaluate_tracking({"video": ground_truth}, {"video": predictions}, template, **options)
