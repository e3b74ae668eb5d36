"""BlazePose auto-label quality on real images: keypoint confidences, derived points,
crowds and small people (the real TFLite models)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posekit.core import Detections
from posekit.media.image import load_image
from posekit.models import ModelError, create_detector, create_pose_estimator
from posekit.models.blazepose import BlazePoseDetector, find_model_dir
from posekit.models.blazepose.estimator import box_fit, instance_scores
from posekit.models.blazepose.landmarks import LandmarkOutput
from posekit.pipeline.postprocess import instance_oks
from posekit.skeleton import get_preset

pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
try:
    find_model_dir()
except ModelError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"BlazePose models unavailable: {exc}", allow_module_level=True)


def _load(shared_data, folder: str, annotations: str, file_name: str):
    data = json.loads((shared_data / folder / annotations).read_text())
    image = next(i for i in data["images"] if i["file_name"] == file_name)
    anns = [
        a
        for a in data["annotations"]
        if a["image_id"] == image["id"] and not a.get("iscrowd") and a["num_keypoints"] > 0
    ]
    boxes = np.array(
        [[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
         for a in anns],
        np.float32,
    )  # fmt: skip
    pixels = load_image(shared_data / folder / "images" / file_name)
    return pixels, Detections(boxes, np.ones(len(boxes), np.float32)), anns


@pytest.fixture(scope="module")
def estimator():
    est = create_pose_estimator("blazepose")
    yield est
    est.close()


def test_keypoint_scores_spread_and_rank_errors(shared_data, estimator):
    image, dets, anns = _load(
        shared_data, "coco-val2017-sample", "person_keypoints.json", "000000197388.jpg"
    )
    people = estimator.estimate([image], [dets], get_preset("coco17"))[0]
    scores = np.concatenate([p.keypoint_scores for p in people])
    # Not the presence output (about 1.00 everywhere): a real spread.
    assert scores.std() > 0.1 and np.mean(scores > 0.95) < 0.5
    sigmas = get_preset("coco17").sigmas
    correct, wrong = [], []
    for person, ann in zip(people, anns):
        gt = np.asarray(ann["keypoints"], float).reshape(-1, 3)
        labeled = gt[:, 2] > 0
        d2 = ((person.keypoints - gt[:, :2]) ** 2).sum(axis=1)
        ok = np.exp(-d2 / (2 * ann["area"] * (2 * sigmas) ** 2)) >= 0.5
        correct.extend(person.keypoint_scores[labeled & ok])
        wrong.extend(person.keypoint_scores[labeled & ~ok])
    assert wrong and np.mean(correct) > np.mean(wrong) + 0.1


def test_mpii_template_gets_derived_pelvis_and_thorax(shared_data, estimator):
    image, dets, _ = _load(
        shared_data, "coco-val2017-sample", "person_keypoints.json", "000000000785.jpg"
    )
    mpii = get_preset("mpii16")
    person = estimator.estimate([image], [dets], mpii)[0][0]
    assert np.all(person.visibility > 0)  # every MPII point, the derived ones too
    hips = person.keypoints[[mpii.index("left_hip"), mpii.index("right_hip")]]
    assert np.allclose(person.keypoints[mpii.index("pelvis")], hips.mean(axis=0), atol=1e-3)
    shoulders = person.keypoints[[mpii.index("left_shoulder"), mpii.index("right_shoulder")]]
    assert np.allclose(person.keypoints[mpii.index("thorax")], shoulders.mean(axis=0), atol=1e-3)
    head = person.keypoints[mpii.index("head_top")]
    assert head[1] < person.keypoints[mpii.index("upper_neck")][1] < shoulders[:, 1].mean()


def test_overlapping_people_get_their_own_poses(shared_data, estimator):
    crowd = get_preset("crowdpose14")
    for name in ("106848.jpg", "103319.jpg"):
        image, dets, _ = _load(shared_data, "crowdpose-sample", "keypoints.json", name)
        people = estimator.estimate([image], [dets], crowd)[0]
        oks = instance_oks(people, crowd.sigmas)
        np.fill_diagonal(oks, 0.0)
        assert np.maximum(oks, oks.T).max() < 0.5, name  # no two boxes with one body
        out, _ = estimator.landmarks(image, dets)
        assert np.all(box_fit(out.points[:, :33], dets.boxes.astype(np.float64)) > 0.3), name


def test_fine_tiles_find_a_30x96_px_person(shared_data):
    image, _, anns = _load(
        shared_data, "coco-val2017-sample", "person_keypoints.json", "000000196141.jpg"
    )
    umpire = next(a for a in anns if a["bbox"][2] < 40)  # 30x96 px in a 640 px photo
    x, y, w, h = umpire["bbox"]
    with create_detector("blazepose") as detector:
        found = detector.detect([image])[0]
    with BlazePoseDetector(tile_grids=((2, 0.6),)) as coarse:
        coarse_found = coarse.detect([image])[0]

    def hits(dets: Detections) -> bool:
        hips = dets.keypoints[:, 0]
        return bool(
            np.any(
                (hips[:, 0] > x) & (hips[:, 0] < x + w) & (hips[:, 1] > y) & (hips[:, 1] < y + h)
            )
        )

    assert hits(found)
    assert not hits(coarse_found)  # what the finer grid adds


def test_tile_grid_validation():
    with pytest.raises(ValueError, match="tile_grids"):
        BlazePoseDetector(tile_grids=((2, 0.3),))  # 2 x 30% tiles leave a gap


def test_box_fit_and_instance_scores():
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    points = np.array([[[0, 0], [10, 10]], [[20, 20], [30, 30]]], np.float32)
    assert np.allclose(box_fit(points, boxes), [1.0, 0.0])
    out = LandmarkOutput(
        np.zeros((2, 39, 2), np.float32),
        np.ones((2, 39), np.float32),
        np.ones((2, 39), np.float32),
        np.array([1.0, 0.5], np.float32),
    )
    out.agreement[:] = [0.8, 1.0]
    confidence = np.array([[0.9, 0.7, 0.1], [0.1, 0.1, 0.1]], np.float32)
    assert np.allclose(instance_scores(out, confidence), [0.8 * 0.8, 0.0])
    assert np.allclose(instance_scores(out, confidence, use_flag=False), [0.64, 0.0])


def test_hidden_face_points_are_the_ones_annotators_leave_out(shared_data, estimator):
    """With ground-truth boxes on the COCO sample, the points the self-occlusion rules
    leave out (far ears and eyes of faces in profile, eyes seen from behind) are, with
    few exceptions, points the annotators did not label either."""
    coco = get_preset("coco17")
    data = json.loads((shared_data / "coco-val2017-sample" / "person_keypoints.json").read_text())
    left_out = {"unlabeled": 0, "labeled": 0}
    options = dict(hide_self_occluded=False, min_presence=None, outside_tolerance=None)
    with create_pose_estimator("blazepose", **options) as everything:
        for image_info in data["images"]:
            name = image_info["file_name"]
            image, dets, anns = _load(
                shared_data, "coco-val2017-sample", "person_keypoints.json", name
            )
            ruled = estimator.estimate([image], [dets], coco)[0]
            plain = everything.estimate([image], [dets], coco)[0]
            for with_rules, without, ann in zip(ruled, plain, anns):
                kept = with_rules.visibility > 0
                assert np.array_equal(with_rules.keypoints[kept], without.keypoints[kept])
                dropped = (without.visibility > 0) & (with_rules.visibility == 0)
                gt = np.asarray(ann["keypoints"]).reshape(-1, 3)[:, 2] > 0
                left_out["unlabeled"] += int(np.sum(dropped & ~gt))
                left_out["labeled"] += int(np.sum(dropped & gt))
    assert left_out["unlabeled"] >= 6, left_out
    assert left_out["unlabeled"] >= 3 * left_out["labeled"], left_out
