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


def test_table_entries_are_complete() -> None:
    assert list(FORMATS)[:2] == ["coco", "yolo"]
    assert readable_formats() == [n for n, spec in FORMATS.items() if spec.read is not None]
    assert writable_formats() == [n for n, spec in FORMATS.items() if spec.write is not None]
    assert {"coco", "cvat", "labelstudio", "posetrack", "sleap", "deeplabcut"} <= set(FORMATS)
    for name, spec in FORMATS.items():
        assert isinstance(spec, FormatSpec) and spec.name == name
        assert isinstance(spec.capabilities, FormatCapabilities)
        assert spec.kind in ("file", "folder")
        assert spec.title
        # a file format names its file endings; a folder format has none
        assert bool(spec.extensions) == (spec.kind == "file"), name
        assert set(spec.capabilities.visibility_states) <= {0, 1, 2} and 0 in (
            spec.capabilities.visibility_states
        )


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
    with pytest.raises(UnknownFormatError, match=r"unknown format 'nope'.*coco, yolo"):
        get_format("nope")
    with pytest.raises(ValueError, match="known formats"):
        get_format(None)  # type: ignore[arg-type]


def _destination(tmp_path: Path, name: str) -> Path:
    spec = get_format(name)
    return tmp_path / name / (f"out{spec.extensions[0]}" if spec.extensions else "out")


@pytest.mark.parametrize("name", writable_formats())
def test_every_writer_takes_the_same_call(name: str, dataset: PoseDataset, tmp_path: Path) -> None:
    """write(dataset, destination, *, media=...) works for every writable format."""
    spec = get_format(name)
    if name == "sleap":
        pytest.importorskip("sleap_io", reason="the sleap format needs the [sleap] extra")
    image = tmp_path / "a.png"
    image.write_bytes(b"not read by the writers")
    parameters = inspect.signature(spec.write).parameters
    assert parameters["media"].kind is inspect.Parameter.KEYWORD_ONLY
    destination = _destination(tmp_path, name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    written = spec.write(dataset, destination, media={"dir/a.png": image})
    assert Path(written).is_file()
    if name == "coco":
        coco_out = json.loads(destination.read_text(encoding="utf-8"))
        assert coco_out["images"][0]["file_name"] == "dir/a.png"
    if name == "yolo":
        config = yaml.safe_load((destination / "data.yaml").read_text(encoding="utf-8"))
        assert config["kpt_shape"] == [17, 3]
        assert (destination / "labels" / "train" / "dir__a.txt").is_file()


@pytest.mark.parametrize("name", [n for n in readable_formats() if get_format(n).write is not None])
def test_readers_read_what_the_writers_wrote(
    name: str, dataset: PoseDataset, tmp_path: Path
) -> None:
    spec = get_format(name)
    if name == "sleap":
        pytest.importorskip("sleap_io", reason="the sleap format needs the [sleap] extra")
    image = tmp_path / "a.png"
    image.write_bytes(b"not read by the writers")
    destination = _destination(tmp_path, name)
    destination.parent.mkdir(parents=True, exist_ok=True)
    spec.write(dataset, destination, media={"dir/a.png": image})
    back = spec.read(destination, dataset.skeleton)
    # formats may rename still images (DeepLabCut keeps them under labeled-data/): compare
    # what each format can carry, the instances
    assert len(back.images) == 1 and len(back.images[0].instances) == 1
    np.testing.assert_allclose(
        back.images[0].instances[0].keypoints, dataset.images[0].instances[0].keypoints, atol=1e-3
    )
    np.testing.assert_array_equal(
        back.images[0].instances[0].visibility, dataset.images[0].instances[0].visibility
    )


def test_yolo_writer_needs_media(dataset: PoseDataset, tmp_path: Path) -> None:
    with pytest.raises(yolo.YoloFormatError, match="no path given"):
        get_format("yolo").write(dataset, tmp_path / "y")
