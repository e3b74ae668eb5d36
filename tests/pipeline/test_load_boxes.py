"""Tests for posekit.pipeline.boxes: person boxes from COCO files and results lists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posekit.formats.coco import CocoFormatError
from posekit.pipeline.boxes import load_boxes

COCO_FILE = "coco-val2017-sample/person_keypoints.json"


@pytest.fixture(scope="module")
def coco_data(shared_data: Path) -> dict:
    return json.loads((shared_data / COCO_FILE).read_text(encoding="utf-8"))


def test_load_boxes_from_results_list(shared_data: Path, coco_data: dict) -> None:
    results_path = shared_data / "coco-val2017-sample" / "person_detections.json"
    results = json.loads(results_path.read_text(encoding="utf-8"))
    boxes = load_boxes(results_path, images_from=shared_data / COCO_FILE)
    assert set(boxes) == {img["file_name"] for img in coco_data["images"]}
    assert sum(len(d) for d in boxes.values()) == len(results) == 118
    first = results[0]
    name = next(i["file_name"] for i in coco_data["images"] if i["id"] == first["image_id"])
    x, y, w, h = first["bbox"]
    np.testing.assert_allclose(boxes[name].boxes[0], [x, y, x + w, y + h], rtol=1e-6)
    assert boxes[name].scores[0] == pytest.approx(first["score"])


def test_load_boxes_results_list_needs_images(shared_data: Path) -> None:
    with pytest.raises(CocoFormatError, match=r"results list.*images_from"):
        load_boxes(shared_data / "coco-val2017-sample" / "person_detections.json")


def test_load_boxes_from_coco_file(shared_data: Path, coco_data: dict) -> None:
    boxes = load_boxes(shared_data / COCO_FILE)
    expected = [a for a in coco_data["annotations"] if not a["iscrowd"]]
    assert sum(len(d) for d in boxes.values()) == len(expected)
    assert all(np.all(d.scores == 1.0) for d in boxes.values())


def test_load_boxes_unknown_image(tmp_path: Path, shared_data: Path) -> None:
    results = tmp_path / "r.json"
    results.write_text(json.dumps([{"image_id": 5, "bbox": [0, 0, 1, 1], "score": 1}]))
    with pytest.raises(CocoFormatError, match=r"results\[0\]: 'image_id' 5 is not the id"):
        load_boxes(results, images_from=shared_data / COCO_FILE)


def test_load_boxes_unsafe_file_name(tmp_path: Path) -> None:
    data = {"images": [{"id": 1, "file_name": "../x.jpg"}], "annotations": []}
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CocoFormatError, match=r"images\[0\] \(id 1\): 'file_name': .*climbs out"):
        load_boxes(path)
