"""Two poses on one face: finding the pose that took its neighbour's face, and
re-running it without the neighbour (models/blazepose/crowd.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from posekit.core import Detections
from posekit.media.image import load_image
from posekit.models import ModelError
from posekit.models.blazepose.crowd import face_conflicts, resolved, without_neighbour
from posekit.skeleton import get_preset


def _pose(face_x: float, face_y: float, size: float = 20.0) -> np.ndarray:
    """(33, 2) landmarks whose 11 face points span ``size`` px around a centre."""
    points = np.zeros((33, 2))
    offsets = np.linspace(-size / 2, size / 2, 11)
    points[:11, 0] = face_x + offsets
    points[:11, 1] = face_y + offsets[::-1]
    points[11:] = (face_x, face_y + 100.0)  # the body below
    return points


def test_two_poses_on_one_face_the_one_at_its_box_edge_loses() -> None:
    # the person behind: box 0 holds the face well inside; box 1 (in front, taller)
    # has the face at its top edge
    poses = np.stack([_pose(100, 60), _pose(104, 64)])
    boxes = np.array([[60, 30, 140, 200], [20, 62, 220, 330]], float)
    assert face_conflicts(poses, boxes) == [(1, 0)]
    # equally deep: nobody is told to move
    assert face_conflicts(poses, np.array([[60, 30, 140, 90], [64, 34, 144, 94]], float)) == []


def test_faces_a_head_apart_are_two_people() -> None:
    poses = np.stack([_pose(100, 60), _pose(130, 60)])  # 1.5 face sizes apart
    boxes = np.array([[60, 30, 140, 200], [20, 62, 220, 330]], float)
    assert face_conflicts(poses, boxes) == []
    assert resolved(poses[0], poses[1]) and not resolved(poses[0], poses[0] + 3.0)


def test_the_view_paints_over_the_neighbour_only_outside_the_own_box() -> None:
    image = np.full((100, 100, 3), 200, np.uint8)
    image[:50] = 0  # mean colour 100
    view = without_neighbour(image, np.array([0, 40, 100, 100]), np.array([20, 10, 60, 70]))
    assert view is not image and image[10, 20, 0] == 0  # the input is left alone
    assert (view[10:40, 20:60] == 100).all()  # the neighbour's part above the own box
    assert (view[40:, :] == image[40:, :]).all() and (view[:10] == image[:10]).all()
    inside = without_neighbour(image, np.array([0, 0, 100, 100]), np.array([20, 10, 60, 70]))
    assert inside is image


# ----------------------------------------------------------------- the real models
@pytest.fixture(scope="module")
def skiers(shared_data):
    pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
    from posekit.models.blazepose import BlazePoseEstimator

    try:
        estimator = BlazePoseEstimator()
    except ModelError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"BlazePose models unavailable: {exc}")
    folder = shared_data / "coco-val2017-sample"
    data = json.loads((folder / "person_keypoints.json").read_text())
    image = next(i for i in data["images"] if i["file_name"] == "000000197388.jpg")
    anns = [a for a in data["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]]
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
    dets = Detections(boxes.astype(np.float32), np.ones(len(anns), np.float32))
    yield estimator, load_image(folder / "images" / image["file_name"]), dets, anns
    estimator.close()


def _face_ok(person, ann) -> list[bool]:
    template = get_preset("coco17")
    gt = np.asarray(ann["keypoints"], float).reshape(-1, 3)
    out = []
    for name in ("nose", "left_eye", "right_eye"):
        k = template.keypoints.index(name)
        d2 = float(((person.keypoints[k] - gt[k, :2]) ** 2).sum())
        out.append(math.exp(-d2 / (2 * ann["area"] * (2 * template.sigmas[k]) ** 2)) >= 0.5)
    return out


def test_the_skier_in_front_gets_his_own_face_back(skiers) -> None:
    # 000000197388.jpg: the blue skier (437295) in front of the red one (467657); the
    # landmark model on the blue skier's box puts his face on the red skier's face
    estimator, image, dets, anns = skiers
    ids = [a["id"] for a in anns]
    front, behind = ids.index(437295), ids.index(467657)
    raw, _ = estimator.landmarks(image, dets)
    assert face_conflicts(raw.points[:, :33], dets.boxes) == [(front, behind)]
    people = estimator.estimate([image], [dets], get_preset("coco17"))[0]
    assert all(_face_ok(people[front], anns[front]))
    assert sum(_face_ok(people[behind], anns[behind])) >= 2  # the one behind keeps his
    from posekit.models.blazepose import BlazePoseEstimator

    with BlazePoseEstimator(face_conflicts=False) as plain:
        before = plain.estimate([image], [dets], get_preset("coco17"))[0]
    assert not any(_face_ok(before[front], anns[front]))
    for i in range(len(anns)):  # nobody else is re-run
        if i != front:
            np.testing.assert_array_equal(people[i].keypoints, before[i].keypoints)
