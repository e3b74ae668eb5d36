"""Evaluation: OKS keypoint AP/AR through pycocotools, plus per-keypoint errors.

Example:
    >>> from posekit.evaluation import evaluate
    >>> result = evaluate("val.json", "predictions.json")  # doctest: +SKIP
    >>> result.stats["AP"]  # doctest: +SKIP
"""

from posekit.evaluation.oks import (
    STAT_NAMES,
    EvalResult,
    EvaluationError,
    KeypointStats,
    evaluate,
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
