"""The ``yolo:`` backends on real Ultralytics models (random weights, never downloaded).

Ultralytics does not install beside the main test environment's torch 2.13, so
these tests carry the ``ultralytics`` marker and ``.ci/run`` runs them in a second
virtual environment (torch 2.14.1 + torchvision 0.29.1 + the ``[ultralytics]``
extra). Elsewhere they skip with that reason.

The models are built from Ultralytics' own YAML configs (``yolov8n.yaml``,
``yolov8n-pose.yaml``) with random weights; the classification biases are set so
that a random model predicts confident boxes of two classes (person and car), which
lets the tests check the person-class filter and the score threshold on real
Ultralytics outputs.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from posekit.core import Detections
from posekit.models import create_detector, create_pose_estimator
from posekit.skeleton import get_preset

from .tiny_checkpoints import YOLO_CAR as CAR
from .tiny_checkpoints import YOLO_PERSON as PERSON
from .tiny_checkpoints import save_random_yolo, save_tiny_vitpose

pytestmark = [
    pytest.mark.ultralytics,
    pytest.mark.skipif(
        importlib.util.find_spec("ultralytics") is None,
        reason="ultralytics not installed here: .ci/run runs these tests in its second "
        "environment (torch 2.14.1 + the [ultralytics] extra)",
    ),
]


@pytest.fixture(scope="module", autouse=True)
def _offline() -> None:
    os.environ["YOLO_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def detector_weights(tmp_path_factory) -> Path:
    return save_random_yolo(tmp_path_factory.mktemp("yolo") / "yolov8n-random.pt")


@pytest.fixture(scope="module")
def pose_weights(tmp_path_factory) -> Path:
    return save_random_yolo(tmp_path_factory.mktemp("yolo") / "yolov8n-pose-random.pt", pose=True)


@pytest.fixture(scope="module")
def image(shared_data: Path) -> np.ndarray:
    from posekit.media.image import load_image

    return load_image(shared_data / "coco-val2017-sample" / "images" / "000000000785.jpg")


def _raw(weights: Path, image: np.ndarray, **options):
    from ultralytics import YOLO

    (result,) = YOLO(str(weights)).predict(
        np.ascontiguousarray(image[..., ::-1]), verbose=False, **options
    )
    return result


def test_detector_keeps_person_boxes_only(detector_weights, image, caplog):
    raw = _raw(detector_weights, image, conf=0.25)
    classes = raw.boxes.cls.cpu().numpy().astype(int)
    assert {PERSON, CAR} <= set(classes.tolist())  # the model sees persons and cars

    with caplog.at_level(logging.INFO, logger="posekit.models.ultralytics_yolo"):
        detector = create_detector(f"yolo:{detector_weights}", score_threshold=0.25)
        (dets,) = detector.detect([image])
    assert isinstance(dets, Detections) and len(dets) > 0
    persons = _raw(detector_weights, image, conf=0.25, classes=[PERSON])
    person_boxes = persons.boxes.xyxy.cpu().numpy()
    # every box posekit returns is one of Ultralytics' person boxes, none a car
    for box in dets.boxes:
        assert np.min(np.abs(person_boxes - box).max(axis=1)) < 1e-3
    assert np.all(dets.scores >= 0.25)
    assert "YOLO detector ran on cpu" in caplog.text  # the device that actually ran
    detector.close()


def test_detector_score_threshold(detector_weights, image):
    raw = _raw(detector_weights, image, conf=0.01, classes=[PERSON])
    person_score = float(raw.boxes.conf.max())
    spec = f"yolo:{detector_weights}"
    above = create_detector(spec, score_threshold=min(1.0, person_score + 0.01))
    assert len(above.detect([image])[0]) == 0
    below = create_detector(spec, score_threshold=person_score - 0.05)
    assert len(below.detect([image])[0]) > 0


def test_pose_reads_raw_keypoint_confidences(pose_weights, image):
    raw = _raw(pose_weights, image, conf=0.25, classes=[PERSON])
    boxes = raw.boxes.xyxy.cpu().numpy()[:5]
    data = raw.keypoints.data.cpu().numpy()[:5]
    assert len(boxes) > 0

    estimator = create_pose_estimator(f"yolo:{pose_weights}")
    dets = Detections(boxes, np.ones(len(boxes)))
    coco17 = get_preset("coco17")
    (instances,) = estimator.estimate([image], [dets], coco17)
    assert len(instances) == len(boxes)
    for inst, points in zip(instances, data):
        # raw confidences, including those under 0.5 that Ultralytics' fields hide
        np.testing.assert_array_equal(inst.keypoint_scores, points[:, 2].astype(np.float32))
        assert inst.source == "model:yolo" and inst.status == "predicted"
    scores = np.concatenate([i.keypoint_scores for i in instances])
    assert np.any(scores < 0.5) and np.any(scores > 0.5)


def test_pose_maps_onto_a_template_by_name(pose_weights, image):
    raw = _raw(pose_weights, image, conf=0.25, classes=[PERSON])
    boxes = raw.boxes.xyxy.cpu().numpy()[:2]
    data = raw.keypoints.data.cpu().numpy()[:2]
    halpe = get_preset("halpe26")  # COCO-17 points by name plus 9 the model lacks
    estimator = create_pose_estimator(f"yolo:{pose_weights}")
    (instances,) = estimator.estimate([image], [Detections(boxes, np.ones(len(boxes)))], halpe)
    coco_names = get_preset("coco17").keypoints
    for inst, points in zip(instances, data):
        assert inst.keypoints.shape == (halpe.num_keypoints, 2)
        for k, name in enumerate(coco_names):
            j = halpe.index(name)
            np.testing.assert_allclose(inst.keypoints[j], points[k, :2], atol=1e-4)
        missing = [halpe.index(n) for n in halpe.keypoints if n not in coco_names]
        missing = [j for j in missing if halpe.keypoints[j] not in halpe.derived]
        assert np.all(inst.visibility[missing] == 0)


def test_cli_yolo_detector_with_vitpose(detector_weights, shared_data, tmp_path, capsys):
    from posekit.cli import main

    vitpose = save_tiny_vitpose(tmp_path / "vitpose")
    images = shared_data / "coco-val2017-sample" / "images"
    out = tmp_path / "pred.json"
    args = ["-q", "predict", str(images), "-o", str(out)]
    assert (
        main([*args, "--detector", f"yolo:{detector_weights}", "--pose", f"vitpose:{vitpose}"]) == 0
    )
    data = json.loads(out.read_text())
    assert len(data["images"]) == 4 and data["annotations"]
    for ann in data["annotations"]:
        assert ann["posekit"]["source"].startswith("model:vitpose")
        assert len(ann["keypoints"]) == 51


def test_cli_yolo_pose(pose_weights, shared_data, tmp_path):
    """One-stage use: the YOLO-pose model finds the people and their keypoints."""
    from posekit.cli import main

    image = shared_data / "coco-val2017-sample" / "images" / "000000000785.jpg"
    out = tmp_path / "pred.json"
    spec = f"yolo:{pose_weights}"
    assert (
        main(["-q", "predict", str(image), "-o", str(out), "--detector", spec, "--pose", spec]) == 0
    )
    data = json.loads(out.read_text())
    assert data["annotations"]
    assert {a["posekit"]["source"] for a in data["annotations"]} == {"model:yolo"}
    for ann in data["annotations"]:
        assert len(ann["keypoints"]) == 51 and ann["score"] >= 0.05  # the default minimum
