"""Face refinement of BlazePose's face points with MediaPipe's face landmark model."""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from posekit.core import Detections
from posekit.media.image import load_image
from posekit.models import ModelError
from posekit.models.blazepose import model_files, runtime
from posekit.models.blazepose.face import FACE_FILE, FACE_POINTS, face_rois, find_face_model
from posekit.skeleton import get_preset

FACE_NAMES = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")


def _face_points(eyes_y: float, mouth_y: float, x: float = 100.0) -> np.ndarray:
    """(1, 33, 2) landmarks of an upright face: eyes 20 px apart, ears 40 px apart."""
    p = np.zeros((1, 33, 2))
    p[0, 0] = (x, (eyes_y + mouth_y) / 2)
    p[0, 2], p[0, 5] = (x + 10, eyes_y), (x - 10, eyes_y)
    p[0, 7], p[0, 8] = (x + 20, eyes_y), (x - 20, eyes_y)
    p[0, 9], p[0, 10] = (x + 6, mouth_y), (x - 6, mouth_y)
    return p


def test_face_crop_is_upright_centred_and_sized_from_the_face() -> None:
    roi = face_rois(_face_points(eyes_y=50.0, mouth_y=70.0))[0]
    assert roi[0] == pytest.approx(100.0) and roi[1] == pytest.approx(60.0)
    assert roi[3] == pytest.approx(0.0, abs=1e-9)  # mouth -> eyes points up
    # side 1.5 x max(ear distance 40, 2.8 x eye-mouth 20 = 56)
    assert roi[2] == pytest.approx(1.5 * 56.0)


def test_face_crop_turns_with_the_head() -> None:
    upside_down = face_rois(_face_points(eyes_y=70.0, mouth_y=50.0))[0]
    assert abs(upside_down[3]) == pytest.approx(math.pi)
    with pytest.raises(ValueError, match=">=11"):
        face_rois(np.zeros((1, 5, 2)))


def test_face_points_name_the_subjects_sides() -> None:
    from posekit.models.blazepose.runtime import BLAZEPOSE_KEYPOINTS

    names = [BLAZEPOSE_KEYPOINTS[i] for i in FACE_POINTS]
    assert {"nose", "left_eye", "right_eye", "left_ear", "right_ear"} <= set(names)
    # every replaced landmark is a face landmark (0..10), never a body point
    assert all(0 <= i <= 10 for i in FACE_POINTS)


def _wheel(path: Path, contents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in contents.items():
            archive.writestr(member, data)
    return path


def test_face_model_with_another_hash_is_refused_and_nothing_written(tmp_path: Path) -> None:
    members = {member: b"not the model" for member, _ in model_files.ALL_MODEL_FILES.values()}
    wheel = _wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", members)
    with pytest.raises(ModelError, match="SHA-256"):
        model_files.extract_model_files(wheel, tmp_path / "cache", model_files.FACE_MODEL_FILES)
    assert not list((tmp_path / "cache").glob("*.tflite"))


def test_offline_without_the_face_model_says_how_to_get_it(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("POSEKIT_OFFLINE", "1")
    monkeypatch.delenv(runtime.ENV_MODEL_DIR, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="face_refine=false") as info:
        find_face_model()
    assert "posekit models fetch blazepose" in str(info.value)


# ----------------------------------------------------------------- the real models
@pytest.fixture(scope="module")
def face_model() -> Path:
    pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
    try:
        runtime.find_model_dir()
        return find_face_model()
    except ModelError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"BlazePose models unavailable: {exc}")


def test_the_face_model_file_is_the_pinned_one(face_model: Path) -> None:
    expected = model_files.FACE_MODEL_FILES[FACE_FILE][1]
    assert hashlib.sha256(face_model.read_bytes()).hexdigest() == expected


def test_wheel_with_the_face_model_fills_the_cache(
    face_model: Path, tmp_path: Path, monkeypatch
) -> None:
    members = {}
    for path in (*runtime.find_model_dir(), face_model):
        member, _ = model_files.ALL_MODEL_FILES[path.name]
        members[member] = path.read_bytes()
    wheel = _wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", members)
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(runtime.ENV_MODEL_DIR, raising=False)
    folder = model_files.extract_model_files(wheel, model_files.cache_dir())
    assert sorted(p.name for p in folder.glob("*.tflite")) == sorted(model_files.ALL_MODEL_FILES)
    assert find_face_model() == folder / FACE_FILE
    assert model_files.fetch_model_files() == folder  # all cached: no download


def _coco(shared_data: Path, file_name: str):
    data = json.loads((shared_data / "coco-val2017-sample" / "person_keypoints.json").read_text())
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
    pixels = load_image(shared_data / "coco-val2017-sample" / "images" / file_name)
    return pixels, Detections(boxes, np.ones(len(boxes), np.float32)), anns


@pytest.fixture(scope="module")
def estimators(face_model):
    from posekit.models import create_pose_estimator

    refined = create_pose_estimator("blazepose")
    plain = create_pose_estimator("blazepose", face_refine=False)
    yield refined, plain
    refined.close()
    plain.close()


def _similarity(person, ann, names, template) -> dict[str, float]:
    """OKS similarity of each labeled face point of ``person`` to ``ann``."""
    gt = np.asarray(ann["keypoints"], float).reshape(-1, 3)
    out = {}
    for name in names:
        k = template.keypoints.index(name)
        if gt[k, 2] == 0:
            continue
        d2 = float(((person.keypoints[k] - gt[k, :2]) ** 2).sum())
        sigma = float(template.sigmas[k])
        out[name] = math.exp(-d2 / (2 * ann["area"] * (2 * sigma) ** 2))
    return out


@pytest.mark.parametrize("file_name", ["000000040083.jpg", "000000000785.jpg"])
def test_faces_the_face_model_finds_get_closer_to_the_annotation(
    shared_data, estimators, file_name
) -> None:
    refined, plain = estimators
    template = get_preset("coco17")
    image, dets, anns = _coco(shared_data, file_name)
    after = refined.estimate([image], [dets], template)[0]
    before = plain.estimate([image], [dets], template)[0]
    total_before = total_after = 0.0
    for ann, new, old in zip(anns, after, before):
        sim_new = _similarity(new, ann, FACE_NAMES, template)
        sim_old = _similarity(old, ann, FACE_NAMES, template)
        # frontal faces 30-40 px high: every annotated face point is correct (OKS term
        # >= 0.5, the simulated annotator's threshold) after the refinement
        assert all(v >= 0.5 for v in sim_new.values()), (ann["id"], sim_new)
        total_before += sum(sim_old.values())
        total_after += sum(sim_new.values())
    assert total_after > total_before + 0.3
    # body points and derived points are untouched
    for new, old in zip(after, before):
        body = [template.keypoints.index(n) for n in ("left_shoulder", "right_knee")]
        np.testing.assert_array_equal(new.keypoints[body], old.keypoints[body])


def test_a_face_the_model_does_not_find_keeps_blazeposes_points(shared_data, estimators):
    # 000000196141.jpg: baseball players in helmets and a catcher's mask, seen from
    # the side or behind; the face model finds none of these faces
    refined, plain = estimators
    template = get_preset("coco17")
    image, dets, _ = _coco(shared_data, "000000196141.jpg")
    after = refined.estimate([image], [dets], template)[0]
    before = plain.estimate([image], [dets], template)[0]
    for new, old in zip(after, before):
        np.testing.assert_array_equal(new.keypoints, old.keypoints)
        np.testing.assert_array_equal(new.visibility, old.visibility)


def test_the_face_model_tells_a_face_from_no_face(shared_data, face_model) -> None:
    from posekit.models.blazepose.face import FaceRefiner

    image = load_image(shared_data / "coco-val2017-sample" / "images" / "000000040083.jpg")
    with FaceRefiner(face_model) as model:
        # the man on the left: his face is at about (99, 138); the wall behind him
        # at the top left corner holds no face
        rois = np.array([[99.0, 140.0, 48.0, 0.0], [20.0, 20.0, 40.0, 0.0]])
        mesh, conf = model.mesh(image, rois)
    assert mesh.shape == (2, 468, 2)
    assert conf[0] > 0.9 and conf[1] < 0.1
    # the mesh lies on the face, not somewhere in the crop's corner
    nose = mesh[0, FACE_POINTS[0][0]]
    assert np.hypot(*(nose - np.array([99.0, 144.0]))) < 8.0


def test_without_the_face_model_only_the_refinement_needs_it(
    face_model: Path, tmp_path: Path, monkeypatch
) -> None:
    import importlib.util

    from posekit.models.blazepose import BlazePoseEstimator

    pose_only = tmp_path / "pose-only"
    pose_only.mkdir()
    for path in runtime.find_model_dir():
        (pose_only / path.name).symlink_to(path)
    monkeypatch.setenv(runtime.ENV_MODEL_DIR, str(pose_only))
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("POSEKIT_OFFLINE", "1")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="face_min_confidence"):
        BlazePoseEstimator(face_min_confidence=1.5)
    with pytest.raises(ModelError, match="face_refine=false"):
        BlazePoseEstimator()
    with BlazePoseEstimator(face_refine=False, box_align="box") as plain:
        assert plain._face is None
    (pose_only / FACE_FILE).symlink_to(face_model)  # next to the pose files: found there
    assert find_face_model() == pose_only / FACE_FILE
