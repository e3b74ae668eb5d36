"""OKS-NMS and the minimum instance score on final poses."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.core import Instance
from posekit.pipeline.postprocess import instance_oks, oks_nms, postprocess_instances
from posekit.skeleton import get_preset

COCO = get_preset("coco17")


def _person(x0: float, y0: float, scale: float = 1.0, score: float | None = 0.9) -> Instance:
    """A standing COCO-17 person about 100 px tall (times ``scale``) at ``(x0, y0)``."""
    unit = np.array(
        [[50, 10], [47, 8], [53, 8], [44, 10], [56, 10], [40, 25], [60, 25], [35, 40],
         [65, 40], [33, 55], [67, 55], [43, 55], [57, 55], [42, 75], [58, 75], [42, 98],
         [58, 98]],
        np.float32,
    )  # fmt: skip
    xy = unit * scale + np.array([x0, y0], np.float32)
    return Instance(
        keypoints=xy,
        visibility=np.full(17, 2, np.uint8),
        score=score,
        source="model:test",
        status="predicted",
    )


def test_instance_oks_is_one_for_identical_and_small_for_far_apart():
    a, b, far = _person(0, 0), _person(1, 1), _person(300, 0)
    oks = instance_oks([a, b, far], COCO.sigmas)
    assert oks.shape == (3, 3)
    assert np.allclose(np.diag(oks), 1.0)
    assert oks[0, 1] > 0.9 and oks[1, 0] > 0.9
    assert oks[0, 2] < 1e-6


def test_instance_oks_ignores_points_not_labeled_in_both():
    a, b = _person(0, 0), _person(0, 0)
    b.keypoints[:5] += 500.0  # the head is far off, but not labeled in a
    a.visibility[:5] = 0
    assert instance_oks([a, b], COCO.sigmas)[0, 1] == pytest.approx(1.0)


def test_instance_oks_checks_the_number_of_sigmas():
    with pytest.raises(ValueError, match="17 keypoints but 14 sigmas"):
        instance_oks([_person(0, 0), _person(1, 1)], np.ones(14))


def test_oks_nms_drops_the_lower_scoring_duplicate_only():
    people = [_person(0, 0, score=0.45), _person(200, 0, score=0.8), _person(2, 1, score=0.95)]
    keep = oks_nms(people, COCO.sigmas, 0.5)
    assert keep.tolist() == [1, 2]


def test_oks_nms_keeps_two_people_side_by_side():
    people = [_person(0, 0), _person(45, 0, score=0.7)]
    assert oks_nms(people, COCO.sigmas, 0.5).tolist() == [0, 1]


def test_oks_nms_catches_a_smaller_copy_inside_a_person():
    big = _person(0, 0, scale=1.0, score=0.9)
    copy = _person(3, 2, scale=0.93, score=0.5)
    assert oks_nms([big, copy], COCO.sigmas, 0.5).tolist() == [0]


def test_oks_nms_threshold_above_one_keeps_everything():
    people = [_person(0, 0), _person(0, 0, score=0.1)]
    assert oks_nms(people, COCO.sigmas, 1.01).tolist() == [0, 1]


def test_instance_without_score_counts_as_certain():
    people = [_person(0, 0, score=0.99), _person(1, 0, score=None)]
    assert oks_nms(people, COCO.sigmas, 0.5).tolist() == [1]


def test_postprocess_applies_nms_then_the_minimum_score():
    people = [
        _person(0, 0, score=0.9),
        _person(1, 1, score=0.5),  # duplicate of the first
        _person(200, 0, score=0.03),  # junk under the minimum
        _person(400, 0, score=None),  # no score: kept
    ]
    kept = postprocess_instances(people, COCO, oks_threshold=0.5, min_score=0.05)
    assert kept == [people[0], people[3]]
    assert postprocess_instances([], COCO) == []
    assert len(postprocess_instances(people, COCO, oks_threshold=0.0)) == 4  # 0: no OKS-NMS
