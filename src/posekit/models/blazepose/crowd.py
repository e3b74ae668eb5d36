"""Two people's poses on one face: which pose took its neighbour's face, and a view of
the image without that neighbour.

When one person stands behind another, the landmark model on the front person's
crop can place the face on the face of the person behind (the larger, sharper face
in the crop), and the pose follows it. Two instances whose face points are centred
within :data:`FACE_CONFLICT` face sizes of each other claim the same face (two real
heads cannot overlap that much in the image); of the two, the one whose own box
holds that face less deeply (closer to its edge, or outside it) is the one that
took it. :func:`face_conflicts` finds such pairs; the estimator re-runs the loser on
:func:`without_neighbour`, the image with the neighbour's box painted over where it
lies outside the loser's own box.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FACE_CONFLICT", "face_conflicts", "resolved", "without_neighbour"]

#: Face centres closer than this many face sizes (the extent of the 11 face
#: landmarks) are the same face. Two people side by side are at least a head
#: (about 1.3-1.5 face sizes) apart.
FACE_CONFLICT = 1.0


def _faces(points33: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    face = np.asarray(points33, np.float64)[:, :11]
    centre = face.mean(axis=1)
    size = np.maximum(np.ptp(face, axis=1).max(axis=1), 1.0)
    return centre, size


def face_conflicts(
    points33: np.ndarray, boxes: np.ndarray, ratio: float = FACE_CONFLICT
) -> list[tuple[int, int]]:
    """``(loser, winner)`` pairs of poses ``(N, >=11, 2)`` that put their faces on one
    face, for xyxy ``boxes (N, 4)``: the loser is the pose whose face centre lies less
    deep inside its own box (distance to the nearest box edge over the box side;
    negative outside). Each pose loses at most once (to the nearest such face)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    n = len(boxes)
    if n < 2:
        return []
    centre, size = _faces(points33)
    side = np.maximum(boxes[:, 2:] - boxes[:, :2], 1.0)
    depth = (np.minimum(centre - boxes[:, :2], boxes[:, 2:] - centre) / side).min(axis=1)
    dist = np.linalg.norm(centre[:, None] - centre[None, :], axis=-1)
    same = dist < ratio * np.maximum(size[:, None], size[None, :])
    np.fill_diagonal(same, False)
    pairs = []
    for i in range(n):
        winners = np.flatnonzero(same[i] & (depth > depth[i]))
        if len(winners):
            pairs.append((i, int(winners[np.argmin(dist[i, winners])])))
    return pairs


def resolved(points33: np.ndarray, other33: np.ndarray, ratio: float = FACE_CONFLICT) -> bool:
    """Whether a pose's face ``(>=11, 2)`` is no longer on ``other33``'s face."""
    centre, size = _faces(np.stack([points33[:11], other33[:11]]))
    return bool(np.linalg.norm(centre[0] - centre[1]) >= ratio * size.max())


def without_neighbour(image: np.ndarray, own_box: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
    """A copy of ``image (H, W, 3)`` with the ``neighbour`` box (xyxy) filled with the
    image's mean colour where it lies outside ``own_box``; ``image`` itself when
    there is no such part."""
    height, width = image.shape[:2]
    limits = [width, height, width, height]
    a = np.clip(np.round(np.asarray(neighbour, np.float64)), 0, limits).astype(int)
    b = np.clip(np.round(np.asarray(own_box, np.float64)), 0, limits).astype(int)
    mask = np.zeros((height, width), bool)
    mask[a[1] : a[3], a[0] : a[2]] = True
    mask[b[1] : b[3], b[0] : b[2]] = False
    if not mask.any():
        return image
    out = image.copy()
    out[mask] = image.reshape(-1, image.shape[2]).mean(axis=0).astype(image.dtype)
    return out
