"""Custom template validation and name-based mapping between templates."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from posekit import Instance
from posekit.skeleton import (
    Skeleton,
    SkeletonError,
    get_preset,
    keypoint_mapping,
    list_presets,
    load_template,
)


def _valid() -> dict:
    return {
        "name": "arm",
        "keypoints": ["left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow"],
        "edges": [
            ["left_shoulder", "left_elbow"],
            ["left_elbow", "left_wrist"],
            ["right_shoulder", "right_elbow"],
        ],
        "flip_pairs": [["left_shoulder", "right_shoulder"], ["left_elbow", "right_elbow"]],
        "sigmas": [0.079, 0.072, 0.062, 0.079, 0.072],
        "sigmas_source": "COCO",
    }


def test_valid_custom_template_compiles_indices():
    skeleton = Skeleton.from_dict(_valid())
    np.testing.assert_array_equal(skeleton.edge_index, [[0, 1], [1, 2], [3, 4]])
    np.testing.assert_array_equal(skeleton.flip_index, [3, 4, 2, 0, 1])
    # colours default to the body side
    assert tuple(skeleton.keypoint_colors[0]) != tuple(skeleton.keypoint_colors[3])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["edges"].append(["left_elbow", "left_knee"]), "'left_knee'"),
        (lambda d: d["keypoints"].__setitem__(4, "left_elbow"), "duplicate keypoint name"),
        (
            lambda d: d["flip_pairs"].append(["left_wrist", "right_shoulder"]),
            "flip pairs are not symmetric: 'right_shoulder'",
        ),
        (lambda d: d["sigmas"].pop(), "wrong number of sigmas: expected 5"),
        (lambda d: d["sigmas"].__setitem__(2, -0.1), "sigma for 'left_wrist'"),
        (lambda d: d.__setitem__("keypoint_colors", {"left_wrist": "#12345"}), "'#12345'"),
        (lambda d: d.__setitem__("keypoint_colors", {"left_wrist": [0, 300, 0]}), "[0, 300, 0]"),
        (lambda d: d.__setitem__("keypoint_colors", {"left_toe": "#ff0000"}), "'left_toe'"),
        (lambda d: d.pop("sigmas"), "missing 'sigmas'"),
        (lambda d: d["edges"].append(["left_elbow", "left_elbow"]), "joins 'left_elbow'"),
        (lambda d: d["keypoints"].__setitem__(0, "left shoulder"), "'left shoulder'"),
    ],
)
def test_invalid_template_error_names_the_problem(change, message):
    data = copy.deepcopy(_valid())
    change(data)
    with pytest.raises(SkeletonError) as info:
        Skeleton.from_dict(data)
    assert message in str(info.value)


def test_from_file_yaml_and_json(tmp_path):
    import yaml

    yaml_path = tmp_path / "arm.yaml"
    yaml_path.write_text(yaml.safe_dump(_valid()), encoding="utf-8")
    json_path = tmp_path / "arm.json"
    json_path.write_text(json.dumps(_valid()), encoding="utf-8")
    from_yaml = Skeleton.from_file(yaml_path)
    assert from_yaml == Skeleton.from_file(json_path) == Skeleton.from_dict(_valid())
    assert load_template(str(yaml_path)) == from_yaml


def test_from_file_errors_name_the_file_and_problem(tmp_path):
    bad = _valid()
    bad["edges"].append(["left_wrist", "nose"])
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad), encoding="utf-8")
    with pytest.raises(SkeletonError, match=r"'nose'"):
        Skeleton.from_file(path)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(SkeletonError, match=r"broken\.yaml: not valid yaml"):
        Skeleton.from_file(broken)
    with pytest.raises(SkeletonError, match="cannot read template file"):
        Skeleton.from_file(tmp_path / "missing.yaml")
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(SkeletonError, match="expected a mapping"):
        Skeleton.from_file(not_mapping)


def test_template_is_not_guessed_from_keypoint_count():
    with pytest.raises(SkeletonError, match="unknown template preset '17'"):
        get_preset("17")


def _mediapipe() -> Skeleton:
    if "mediapipe33" not in list_presets():
        pytest.skip("mediapipe33 preset not shipped yet")
    return get_preset("mediapipe33")


def test_mediapipe33_to_coco17_by_name():
    mediapipe, coco = _mediapipe(), get_preset("coco17")
    index = keypoint_mapping(mediapipe, coco)
    assert np.all(index >= 0), "every COCO point has a MediaPipe landmark of the same name"
    for t, source in enumerate(index):
        assert mediapipe.keypoints[source] == coco.keypoints[t]
    rng = np.random.default_rng(3)
    landmarks = Instance(
        rng.uniform(0, 500, (33, 2)), rng.choice([1, 2], 33), keypoint_scores=rng.random(33)
    )
    remapped = landmarks.remap(index)
    assert remapped.num_keypoints == 17
    np.testing.assert_array_equal(
        remapped.keypoints[coco.index("left_wrist")],
        landmarks.keypoints[mediapipe.index("left_wrist")],
    )
    np.testing.assert_array_equal(remapped.keypoint_scores, landmarks.keypoint_scores[index])


@pytest.mark.parametrize("target_name", ["halpe26", "coco_wholebody133"])
def test_coco17_to_larger_layouts_leaves_extra_points_unlabeled(target_name):
    coco, target = get_preset("coco17"), get_preset(target_name)
    index = keypoint_mapping(coco, target)
    np.testing.assert_array_equal(index[:17], np.arange(17))
    assert np.all(index[17:] == -1)
    rng = np.random.default_rng(0)
    inst = Instance(rng.uniform(0, 100, (17, 2)), np.array([2, 1, 0] * 5 + [2, 2]))
    remapped = inst.remap(index)
    assert remapped.num_keypoints == target.num_keypoints
    np.testing.assert_array_equal(remapped.visibility[:17], inst.visibility)
    np.testing.assert_array_equal(remapped.keypoints[:17], inst.keypoints)
    assert np.all(remapped.visibility[17:] == 0)
    assert np.all(remapped.keypoints[17:] == 0)


def test_shared_names_between_crowdpose_aic_and_mpii():
    crowd, aic, mpii = (get_preset(n) for n in ("crowdpose14", "aic14", "mpii16"))
    index = keypoint_mapping(crowd, aic)
    assert np.all(index >= 0)  # same 14 points, different order
    for t, source in enumerate(index):
        assert crowd.keypoints[source] == aic.keypoints[t]
    to_mpii = keypoint_mapping(crowd, mpii)
    # 12 limb points and the head top are shared; pelvis/thorax/upper_neck are not in CrowdPose
    assert int(np.count_nonzero(to_mpii >= 0)) == 13
    for name in ("pelvis", "thorax", "upper_neck"):
        assert to_mpii[mpii.index(name)] == -1
