"""Which BlazePose landmarks to predict as labeled at all.

BlazePose returns all 33 landmarks for every person, hidden ones included: the far
ear of a face in profile, the eyes of a person seen from behind, a foot cut off by
the image border. Annotators leave such points out (visibility 0, COCO's "not
labeled"), so a prediction that labels them costs an edit each in review. These
rules decide, from the model's own 3-D landmarks (``x, y`` in image pixels and
``z``, its depth, on the same scale) and its presence output, which points to leave
out. Every other point stays labeled, visible or occluded as before.

The rules were measured with ``benchmarks/quality.py`` on the five shared sample
sets (ground-truth boxes, ``../shared/tools/correction_cost.py``); a point left out
that the annotators did label costs two edits (place it and mark it), one that
stays labeled but was left out costs one, so a rule only pays where it is right
about two times in three. Rules that did not pay there, and are therefore *not*
applied: a keypoint-score threshold (low-score limb points are as often labeled
and wrong as unlabeled), and the nose of a person seen from behind (PoseTrack
labels it as occluded).

* **Outside the image**: a point more than ``outside_tolerance`` x the crop side
  beyond the image border (annotators do not label points off the image; the
  tolerance keeps the points predicted just past the border, which are usually on
  it).
* **Not present**: the model's presence probability below ``min_presence`` (the
  landmark is not in the crop at all).
* **Far ear**: the ear axis turned at least :data:`FAR_EAR_YAW` degrees out of the
  image plane (the head in profile): the farther ear is behind the head.
* **Far eye**: the eye axis turned at least :data:`FAR_EYE_YAW` degrees (a strict
  profile): the farther eye is behind the nose bridge.
* **Back view**: the nose at least :data:`BACK_VIEW` degrees away from the camera,
  seen from the ears' midpoint: both eyes are behind the head.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BACK_VIEW",
    "FAR_EAR_YAW",
    "FAR_EYE_YAW",
    "axis_yaw",
    "face_away_angle",
    "hidden_landmarks",
    "outside_image",
]

#: Degrees out of the image plane from which the farther ear is left out.
FAR_EAR_YAW = 60.0
#: Degrees out of the image plane from which the farther eye is left out.
FAR_EYE_YAW = 75.0
#: Angle (degrees) between the face direction and the direction to the camera from
#: which the eyes are left out (0: facing the camera, 180: facing away).
BACK_VIEW = 160.0

_NOSE = 0
_LEFT_EYE, _RIGHT_EYE = 2, 5
_LEFT_EYE_POINTS, _RIGHT_EYE_POINTS = [1, 2, 3], [4, 5, 6]
_LEFT_EAR, _RIGHT_EAR = 7, 8


def axis_yaw(xyz: np.ndarray, left: int, right: int) -> np.ndarray:
    """``(N,)`` degrees by which the axis from landmark ``right`` to ``left`` leaves the
    image plane; positive when ``left`` is the farther point.

    Args:
        xyz: ``(N, 33, 3)`` landmarks: image pixels and depth (larger = farther).
    """
    d = xyz[:, left] - xyz[:, right]
    return np.degrees(np.arctan2(d[:, 2], np.hypot(d[:, 0], d[:, 1])))


def face_away_angle(xyz: np.ndarray) -> np.ndarray:
    """``(N,)`` degrees between the face direction (ears' midpoint to nose) and the
    direction to the camera: about 0 for a frontal face, 90 in profile, 180 from
    behind."""
    face = xyz[:, _NOSE] - (xyz[:, _LEFT_EAR] + xyz[:, _RIGHT_EAR]) / 2.0
    norm = np.maximum(np.linalg.norm(face, axis=1), 1e-9)
    return np.degrees(np.arccos(np.clip(-face[:, 2] / norm, -1.0, 1.0)))


def outside_image(
    points: np.ndarray, crop_sides: np.ndarray, image_size: tuple[int, int], tolerance: float
) -> np.ndarray:
    """``(N, K) bool``: points more than ``tolerance`` x their crop side beyond the image.

    Args:
        points: ``(N, K, 2)`` image pixels.
        crop_sides: ``(N,)`` side of each person's landmark crop (pixels).
        image_size: ``(width, height)``; the image covers [-0.5, W - 0.5] x [-0.5, H - 0.5].
        tolerance: fraction of the crop side.
    """
    width, height = image_size
    margin = (tolerance * np.asarray(crop_sides, np.float64))[:, None]
    x, y = points[..., 0], points[..., 1]
    return (
        (x < -0.5 - margin)
        | (x > width - 0.5 + margin)
        | (y < -0.5 - margin)
        | (y > height - 0.5 + margin)
    )


def hidden_landmarks(
    xyz: np.ndarray,
    presence: np.ndarray,
    *,
    self_occlusion: bool = True,
    min_presence: float | None = 0.5,
) -> np.ndarray:
    """``(N, 33) bool``: landmarks to predict as not labeled (the rules of this module
    except the image border, see :func:`outside_image`).

    Args:
        xyz: ``(N, 33, 3)`` landmarks in image pixels with the model's depth.
        presence: ``(N, 33)`` the model's presence probabilities.
        self_occlusion: apply the far-ear, far-eye and back-view rules.
        min_presence: presence below which a landmark is left out; None: no rule.

    Example:
        >>> xyz = np.zeros((1, 33, 3))
        >>> xyz[0, 7], xyz[0, 8] = (0, 0, 10), (1, 0, 0)  # the left ear far behind
        >>> xyz[0, 0] = (0.5, 0, -1)
        >>> np.flatnonzero(hidden_landmarks(xyz, np.ones((1, 33)))[0]).tolist()
        [7]
    """
    n = xyz.shape[0]
    hidden = np.zeros((n, 33), bool)
    if min_presence is not None:
        hidden |= presence[:, :33] < min_presence
    if not self_occlusion or n == 0:
        return hidden
    ear_yaw = axis_yaw(xyz, _LEFT_EAR, _RIGHT_EAR)
    hidden[:, _LEFT_EAR] |= ear_yaw >= FAR_EAR_YAW
    hidden[:, _RIGHT_EAR] |= ear_yaw <= -FAR_EAR_YAW
    eye_yaw = axis_yaw(xyz, _LEFT_EYE, _RIGHT_EYE)
    back = face_away_angle(xyz) >= BACK_VIEW
    hidden[:, _LEFT_EYE_POINTS] |= ((eye_yaw >= FAR_EYE_YAW) | back)[:, None]
    hidden[:, _RIGHT_EYE_POINTS] |= ((eye_yaw <= -FAR_EYE_YAW) | back)[:, None]
    return hidden
