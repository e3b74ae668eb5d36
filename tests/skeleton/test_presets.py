"""Every shipped preset is valid and consistent, and its names match the datasets' files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posekit.skeleton import get_preset, list_presets, names_mapping

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

EXPECTED = {
    "coco17": 17,
    "mpii16": 16,
    "crowdpose14": 14,
    "aic14": 14,
    "halpe26": 26,
    "coco_wholebody133": 133,
    "hand21": 21,
    "ap10k17": 17,
    "posetrack17": 17,
}


def _data(relative: str) -> Path:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"shared sample data not found at {path}")
    return path


def test_expected_presets_are_shipped():
    assert set(EXPECTED) <= set(list_presets())


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_preset_is_consistent(name):
    skeleton = get_preset(name)
    if name in EXPECTED:
        assert skeleton.num_keypoints == EXPECTED[name]
    k = skeleton.num_keypoints
    assert skeleton.sigmas.shape == (k,)
    assert np.all(skeleton.sigmas > 0) and np.all(skeleton.sigmas < 0.2)
    assert skeleton.sigmas_source.strip(), "every preset must say where its sigmas come from"
    assert skeleton.keypoint_colors.shape == (k, 3)
    assert skeleton.edge_colors.shape == (len(skeleton.edges), 3)
    for a, b in skeleton.edges:
        assert a in skeleton and b in skeleton
    # flip pairs: each keypoint in at most one pair, and flip_index is an involution
    flat = [kp for pair in skeleton.flip_pairs for kp in pair]
    assert len(flat) == len(set(flat))
    flip = skeleton.flip_index
    np.testing.assert_array_equal(flip[flip], np.arange(k))
    for i, kp in enumerate(skeleton.keypoints):
        if kp.startswith("left_"):
            assert skeleton.keypoints[flip[i]] == "right_" + kp[len("left_") :], kp
        elif kp.startswith("right_"):
            assert skeleton.keypoints[flip[i]] == "left_" + kp[len("right_") :], kp
    # every keypoint is part of the drawn skeleton (no orphan points)
    in_edges = {kp for edge in skeleton.edges for kp in edge}
    assert set(skeleton.keypoints) == in_edges
    # aliases never shadow another keypoint's own name
    for key, aliases in skeleton.aliases.items():
        for alias in aliases:
            assert alias not in skeleton or alias == key


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_round_trips_through_dict(name):
    skeleton = get_preset(name)
    assert type(skeleton).from_dict(skeleton.to_dict()) == skeleton


def test_coco_body_names_shared_by_halpe_and_wholebody():
    coco = get_preset("coco17")
    for other in ("halpe26", "coco_wholebody133"):
        template = get_preset(other)
        assert template.keypoints[:17] == coco.keypoints
        np.testing.assert_array_equal(template.sigmas[:17], coco.sigmas)


def test_wholebody_sigmas_and_face_flips():
    wb = get_preset("coco_wholebody133")
    # COCO-WholeBody evaluation: feet 0.068 0.066 0.066 0.092 0.094 0.094
    np.testing.assert_allclose(wb.sigmas[17:23], [0.068, 0.066, 0.066, 0.092, 0.094, 0.094])
    assert wb.keypoints[wb.flip_index[wb.index("face_0")]] == "face_16"
    assert wb.keypoints[wb.flip_index[wb.index("face_36")]] == "face_45"
    assert wb.flip_index[wb.index("face_30")] == wb.index("face_30")  # nose bridge: centre
    hand = get_preset("hand21")
    np.testing.assert_array_equal(wb.sigmas[-21:], hand.sigmas)


def _category_names(relative: str) -> list[str]:
    data = json.loads(_data(relative).read_text(encoding="utf-8"))
    return data["categories"][0]["keypoints"]


def test_posetrack_names_equal_the_dataset_file():
    names = _category_names("posetrack18-sample/annotations/val.json")
    assert list(get_preset("posetrack17").keypoints) == names


def test_crowdpose_file_names_map_through_aliases():
    names = _category_names("crowdpose-sample/keypoints.json")
    index = names_mapping(names, get_preset("crowdpose14"), strict=True)
    np.testing.assert_array_equal(index, np.arange(14))  # same order as the dataset


def test_aic_file_names_match_after_normalising_case_and_spaces():
    names = _category_names("aic-sample/keypoints.json")
    normalised = [n.lower().replace(" ", "_") for n in names]
    assert list(get_preset("aic14").keypoints) == normalised


def test_mpii_order_matches_the_sample_joints():
    # MPII joint 9 is the head top and 8 the upper neck: the head top is above the neck
    # (smaller y), and joint 0 (right ankle) is below the pelvis (6) in upright people.
    entries = json.loads(_data("mpii-sample/annotations.json").read_text(encoding="utf-8"))
    mpii = get_preset("mpii16")
    upright = 0
    for entry in entries:
        joints = np.asarray(entry["joints"], dtype=float)
        vis = np.asarray(entry["joints_vis"]) > 0
        head, neck = mpii.index("head_top"), mpii.index("upper_neck")
        if vis[head] and vis[neck]:
            assert joints[head, 1] < joints[neck, 1]
        ankle, pelvis = mpii.index("right_ankle"), mpii.index("pelvis")
        if vis[ankle] and vis[pelvis] and joints[ankle, 1] > joints[pelvis, 1]:
            upright += 1
    assert upright >= 3


def test_cross_layout_aliases():
    # PoseTrack's head_bottom is MPII's upper_neck
    index = names_mapping(get_preset("mpii16").keypoints, get_preset("posetrack17"))
    assert index[get_preset("posetrack17").index("head_bottom")] == get_preset("mpii16").index(
        "upper_neck"
    )
    # AP-10K files spell names like "L_Eye" and "Root of tail"
    ap = get_preset("ap10k17")
    raw = ["L_Eye", "R_Eye", "Nose", "Neck", "Root of tail", "L_Shoulder", "L_Elbow", "L_F_Paw",
           "R_Shoulder", "R_Elbow", "R_F_Paw", "L_Hip", "L_Knee", "L_B_Paw", "R_Hip", "R_Knee",
           "R_B_Paw"]  # fmt: skip
    np.testing.assert_array_equal(names_mapping(raw, ap, strict=True), np.arange(17))
