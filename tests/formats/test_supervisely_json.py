"""The Supervisely images writer's bytes (posekit.formats.supervisely_json) are those
of ``orjson.dumps`` on the annotation dicts of ``to_supervisely``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.supervisely import read_supervisely, to_supervisely, write_supervisely
from posekit.formats.supervisely_graph import SuperviselyFormatError
from posekit.formats.supervisely_images import _image_items
from posekit.formats.supervisely_json import image_annotation_bytes
from posekit.skeleton import Skeleton, get_preset

from .test_supervisely import _instance, image_datasets

FIXTURES = Path(__file__).parent / "fixtures"


def _expected(ds: PoseDataset, title: str) -> list[tuple[str, str, bytes]]:
    return [(i.dataset, i.name, orjson.dumps(i.annotation)) for i in _image_items(ds, title)]


def _check(ds: PoseDataset, title: str = "person") -> None:
    try:
        expected = _expected(ds, title)
    except SuperviselyFormatError as exc:
        with pytest.raises(SuperviselyFormatError) as raised:
            image_annotation_bytes(ds, title)
        assert str(raised.value) == str(exc)
        return
    assert image_annotation_bytes(ds, title) == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_datasets(), st.sampled_from(["person", 'we"ird\\ \u00e9 title']))
def test_same_bytes_as_the_annotation_dicts(ds: PoseDataset, title: str) -> None:
    _check(ds, title)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(-(2.0**40), 2.0**40, allow_nan=False, width=32), min_size=4, max_size=4),
    st.lists(st.sampled_from([0, 1, 2]), min_size=2, max_size=2),
)
def test_any_float_and_other_names(values: list[float], vis: list[int]) -> None:
    skeleton = Skeleton.from_dict(
        {"name": "odd", "category": "thing", "keypoints": ["a.b-1", "c_d"],
         "edges": [], "default_sigma": 0.05}
    )  # fmt: skip
    inst = _instance(np.reshape(values, (2, 2)), vis)
    images = [LabeledImage(ImageRecord("im.jpg", 7, 9), [inst, inst]),
              LabeledImage(ImageRecord("d/empty.jpg", 1, 2), [])]  # fmt: skip
    _check(PoseDataset(skeleton, images), "thing")


def test_no_instances_and_rejected_ones() -> None:
    skeleton = get_preset("coco17")
    k = skeleton.num_keypoints
    rejected = _instance(np.ones((k, 2)), [2] * k, status="rejected")
    _check(PoseDataset(skeleton, []))
    _check(PoseDataset(skeleton, [LabeledImage(ImageRecord("a.jpg", 3, 4), [rejected])]))


def test_written_files_equal_the_dicts_and_read_back(tmp_path: Path) -> None:
    ds = read_supervisely(FIXTURES / "supervisely_images")
    meta_path = write_supervisely(ds, tmp_path / "out")
    meta, items = to_supervisely(ds)
    assert orjson.loads(meta_path.read_bytes()) == meta
    for item in items:
        written = (tmp_path / "out" / item.dataset / "ann" / f"{item.name}.json").read_bytes()
        assert written == orjson.dumps(item.annotation)
    again = read_supervisely(tmp_path / "out", ds.skeleton)
    assert [i.image.file_name for i in again.images] == [i.image.file_name for i in ds.images]
    for a, b in zip(ds.images, again.images):
        assert [x.visibility.tolist() for x in a.instances] == [
            y.visibility.tolist() for y in b.instances
        ]
