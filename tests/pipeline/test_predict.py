"""predict and assist on real images with the BlazePose models."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.media.image import load_image
from posekit.models import Detections, ModelError, create_detector, create_pose_estimator
from posekit.models.blazepose import find_model_dir
from posekit.pipeline import assist, predict
from posekit.skeleton import get_preset

pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
try:
    find_model_dir()
except ModelError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"BlazePose models unavailable: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def image(shared_data):
    # one person, 17 labeled keypoints, box (280.8, 44.7) size 218.7 x 346.7
    return load_image(shared_data / "coco-val2017-sample" / "images" / "000000000785.jpg")


BOX = np.array([280.79, 44.73, 280.79 + 218.7, 44.73 + 346.68], np.float32)


@pytest.fixture(scope="module")
def estimator():
    est = create_pose_estimator("blazepose")
    yield est
    est.close()


def test_predict_with_detector_finds_the_person(image, estimator):
    with create_detector("blazepose") as detector:
        people = predict([image, image], get_preset("coco17"), detector, estimator)
    assert len(people) == 2 and len(people[0]) >= 1
    best = max(people[0], key=lambda p: p.score)
    centre = (best.box[:2] + best.box[2:]) / 2
    assert BOX[0] < centre[0] < BOX[2] and BOX[1] < centre[1] < BOX[3]
    assert best.num_keypoints == 17


def test_predict_with_given_detections(image, estimator):
    dets = [Detections(BOX[None], [0.9])]
    people = predict([image], get_preset("coco17"), None, estimator, dets)
    assert len(people[0]) == 1
    nose = people[0][0].keypoints[0]
    # the nose of this skier is in the top fifth of the box
    assert BOX[1] < nose[1] < BOX[1] + 0.2 * (BOX[3] - BOX[1])


def test_predict_needs_detector_or_detections(image, estimator):
    with pytest.raises(ValueError, match="detector or detections"):
        predict([image], get_preset("coco17"), None, estimator)
    with pytest.raises(ValueError, match="1 images but 2"):
        predict([image], get_preset("coco17"), None, estimator, [Detections([], [])] * 2)


def test_assist_with_a_box(image, estimator):
    people = assist(image, BOX, get_preset("coco17"), estimator)
    assert len(people) == 1
    inst = people[0]
    assert inst.status == "predicted" and inst.source == "model:blazepose"
    inside = (inst.keypoints[:, 0] > BOX[0] - 20) & (inst.keypoints[:, 0] < BOX[2] + 20)
    assert inside.mean() >= 0.9


def test_assist_by_spec_and_empty_boxes(image):
    people = assist(image, BOX[None], get_preset("coco17"), "blazepose")
    assert len(people) == 1
    assert assist(image, np.zeros((0, 4)), get_preset("coco17"), "blazepose") == []


def test_assist_rejects_bad_boxes(image, estimator):
    with pytest.raises(ValueError, match="box #0"):
        assist(image, np.array([[10, 10, 5, 20]]), get_preset("coco17"), estimator)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        assist(image, np.zeros((2, 3)), get_preset("coco17"), estimator)
