"""Ultralytics YOLO backend (optional [ultralytics] extra)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from posekit.core import Detections
from posekit.models import ModelError, create_detector, create_pose_estimator
from posekit.models.boxes import match_boxes
from posekit.skeleton import get_preset

HAVE_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None
needs_ultralytics = pytest.mark.skipif(
    not HAVE_ULTRALYTICS, reason="ultralytics not installed (optional [ultralytics] extra)"
)
DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "coco-val2017-sample"


def test_match_boxes_pairs_by_iou():
    boxes = np.array([[0, 0, 10, 10], [50, 50, 60, 70], [100, 100, 110, 110]])
    candidates = np.array([[51, 50, 61, 70], [0, 1, 10, 11]])
    best, iou = match_boxes(boxes, candidates)
    assert best[:2].tolist() == [1, 0]
    assert iou[0] == pytest.approx(90 / 110) and iou[2] == 0.0
    none, zero = match_boxes(boxes, np.zeros((0, 4)))
    assert none.tolist() == [-1, -1, -1] and zero.tolist() == [0, 0, 0]


@pytest.mark.skipif(HAVE_ULTRALYTICS, reason="checks the message shown without ultralytics")
def test_missing_extra_is_explained():
    with pytest.raises(ModelError, match=r"posekit\[ultralytics\].*AGPL-3.0"):
        create_detector("yolo:yolov8n.pt")
    with pytest.raises(ModelError, match=r"posekit\[ultralytics\]"):
        create_pose_estimator("yolo:yolov8n-pose.pt")


def _weights(name: str) -> Path:
    # Tests never download: weights must already sit next to the shared data.
    path = DATA.parent / "weights" / name
    if not path.is_file():
        pytest.skip(f"YOLO weights {name} not available at {path} (tests do not download)")
    return path


@needs_ultralytics
def test_yolo_detector_returns_person_boxes():
    from posekit.media.image import load_image

    detector = create_detector(f"yolo:{_weights('yolov8n.pt')}", score_threshold=0.25)
    image = load_image(DATA / "images" / "000000000785.jpg")
    (dets,) = detector.detect([image])
    assert isinstance(dets, Detections) and len(dets) >= 1
    assert np.all(dets.scores >= 0.25)
    assert np.all(dets.boxes[:, 2] <= image.shape[1]) and np.all(dets.boxes[:, 3] <= image.shape[0])


@needs_ultralytics
def test_yolo_pose_reads_raw_keypoint_confidences():
    from posekit.media.image import load_image

    estimator = create_pose_estimator(f"yolo:{_weights('yolov8n-pose.pt')}")
    image = load_image(DATA / "images" / "000000000785.jpg")
    detector = create_detector(f"yolo:{_weights('yolov8n.pt')}", score_threshold=0.25)
    dets = detector.detect([image])
    (instances,) = estimator.estimate([image], dets, get_preset("coco17"))
    assert len(instances) == len(dets[0])
    scores = np.concatenate([i.keypoint_scores for i in instances])
    assert np.any((scores > 0) & (scores < 0.5))  # low confidences are kept, not zeroed
