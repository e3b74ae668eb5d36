"""Tests for posekit.core.Instance."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from posekit import Instance, InstanceError, get_preset


def make(k=17, **kw):
    rng = np.random.default_rng(0)
    return Instance(rng.uniform(0, 100, (k, 2)), np.full(k, 2), **kw)


def test_arrays_are_normalised_and_not_labeled_points_zeroed():
    kps = np.arange(34, dtype=np.float64).reshape(17, 2)
    vis = np.array([2, 1, 0] + [2] * 14)
    inst = Instance(kps, vis)
    assert inst.keypoints.dtype == np.float32 and inst.visibility.dtype == np.uint8
    assert inst.keypoints[2].tolist() == [0.0, 0.0]
    assert inst.keypoints[1].tolist() == [2.0, 3.0]
    assert inst.num_labeled == 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keypoints": np.zeros((17, 3))}, "keypoints: expected shape (K, 2)"),
        ({"visibility": np.full(16, 2)}, "visibility: expected shape (17,)"),
        ({"visibility": np.array([3] + [2] * 16)}, "keypoint 0 has value 3"),
        ({"box": [10, 10, 5, 20]}, "x1 <= x2"),
        ({"box": [0, 0, 1]}, "box: expected shape (4,)"),
        ({"status": "done"}, "status: 'done' is not one of"),
        ({"source": "yolo"}, "source: expected 'manual' or 'model:<name>'"),
        ({"score": float("nan")}, "score: must be finite"),
        ({"keypoint_scores": np.zeros(5)}, "keypoint_scores: expected shape (17,)"),
    ],
)
def test_invalid_instances_name_the_field(kwargs, message):
    base = {"keypoints": np.zeros((17, 2)), "visibility": np.full(17, 2)}
    base.update(kwargs)
    with pytest.raises(InstanceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Instance(**base)


def test_nan_coordinates_only_allowed_where_not_labeled():
    kps = np.zeros((17, 2))
    kps[4] = np.nan
    vis = np.full(17, 2)
    with pytest.raises(InstanceError, match="keypoint 4 is labeled but not finite"):
        Instance(kps, vis)
    vis[4] = 0
    assert Instance(kps, vis).keypoints[4].tolist() == [0.0, 0.0]


def test_remap_marks_unmapped_points_not_labeled():
    inst = make(k=3, keypoint_scores=np.array([0.1, 0.2, 0.3]))
    out = inst.remap(np.array([2, -1, 0, 1]))
    assert out.visibility.tolist() == [2, 0, 2, 2]
    assert out.keypoints[1].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(out.keypoint_scores, [0.3, 0.0, 0.1, 0.2])
    np.testing.assert_array_equal(out.keypoints[0], inst.keypoints[2])


@given(st.integers(min_value=2, max_value=4000), st.integers(min_value=0, max_value=2**31))
def test_flip_twice_is_identity_and_swaps_sides(width, seed):
    coco = get_preset("coco17")
    rng = np.random.default_rng(seed)
    vis = rng.integers(0, 3, 17)
    inst = Instance(rng.uniform(0, width - 1, (17, 2)), vis, box=[1, 2, 3, 4])
    once = inst.flipped(coco.flip_index, width)
    lw, rw = coco.index("left_wrist"), coco.index("right_wrist")
    assert once.visibility[lw] == inst.visibility[rw]
    if inst.visibility[rw]:
        assert once.keypoints[lw, 0] == pytest.approx(width - 1 - inst.keypoints[rw, 0], abs=1e-3)
    twice = once.flipped(coco.flip_index, width)
    np.testing.assert_allclose(twice.keypoints, inst.keypoints, atol=1e-3)
    np.testing.assert_array_equal(twice.visibility, inst.visibility)
    np.testing.assert_allclose(twice.box, inst.box, atol=1e-4)


def test_equality_compares_arrays():
    a = make()
    b = a.copy()
    assert a == b
    b.keypoints = b.keypoints + 1
    assert a != b


def test_detections_subset_by_mask_and_by_index():
    from posekit.core import Detections

    dets = Detections(
        np.array([[0, 0, 1, 1], [1, 1, 2, 2], [2, 2, 3, 3]]),
        np.array([0.9, 0.2, 0.5]),
        np.arange(18).reshape(3, 3, 2),
    )
    kept = dets.subset(dets.scores >= 0.5)
    assert kept.scores.tolist() == pytest.approx([0.9, 0.5])
    assert kept.boxes[:, 0].tolist() == [0, 2]
    assert kept.keypoints.shape == (2, 3, 2)
    assert dets.subset([2]).boxes[0, 0] == 2
    with pytest.raises(ValueError, match="mask has shape"):
        dets.subset(np.array([True, False]))


def test_detections_check_shapes_on_construction():
    from posekit.core import Detections

    empty = Detections([], [])
    assert len(empty) == 0 and empty.boxes.shape == (0, 4) and empty.boxes.dtype == np.float32
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        Detections(np.zeros((2, 4)), [0.5])
    with pytest.raises(ValueError, match=r"keypoints shape \(1, 2\) does not match 2 boxes"):
        Detections(np.zeros((2, 4)), [0.5, 0.4], np.zeros((1, 2)))
