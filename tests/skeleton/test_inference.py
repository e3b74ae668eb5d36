"""Tests for posekit.skeleton.inference: one preset lookup by keypoint names, used by
the COCO reader, the OKS evaluation and name mapping alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posekit.evaluation import evaluate
from posekit.formats.coco import from_coco, to_coco
from posekit.skeleton import (
    Skeleton,
    SkeletonError,
    get_preset,
    list_presets,
    names_mapping,
    normalize_keypoint_name,
    preset_for_names,
    skeleton_from_category,
    template_for_names,
)

SAMPLES = {
    "coco-val2017-sample/person_keypoints.json": "coco17",
    "crowdpose-sample/keypoints.json": "crowdpose14",
    "aic-sample/keypoints.json": "aic14",
    "posetrack18-sample/annotations/val.json": "posetrack17",
}


def _load(shared_data: Path, relative: str) -> dict:
    return json.loads((shared_data / relative).read_text(encoding="utf-8"))


def _gt_as_results(gt: dict) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": a["category_id"],
         "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if not a.get("iscrowd") and any(a["keypoints"][2::3])
    ]  # fmt: skip


def test_normalize_keypoint_name() -> None:
    assert normalize_keypoint_name("Right Shoulder") == "right_shoulder"
    assert normalize_keypoint_name(" L-Eye ") == "l_eye"
    assert normalize_keypoint_name("left__hip") == "left_hip"
    assert normalize_keypoint_name("Root of tail") == "root_of_tail"


@pytest.mark.parametrize(("relative", "expected"), sorted(SAMPLES.items()))
def test_reader_evaluation_and_category_pick_the_same_template(
    shared_data: Path, relative: str, expected: str
) -> None:
    """Reading a file, scoring it and inferring its skeleton agree on the template."""
    data = _load(shared_data, relative)
    names = data["categories"][0]["keypoints"]
    assert preset_for_names(names).name == expected
    assert template_for_names(names).name == expected
    assert skeleton_from_category(data["categories"][0]).name == expected
    dataset = from_coco(data)
    assert dataset.skeleton.name == expected
    assert json.dumps(to_coco(dataset), sort_keys=True) == json.dumps(data, sort_keys=True)
    assert evaluate(data, _gt_as_results(data)).template == expected
    mapping = names_mapping(names, get_preset(expected), strict=True)
    np.testing.assert_array_equal(mapping, np.arange(len(names)))


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_every_preset_is_found_by_its_own_names(name: str) -> None:
    preset = get_preset(name)
    assert preset_for_names(preset.keypoints) is preset
    spelled = [n.replace("_", " ").title() for n in preset.keypoints]
    assert preset_for_names(spelled) is preset


def test_same_names_in_two_orders_pick_the_preset_in_that_order() -> None:
    """AIC-14 and CrowdPose-14 have the same names; the order decides, and an order
    that is neither is ambiguous (the old evaluation lookup took the first preset)."""
    aic, crowdpose = get_preset("aic14"), get_preset("crowdpose14")
    assert sorted(aic.keypoints) == sorted(crowdpose.keypoints)
    assert preset_for_names(aic.keypoints) is aic
    assert preset_for_names(crowdpose.keypoints) is crowdpose
    neither = list(reversed(aic.keypoints))
    assert preset_for_names(neither) is None
    with pytest.raises(SkeletonError, match=r"several shipped skeleton templates.*aic14"):
        template_for_names(neither)


def test_other_order_of_one_preset_is_found_and_remapped(shared_data: Path) -> None:
    coco = get_preset("coco17")
    shuffled = list(reversed(coco.keypoints))
    assert preset_for_names(shuffled) is coco
    data = _load(shared_data, "coco-val2017-sample/person_keypoints.json")
    category = data["categories"][0]
    category["keypoints"] = shuffled
    for ann in data["annotations"]:
        ann["keypoints"] = np.asarray(ann["keypoints"]).reshape(17, 3)[::-1].ravel().tolist()
    dataset = from_coco(data)
    assert dataset.skeleton is coco
    first = dataset.images[0].instances[0]
    np.testing.assert_array_equal(
        first.visibility, np.asarray(data["annotations"][0]["keypoints"][2::3])[::-1]
    )


def test_count_alone_never_selects_a_preset() -> None:
    assert preset_for_names([f"point_{i}" for i in range(17)]) is None
    assert preset_for_names([*get_preset("coco17").keypoints[:16], "tail"]) is None
    assert preset_for_names(get_preset("coco17").keypoints[:16]) is None
    with pytest.raises(SkeletonError, match=r"no shipped skeleton template.*pass skeleton="):
        template_for_names(["a", "b"])


def test_names_mapping_normalises_only_what_exact_names_leave() -> None:
    template = Skeleton.from_dict(
        {"name": "t", "keypoints": ["left_eye", "right_eye", "nose"], "default_sigma": 0.05}
    )
    np.testing.assert_array_equal(
        names_mapping(["Nose", "Left Eye", "right-eye"], template, strict=True), [1, 2, 0]
    )
    # two source names with one normal form: neither is taken for the free keypoint
    index = names_mapping(["left_eye", "Right Eye", "right eye"], template)
    np.testing.assert_array_equal(index, [0, -1, -1])
    with pytest.raises(SkeletonError, match="no counterpart"):
        names_mapping(["left_eye", "Right Eye", "right eye"], template, strict=True)


def test_skeleton_from_category_with_sigmas_builds_the_file_layout() -> None:
    category = {
        "id": 1,
        "name": "person",
        "keypoints": ["Left Hip", "Right Hip", "Neck"],
        "skeleton": [[1, 2], [2, 3]],
    }
    skeleton = skeleton_from_category(category, [0.05, 0.05, 0.04], name="hips")
    assert skeleton.keypoints == ("left_hip", "right_hip", "neck")
    assert skeleton.flip_pairs == (("left_hip", "right_hip"),)
    assert skeleton.aliases["left_hip"] == ("Left Hip",)
    with pytest.raises(SkeletonError, match=r"match no|no shipped skeleton template"):
        skeleton_from_category(category)
    with pytest.raises(SkeletonError, match="'skeleton' edge #0"):
        skeleton_from_category({**category, "skeleton": [[0, 9]]}, [0.05] * 3)
