"""Tests for posekit.formats.yolo: label content against the COCO sample, dataset layout,
name collisions, splits, and the label codec round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.coco import from_coco, read_coco
from posekit.formats.yolo import (
    YoloFormatError,
    export_names,
    instance_to_yolo_line,
    read_yolo,
    write_yolo,
    yolo_line_to_instance,
)
from posekit.skeleton import Skeleton, skeleton_from_category

COCO_DIR = "coco-val2017-sample"


@pytest.fixture(scope="module")
def coco_json(shared_data: Path) -> dict:
    return json.loads((shared_data / COCO_DIR / "person_keypoints.json").read_text("utf-8"))


@pytest.fixture
def exported(shared_data: Path, coco_json: dict, tmp_path: Path) -> tuple[Path, PoseDataset]:
    dataset = from_coco(coco_json)
    # a crowd region (box, no keypoints) that the export must skip
    crowd = Instance(np.zeros((17, 2)), np.zeros(17), box=np.array([0, 0, 50, 50]), iscrowd=True)
    dataset.images[0].instances.append(crowd)
    paths = {
        item.image.file_name: shared_data / COCO_DIR / "images" / item.image.file_name
        for item in dataset.images
    }
    return write_yolo(dataset, paths, tmp_path / "yolo"), dataset


def test_labels_match_coco_annotations(exported: tuple[Path, PoseDataset], coco_json: dict):
    data_yaml, _ = exported
    root = data_yaml.parent
    images = {img["id"]: img for img in coco_json["images"]}
    for image_id, img in images.items():
        label = root / "labels" / "train" / (Path(img["file_name"]).stem + ".txt")
        rows = [
            np.asarray(line.split(), dtype=np.float64)
            for line in label.read_text("utf-8").splitlines()
        ]
        anns = [
            a for a in coco_json["annotations"] if a["image_id"] == image_id and not a["iscrowd"]
        ]
        assert len(rows) == len(anns), "one line per non-crowd person"
        width, height = img["width"], img["height"]
        for row, ann in zip(rows, anns):
            assert row.shape == (5 + 17 * 3,)
            assert row[0] == 0
            x, y, w, h = ann["bbox"]
            expected_box = [(x + w / 2) / width, (y + h / 2) / height, w / width, h / height]
            np.testing.assert_allclose(row[1:5], expected_box, atol=2e-6)
            triplets = np.asarray(ann["keypoints"], dtype=np.float64).reshape(17, 3)
            points = row[5:].reshape(17, 3)
            np.testing.assert_array_equal(points[:, 2], triplets[:, 2])
            np.testing.assert_allclose(points[:, 0], triplets[:, 0] / width, atol=1e-6)
            np.testing.assert_allclose(points[:, 1], triplets[:, 1] / height, atol=1e-6)
            assert np.all(points[triplets[:, 2] == 0] == 0), "not labeled points are 0 0 0"


def test_dataset_layout_and_yaml(exported: tuple[Path, PoseDataset], shared_data: Path) -> None:
    data_yaml, dataset = exported
    root = data_yaml.parent
    config = yaml.safe_load(data_yaml.read_text("utf-8"))
    assert "path" not in config  # relative to data.yaml's folder: loads wherever it is moved
    assert config["train"] == config["val"] == "images/train"
    assert config["kpt_shape"] == [17, 3]
    assert config["flip_idx"] == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]
    assert config["names"] == {0: "person"}
    assert config["kpt_names"][0][:3] == ["nose", "left_eye", "right_eye"]
    for item in dataset.images:
        link = root / "images" / "train" / item.image.file_name
        assert link.is_symlink()
        assert link.resolve() == (shared_data / COCO_DIR / "images" / item.image.file_name)


def test_read_back_matches_within_label_precision(exported: tuple[Path, PoseDataset]) -> None:
    data_yaml, dataset = exported
    items = {item.image.file_name: item for item in read_yolo(data_yaml.parent, dataset.skeleton)}
    assert set(items) == {item.image.file_name for item in dataset.images}
    for original in dataset.images:
        back = items[original.image.file_name]
        size = (original.image.width, original.image.height)
        assert (back.image.width, back.image.height) == size
        kept = [i for i in original.instances if not i.iscrowd]
        assert len(back.instances) == len(kept)
        for got, want in zip(back.instances, kept):
            np.testing.assert_array_equal(got.visibility, want.visibility)
            np.testing.assert_allclose(got.keypoints, want.keypoints, atol=1e-3)
            np.testing.assert_allclose(got.box, want.box, atol=1e-3)


def test_nested_names_do_not_collide(shared_data: Path, tmp_path: Path) -> None:
    root = shared_data / "posetrack18-sample"
    data = json.loads((root / "annotations" / "val.json").read_text("utf-8"))
    category = data["categories"][0]
    skeleton = skeleton_from_category(category, [0.05] * 17, name="posetrack17")
    dataset = read_coco(root / "annotations" / "val.json", skeleton)
    names = [item.image.file_name for item in dataset.images]
    assert len({Path(n).name for n in names}) < len(names), "sample has same-named frames"
    paths = {name: root / name for name in names}
    data_yaml = write_yolo(dataset, paths, tmp_path / "pt", link=False)
    written = sorted(p.name for p in (data_yaml.parent / "images" / "train").iterdir())
    assert len(written) == len(names)
    assert all(not (data_yaml.parent / "images" / "train" / n).is_symlink() for n in written)
    back = read_yolo(data_yaml.parent, skeleton)
    assert sorted(item.image.file_name for item in back) == sorted(names)
    counts = {item.image.file_name: len(item.instances) for item in back}
    assert counts == {item.image.file_name: len(item.instances) for item in dataset.images}


def test_export_names() -> None:
    names = export_names(["a/1.jpg", "b/1.jpg", "a__1.jpg", "A/1.JPG", "c.png", "c.jpg"])
    assert names[:2] == ["a__1.jpg", "b__1.jpg"]
    assert names[2] == "a__1_2.jpg"
    assert names[3] == "A__1_3.JPG"  # same as a__1 on case-insensitive file systems
    assert names[4:] == ["c.png", "c_2.jpg"]  # labels c.txt would collide
    with pytest.raises(YoloFormatError, match="climbs out"):
        export_names(["../evil.jpg"])


def test_val_split_is_deterministic(shared_data: Path, coco_json: dict, tmp_path: Path) -> None:
    dataset = from_coco(coco_json)
    paths = {i.image.file_name: shared_data / COCO_DIR / "images" / i.image.file_name
             for i in dataset.images}  # fmt: skip
    first = write_yolo(dataset, paths, tmp_path / "a", val_fraction=0.25)
    second = write_yolo(dataset, paths, tmp_path / "b", val_fraction=0.25)
    assert yaml.safe_load(first.read_text("utf-8"))["val"] == "images/val"
    val_a = sorted(p.name for p in (first.parent / "images" / "val").iterdir())
    val_b = sorted(p.name for p in (second.parent / "images" / "val").iterdir())
    assert val_a == val_b and len(val_a) == 1
    assert len(list((first.parent / "images" / "train").iterdir())) == 3
    assert len(list((first.parent / "labels" / "val").iterdir())) == 1


def test_missing_image_path_is_an_error(coco_json: dict, tmp_path: Path) -> None:
    dataset = from_coco(coco_json)
    with pytest.raises(YoloFormatError, match=r"image '000000000785\.jpg': no path"):
        write_yolo(dataset, {}, tmp_path / "x")


def test_instance_without_box_uses_keypoints_and_empty_is_skipped() -> None:
    k = 3
    inst = Instance(np.array([[10, 20], [30, 60], [0, 0]]), np.array([2, 1, 0]))
    line = instance_to_yolo_line(inst, 100, 100)
    assert line is not None
    values = [float(v) for v in line.split()]
    assert values[:5] == [0, 0.2, 0.4, 0.2, 0.4]
    assert values[5:] == [0.1, 0.2, 2, 0.3, 0.6, 1, 0, 0, 0]
    assert instance_to_yolo_line(Instance(np.zeros((k, 2)), np.zeros(k)), 100, 100) is None


def test_bad_label_lines() -> None:
    with pytest.raises(YoloFormatError, match=r"f\.txt:3: 7 values, expected 14"):
        yolo_line_to_instance("0 0.5 0.5 0.1 0.1 0.2 0.2", 10, 10, 3, where="f.txt:3")
    with pytest.raises(YoloFormatError, match="visibility"):
        yolo_line_to_instance("0 .5 .5 .1 .1 .2 .2 3 0 0 0 0 0 0", 10, 10, 3)


@given(
    st.lists(
        st.tuples(st.floats(0, 639), st.floats(0, 479), st.sampled_from([0, 1, 2])),
        min_size=4,
        max_size=4,
    )
)
@settings(max_examples=50, deadline=None)
def test_property_label_round_trip(points: list[tuple[float, float, int]]) -> None:
    xy = np.array([(x, y) for x, y, _ in points], np.float32)
    vis = np.array([v for _, _, v in points])
    inst = Instance(xy, vis, box=np.array([5, 6, 600, 470]))
    line = instance_to_yolo_line(inst, 640, 480)
    assert line is not None
    _, back = yolo_line_to_instance(line, 640, 480, 4)
    np.testing.assert_array_equal(back.visibility, inst.visibility)
    np.testing.assert_allclose(back.keypoints, inst.keypoints, atol=640 * 1e-6)
    np.testing.assert_allclose(back.box, inst.box, atol=640 * 1e-6)


def test_ultralytics_accepts_export(exported: tuple[Path, PoseDataset]) -> None:
    utils = pytest.importorskip(
        "ultralytics.data.utils", reason="ultralytics is not installed (optional check)"
    )
    data_yaml, _ = exported
    info = utils.check_det_dataset(str(data_yaml), autodownload=False)
    assert info["kpt_shape"] == [17, 3]
    assert info["nc"] == 1


def test_custom_template_flip_index(tmp_path: Path) -> None:
    skeleton = Skeleton.from_dict(
        {
            "name": "three",
            "keypoints": ["head", "left_hand", "right_hand"],
            "flip_pairs": [["left_hand", "right_hand"]],
            "default_sigma": 0.05,
        }
    )
    image = tmp_path / "img.png"
    from PIL import Image

    Image.new("RGB", (20, 10)).save(image)
    dataset = PoseDataset(skeleton, [LabeledImage(ImageRecord("img.png", 20, 10, 1), [])])
    data_yaml = write_yolo(dataset, {"img.png": image}, tmp_path / "out", split="all")
    config = yaml.safe_load(data_yaml.read_text("utf-8"))
    assert config["flip_idx"] == [0, 2, 1] and config["kpt_shape"] == [3, 3]
    assert config["train"] == "images/all"
    assert (data_yaml.parent / "labels" / "all" / "img.txt").read_text("utf-8") == ""
