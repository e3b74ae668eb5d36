"""Tests for posekit.formats.posetrack: the real PoseTrack18 sample files (videos,
frames, tracks, exact write-back), frames without a size, bad input, and a
property-tested round trip posekit -> PoseTrack -> posekit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.posetrack import (
    PoseTrackFormatError,
    from_posetrack,
    read_posetrack,
    to_posetrack,
    write_posetrack,
)
from posekit.formats.registry import get_format
from posekit.skeleton import get_preset

SAMPLE = "posetrack18-sample"


def _sample_files(shared_data: Path) -> list[Path]:
    root = shared_data / SAMPLE / "annotations"
    return [root / "val.json", *sorted((root / "per_video").glob("*.json"))]


def test_val_json_imports_videos_frames_tracks(shared_data: Path):
    ds = read_posetrack(shared_data / SAMPLE / "annotations" / "val.json")
    assert ds.skeleton.name == "posetrack17"
    assert len(ds.images) == 3 and ds.num_instances == 14
    assert {v.name: v.frame_count for v in ds.videos} == {
        "012834": 140,
        "009473": 101,
        "003418": 149,
    }
    assert all((v.width, v.height) == (1920, 1080) for v in ds.videos)
    for item in ds.images:
        assert item.image.video in {"012834", "009473", "003418"}
        assert item.image.frame_index == 0
    assert len(ds.tracks) == 14
    track = next(t for t in ds.tracks if t.video == "012834" and t.track_id == 10)
    assert track.keyframes == {0} and track.outside == set()
    first = ds.images[0].instances[0]
    assert first.extra["bbox_head"] == [378, 503, 44, 53]
    assert "ignore_regions_x" in ds.images[0].image.extra


def test_sample_files_write_back_exactly(shared_data: Path, tmp_path: Path):
    for path in _sample_files(shared_data):
        raw = json.loads(path.read_text("utf-8"))
        ds = read_posetrack(path)
        assert to_posetrack(ds) == raw, path.name
        out = write_posetrack(ds, tmp_path / path.name)
        assert json.loads(out.read_text("utf-8")) == raw
        assert read_posetrack(out) == ds


def test_frames_without_size_take_it_from_the_images(shared_data: Path, tmp_path: Path):
    raw = json.loads((shared_data / SAMPLE / "annotations" / "val.json").read_text("utf-8"))
    for image in raw["images"]:
        del image["width"], image["height"]
    (tmp_path / "annotations").mkdir()
    path = tmp_path / "annotations" / "val.json"
    path.write_text(json.dumps(raw), "utf-8")
    with pytest.raises(PoseTrackFormatError, match=r"images\[0\].*no width/height"):
        read_posetrack(path)
    os.symlink(shared_data / SAMPLE / "images", tmp_path / "images")
    ds = read_posetrack(path)
    assert [(i.image.width, i.image.height) for i in ds.images] == [(1920, 1080)] * 3
    assert to_posetrack(ds) == raw  # the size stays absent on write-back
    sizes = {"012834": (640, 480), "009473": (640, 480), "003418": (640, 480)}
    assert from_posetrack(raw, image_sizes=sizes).images[0].image.width == 640


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["images"].__setitem__(0, "x"), r"images\[0\] is not an object"),
        (lambda d: d["images"][0].__setitem__("vid_id", [1]), r"'vid_id' must be a string"),
        (
            lambda d: d["annotations"][0].__setitem__("image_id", 5),
            r"annotations\[0\].*'image_id' 5",
        ),
        (lambda d: d["annotations"][0]["keypoints"].pop(), r"has 50 values"),
        (
            lambda d: d["images"][1].update(vid_id="012834", frame_id=10128340000),
            "frame 0 of video '012834' is also images",
        ),
        (lambda d: d.__setitem__("images", None), "expected a JSON object"),
    ],
)
def test_bad_input_names_the_element(shared_data: Path, mutate, message):
    raw = json.loads((shared_data / SAMPLE / "annotations" / "val.json").read_text("utf-8"))
    mutate(raw)
    with pytest.raises(PoseTrackFormatError, match=message):
        from_posetrack(raw)


def test_malformed_json_file(tmp_path: Path):
    path = tmp_path / "bad.json"
    path.write_text("{", "utf-8")
    with pytest.raises(PoseTrackFormatError, match="not valid JSON"):
        read_posetrack(path)


def test_registered():
    spec = get_format("posetrack")
    assert spec.read is read_posetrack and spec.write is write_posetrack
    assert spec.capabilities.tracks and spec.capabilities.video and spec.capabilities.scores


# ---------------------------------------------------------------- round trip

SKELETON = get_preset("posetrack17")
K = SKELETON.num_keypoints
coordinate = st.floats(0, 1000, allow_nan=False, width=32)


@st.composite
def instances(draw, track_id: int):
    vis = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=K, max_size=K)))
    xy = np.array(draw(st.lists(st.tuples(coordinate, coordinate), min_size=K, max_size=K)))
    predicted = draw(st.booleans())
    box = None
    if draw(st.booleans()):
        x, y = draw(coordinate), draw(coordinate)
        box = np.array([x, y, x + draw(coordinate), y + draw(coordinate)])
    return Instance(
        xy,
        vis,
        keypoint_scores=np.array(draw(st.lists(st.floats(0, 1, width=32), min_size=K, max_size=K)))
        if predicted
        else None,
        box=box,
        score=draw(st.floats(0, 1)) if predicted else None,
        source="model:test" if predicted else "manual",
        status="predicted" if predicted else "accepted",
        track_id=track_id,
    )


@st.composite
def datasets(draw):
    videos, images, tracks = [], [], {}
    for v in range(draw(st.integers(1, 3))):
        name = f"{v + 1:06d}"
        frames = sorted(draw(st.sets(st.integers(0, 200), min_size=1, max_size=4)))
        videos.append(VideoRecord(name, 640, 480, frame_count=max(frames) + 1))
        for frame in frames:
            track_ids = sorted(draw(st.sets(st.integers(0, 5), max_size=3)))
            items = [draw(instances(t)) for t in track_ids]
            for t in track_ids:
                tracks.setdefault((name, t), TrackRecord(name, t)).keyframes.add(frame)
            record = ImageRecord(f"images/{name}/{frame:06d}.jpg", 640, 480, video=name)
            record.frame_index = frame
            images.append(LabeledImage(record, items))
    ids = iter(range(1, 10_000))
    for item in images:
        item.image.id = next(ids)
        for instance in item.instances:
            instance.id = next(ids)
    return PoseDataset(
        SKELETON,
        images,
        videos=videos,
        tracks=sorted(tracks.values(), key=lambda t: (t.video, t.track_id)),
    )


def _normalise(ds: PoseDataset) -> PoseDataset:
    # fields the writer adds for PoseTrack readers (vid_id, frame_id...) come back in extra
    for item in ds.images:
        item.image.extra = {}
    ds.category = None
    return ds


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_round_trip_is_lossless(ds: PoseDataset):
    back = from_posetrack(json.loads(json.dumps(to_posetrack(ds))), SKELETON)
    assert _normalise(back) == ds
