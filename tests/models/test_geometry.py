"""Crop geometry: letterbox, alignment ROIs, rotated crops and their inverse."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from posekit.models.geometry import (
    box_to_roi,
    crop_rois,
    crop_to_image,
    letterbox,
    roi_from_alignment_points,
    roi_to_box,
)


def test_letterbox_pads_the_short_side_and_maps_back():
    image = np.full((50, 100, 3), 200, np.uint8)
    canvas, box = letterbox(image, 64)
    assert canvas.shape == (64, 64, 3) and canvas.dtype == np.uint8
    assert box.pad_x == 0 and box.pad_y == 16
    assert canvas[0, 32].tolist() == [0, 0, 0] and canvas[32, 32].tolist() == [200] * 3
    # Model-space edges land on the image's outer pixel edges (centre convention).
    corners = box.to_image(np.array([[0.0, 16.0], [64.0, 48.0]]))
    np.testing.assert_allclose(corners, [[-0.5, -0.5], [99.5, 49.5]], atol=1e-4)


def test_letterbox_rejects_an_empty_image():
    with pytest.raises(ValueError, match="must be positive"):
        letterbox(np.zeros((0, 10, 3), np.uint8), 64)


def test_alignment_points_give_size_and_rotation():
    up = roi_from_alignment_points([[100, 100]], [[100, 50]], enlarge=1.25)
    np.testing.assert_allclose(up, [[100, 100, 125, 0]], atol=1e-9)
    right = roi_from_alignment_points([[100, 100]], [[150, 100]], enlarge=1.0)
    np.testing.assert_allclose(right[0, 2:], [100, math.pi / 2])
    # Angles are wrapped to [-pi, pi).
    down = roi_from_alignment_points([[0, 0]], [[0, 10]], enlarge=1.0)
    assert -math.pi <= down[0, 3] < math.pi and abs(abs(down[0, 3]) - math.pi) < 1e-9


def test_box_to_roi_and_back():
    rois = box_to_roi(np.array([[0, 0, 10, 20]]), 1.25)
    np.testing.assert_allclose(rois, [[5, 10, 25, 0]])
    np.testing.assert_allclose(roi_to_box(rois), [[-7.5, -2.5, 17.5, 22.5]])
    tilted = rois.copy()
    tilted[0, 3] = math.pi / 4
    width = roi_to_box(tilted)[0, 2] - roi_to_box(tilted)[0, 0]
    assert width == pytest.approx(25 * math.sqrt(2), rel=1e-5)


@pytest.mark.parametrize("rotation", [0.0, 0.5, -2.0])
def test_a_bright_pixel_maps_back_to_where_it_was(rotation):
    image = np.zeros((120, 160, 3), np.uint8)
    image[70, 90] = 255
    roi = np.array([[80.0, 60.0, 64.0, rotation]])
    crop = crop_rois(image, roi, 64)[0].astype(np.float64).sum(axis=2)
    row, col = np.unravel_index(np.argmax(crop), crop.shape)
    back = crop_to_image(np.array([[[col + 0.5, row + 0.5]]]), roi, 64)[0, 0]
    np.testing.assert_allclose(back, [90, 70], atol=1.0)


def test_large_rois_are_cut_from_a_shrunk_copy():
    image = np.zeros((400, 400, 3), np.uint8)
    image[150:250, 150:250] = 255
    crop = crop_rois(image, np.array([[200.0, 200.0, 400.0, 0.0]]), 32)[0]
    assert crop.shape == (32, 32, 3)
    assert crop[16, 16, 0] == 255 and crop[2, 2, 0] == 0


@settings(max_examples=50, deadline=None)
@given(
    st.floats(-500, 500),
    st.floats(-500, 500),
    st.floats(1, 400),
    st.floats(-math.pi, math.pi),
)
def test_the_crop_centre_is_the_roi_centre(cx, cy, side, rotation):
    roi = np.array([[cx, cy, side, rotation]])
    centre = crop_to_image(np.array([[[128.0, 128.0]]]), roi, 256)[0, 0]
    np.testing.assert_allclose(centre, [cx, cy], atol=1e-3)
    box = roi_to_box(roi)[0]
    assert box[0] <= cx <= box[2] and box[1] <= cy <= box[3]
