"""Evaluation: OKS keypoint AP/AR exactly as pycocotools' COCOeval, plus per-keypoint errors.

The default engine is posekit's vectorised implementation (bit-identical to
pycocotools, several times faster); ``engine="faster-coco-eval"`` and
``engine="pycocotools"`` run those libraries on the same inputs.

Example:
    >>> from posekit.evaluation import evaluate
    >>> result = evaluate("val.json", "predictions.json")  # doctest: +SKIP
    >>> result.stats["AP"]  # doctest: +SKIP
"""

from posekit.evaluation.engines import ENGINES
from posekit.evaluation.oks import (
    STAT_NAMES,
    EvalResult,
    EvaluationError,
    KeypointStats,
    evaluate,
    template_for_names,
)

__all__ = [
    "ENGINES",
    "STAT_NAMES",
    "EvalResult",
    "EvaluationError",
    "KeypointStats",
    "evaluate",
    "template_for_names",
]
