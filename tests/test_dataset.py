"""Tests for posekit.dataset: the format-neutral dataset types."""

from __future__ import annotations

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.coco import from_coco, to_coco
from posekit.skeleton import get_preset


def _instance(k: int) -> Instance:
    return Instance(np.zeros((k, 2)), np.zeros(k))


def test_defaults_and_instance_count() -> None:
    skeleton = get_preset("coco17")
    record = ImageRecord("a.jpg", 640, 480)
    assert record.id is None and record.extra == {}
    dataset = PoseDataset(
        skeleton,
        [
            LabeledImage(record, [_instance(17), _instance(17)]),
            LabeledImage(ImageRecord("b.jpg", 10, 10, 2), []),
        ],
    )
    assert dataset.num_instances == 2
    assert dataset.category_id == 1
    assert dataset.info is None and dataset.licenses is None and dataset.category is None
    assert dataset.extra_categories == [] and dataset.extra_annotations == []
    assert dataset.extra == {}
    other = PoseDataset(skeleton, [])
    other.extra_annotations.append({"id": 1})
    assert dataset.extra_annotations == []  # no shared mutable defaults


def test_coco_fields_are_carried_verbatim() -> None:
    skeleton = get_preset("coco17")
    dataset = PoseDataset(
        skeleton,
        [LabeledImage(ImageRecord("a.jpg", 64, 48, 5, {"license": 3}), [])],
        category_id=7,
        info={"year": 2017},
        licenses=[{"id": 3, "name": "cc"}],
        extra_categories=[{"id": 9, "name": "dog"}],
        extra={"custom": [1, 2]},
    )
    data = to_coco(dataset)
    assert data["info"] == {"year": 2017} and data["licenses"] == [{"id": 3, "name": "cc"}]
    assert data["images"][0] == {"id": 5, "file_name": "a.jpg", "width": 64, "height": 48,
                                 "license": 3}  # fmt: skip
    assert [c["id"] for c in data["categories"]] == [7, 9]
    assert data["custom"] == [1, 2]
    back = from_coco(data)
    assert back.info == dataset.info and back.licenses == dataset.licenses
    assert back.extra == dataset.extra and back.category_id == 7
    assert back.images[0].image == dataset.images[0].image


def test_fill_missing_ids_counts_up_after_the_largest() -> None:
    from posekit.dataset import fill_missing_ids

    assert fill_missing_ids([7, None, 3, None]) == [7, 8, 3, 9]
    assert fill_missing_ids([None, None]) == [1, 2]
    assert fill_missing_ids([None, 2], reserved={10}) == [11, 2]
    assert fill_missing_ids([]) == []
