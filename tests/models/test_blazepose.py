"""BlazePose backend on real COCO images with the real TFLite models."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from posekit.core import Detections
from posekit.media.image import load_image
from posekit.models import ModelError, create_detector, create_pose_estimator
from posekit.models.blazepose import BLAZEPOSE_KEYPOINTS, find_model_dir, generate_anchors
from posekit.models.boxes import weighted_nms
from posekit.skeleton import Skeleton, get_preset

pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
try:
    find_model_dir()
except ModelError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"BlazePose models unavailable: {exc}", allow_module_level=True)

MULTI_PERSON = 197388  # 5 annotated people


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.fixture(scope="module")
def coco(shared_data):
    folder = shared_data / "coco-val2017-sample"
    data = json.loads((folder / "person_keypoints.json").read_text())
    images = {i["id"]: i for i in data["images"]}

    def load(image_id: int):
        anns = [a for a in data["annotations"] if a["image_id"] == image_id and not a["iscrowd"]]
        return load_image(folder / "images" / images[image_id]["file_name"]), anns

    return load


@pytest.fixture(scope="module")
def detector():
    det = create_detector("blazepose")
    yield det
    det.close()


@pytest.fixture(scope="module")
def estimator():
    est = create_pose_estimator("blazepose")
    yield est
    est.close()


def _xyxy(ann) -> np.ndarray:
    x, y, w, h = ann["bbox"]
    return np.array([x, y, x + w, y + h], np.float32)


def test_anchor_count_and_range():
    anchors = generate_anchors()
    assert anchors.shape == (2254, 2)
    assert anchors.min() > 0 and anchors.max() < 1
    # the stride-8 grid comes first: 28x28 cells, 2 anchors each
    assert np.allclose(anchors[0], [0.5 / 28, 0.5 / 28])
    assert np.allclose(anchors[1568], [0.5 / 14, 0.5 / 14])


def test_weighted_nms_merges_overlaps_and_keeps_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.6, 0.8], np.float32)
    points = np.zeros((3, 1, 2), np.float32)
    out_boxes, out_scores, _ = weighted_nms(boxes, scores, points, 0.3)
    assert out_scores.tolist() == pytest.approx([0.9, 0.8])
    assert out_boxes[0, 0] == pytest.approx(0.6 / 1.5)  # score-weighted mean of x1


def test_detector_finds_several_people(coco, detector):
    image, anns = coco(MULTI_PERSON)
    dets = detector.detect([image])[0]
    assert dets.keypoints is not None and dets.keypoints.shape == (len(dets), 4, 2)
    assert np.all(np.diff(dets.scores) <= 0)
    gt_boxes = [_xyxy(a) for a in anns if a["num_keypoints"] > 0]
    matched = sum(max((_iou(g, b) for b in dets.boxes), default=0.0) >= 0.3 for g in gt_boxes)
    assert matched >= 3, f"only {matched} of {len(gt_boxes)} people found"


def test_estimator_on_gt_boxes_is_accurate(coco, estimator):
    skeleton = get_preset("coco17")
    close, total = 0, 0
    for image_id in (785, 196141, MULTI_PERSON):
        image, anns = coco(image_id)
        anns = [a for a in anns if a["num_keypoints"] >= 8]
        boxes = np.stack([_xyxy(a) for a in anns])
        people = estimator.estimate([image], [Detections(boxes, np.ones(len(boxes)))], skeleton)
        assert len(people[0]) == len(anns)
        for ann, inst in zip(anns, people[0]):
            assert inst.source == "model:blazepose" and inst.status == "predicted"
            assert 0.0 <= inst.score <= 1.0
            np.testing.assert_allclose(inst.box, _xyxy(ann))
            gt = np.asarray(ann["keypoints"], np.float32).reshape(17, 3)
            size = max(ann["bbox"][2], ann["bbox"][3])
            for name in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"):
                k = skeleton.index(name)
                if gt[k, 2] > 0:
                    total += 1
                    close += np.linalg.norm(inst.keypoints[k] - gt[k, :2]) < 0.1 * size
    assert total >= 30
    assert close / total >= 0.8, f"{close}/{total} torso points within 10% of the box size"


def test_unknown_template_points_are_not_labeled(coco, estimator):
    image, anns = coco(785)
    extra = Skeleton.from_dict(
        {
            "name": "nose_plus",
            "keypoints": ["nose", "left_hip", "tail"],
            "sigmas": [0.026, 0.107, 0.05],
        }
    )
    box = _xyxy(anns[0])[None]
    inst = estimator.estimate([image], [Detections(box, [1.0])], extra)[0][0]
    assert inst.visibility[2] == 0 and inst.keypoint_scores[2] == 0
    assert np.all(inst.visibility[:2] > 0)
    assert np.all(inst.keypoints[2] == 0)


def test_mediapipe33_template_keeps_every_landmark(coco):
    image, anns = coco(785)
    skeleton = get_preset("mediapipe33")
    assert skeleton.keypoints == BLAZEPOSE_KEYPOINTS
    box = Detections(_xyxy(anns[0])[None], [1.0])
    # every landmark is mapped; with the hidden-point rules off, every one is labeled
    options = dict(hide_self_occluded=False, min_presence=None, outside_tolerance=None)
    with create_pose_estimator("blazepose", **options) as everything:
        inst = everything.estimate([image], [box], skeleton)[0][0]
    assert np.all(inst.visibility > 0) and np.all(inst.keypoint_scores > 0)


def test_flip_test_agrees_with_plain_run(coco):
    image, anns = coco(785)
    box = Detections(_xyxy(anns[0])[None], [1.0])
    skeleton = get_preset("coco17")
    with (
        create_pose_estimator("blazepose", flip_test=True) as flipped,
        create_pose_estimator("blazepose") as plain,
    ):
        a = flipped.estimate([image], [box], skeleton)[0][0]
        b = plain.estimate([image], [box], skeleton)[0][0]
    size = anns[0]["bbox"][3]
    assert np.median(np.linalg.norm(a.keypoints - b.keypoints, axis=1)) < 0.05 * size


def test_empty_detections_give_empty_list(coco, estimator):
    image, _ = coco(785)
    empty = Detections(np.zeros((0, 4)), np.zeros(0))
    assert estimator.estimate([image], [empty], get_preset("coco17")) == [[]]


def test_wrong_model_dir_raises_model_error(tmp_path):
    with pytest.raises(ModelError, match=re.escape(str(tmp_path))):
        create_detector("blazepose", model_dir=tmp_path)
    with pytest.raises(ModelError, match=r"pose_landmark_full\.tflite"):
        create_pose_estimator(f"blazepose:{tmp_path}")


def test_bad_image_is_rejected(detector):
    with pytest.raises(ValueError, match="image #0"):
        detector.detect([np.zeros((10, 10), np.uint8)])


def test_importing_posekit_models_does_not_load_mediapipe():
    import subprocess

    code = (
        "import sys, posekit.models.blazepose, posekit.pipeline; "
        "print('mediapipe' in sys.modules, 'ai_edge_litert' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["False", "False"]
