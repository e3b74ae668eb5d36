"""Clean-up of final poses, whatever models produced them: OKS-NMS and a minimum score.

Box NMS before the pose model cannot catch every duplicate: two boxes that overlap
less than the NMS threshold (a tile's crop of a person and the whole-image
detection, an upper-body box inside a full-body one) can still give the same pose.
Here duplicates are found on the poses themselves, by the object keypoint
similarity (OKS) between instances with the template's sigmas, as the COCO-style
top-down evaluations of SimpleBaseline / HRNet / ViTPose do before scoring.

Example:
    >>> from posekit.skeleton import get_preset
    >>> kept = postprocess_instances(instances, get_preset("coco17"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from posekit.core import Instance
from posekit.skeleton import Skeleton

__all__ = ["instance_oks", "oks_nms", "postprocess_instances"]


def _reference_area(keypoints: np.ndarray, labeled: np.ndarray) -> float:
    """Area of the labeled keypoints' extent (the OKS scale of a predicted instance;
    predictions have no segmentation)."""
    if not labeled.any():
        return 0.0
    xy = keypoints[labeled]
    extent = xy.max(axis=0) - xy.min(axis=0)
    return float(extent[0] * extent[1])


def instance_oks(instances: Sequence[Instance], sigmas: np.ndarray) -> np.ndarray:
    """Pairwise OKS ``(N, N)`` between instances of one image.

    ``oks[i, j]`` scores instance ``j`` against instance ``i`` taken as the reference:
    the mean over keypoints labeled in both of ``exp(-d^2 / (2 A_i (2 sigma)^2))``,
    with ``A_i`` the area of ``i``'s labeled-keypoint extent (at least 1 px^2). Pairs
    without a keypoint labeled in both get 0; the diagonal is 1.

    Args:
        instances: ``N`` instances on the same template (``K`` keypoints).
        sigmas: ``(K,)`` the template's OKS sigmas.
    """
    n = len(instances)
    out = np.eye(n, dtype=np.float64)
    if n < 2:
        return out
    sigmas = np.asarray(sigmas, dtype=np.float64)
    xy = np.stack([np.asarray(inst.keypoints, np.float64) for inst in instances])  # (N, K, 2)
    labeled = np.stack([np.asarray(inst.visibility) > 0 for inst in instances])  # (N, K)
    if xy.shape[1] != sigmas.shape[0]:
        raise ValueError(
            f"instance_oks: instances have {xy.shape[1]} keypoints but {sigmas.shape[0]} sigmas"
        )
    areas = np.array([max(_reference_area(xy[i], labeled[i]), 1.0) for i in range(n)])
    d2 = ((xy[:, None] - xy[None, :]) ** 2).sum(axis=-1)  # (N, N, K)
    both = labeled[:, None] & labeled[None, :]
    var = (2.0 * sigmas) ** 2
    similarity = np.exp(-d2 / (2.0 * areas[:, None, None] * var[None, None, :]))
    counts = both.sum(axis=-1)
    total = np.where(both, similarity, 0.0).sum(axis=-1)
    out = np.where(counts > 0, total / np.maximum(counts, 1), 0.0)
    np.fill_diagonal(out, 1.0)
    return out


def oks_nms(instances: Sequence[Instance], sigmas: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression of instances by OKS.

    Instances are taken best score first (no score counts as 1: a given, not a
    guessed, instance); an instance whose OKS to an already kept one reaches
    ``threshold`` in either direction (either instance as the reference, so a small
    copy nested in a large pose is caught too) is dropped.

    Args:
        instances: instances of one image, on one template.
        sigmas: ``(K,)`` the template's OKS sigmas.
        threshold: OKS from which two instances are the same person, in (0, 1];
            a value above 1 keeps everything.

    Returns:
        ``(M,) int64`` indices of the kept instances, in their original order.
    """
    n = len(instances)
    if n < 2 or threshold > 1.0:
        return np.arange(n, dtype=np.int64)
    scores = np.array([1.0 if inst.score is None else float(inst.score) for inst in instances])
    oks = instance_oks(instances, sigmas)
    same = np.maximum(oks, oks.T) >= threshold
    suppressed = np.zeros(n, dtype=bool)
    for i in np.argsort(-scores, kind="stable"):
        if suppressed[i]:
            continue
        later = same[i].copy()
        later[i] = False
        suppressed |= later & ~suppressed & (scores <= scores[i])
        suppressed[i] = False
    return np.flatnonzero(~suppressed).astype(np.int64)


def postprocess_instances(
    instances: Sequence[Instance],
    template: Skeleton,
    *,
    oks_threshold: float = 0.5,
    min_score: float = 0.0,
) -> list[Instance]:
    """The final poses of one image: OKS-NMS, then the minimum instance score.

    Args:
        instances: predicted instances of one image on ``template``.
        template: gives the OKS sigmas.
        oks_threshold: see :func:`oks_nms`; 0 disables OKS-NMS.
        min_score: instances scoring below this are dropped (instances without a
            score are kept).

    Returns:
        The kept instances, in their original order.
    """
    kept = list(instances)
    if 0.0 < oks_threshold <= 1.0:
        kept = [kept[i] for i in oks_nms(kept, np.asarray(template.sigmas), oks_threshold)]
    if min_score > 0:
        kept = [inst for inst in kept if inst.score is None or inst.score >= min_score]
    return kept
