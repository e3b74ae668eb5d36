"""Tests for posekit.formats.coco: lossless round trips on the real samples, property
tests of the codec, and one test per malformed input."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers_coco import make_coco
from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.coco import (
    STASH_KEY,
    CocoFormatError,
    from_coco,
    read_coco,
    to_coco,
    to_coco_results,
    write_coco,
)
from posekit.skeleton import Skeleton, get_preset, skeleton_from_category

COCO_FILE = "coco-val2017-sample/person_keypoints.json"
CROWDPOSE_FILE = "crowdpose-sample/keypoints.json"
AIC_FILE = "aic-sample/keypoints.json"
POSETRACK_FILE = "posetrack18-sample/annotations/val.json"
SAMPLES = [COCO_FILE, CROWDPOSE_FILE, AIC_FILE, POSETRACK_FILE]

# OKS sigmas do not take part in reading or writing; templates must carry them, so the
# tests give explicit values for the layouts that have no shipped preset.
TEST_SIGMA = 0.05


def canonical(data: object) -> str:
    """JSON text with sorted keys: equal only if values *and* JSON types are equal
    (``1`` vs ``1.0`` vs ``true`` all differ)."""
    return json.dumps(data, sort_keys=True)


def load(shared_data: Path, name: str) -> dict:
    return json.loads((shared_data / name).read_text(encoding="utf-8"))


def template_for(data: dict, name: str) -> Skeleton | None:
    """The project template a user would pick for each sample layout."""
    if name == COCO_FILE:
        return None  # COCO-17 names: the shipped preset is found by name
    category = data["categories"][0]
    k = len(category["keypoints"])
    if name == CROWDPOSE_FILE:
        # The sample's category carries COCO's 17-point skeleton indices (invalid for
        # 14 points), so the template declares its edges by name.
        edges = [
            ["head", "neck"], ["neck", "left_shoulder"], ["neck", "right_shoulder"],
            ["left_shoulder", "left_elbow"], ["left_elbow", "left_wrist"],
            ["right_shoulder", "right_elbow"], ["right_elbow", "right_wrist"],
            ["left_shoulder", "left_hip"], ["right_shoulder", "right_hip"],
            ["left_hip", "right_hip"], ["left_hip", "left_knee"], ["left_knee", "left_ankle"],
            ["right_hip", "right_knee"], ["right_knee", "right_ankle"],
        ]  # fmt: skip
        return skeleton_from_category(category, [TEST_SIGMA] * k, name="crowdpose14", edges=edges)
    return skeleton_from_category(category, [TEST_SIGMA] * k, name=Path(name).parts[0])


@pytest.fixture(scope="module")
def coco_data(shared_data: Path) -> dict:
    return load(shared_data, COCO_FILE)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_round_trip_is_exact(shared_data: Path, name: str) -> None:
    data = load(shared_data, name)
    original = copy.deepcopy(data)
    dataset = from_coco(data, template_for(data, name))
    exported = to_coco(dataset)
    assert canonical(exported) == canonical(original)
    assert data == original, "from_coco must not modify its input"
    # export -> import -> export is the identity as well
    again = to_coco(from_coco(json.loads(json.dumps(exported)), dataset.skeleton))
    assert canonical(again) == canonical(exported)


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_file_round_trip(shared_data: Path, name: str, tmp_path: Path) -> None:
    data = load(shared_data, name)
    skeleton = template_for(data, name)
    dataset = read_coco(shared_data / name, skeleton)
    out = tmp_path / "out.json"
    write_coco(dataset, out)
    assert canonical(json.loads(out.read_text(encoding="utf-8"))) == canonical(data)
    back = read_coco(out, dataset.skeleton)
    assert [item.image for item in back.images] == [item.image for item in dataset.images]
    for a, b in zip(back.images, dataset.images):
        assert a.instances == b.instances
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"], "no temp file left behind"


def test_coco_sample_values(coco_data: dict) -> None:
    dataset = from_coco(coco_data)
    assert dataset.skeleton.name == "coco17"
    assert len(dataset.images) == 4
    assert dataset.num_instances == len(coco_data["annotations"]) == 14
    by_id = {inst.id: (item.image, inst) for item in dataset.images for inst in item.instances}
    for ann in coco_data["annotations"]:
        image, inst = by_id[ann["id"]]
        assert image.id == ann["image_id"]
        triplets = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        np.testing.assert_array_equal(inst.visibility, triplets[:, 2])
        np.testing.assert_allclose(inst.keypoints, triplets[:, :2], rtol=0, atol=1e-4)
        x, y, w, h = ann["bbox"]
        np.testing.assert_allclose(inst.box, [x, y, x + w, y + h], rtol=1e-6)
        assert inst.iscrowd == bool(ann["iscrowd"])
        assert inst.area == ann["area"]
        assert inst.segmentation == ann["segmentation"]
        assert inst.source == "manual" and inst.status == "accepted"
    first = dataset.images[0].image
    assert first.file_name == "000000000785.jpg" and (first.width, first.height) == (640, 425)
    assert first.extra["coco_url"].endswith("000000000785.jpg")
    assert dataset.info == coco_data["info"] and dataset.licenses == coco_data["licenses"]


def test_posetrack_keeps_track_ids_and_precision(shared_data: Path) -> None:
    data = load(shared_data, POSETRACK_FILE)
    dataset = from_coco(data, template_for(data, POSETRACK_FILE))
    instances = [inst for item in dataset.images for inst in item.instances]
    assert [inst.track_id for inst in instances] == [a["track_id"] for a in data["annotations"]]
    assert instances[0].extra["bbox_head"] == data["annotations"][0]["bbox_head"]
    # 488.60028996999995 has more digits than float32 holds: kept in the stash
    assert STASH_KEY in instances[0].extra
    assert to_coco(dataset)["annotations"][0]["bbox"] == data["annotations"][0]["bbox"]
    assert dataset.images[0].image.extra["vid_id"] == "012834"


def test_aic_names_map_through_aliases(shared_data: Path) -> None:
    data = load(shared_data, AIC_FILE)
    skeleton = template_for(data, AIC_FILE)
    assert skeleton.keypoints[0] == "right_shoulder"
    assert skeleton.aliases["right_shoulder"] == ("Right Shoulder",)
    assert ("right_shoulder", "left_shoulder") in skeleton.flip_pairs
    dataset = from_coco(data, skeleton)
    # the file's own spelling is written back
    assert to_coco(dataset)["categories"][0]["keypoints"][0] == "Right Shoulder"


def test_edit_invalidates_stash(shared_data: Path) -> None:
    data = load(shared_data, POSETRACK_FILE)
    dataset = from_coco(data, template_for(data, POSETRACK_FILE))
    inst = dataset.images[0].instances[0]
    assert "keypoints" in inst.extra[STASH_KEY]
    moved = inst.keypoints.copy()
    moved[1] = (100.25, 200.5)
    dataset.images[0].instances[0] = inst.copy(keypoints=moved, box=np.array([1, 2, 3, 4]))
    ann = to_coco(dataset)["annotations"][0]
    assert ann["keypoints"][3:6] == [100.25, 200.5, 1]
    assert ann["keypoints"][6:9] == [392.85593, 510.10895, 1]  # shortest float32 decimals
    assert ann["bbox"] == [1, 2, 2, 2]
    assert "_coco" not in ann


def test_crowdpose_num_keypoints_kept_when_inconsistent(shared_data: Path) -> None:
    data = load(shared_data, CROWDPOSE_FILE)
    dataset = from_coco(data, template_for(data, CROWDPOSE_FILE))
    first = data["annotations"][0]
    labeled = sum(1 for v in first["keypoints"][2::3] if v > 0)
    assert first["num_keypoints"] != labeled  # the sample file is inconsistent
    assert to_coco(dataset)["annotations"][0]["num_keypoints"] == first["num_keypoints"]
    # once the pose is edited the count is recomputed
    inst = dataset.images[0].instances[0]
    dataset.images[0].instances[0] = inst.copy(visibility=np.zeros_like(inst.visibility))
    assert to_coco(dataset)["annotations"][0]["num_keypoints"] == 0


def test_large_generated_file_round_trip() -> None:
    data = make_coco(300, 2000, seed=3)
    dataset = from_coco(json.loads(json.dumps(data)))
    assert dataset.num_instances == 2000
    assert canonical(to_coco(dataset)) == canonical(data)
    crowd = [i for item in dataset.images for i in item.instances if i.iscrowd]
    assert crowd and all(i.num_labeled == 0 for i in crowd)


def test_template_with_more_points_and_other_order(coco_data: dict) -> None:
    coco = get_preset("coco17")
    names = [*reversed(coco.keypoints), "neck"]
    template = Skeleton.from_dict({"name": "coco_neck", "keypoints": names, "default_sigma": 0.05})
    dataset = from_coco(coco_data, template)
    ann = coco_data["annotations"][0]
    inst = dataset.images[0].instances[0]
    triplets = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
    np.testing.assert_array_equal(inst.visibility[:17], triplets[::-1, 2])
    np.testing.assert_allclose(inst.keypoints[:17], triplets[::-1, :2])
    assert inst.visibility[17] == 0
    out = to_coco(dataset)
    assert out["categories"][0]["keypoints"] == names
    assert len(out["annotations"][0]["keypoints"]) == 18 * 3


def test_file_keypoint_missing_from_template_is_an_error(coco_data: dict) -> None:
    template = Skeleton.from_dict(
        {"name": "upper", "keypoints": ["nose", "left_eye", "right_eye"], "default_sigma": 0.05}
    )
    with pytest.raises(CocoFormatError, match=r"categories\[0\] \(id 1\).*'left_ear'"):
        from_coco(coco_data, template)


def test_unknown_layout_without_template_asks_for_one(shared_data: Path) -> None:
    # The CrowdPose sample's names are those of the crowdpose14 preset (through its
    # aliases), so it reads without a template; names of no preset need one.
    data = load(shared_data, CROWDPOSE_FILE)
    assert from_coco(data).skeleton.name == "crowdpose14"
    data["categories"][0]["keypoints"] = [f"point_{i}" for i in range(14)]
    with pytest.raises(CocoFormatError, match=r"match no shipped preset.*template"):
        from_coco(data)


def test_absent_keypoints_and_other_categories_are_kept(coco_data: dict) -> None:
    data = copy.deepcopy(coco_data)
    ann = data["annotations"][0]
    del ann["keypoints"], ann["num_keypoints"]
    data["categories"].append({"id": 2, "name": "dog", "supercategory": "animal"})
    dog = {"id": 99, "image_id": ann["image_id"], "category_id": 2, "bbox": [1, 2, 3, 4]}
    data["annotations"].append(dog)
    data["type"] = "instances"
    dataset = from_coco(data)
    inst = dataset.images[0].instances[0]
    assert inst.num_labeled == 0
    assert dataset.extra_annotations == [dog]
    assert canonical(to_coco(dataset)) == canonical(data)


def test_new_instances_and_predictions_get_ids_and_review_field(coco_data: dict) -> None:
    dataset = from_coco(coco_data)
    k = dataset.skeleton.num_keypoints
    rng = np.random.default_rng(0)
    prediction = Instance(
        rng.uniform(0, 400, (k, 2)),
        np.full(k, 2),
        keypoint_scores=rng.uniform(0, 1, k),
        box=np.array([10, 20, 300, 400]),
        score=0.875,
        source="model:blazepose",
        status="predicted",
    )
    dataset.images[1].instances.append(prediction)
    dataset.images.append(LabeledImage(ImageRecord("new/extra.jpg", 64, 48), []))
    out = to_coco(dataset)
    ann_ids = [a["id"] for a in out["annotations"]]
    assert len(set(ann_ids)) == len(ann_ids)
    new = next(a for a in out["annotations"] if "posekit" in a)
    assert new["id"] == max(a["id"] for a in coco_data["annotations"]) + 1
    assert new["posekit"]["status"] == "predicted"
    assert new["posekit"]["source"] == "model:blazepose"
    assert out["images"][-1]["id"] == max(i["id"] for i in coco_data["images"]) + 1
    back = from_coco(json.loads(json.dumps(out)))
    got = back.images[1].instances[-1]
    assert got == prediction.copy(id=new["id"])


def test_results_of_ground_truth_score_ap_one(coco_data: dict) -> None:
    pycocotools = pytest.importorskip("pycocotools.cocoeval")
    from pycocotools.coco import COCO

    dataset = from_coco(coco_data)
    results = to_coco_results(dataset)
    assert {"image_id", "category_id", "keypoints", "score", "bbox"} <= set(results[0])
    gt = COCO()
    gt.dataset = copy.deepcopy(coco_data)
    gt.createIndex()
    evaluator = pycocotools.COCOeval(gt, gt.loadRes(results), "keypoints")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    assert evaluator.stats[0] == pytest.approx(1.0)


# ---------------------------------------------------------------- property tests

coordinate = st.floats(-1e4, 1e4, allow_nan=False, width=32)


@st.composite
def instances(draw: st.DrawFn, k: int) -> Instance:
    xy = np.asarray(draw(st.lists(coordinate, min_size=2 * k, max_size=2 * k)), np.float32)
    vis = np.asarray(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=k, max_size=k)))
    box = None
    if draw(st.booleans()):
        x1, y1 = draw(coordinate), draw(coordinate)
        w = draw(st.floats(0, 5e3, width=32))
        h = draw(st.floats(0, 5e3, width=32))
        box = np.array([x1, y1, x1 + w, y1 + h], np.float32)
    predicted = draw(st.booleans())
    scores = st.floats(0, 1, width=32)
    return Instance(
        xy.reshape(k, 2),
        vis,
        keypoint_scores=np.asarray(draw(st.lists(scores, min_size=k, max_size=k)))
        if predicted
        else None,
        box=box,
        score=draw(st.none() | st.floats(0, 1)),
        source="model:test" if predicted else "manual",
        status=draw(st.sampled_from(["predicted", "accepted", "rejected"])),
        track_id=draw(st.none() | st.integers(0, 2**40)),
        iscrowd=draw(st.booleans()),
        area=draw(st.none() | st.floats(0, 1e6)),
        id=draw(st.none() | st.integers(1, 2**50)),
        extra=draw(st.dictionaries(st.sampled_from(["note", "bbox_head"]), st.integers())),
    )


@given(st.lists(st.lists(instances(k=5), max_size=3), min_size=1, max_size=3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_export_import_is_identity(per_image: list[list[Instance]]) -> None:
    skeleton = Skeleton.from_dict(
        {
            "name": "five",
            "keypoints": ["head", "left_hand", "right_hand", "left_foot", "right_foot"],
            "flip_pairs": [["left_hand", "right_hand"]],
            "default_sigma": 0.05,
        }
    )
    images = [
        LabeledImage(ImageRecord(f"dir/{i}.jpg", 640, 480, id=None if i else 7), list(items))
        for i, items in enumerate(per_image)
    ]
    ids = [inst.id for items in per_image for inst in items if inst.id is not None]
    if len(set(ids)) != len(ids):
        return  # duplicate ids are invalid input; covered by a dedicated test
    dataset = PoseDataset(skeleton, images)
    exported = to_coco(dataset)
    text = json.dumps(exported, allow_nan=False)
    back = from_coco(json.loads(text), skeleton)
    assert canonical(to_coco(back)) == canonical(exported)
    assert len(back.images) == len(images)
    for got_item, want_item in zip(back.images, images):
        for got, want in zip(got_item.instances, want_item.instances, strict=True):
            assert STASH_KEY not in got.extra, "posekit's own output needs no stash"
            np.testing.assert_array_equal(got.keypoints, want.keypoints)
            np.testing.assert_array_equal(got.visibility, want.visibility)
            if want.box is None:
                assert got.box is None
            else:
                np.testing.assert_array_equal(got.box, want.box)
            assert got.copy(id=None) == want.copy(id=None)


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=32), min_size=1))
def test_property_float32_coordinates_survive_json(values: list[float]) -> None:
    k = len(values)
    names = [f"p{i}" for i in range(k)]
    skeleton = Skeleton.from_dict({"name": "n", "keypoints": names, "default_sigma": 0.05})
    xy = np.stack([values, values[::-1]], axis=1).astype(np.float32)
    inst = Instance(xy, np.full(k, 2))
    dataset = PoseDataset(skeleton, [LabeledImage(ImageRecord("a.jpg", 10, 10, 1), [inst])])
    text = json.dumps(to_coco(dataset), allow_nan=False)
    back = from_coco(json.loads(text), skeleton).images[0].instances[0]
    np.testing.assert_array_equal(back.keypoints, xy)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5000), st.integers(0, 99), st.integers(1, 5000), st.integers(0, 99)
        ),
        min_size=1,
        max_size=20,
    )
)
def test_property_two_decimal_boxes_read_back_exactly(raw: list[tuple[int, ...]]) -> None:
    """Typical COCO boxes (two decimals) are written back digit for digit."""
    data = make_coco(1, len(raw), seed=1)
    for ann, (x, xd, w, wd) in zip(data["annotations"], raw):
        ann["bbox"] = [x + xd / 100, 7.25, w + wd / 100, 3.5]
    out = to_coco(from_coco(data))
    assert [a["bbox"] for a in out["annotations"]] == [a["bbox"] for a in data["annotations"]]
    assert all(STASH_KEY not in a for a in out["annotations"])


# ---------------------------------------------------------------- malformed input


def broken(coco_data: dict, change) -> dict:
    data = copy.deepcopy(coco_data)
    change(data)
    return data


def expect_error(data: dict, pattern: str) -> None:
    with pytest.raises(CocoFormatError, match=pattern):
        from_coco(data)


@pytest.mark.parametrize("key", ["images", "annotations", "categories"])
def test_missing_top_level_key(coco_data: dict, key: str) -> None:
    expect_error(broken(coco_data, lambda d: d.pop(key)), f"missing required key '{key}'")


def test_not_an_object() -> None:
    with pytest.raises(CocoFormatError, match="expected a JSON object"):
        from_coco([])  # type: ignore[arg-type]


def test_wrong_keypoint_count(coco_data: dict) -> None:
    data = broken(coco_data, lambda d: d["annotations"][3]["keypoints"].__delitem__(slice(0, 3)))
    aid = data["annotations"][3]["id"]
    expect_error(
        data,
        rf"annotations\[3\] \(id {aid}\): 'keypoints' has 48 values, expected 51 "
        r"\(17 keypoints x 3\)",
    )


def test_visibility_three(coco_data: dict) -> None:
    data = broken(coco_data, lambda d: d["annotations"][2]["keypoints"].__setitem__(17, 3))
    aid = data["annotations"][2]["id"]
    expect_error(
        data, rf"annotations\[2\] \(id {aid}\): keypoint 5 \('left_shoulder'\) has visibility 3"
    )


def test_nan_coordinate(coco_data: dict) -> None:
    data = broken(coco_data, lambda d: d["annotations"][1]["keypoints"].__setitem__(0, math.nan))
    # also through the JSON parser, which accepts the NaN literal
    data = json.loads(json.dumps(data))
    aid = data["annotations"][1]["id"]
    expect_error(data, rf"annotations\[1\] \(id {aid}\): keypoint 0 \('nose'\) has a non-finite")


def test_non_numeric_keypoint(coco_data: dict) -> None:
    data = broken(coco_data, lambda d: d["annotations"][4]["keypoints"].__setitem__(7, "12"))
    aid = data["annotations"][4]["id"]
    expect_error(data, rf"annotations\[4\] \(id {aid}\): 'keypoints' value #7 is '12'")


def test_duplicate_image_id(coco_data: dict) -> None:
    data = broken(coco_data, lambda d: d["images"][2].__setitem__("id", d["images"][0]["id"]))
    expect_error(data, r"images\[2\] \(id 785\): duplicate image id 785 \(also images\[0\]\)")


def test_duplicate_annotation_id(coco_data: dict) -> None:
    def change(d: dict) -> None:
        d["annotations"][5]["id"] = d["annotations"][1]["id"]

    data = broken(coco_data, change)
    aid = data["annotations"][1]["id"]
    expect_error(
        data, rf"annotations\[5\] \(id {aid}\): duplicate annotation id \(also annotations\[1\]\)"
    )


def test_unknown_image_id(coco_data: dict) -> None:
    data = broken(coco_data, lambda d: d["annotations"][6].__setitem__("image_id", 424242))
    aid = data["annotations"][6]["id"]
    expect_error(data, rf"annotations\[6\] \(id {aid}\): 'image_id' 424242 is not the id")


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("../x.jpg", r"climbs out of the image folder"),
        ("images/../../x.jpg", r"climbs out of the image folder"),
        ("/etc/passwd", r"is an absolute path"),
        ("..\\..\\x.jpg", r"climbs out of the image folder"),
        ("\\\\server\\share\\x.jpg", r"is an absolute path"),
        ("C:\\Windows\\x.jpg", r"drive letter"),
        ("a\x00.jpg", r"NUL"),
        ("", r"not a non-empty string"),
    ],
)
def test_unsafe_file_names(coco_data: dict, file_name: str, reason: str) -> None:
    data = broken(coco_data, lambda d: d["images"][1].__setitem__("file_name", file_name))
    iid = data["images"][1]["id"]
    expect_error(data, rf"images\[1\] \(id {iid}\): 'file_name': .*{reason}")


def test_negative_width(coco_data: dict) -> None:
    data = broken(coco_data, lambda d: d["images"][0].__setitem__("width", -640))
    expect_error(data, r"images\[0\] \(id 785\): 'width' must be positive, got -640")


@pytest.mark.parametrize(
    ("bbox", "pattern"),
    [
        ([1.0, 2.0, 3.0], r"'bbox' has 3 values, expected 4"),
        ([1.0, 2.0, -3.0, 4.0], r"'bbox' .* non-negative width and height"),
        ({"x": 1}, r"'bbox' must be a list, got dict"),
    ],
)
def test_bad_bbox(coco_data: dict, bbox: object, pattern: str) -> None:
    data = broken(coco_data, lambda d: d["annotations"][8].__setitem__("bbox", bbox))
    aid = data["annotations"][8]["id"]
    expect_error(data, rf"annotations\[8\] \(id {aid}\): {pattern}")


def test_bad_iscrowd_and_review_field(coco_data: dict) -> None:
    data = broken(coco_data, lambda d: d["annotations"][0].__setitem__("iscrowd", 2))
    expect_error(data, r"annotations\[0\] \(id \d+\): 'iscrowd' must be 0 or 1, got 2")
    review = {"status": "maybe"}
    data = broken(coco_data, lambda d: d["annotations"][0].__setitem__("posekit", review))
    expect_error(data, r"annotations\[0\] \(id \d+\): posekit.status 'maybe' is not one of")


def test_read_coco_reports_path_and_invalid_json(tmp_path: Path, coco_data: dict) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(CocoFormatError, match=r"bad\.json: not valid JSON"):
        read_coco(bad)
    data = broken(coco_data, lambda d: d["annotations"][0]["keypoints"].__setitem__(2, 3))
    path = tmp_path / "vis.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CocoFormatError, match=r"vis\.json: annotations\[0\]"):
        read_coco(path)


def test_write_coco_failure_leaves_existing_file(tmp_path: Path, coco_data: dict) -> None:
    out = tmp_path / "keep.json"
    out.write_text("previous", encoding="utf-8")
    dataset = from_coco(coco_data)
    wrong = Instance(np.zeros((3, 2)), np.zeros(3))
    dataset.images[0].instances.append(wrong)
    with pytest.raises(CocoFormatError, match="has 3 keypoints, but template 'coco17' has 17"):
        write_coco(dataset, out)
    assert out.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


def test_null_and_odd_typed_fields_round_trip(coco_data: dict) -> None:
    data = copy.deepcopy(coco_data)
    first, second = data["annotations"][0], data["annotations"][1]
    first.update(area=None, segmentation=None, score=None, track_id=None)
    second.update(iscrowd=False, area=702, score=1, track_id=3.0)
    second["keypoints"][0:3] = [0, 5, 0]  # coordinates at a not-labeled point
    dataset = from_coco(data)
    inst = next(i for item in dataset.images for i in item.instances if i.id == second["id"])
    assert (inst.area, inst.score, inst.track_id) == (702.0, 1.0, 3)
    assert inst.keypoints[0].tolist() == [0.0, 0.0]  # Instance convention for v=0
    assert canonical(to_coco(dataset)) == canonical(data)


def test_annotations_without_extra_fields_equal_the_general_branch() -> None:
    """``coco_annotations`` builds annotations without extra fields by a short branch;
    an empty stash takes the general branch with nothing to restore: same dicts, same
    key order."""
    from posekit.formats.coco_write import STASH_KEY, AnnotationColumns, coco_annotations

    rng = np.random.default_rng(3)
    n, k = 12, 17
    vis = rng.integers(0, 3, (n, k)).astype(np.uint8)
    xy = (rng.uniform(0, 500, (n, k, 2)) * (vis[..., None] > 0)).astype(np.float32)
    boxes = [np.array([1.5, 2.0, 40.25, 60.0], np.float32) if j % 3 else None for j in range(n)]
    scores = [rng.uniform(0, 1, k).astype(np.float32) if j % 3 == 1 else None for j in range(n)]

    def columns(extra: list[dict]) -> AnnotationColumns:
        return AnnotationColumns(
            ids=list(range(1, n + 1)),
            image_ids=[j // 2 for j in range(n)],
            xy=xy,
            vis=vis,
            boxes=boxes,
            iscrowd=[j == 5 for j in range(n)],
            area=[None if j % 4 == 0 else 10.5 * j for j in range(n)],
            score=[0.25 * (j % 4) if j % 2 else None for j in range(n)],
            track_id=[j if j % 5 == 0 else None for j in range(n)],
            segmentation=[[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]] if j in (7, 10) else None
                          for j in range(n)],
            extra=extra,
            status=["predicted" if j % 2 else "accepted" for j in range(n)],
            source=["model:x" if j % 2 else "manual" for j in range(n)],
            keypoint_scores=scores,
        )  # fmt: skip

    short = coco_annotations(columns([{} for _ in range(n)]), 1)
    general = coco_annotations(columns([{STASH_KEY: {}} for _ in range(n)]), 1)
    assert [list(a.items()) for a in short] == [list(a.items()) for a in general]
    assert {"bbox", "area", "score", "track_id", "segmentation", "posekit"} <= set().union(*short)
