"""assist: one pose per user box, with a fake estimator and with BlazePose."""

from __future__ import annotations

import numpy as np
import pytest

from fakes import GridPose
from posekit.models import registry
from posekit.pipeline import assist
from posekit.skeleton import get_preset

BOX = np.array([280.79, 44.73, 280.79 + 218.7, 44.73 + 346.68], np.float32)


def test_assist_with_a_box(image, estimator):
    people = assist(image, BOX, get_preset("coco17"), estimator)
    assert len(people) == 1
    inst = people[0]
    assert inst.status == "predicted" and inst.source == "model:blazepose"
    inside = (inst.keypoints[:, 0] > BOX[0] - 20) & (inst.keypoints[:, 0] < BOX[2] + 20)
    assert inside.mean() >= 0.9


def test_assist_by_spec_and_empty_boxes(image, blazepose):
    people = assist(image, BOX[None], get_preset("coco17"), "blazepose")
    assert len(people) == 1
    assert assist(image, np.zeros((0, 4)), get_preset("coco17"), "blazepose") == []


def test_assist_rejects_bad_boxes(image, estimator):
    with pytest.raises(ValueError, match="box #0"):
        assist(image, np.array([[10, 10, 5, 20]]), get_preset("coco17"), estimator)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        assist(image, np.zeros((2, 3)), get_preset("coco17"), estimator)


# ------------------------------------------------------------- without any real model
IMAGE = np.zeros((60, 80, 3), np.uint8)


def test_assist_gives_one_instance_per_box_in_order():
    boxes = np.array([[0, 0, 20, 30], [40, 10, 70, 50]], np.float32)
    people = assist(IMAGE, boxes, get_preset("coco17"), GridPose())
    assert len(people) == 2
    for person, box in zip(people, boxes):
        np.testing.assert_allclose(person.box, box)
        assert person.status == "predicted" and person.source == "model:gridpose"
        assert person.score == pytest.approx(1.0)  # a user's box is certain


def test_assist_accepts_a_single_box_and_no_boxes():
    assert len(assist(IMAGE, [1, 2, 30, 40], get_preset("coco17"), GridPose())) == 1
    estimator = GridPose()
    assert assist(IMAGE, np.zeros((0, 4)), get_preset("coco17"), estimator) == []
    assert estimator.calls == 0


def test_assist_by_spec_creates_and_closes_the_model(monkeypatch):
    made: list[GridPose] = []

    def factory(arg, **options):
        made.append(GridPose())
        return made[-1]

    monkeypatch.setitem(registry.POSE_ESTIMATORS, "grid", factory)
    people = assist(IMAGE, [[0, 0, 20, 30]], get_preset("coco17"), "grid")
    assert len(people) == 1 and len(made) == 1 and made[0].closed


@pytest.mark.parametrize(
    ("boxes", "match"),
    [
        ([[10, 10, 5, 20]], "box #0"),
        ([[0, 0, float("nan"), 5]], "box #0"),
        (np.zeros((2, 3)), r"\(N, 4\)"),
    ],
)
def test_assist_rejects_bad_boxes_without_a_model(boxes, match):
    estimator = GridPose()
    with pytest.raises(ValueError, match=match):
        assist(IMAGE, np.asarray(boxes, np.float32), get_preset("coco17"), estimator)
    assert estimator.calls == 0
