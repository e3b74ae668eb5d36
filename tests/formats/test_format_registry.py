"""Tests for posekit.formats.registry: the one format table."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats import coco, yolo
from posekit.formats.registry import (
    FORMATS,
    FormatCapabilities,
    FormatSpec,
    UnknownFormatError,
    get_format,
    readable_formats,
    writable_formats,
)
from posekit.skeleton import get_preset
from posekit.statuses import DEFAULT_EXPORT_STATUSES


@pytest.fixture
def dataset() -> PoseDataset:
    skeleton = get_preset("coco17")
    xy = np.tile([[10.0, 20.0]], (17, 1))
    instance = Instance(xy, np.full(17, 2), score=0.9, status="accepted")
    return PoseDataset(skeleton, [LabeledImage(ImageRecord("dir/a.png", 64, 48, 1), [instance])])


def test_table_lists_coco_and_yolo() -> None:
    assert list(FORMATS) == ["coco", "yolo"]
    assert readable_formats() == ["coco"]
    assert writable_formats() == ["coco", "yolo"]
    for name, spec in FORMATS.items():
        assert isinstance(spec, FormatSpec) and spec.name == name
        assert isinstance(spec.capabilities, FormatCapabilities)
        assert spec.kind in ("file", "folder")
        assert spec.title


def test_coco_entry() -> None:
    spec = get_format("coco")
    assert spec.read is coco.read_coco and spec.write is coco.write_coco
    assert spec.extensions == (".json",) and spec.kind == "file"
    caps = spec.capabilities
    assert caps.visibility_states == (0, 1, 2)
    assert caps.scores and caps.tracks and caps.boxes and not caps.video


def test_yolo_entry() -> None:
    spec = get_format("yolo")
    assert spec.read is None and spec.write is yolo.write_yolo_folder
    assert spec.kind == "folder"
    assert not spec.capabilities.scores and not spec.capabilities.tracks
    assert spec.capabilities.boxes


def test_one_default_status_policy() -> None:
    assert all(spec.default_statuses == DEFAULT_EXPORT_STATUSES for spec in FORMATS.values())


def test_unknown_format_lists_the_known_ones() -> None:
    with pytest.raises(UnknownFormatError, match=r"unknown format 'cvat'.*coco, yolo"):
        get_format("cvat")
    with pytest.raises(ValueError, match="known formats"):
        get_format(None)  # type: ignore[arg-type]


def test_every_writer_takes_the_same_call(dataset: PoseDataset, tmp_path: Path) -> None:
    """write(dataset, destination, *, media=...) works for every writable format."""
    image = tmp_path / "a.png"
    image.write_bytes(b"not read by the writers")
    for name in writable_formats():
        spec = get_format(name)
        parameters = inspect.signature(spec.write).parameters
        assert parameters["media"].kind is inspect.Parameter.KEYWORD_ONLY
        destination = tmp_path / (f"out{spec.extensions[0]}" if spec.extensions else "out")
        written = spec.write(dataset, destination, media={"dir/a.png": image})
        assert Path(written).is_file()
    coco_out = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert coco_out["images"][0]["file_name"] == "dir/a.png"
    config = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text(encoding="utf-8"))
    assert config["kpt_shape"] == [17, 3]
    assert (tmp_path / "out" / "labels" / "train" / "dir__a.txt").is_file()


def test_readers_read_what_the_writers_wrote(dataset: PoseDataset, tmp_path: Path) -> None:
    for name in readable_formats():
        spec = get_format(name)
        if spec.write is None:
            continue
        destination = tmp_path / f"out{spec.extensions[0]}"
        spec.write(dataset, destination)
        back = spec.read(destination, dataset.skeleton)
        assert [item.image.file_name for item in back.images] == ["dir/a.png"]
        np.testing.assert_array_equal(
            back.images[0].instances[0].keypoints, dataset.images[0].instances[0].keypoints
        )


def test_yolo_writer_needs_media(dataset: PoseDataset, tmp_path: Path) -> None:
    with pytest.raises(yolo.YoloFormatError, match="no path given"):
        get_format("yolo").write(dataset, tmp_path / "y")
