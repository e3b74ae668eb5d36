"""Mapping keypoints from one template onto another, by keypoint name."""

from __future__ import annotations

import numpy as np

from posekit.skeleton.template import Skeleton, SkeletonError

__all__ = ["keypoint_mapping", "names_mapping"]


def names_mapping(
    source_names: list[str] | tuple[str, ...], target: Skeleton, *, strict: bool = False
) -> np.ndarray:
    """Index array ``(K_target,) int64``: for each target keypoint, the position of
    the source keypoint with the same name (or one of the target's aliases), else -1.

    With ``strict=True`` a source name that the target does not know raises
    :class:`SkeletonError` (used on import: silently dropping labelled points
    would lose data).
    """
    positions = {str(n): i for i, n in enumerate(source_names)}
    if len(positions) != len(source_names):
        dup = next(n for n in source_names if list(source_names).count(n) > 1)
        raise SkeletonError(f"duplicate source keypoint name {dup!r}")
    out = np.full(target.num_keypoints, -1, dtype=np.int64)
    used: set[int] = set()
    for t, name in enumerate(target.keypoints):
        for candidate in (name, *target.aliases.get(name, ())):
            if candidate in positions:
                out[t] = positions[candidate]
                used.add(positions[candidate])
                break
    if strict:
        unknown = [n for n, i in positions.items() if i not in used]
        if unknown:
            raise SkeletonError(
                f"keypoint {unknown[0]!r} has no counterpart in template {target.name!r}"
                + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
            )
    return out


def keypoint_mapping(source: Skeleton, target: Skeleton) -> np.ndarray:
    """For each keypoint of ``target``, its index in ``source`` or -1 (unmapped).

    Example:
        >>> from posekit.skeleton import get_preset, keypoint_mapping
        >>> idx = keypoint_mapping(get_preset("mediapipe33"), get_preset("coco17"))
        >>> int(idx[0])  # nose is landmark 0
        0
    """
    return names_mapping(source.keypoints, target)
