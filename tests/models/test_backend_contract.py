"""The contract every backend keeps (the protocols of models/base.py).

Run for BlazePose (real TFLite models) and tiny random ViTPose / RT-DETR
checkpoints: one result per image in order, Detections / Instances of the right
shapes in the template's layout, visibility 0/1/2, and a close() that may be
called twice, after which the backend refuses to run.
"""

import importlib.util

import numpy as np
import pytest

from posekit.core import Detections, Instance
from posekit.models import ModelError, create_detector, create_pose_estimator
from posekit.models.base import Detector, PoseEstimator
from posekit.skeleton import get_preset

from .tiny_checkpoints import save_random_yolo, save_tiny_rtdetr, save_tiny_vitpose

HAVE_TRANSFORMERS = all(importlib.util.find_spec(m) for m in ("torch", "transformers"))
# Ultralytics runs in CI's second environment (tests marked ultralytics)
HAVE_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None


def _blazepose_available() -> bool:
    if importlib.util.find_spec("ai_edge_litert") is None:
        return False
    from posekit.models.blazepose import find_model_dir

    try:
        find_model_dir()
    except ModelError:
        return False
    return True


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
        rng.integers(0, 256, (90, 70, 3), dtype=np.uint8),
        np.full((64, 64, 3), 127, np.uint8),
    ]


@pytest.fixture(scope="module")
def detector_specs(tmp_path_factory):
    specs = {}
    if _blazepose_available():
        specs["blazepose"] = ("blazepose", {})
    if HAVE_TRANSFORMERS:
        folder = save_tiny_rtdetr(tmp_path_factory.mktemp("rtdetr"), {0: "person", 1: "dog"})
        specs["rtdetr"] = (f"rtdetr:{folder}", {"device": "cpu", "score_threshold": 0.0})
    if HAVE_ULTRALYTICS:
        path = save_random_yolo(tmp_path_factory.mktemp("yolo") / "det.pt")
        specs["yolo"] = (f"yolo:{path}", {"device": "cpu", "score_threshold": 0.25})
    return specs


@pytest.fixture(scope="module")
def estimator_specs(tmp_path_factory):
    specs = {}
    if _blazepose_available():
        specs["blazepose"] = ("blazepose", {})
    if HAVE_TRANSFORMERS:
        folder = save_tiny_vitpose(tmp_path_factory.mktemp("vitpose"))
        specs["vitpose"] = (f"vitpose:{folder}", {"device": "cpu"})
    if HAVE_ULTRALYTICS:
        path = save_random_yolo(tmp_path_factory.mktemp("yolo") / "pose.pt", pose=True)
        specs["yolo"] = (f"yolo:{path}", {"device": "cpu"})
    return specs


def _spec(specs, name):
    if name not in specs:  # an optional extra is missing
        pytest.skip(f"{name} backend not available here")
    return specs[name]


@pytest.mark.parametrize(
    "name", ["blazepose", "rtdetr", pytest.param("yolo", marks=pytest.mark.ultralytics)]
)
def test_detector_contract(name, detector_specs, images):
    spec, options = _spec(detector_specs, name)
    detector = create_detector(spec, **options)
    assert isinstance(detector, Detector) and detector.name == name and detector.device
    results = detector.detect(images)
    assert len(results) == len(images)
    for dets, image in zip(results, images):
        assert isinstance(dets, Detections)
        assert dets.boxes.shape == (len(dets), 4) and dets.boxes.dtype == np.float32
        assert dets.scores.shape == (len(dets),) and np.all(np.diff(dets.scores) <= 0)
        height, width = image.shape[:2]
        assert np.all(dets.boxes[:, [0, 1]] >= -0.5)
        assert np.all(dets.boxes[:, 2] <= width) and np.all(dets.boxes[:, 3] <= height)
    assert detector.detect([]) == []
    with pytest.raises(ValueError, match="image #1"):
        detector.detect([images[0], images[0][..., 0]])
    detector.close()
    detector.close()  # idempotent
    with pytest.raises(ModelError, match="closed"):
        detector.detect(images[:1])


@pytest.mark.parametrize(
    "name", ["blazepose", "vitpose", pytest.param("yolo", marks=pytest.mark.ultralytics)]
)
@pytest.mark.parametrize("template", ["coco17", "mediapipe33"])
def test_pose_estimator_contract(name, template, estimator_specs, images):
    spec, options = _spec(estimator_specs, name)
    skeleton = get_preset(template)
    estimator = create_pose_estimator(spec, **options)
    assert isinstance(estimator, PoseEstimator) and estimator.name == name and estimator.device
    detections = [
        Detections([[20, 10, 100, 110], [0, 0, 40, 60]], [0.9, 0.4]),
        Detections(np.zeros((0, 4)), np.zeros(0)),
        Detections([[8, 4, 56, 60]], [1.0]),
    ]
    results = estimator.estimate(images, detections, skeleton)
    assert [len(r) for r in results] == [2, 0, 1]
    for people, dets in zip(results, detections):
        for inst, box in zip(people, dets.boxes):
            assert isinstance(inst, Instance)
            assert inst.keypoints.shape == (skeleton.num_keypoints, 2)
            assert inst.visibility.dtype == np.uint8 and set(inst.visibility) <= {0, 1, 2}
            assert inst.keypoint_scores.shape == (skeleton.num_keypoints,)
            assert np.all((inst.keypoint_scores >= 0) & (inst.keypoint_scores <= 1))
            assert np.all(inst.keypoint_scores[inst.visibility == 0] == 0)
            assert inst.source == f"model:{name}" and inst.status == "predicted"
            assert inst.score is not None and 0 <= inst.score <= 1
            np.testing.assert_allclose(inst.box, box)
    with pytest.raises(ValueError, match="3 images but 2 detections"):
        estimator.estimate(images, detections[:2], skeleton)
    estimator.close()
    estimator.close()  # idempotent
    with pytest.raises(ModelError, match="closed"):
        estimator.estimate(images[:1], detections[:1], skeleton)
