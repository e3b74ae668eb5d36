"""Mapping keypoints from one template onto another, by keypoint name."""

from __future__ import annotations

import numpy as np

from posekit.skeleton.template import Skeleton, SkeletonError

__all__ = [
    "add_derived_points",
    "derived_mapping",
    "keypoint_mapping",
    "names_mapping",
    "normalize_keypoint_name",
]


def normalize_keypoint_name(name: str) -> str:
    """The form in which keypoint names are compared: lower case, with spaces,
    hyphens and underscores read as one ``_`` (``"Right Shoulder"`` ->
    ``"right_shoulder"``, ``"L-Eye"`` -> ``"l_eye"``)."""
    return "_".join(str(name).strip().lower().replace("-", " ").replace("_", " ").split())


def names_mapping(
    source_names: list[str] | tuple[str, ...], target: Skeleton, *, strict: bool = False
) -> np.ndarray:
    """Index array ``(K_target,) int64``: for each target keypoint, the position of
    the source keypoint with the same name (or one of the target's aliases), else -1.

    Names are matched exactly first; a target keypoint left unmatched then takes
    the one unused source name equal to its name or an alias after
    :func:`normalize_keypoint_name` (``"Right Shoulder"`` for ``right_shoulder``),
    reading the sides ``left_``/``l_`` and ``right_``/``r_`` alike (``"L_Ear"`` for
    ``left_ear``).

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
    if len(used) < len(positions) and np.any(out < 0):
        by_normal: dict[str, list[int]] = {}
        for n, i in positions.items():
            if i not in used:
                by_normal.setdefault(_short_sides(normalize_keypoint_name(n)), []).append(i)
        for t in np.flatnonzero(out < 0).tolist():
            name = target.keypoints[t]
            for candidate in (name, *target.aliases.get(name, ())):
                found = [
                    i
                    for i in by_normal.get(_short_sides(normalize_keypoint_name(candidate)), ())
                    if i not in used
                ]
                if len(found) == 1:  # two source names with one normal form: ambiguous
                    out[t] = found[0]
                    used.add(found[0])
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


def _short_sides(normal: str) -> str:
    """``left_ear`` -> ``l_ear`` (the other common spelling of sides)."""
    for long, short in (("left_", "l_"), ("right_", "r_")):
        if normal.startswith(long):
            return short + normal[len(long) :]
    return normal


def _find_name(source_names: list[str] | tuple[str, ...], name: str) -> int | None:
    """Position of ``name`` among ``source_names``: exact, else the one name with the
    same :func:`normalize_keypoint_name` form, sides spelled ``left_``/``l_`` alike."""
    names = [str(n) for n in source_names]
    if name in names:
        return names.index(name)
    normal = _short_sides(normalize_keypoint_name(name))
    found = [i for i, n in enumerate(names) if _short_sides(normalize_keypoint_name(n)) == normal]
    return found[0] if len(found) == 1 else None


def derived_mapping(
    source_names: list[str] | tuple[str, ...], target: Skeleton
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`names_mapping` plus the target's derived keypoints the source can give.

    A target keypoint that no source name matches, but that the target declares as
    derived (:attr:`Skeleton.derived`) from inputs the source all has by name (the
    same name matching), is computed from those inputs.

    Returns:
        ``index (K_target,) int64`` into the *extended* source of ``M + D`` points
        (the ``M`` source points, then ``D`` derived ones; -1 where unmapped), and
        ``weights (D, M) float64``: derived point ``d`` is ``weights[d] @ points``.
        Extend model outputs with :func:`add_derived_points`.

    Example:
        >>> from posekit.skeleton import get_preset
        >>> index, weights = derived_mapping(get_preset("coco17").keypoints, get_preset("mpii16"))
        >>> int(index[get_preset("mpii16").index("pelvis")]), weights.shape
        (17, (4, 17))
    """
    index = names_mapping(source_names, target)
    m = len(source_names)
    rows: list[np.ndarray] = []
    for t in np.flatnonzero(index < 0).tolist():
        definition = target.derived.get(target.keypoints[t])
        if definition is None:
            continue
        weights = definition.source_weights()
        inputs = list(weights)
        found = [_find_name(source_names, name) for name in inputs]
        if any(position is None for position in found):
            continue
        row = np.zeros(m, np.float64)
        for name, position in zip(inputs, found):
            row[position] += weights[name]
        index[t] = m + len(rows)
        rows.append(row)
    matrix = np.stack(rows) if rows else np.zeros((0, m), np.float64)
    return index, matrix


def add_derived_points(
    points: np.ndarray, scores: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Append derived points to model outputs.

    Args:
        points: ``(..., M, 2)`` source points.
        scores: ``(..., M)`` their confidences.
        weights: ``(D, M)`` from :func:`derived_mapping`.

    Returns:
        ``(..., M + D, 2)`` points and ``(..., M + D)`` scores; a derived point's
        score is the lowest score among its inputs (it is only as good as its
        weakest input).
    """
    if weights.shape[0] == 0:
        return points, scores
    derived_xy = np.einsum("dm,...mc->...dc", weights, points).astype(points.dtype)
    used = weights != 0  # (D, M)
    masked = np.where(used, scores[..., None, :], np.inf)  # (..., D, M)
    derived_scores = masked.min(axis=-1).astype(scores.dtype)
    return (
        np.concatenate([points, derived_xy], axis=-2),
        np.concatenate([scores, derived_scores], axis=-1),
    )
