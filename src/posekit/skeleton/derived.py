"""Derived keypoints: template points defined from other points by an affine combination.

Some layouts have points that others lack but that are well defined from what the
others do have: MPII's ``pelvis`` is the midpoint of the hips, its ``thorax`` the
midpoint of the shoulders. A template declares such a point under ``derived``; when
a model (or another layout) lacks the point by name, :mod:`posekit.skeleton.mapping`
computes it from the named inputs instead of leaving it unlabeled.

Two YAML forms, both by keypoint name (the inputs may be points the template itself
does not have, such as COCO's ears for a head point)::

    derived:
      pelvis: {mean: [left_hip, right_hip]}
      head_top:                         # above the ears, away from the shoulders
        from: [[left_ear, right_ear], [left_shoulder, right_shoulder]]
        weights: [1.7, -0.7]

``from`` lists terms, each a name or a list of names (their mean); ``weights`` (one
per term, default equal) must sum to 1, so the point moves with the person
(translation) and scales with them: an affine combination. Weights outside [0, 1]
extrapolate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DerivedKeypoint"]

_WEIGHT_SUM_TOLERANCE = 1e-6


class _DerivedError(ValueError):
    """Raised while parsing; re-raised as SkeletonError by the template."""


@dataclass(frozen=True)
class DerivedKeypoint:
    """How one template keypoint is computed from others.

    Attributes:
        terms: Groups of keypoint names; each group stands for the mean of its points.
        weights: One weight per group, summing to 1.

    Example:
        >>> pelvis = DerivedKeypoint.from_value({"mean": ["left_hip", "right_hip"]})
        >>> pelvis.source_weights()
        {'left_hip': 0.5, 'right_hip': 0.5}
    """

    terms: tuple[tuple[str, ...], ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.terms:
            raise _DerivedError("needs at least one input keypoint")
        if len(self.weights) != len(self.terms):
            raise _DerivedError(
                f"has {len(self.terms)} input term(s) but {len(self.weights)} weight(s)"
            )
        for term in self.terms:
            if not term or not all(isinstance(n, str) and n for n in term):
                raise _DerivedError(f"input {list(term)!r} must be a name or a list of names")
        if not all(isinstance(w, float) and math.isfinite(w) for w in self.weights):
            raise _DerivedError(f"weights {list(self.weights)!r} must be finite numbers")
        total = sum(self.weights)
        if abs(total - 1.0) > _WEIGHT_SUM_TOLERANCE:
            raise _DerivedError(
                f"weights {list(self.weights)!r} sum to {total:g}; they must sum to 1 "
                "(an affine combination, so the point moves and scales with the person)"
            )

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every input keypoint name, once, in order of appearance."""
        return tuple(dict.fromkeys(n for term in self.terms for n in term))

    def source_weights(self) -> dict[str, float]:
        """The combination as one weight per input name (a group's weight is shared
        equally by its names)."""
        out: dict[str, float] = {}
        for term, weight in zip(self.terms, self.weights):
            for name in term:
                out[name] = out.get(name, 0.0) + weight / len(term)
        return out

    @classmethod
    def from_value(cls, value: Any) -> DerivedKeypoint:
        """Parse the ``{mean: [...]}`` or ``{from: [...], weights: [...]}`` form.

        Raises:
            ValueError: the value is malformed (the message says how).
        """
        if not isinstance(value, Mapping):
            raise _DerivedError("must be {mean: [names]} or {from: [...], weights: [...]}")
        keys = set(value)
        if keys == {"mean"}:
            names = value["mean"]
            if not isinstance(names, list) or not names:
                raise _DerivedError("'mean' must be a non-empty list of keypoint names")
            return cls((tuple(str(n) if isinstance(n, str) else n for n in names),), (1.0,))
        if "from" not in keys or not keys <= {"from", "weights"}:
            unknown = sorted(keys - {"from", "weights", "mean"})
            hint = f" (unknown key {unknown[0]!r})" if unknown else ""
            raise _DerivedError(
                f"must be {{mean: [names]}} or {{from: [...], weights: [...]}}{hint}"
            )
        raw_terms = value["from"]
        if not isinstance(raw_terms, list) or not raw_terms:
            raise _DerivedError("'from' must be a non-empty list of names or lists of names")
        terms = tuple(
            (t,) if isinstance(t, str) else tuple(t) if isinstance(t, list) else (t,)
            for t in raw_terms
        )
        raw_weights = value.get("weights")
        if raw_weights is None:
            weights = tuple(1.0 / len(terms) for _ in terms)
        else:
            if not isinstance(raw_weights, list) or not all(
                isinstance(w, int | float) and not isinstance(w, bool) for w in raw_weights
            ):
                raise _DerivedError("'weights' must be a list of numbers")
            weights = tuple(float(w) for w in raw_weights)
        return cls(terms, weights)

    def to_value(self) -> dict[str, Any]:
        """The YAML/JSON form (``mean`` for a single group, else ``from`` + ``weights``)."""
        if len(self.terms) == 1:
            return {"mean": list(self.terms[0])}
        return {
            "from": [term[0] if len(term) == 1 else list(term) for term in self.terms],
            "weights": list(self.weights),
        }


def parse_derived(
    raw: Mapping[str, Any], keypoints: Sequence[str], where: str
) -> dict[str, DerivedKeypoint]:
    """Validate a template's ``derived`` table against its keypoint names.

    Raises:
        ValueError: with ``where`` and the offending point's name in the message.
    """
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where}: 'derived' must map keypoint names to definitions")
    known = set(keypoints)
    out: dict[str, DerivedKeypoint] = {}
    for name, value in raw.items():
        if name not in known:
            raise ValueError(f"{where}: derived keypoint {name!r} is not one of the keypoints")
        try:
            derived = (
                value if isinstance(value, DerivedKeypoint) else DerivedKeypoint.from_value(value)
            )
        except _DerivedError as exc:
            raise ValueError(f"{where}: derived keypoint {name!r} {exc}") from None
        if name in derived.inputs:
            raise ValueError(f"{where}: derived keypoint {name!r} is defined from itself")
        out[str(name)] = derived
    return out
