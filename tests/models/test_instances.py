"""Model keypoints -> Instance on a template (models/instances.py)."""

import numpy as np
import pytest

from posekit.models.instances import inside_image, predicted_instance

# Model order: a, b, c. Template order: b, x (model lacks it), a, c.
MAPPING = np.array([1, -1, 0, 2])
POINTS = np.array([[5.0, 5.0], [99.4, 10.0], [120.0, 10.0]], np.float32)
SCORES = np.array([0.9, 0.8, 0.95], np.float32)


def make(**changes):
    options = dict(
        image_size=(100, 50),
        visible_threshold=0.5,
        box=np.array([0, 0, 100, 50]),
        score=0.7,
        source="model:test",
    )
    options.update(changes)
    return predicted_instance(POINTS, SCORES, MAPPING, **options)


def test_maps_by_index_and_sets_visibility():
    inst = make()
    assert inst.status == "predicted" and inst.source == "model:test" and inst.score == 0.7
    np.testing.assert_allclose(inst.keypoints, [[99.4, 10], [0, 0], [5, 5], [120, 10]])
    # b inside and confident: 2; x missing: 0; a: 2; c outside the 100 px wide image: 1
    assert inst.visibility.tolist() == [2, 0, 2, 1]
    np.testing.assert_allclose(inst.keypoint_scores, [0.8, 0, 0.9, 0.95])
    assert inst.keypoint_scores.dtype == np.float32 and inst.visibility.dtype == np.uint8


def test_a_wider_image_makes_the_outside_point_visible():
    assert make(image_size=(200, 50)).visibility.tolist() == [2, 0, 2, 2]


def test_low_score_is_occluded_and_visibility_scores_decide_when_given():
    assert make(visible_threshold=0.85).visibility.tolist() == [1, 0, 2, 1]
    own = np.array([0.1, 0.9, 0.9], np.float32)
    inst = make(visibility_scores=own, image_size=(200, 50))
    assert inst.visibility.tolist() == [2, 0, 1, 2]
    np.testing.assert_allclose(inst.keypoint_scores, [0.8, 0, 0.9, 0.95])  # scores unchanged


def test_unpredicted_points_are_not_labeled_but_keep_their_score():
    inst = make(labeled=np.array([True, False, True]))
    assert inst.visibility.tolist() == [0, 0, 2, 1]
    assert inst.keypoints[0].tolist() == [0, 0]
    assert inst.keypoint_scores[0] == pytest.approx(0.8)


def test_inside_image_uses_pixel_centre_convention():
    points = np.array([[-0.5, -0.5], [9.5, 4.5], [9.6, 0], [0, -0.6]])
    assert inside_image(points, 10, 5).tolist() == [True, True, False, False]
