"""predict: top-down prediction, with fake backends and on a real image with BlazePose."""

from __future__ import annotations

import numpy as np
import pytest

from fakes import BrightnessDetector, GridPose
from posekit.core import Detections
from posekit.models.registry import create_detector
from posekit.pipeline import predict
from posekit.skeleton import get_preset

BOX = np.array([280.79, 44.73, 280.79 + 218.7, 44.73 + 346.68], np.float32)


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


# ------------------------------------------------------------- without any real model
def synthetic(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def test_predict_runs_the_detector_then_the_estimator_on_the_batch():
    detector, estimator = BrightnessDetector(), GridPose()
    images = [synthetic(0), synthetic(1), synthetic(2)]
    people = predict(images, get_preset("coco17"), detector, estimator)
    expected = [len(d) for d in BrightnessDetector().detect(images)]
    assert [len(p) for p in people] == expected
    assert detector.batch_sizes == [3] and estimator.calls == 1
    for image_people, dets in zip(people, detector.detect(images)):
        for person, box in zip(image_people, dets.boxes):
            assert person.num_keypoints == 17
            np.testing.assert_allclose(person.box, box)


def test_predict_uses_given_detections_without_a_detector():
    boxes = Detections(np.array([[0, 0, 20, 30], [5, 5, 40, 40]], np.float32), [0.8, 0.6])
    people = predict([synthetic(0)], get_preset("coco17"), None, GridPose(), [boxes])
    assert len(people) == 1 and [p.score for p in people[0]] == pytest.approx([0.8, 0.6])


def test_predict_checks_its_arguments_without_a_model():
    images = [synthetic(0)]
    with pytest.raises(ValueError, match="detector or detections"):
        predict(images, get_preset("coco17"), None, GridPose())
    with pytest.raises(ValueError, match="1 images but 2"):
        predict(images, get_preset("coco17"), None, GridPose(), [Detections([], [])] * 2)
    assert predict([], get_preset("coco17"), BrightnessDetector(), GridPose()) == []
