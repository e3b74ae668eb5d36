"""Numbers shared by the format modules: float32 values as the shortest decimals
that read back exactly, float matrices as JSON-ready lists, and the check that a
parsed JSON value is a finite number.

Coordinates are float32 in :class:`~posekit.core.Instance`; a writer that puts
``353.37`` in a text file must read back the same float32, and should not write
``353.3699951171875``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np

__all__ = [
    "decode_xywh_boxes",
    "encode_xywh_boxes",
    "is_finite_number",
    "rows_to_lists",
    "shortest_decimals",
]

# Integers above 2**53 are not exact in float64; never turn such floats into ints.
_MAX_EXACT_INT = float(2**53)


#: The largest finite float64 (ints beyond it do not convert to a float).
_FLOAT64_MAX = sys.float_info.max


def is_finite_number(value: Any) -> bool:
    """True for a finite JSON number: an ``int`` or ``float`` (not a ``bool``, not a
    numpy scalar), not NaN or infinite; an ``int`` too large for a float64 is not."""
    if type(value) is float:
        return math.isfinite(value)
    return type(value) is int and -_FLOAT64_MAX <= value <= _FLOAT64_MAX


def shortest_decimals(values: np.ndarray) -> np.ndarray:
    """For each float32 value, the float64 of the shortest decimal reading back as it.

    ``values`` is any float32 array; returns a float64 array of the same shape.
    Values that need more than 12 decimals keep their exact float64 value.
    """
    f32 = np.ascontiguousarray(values, dtype=np.float32)
    exact = f32.astype(np.float64)
    # Whole-array first pass: most coordinates in real files are integers.
    out = np.round(exact)
    ok = out.astype(np.float32) == f32
    if ok.all():
        return out
    flat_out, flat_exact, flat_f32 = out.reshape(-1), exact.reshape(-1), f32.reshape(-1)
    todo = np.flatnonzero(~ok.reshape(-1))
    flat_out[todo] = flat_exact[todo]  # fallback for values that need > 12 decimals
    for decimals in range(1, 13):
        if todo.size == 0:
            break
        candidate = np.round(flat_exact[todo], decimals)
        ok = candidate.astype(np.float32) == flat_f32[todo]
        flat_out[todo[ok]] = candidate[ok]
        todo = todo[~ok]
    return out


def encode_xywh_boxes(boxes: np.ndarray) -> np.ndarray:
    """``(N, 4) float32`` xyxy -> ``(N, 4) float64`` COCO xywh with the shortest decimals
    such that ``float32(x + w) == x2`` (the import rule) and likewise for ``y``."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    out = np.empty(boxes.shape, dtype=np.float64)
    out[:, :2] = shortest_decimals(boxes[:, :2])
    for start, end, size in ((0, 2, 2), (1, 3, 3)):
        origin = out[:, start]
        target = boxes[:, end]
        span = target.astype(np.float64) - origin
        result = span.copy()  # fallback: exact difference always reads back
        todo = np.arange(boxes.shape[0])
        for decimals in range(13):
            if todo.size == 0:
                break
            candidate = np.round(span[todo], decimals)
            ok = (origin[todo] + candidate).astype(np.float32) == target[todo]
            result[todo[ok]] = candidate[ok]
            todo = todo[~ok]
        out[:, size] = np.maximum(result, 0.0)
    return out


def decode_xywh_boxes(xywh: np.ndarray) -> np.ndarray:
    """``(N, 4) float64`` COCO xywh -> ``(N, 4) float32`` xyxy (ends computed in float64)."""
    out = np.empty(xywh.shape, dtype=np.float32)
    out[:, 0] = xywh[:, 0]
    out[:, 1] = xywh[:, 1]
    out[:, 2] = xywh[:, 0] + xywh[:, 2]
    out[:, 3] = xywh[:, 1] + xywh[:, 3]
    return out


def rows_to_lists(matrix: np.ndarray) -> list[list[Any]]:
    """Rows of a float64 matrix as JSON-ready lists; integral values become ints."""
    if matrix.shape[0] == 0:
        return []
    integral = (matrix == np.trunc(matrix)) & (np.abs(matrix) < _MAX_EXACT_INT)
    int_rows = integral.all(axis=1)
    if int_rows.all():
        return matrix.astype(np.int64).tolist()
    float_rows = ~integral.any(axis=1)
    if float_rows.all():
        return matrix.tolist()
    result: list[Any] = [None] * matrix.shape[0]
    int_index = np.flatnonzero(int_rows)
    for position, row in zip(int_index.tolist(), matrix[int_index].astype(np.int64).tolist()):
        result[position] = row
    float_index = np.flatnonzero(float_rows)
    for position, row in zip(float_index.tolist(), matrix[float_index].tolist()):
        result[position] = row
    for position in np.flatnonzero(~int_rows & ~float_rows).tolist():
        values = matrix[position].tolist()
        flags = integral[position].tolist()
        result[position] = [int(v) if f else v for v, f in zip(values, flags)]
    return result
