"""Which BlazePose landmarks are predicted as not labeled: exact geometric cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posekit.models.blazepose.visibility import (
    BACK_VIEW,
    FAR_EAR_YAW,
    FAR_EYE_YAW,
    axis_yaw,
    face_away_angle,
    hidden_landmarks,
    outside_image,
)

NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = 0, 2, 5, 7, 8
LEFT_EYE_POINTS, RIGHT_EYE_POINTS = [1, 2, 3], [4, 5, 6]


def _head(yaw_degrees: float, *, eye_yaw: float | None = None, facing: float = 0.0) -> np.ndarray:
    """``(1, 33, 3)`` landmarks of a head whose ear axis (right -> left ear, 20 px) is
    turned ``yaw_degrees`` out of the image plane (positive: the left ear farther);
    the eye axis likewise (``eye_yaw``, default the same); the nose ``facing``
    degrees away from the camera, seen from the ears' midpoint."""
    xyz = np.zeros((1, 33, 3))
    for (left, right), angle in (
        ((LEFT_EAR, RIGHT_EAR), yaw_degrees),
        ((LEFT_EYE, RIGHT_EYE), yaw_degrees if eye_yaw is None else eye_yaw),
    ):
        a = math.radians(angle)
        half = 10.0 * np.array([math.cos(a), 0.0, math.sin(a)])
        xyz[0, left], xyz[0, right] = half, -half
    for i in (1, 3):
        xyz[0, i] = xyz[0, LEFT_EYE]
    for i in (4, 6):
        xyz[0, i] = xyz[0, RIGHT_EYE]
    f = math.radians(facing)
    xyz[0, NOSE] = 12.0 * np.array([0.0, math.sin(f), -math.cos(f)])  # -z: towards the camera
    return xyz


def _hidden(xyz: np.ndarray, **kwargs) -> list[int]:
    return np.flatnonzero(hidden_landmarks(xyz, np.ones((1, 33)), **kwargs)[0]).tolist()


def test_angles_are_measured_as_written():
    xyz = _head(70.0, eye_yaw=-30.0, facing=120.0)
    assert axis_yaw(xyz, LEFT_EAR, RIGHT_EAR)[0] == pytest.approx(70.0)
    assert axis_yaw(xyz, LEFT_EYE, RIGHT_EYE)[0] == pytest.approx(-30.0)
    assert face_away_angle(xyz)[0] == pytest.approx(120.0)


def test_frontal_and_three_quarter_faces_keep_every_point():
    assert _hidden(_head(0.0)) == []
    assert _hidden(_head(FAR_EAR_YAW - 1.0, eye_yaw=40.0)) == []


@pytest.mark.parametrize(("sign", "far_ear"), [(1, LEFT_EAR), (-1, RIGHT_EAR)])
def test_the_far_ear_of_a_face_in_profile_is_left_out(sign, far_ear):
    assert _hidden(_head(sign * (FAR_EAR_YAW + 0.5), eye_yaw=sign * 40.0)) == [far_ear]


def test_a_strict_profile_also_leaves_out_the_far_eye():
    hidden = _hidden(_head(-80.0, eye_yaw=-(FAR_EYE_YAW + 0.5)))
    assert hidden == [*RIGHT_EYE_POINTS, RIGHT_EAR]


def test_seen_from_behind_the_eyes_are_left_out_but_not_the_nose():
    assert _hidden(_head(10.0, facing=BACK_VIEW + 0.5)) == [*LEFT_EYE_POINTS, *RIGHT_EYE_POINTS]
    assert _hidden(_head(10.0, facing=BACK_VIEW - 1.0)) == []
    assert NOSE not in _hidden(_head(10.0, facing=180.0))


def test_rules_can_be_switched_off():
    xyz = _head(80.0, eye_yaw=80.0, facing=170.0)
    presence = np.ones((1, 33))
    presence[0, 27] = 0.49
    assert hidden_landmarks(xyz, presence, self_occlusion=False)[0].nonzero()[0].tolist() == [27]
    assert not hidden_landmarks(xyz, presence, self_occlusion=False, min_presence=None).any()
    assert hidden_landmarks(xyz, presence, min_presence=0.4)[0, 27] == np.False_
    assert hidden_landmarks(np.zeros((0, 33, 3)), np.zeros((0, 33))).shape == (0, 33)


def test_points_clearly_outside_the_image():
    # a 100 x 50 image covers [-0.5, 99.5] x [-0.5, 49.5]; tolerance 3% of a 200 px crop = 6 px
    points = np.array(
        [[[-6.5, 10], [-6.6, 10], [105.5, 10], [105.6, 10], [50, -6.6], [50, 55.6], [50, 25]]]
    )
    out = outside_image(points, np.array([200.0]), (100, 50), 0.03)
    assert out[0].tolist() == [False, True, False, True, True, True, False]
    assert outside_image(points, np.array([200.0]), (100, 50), 0.0)[0].tolist() == [
        True, True, True, True, True, True, False,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("option", "value"),
    [("min_presence", 1.5), ("min_presence", -0.1), ("outside_tolerance", -0.01),
     ("outside_tolerance", float("nan"))],
)  # fmt: skip
def test_estimator_options_are_checked_before_loading(option, value):
    from posekit.models.blazepose import BlazePoseEstimator

    with pytest.raises(ValueError, match=option):
        BlazePoseEstimator(model_dir="/nonexistent", **{option: value})
