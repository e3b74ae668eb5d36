"""Box IoU, NMS, weighted NMS, matching and filtering (models/boxes.py)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from posekit.core import Detections
from posekit.models.boxes import (
    box_area,
    box_iou,
    filter_person_boxes,
    match_boxes,
    nms,
    weighted_nms,
)


def random_boxes(draw_count: int):
    corners = arrays(np.float64, (draw_count, 2), elements=st.floats(0, 100))
    sizes = arrays(np.float64, (draw_count, 2), elements=st.floats(0, 50))
    return st.tuples(corners, sizes).map(lambda cs: np.concatenate([cs[0], cs[0] + cs[1]], 1))


def test_box_iou_known_values():
    a = np.array([[0.0, 0, 10, 10], [0, 0, 0, 0]])
    b = np.array([[5.0, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [50 / 150, 1.0, 0.0])
    np.testing.assert_array_equal(iou[1], [0, 0, 0])  # empty box: no union, IoU 0
    np.testing.assert_array_equal(box_area(a), [100, 0])


def test_box_iou_keeps_float32():
    boxes = np.array([[0, 0, 10, 10]], np.float32)
    assert box_iou(boxes, boxes).dtype == np.float32


@settings(max_examples=50, deadline=None)
@given(random_boxes(5), random_boxes(4))
def test_box_iou_is_a_symmetric_ratio(a, b):
    iou = box_iou(a, b)
    assert np.all((iou >= 0) & (iou <= 1 + 1e-12))
    np.testing.assert_allclose(iou, box_iou(b, a).T)
    positive = box_area(a) > 0
    np.testing.assert_allclose(np.diag(box_iou(a, a))[positive], 1.0)


@settings(max_examples=50, deadline=None)
@given(random_boxes(8), arrays(np.float64, 8, elements=st.floats(0, 1)), st.floats(0.1, 0.9))
def test_nms_keeps_no_overlapping_pair_and_explains_every_drop(boxes, scores, threshold):
    keep = nms(boxes, scores, threshold)
    assert len(set(keep.tolist())) == len(keep)
    assert np.all(np.diff(scores[keep]) <= 0)  # best first
    kept = box_iou(boxes[keep], boxes[keep])
    assert np.all(kept[~np.eye(len(keep), dtype=bool)] <= threshold)
    for dropped in sorted(set(range(8)) - set(keep.tolist())):
        assert np.any(box_iou(boxes[dropped : dropped + 1], boxes[keep])[0] > threshold)


def test_nms_of_nothing():
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).tolist() == []


def test_weighted_nms_averages_clusters_by_score():
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.5, 1.5, 0.8], np.float32)
    points = np.array([[[0, 0]], [[3, 3]], [[9, 9]]], np.float32)
    out_boxes, out_scores, out_points = weighted_nms(boxes, scores, points, 0.3)
    np.testing.assert_allclose(out_scores, [1.5, 0.8])
    np.testing.assert_allclose(out_boxes[0], [1.5, 0, 11.5, 10])
    np.testing.assert_allclose(out_points[:, 0], [[2.25, 2.25], [9, 9]])
    empty = weighted_nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                         np.zeros((0, 4, 2), np.float32), 0.3)  # fmt: skip
    assert [e.shape for e in empty] == [(0, 4), (0,), (0, 4, 2)]


def test_match_boxes_picks_the_best_candidate():
    best, iou = match_boxes([[0, 0, 10, 10]], [[20, 20, 30, 30], [1, 0, 10, 10]])
    assert best.tolist() == [1] and iou[0] == pytest.approx(0.9)


def test_filter_person_boxes_returns_sorted_clipped_detections():
    dets = filter_person_boxes(
        [[-5, -5, 20, 20], [0, 0, 3, 30], [0, 0, 19, 19]],
        [0.6, 0.9, 0.7],
        score_threshold=0.5,
        iou_threshold=0.5,
        min_box_size=4,
        width=15,
        height=15,
    )
    assert isinstance(dets, Detections)
    np.testing.assert_allclose(dets.boxes, [[0, 0, 15, 15]])
    np.testing.assert_allclose(dets.scores, [0.7])
