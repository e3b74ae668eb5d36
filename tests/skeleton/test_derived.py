"""Derived keypoints: the template schema, mapping and the shipped presets."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from posekit.skeleton import (
    DerivedKeypoint,
    Skeleton,
    SkeletonError,
    add_derived_points,
    derived_mapping,
    get_preset,
    names_mapping,
)


def _template(derived) -> dict:
    return {
        "name": "tiny",
        "keypoints": ["left_hip", "right_hip", "pelvis", "head_top"],
        "sigmas": [0.1, 0.1, 0.1, 0.1],
        "derived": derived,
    }


def test_mean_and_weighted_forms():
    mean = DerivedKeypoint.from_value({"mean": ["left_hip", "right_hip"]})
    assert mean.source_weights() == {"left_hip": 0.5, "right_hip": 0.5}
    head = DerivedKeypoint.from_value(
        {"from": [["left_ear", "right_ear"], "neck"], "weights": [1.5, -0.5]}
    )
    assert head.inputs == ("left_ear", "right_ear", "neck")
    assert head.source_weights() == {"left_ear": 0.75, "right_ear": 0.75, "neck": -0.5}
    equal = DerivedKeypoint.from_value({"from": ["a", "b", "c", "d"]})
    assert equal.weights == (0.25, 0.25, 0.25, 0.25)


def test_template_round_trips_derived_points_through_dict_and_yaml():
    skeleton = Skeleton.from_dict(
        _template(
            {
                "pelvis": {"mean": ["left_hip", "right_hip"]},
                "head_top": {"from": [["left_ear", "right_ear"], "neck"], "weights": [1.7, -0.7]},
            }
        )
    )
    data = skeleton.to_dict()
    assert data["derived"]["pelvis"] == {"mean": ["left_hip", "right_hip"]}
    assert data["derived"]["head_top"] == {
        "from": [["left_ear", "right_ear"], "neck"],
        "weights": [1.7, -0.7],
    }
    assert Skeleton.from_dict(data) == skeleton
    assert Skeleton.from_dict(yaml.safe_load(skeleton.to_yaml())) == skeleton
    plain = Skeleton.from_dict(_template({}))
    assert "derived" not in plain.to_dict()
    assert plain != skeleton


@pytest.mark.parametrize(
    ("derived", "message"),
    [
        ({"neck": {"mean": ["a", "b"]}}, "derived keypoint 'neck' is not one of the keypoints"),
        ({"pelvis": {"mean": ["pelvis", "left_hip"]}}, "'pelvis' is defined from itself"),
        (
            {"pelvis": {"from": ["left_hip", "right_hip"], "weights": [0.5, 0.6]}},
            "'pelvis' weights .* sum to 1.1; they must sum to 1",
        ),
        (
            {"pelvis": {"from": ["left_hip", "right_hip"], "weights": [1.0]}},
            "'pelvis' has 2 input term",
        ),
        ({"pelvis": {"mean": []}}, "'pelvis' 'mean' must be a non-empty list"),
        ({"pelvis": ["left_hip", "right_hip"]}, "'pelvis' must be \\{mean"),
        ({"pelvis": {"average": ["left_hip"]}}, "unknown key 'average'"),
        ({"pelvis": {"from": ["left_hip", 3]}}, "'pelvis' input \\[3\\]"),
        ({"pelvis": {"from": ["left_hip"], "weights": ["x"]}}, "'weights' must be a list"),
        ({"pelvis": {"from": ["a", "b"], "weights": [float("nan"), 1.0]}}, "finite"),
        (["pelvis"], "'derived' must map keypoint names"),
    ],
)
def test_invalid_definitions_name_the_point(derived, message):
    with pytest.raises(SkeletonError, match=message):
        Skeleton.from_dict(_template(derived))


def test_derived_mapping_from_coco17_into_mpii16():
    coco, mpii = get_preset("coco17"), get_preset("mpii16")
    index, weights = derived_mapping(coco.keypoints, mpii)
    direct = names_mapping(coco.keypoints, mpii)
    assert np.array_equal(index[direct >= 0], direct[direct >= 0])
    derived = {mpii.keypoints[t] for t in np.flatnonzero(index >= len(coco.keypoints))}
    assert derived == {"pelvis", "thorax", "upper_neck", "head_top"}
    assert weights.shape == (4, 17)
    assert np.allclose(weights.sum(axis=1), 1.0)
    points = np.random.default_rng(0).uniform(0, 100, (3, 17, 2)).astype(np.float32)
    scores = np.random.default_rng(1).uniform(0, 1, (3, 17)).astype(np.float32)
    ext_points, ext_scores = add_derived_points(points, scores, weights)
    assert ext_points.shape == (3, 21, 2) and ext_scores.shape == (3, 21)
    pelvis = index[mpii.index("pelvis")]
    hips = [coco.index("left_hip"), coco.index("right_hip")]
    assert np.allclose(ext_points[:, pelvis], points[:, hips].mean(axis=1), atol=1e-4)
    assert np.allclose(ext_scores[:, pelvis], scores[:, hips].min(axis=1))


def test_a_source_missing_an_input_leaves_the_point_unmapped():
    mpii = get_preset("mpii16")
    names = [n for n in get_preset("coco17").keypoints if n != "right_hip"]
    index, weights = derived_mapping(names, mpii)
    assert index[mpii.index("pelvis")] == -1
    assert index[mpii.index("thorax")] >= len(names)
    assert weights.shape[0] == 3


def test_no_derived_points_needed_gives_an_empty_matrix():
    coco = get_preset("coco17")
    index, weights = derived_mapping(coco.keypoints, coco)
    assert np.array_equal(index, np.arange(17)) and weights.shape == (0, 17)
    points, scores = np.zeros((2, 17, 2)), np.zeros((2, 17))
    assert add_derived_points(points, scores, weights)[0] is points


@pytest.mark.parametrize(
    ("preset", "expected"),
    [
        ("mpii16", {"pelvis", "thorax", "upper_neck", "head_top"}),
        ("crowdpose14", {"neck", "head_top"}),
        ("aic14", {"neck", "head_top"}),
        ("posetrack17", {"head_bottom", "head_top"}),
    ],
)
def test_presets_derive_their_extra_points_from_coco_and_mediapipe_names(preset, expected):
    template = get_preset(preset)
    for source in ("coco17", "mediapipe33"):
        names = get_preset(source).keypoints
        index, _ = derived_mapping(names, template)
        assert np.all(index >= 0), (preset, source)
        derived = {template.keypoints[t] for t in np.flatnonzero(index >= len(names))}
        assert derived == expected
