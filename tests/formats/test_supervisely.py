"""Supervisely projects (posekit.formats.supervisely)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.registry import get_format
from posekit.formats.supervisely import (
    OCCLUDED_TAG,
    SuperviselyFormatError,
    from_supervisely,
    read_supervisely,
    to_supervisely,
    write_supervisely,
)
from posekit.formats.supervisely_graph import SuperviselyItem, _graph_instance, _occluded_names
from posekit.formats.supervisely_graph import _template as _sly_template
from posekit.skeleton import Skeleton, get_preset

FIXTURES = Path(__file__).parent / "fixtures"
PEER_SDK = FIXTURES / "peer_supervisely_check.py"
# A Python with the Supervisely SDK (its pins clash with the project's, so it lives in
# its own venv; see pyproject's formats-check extra): POSEKIT_SUPERVISELY_PYTHON or
# /tmp/venv-sly/bin/python.
SDK_PYTHON = Path(os.environ.get("POSEKIT_SUPERVISELY_PYTHON", "/tmp/venv-sly/bin/python"))


def _template(names=("nose", "neck", "tail")) -> Skeleton:
    return Skeleton.from_dict(
        {"name": "dog3", "category": "dog", "keypoints": list(names),
         "edges": [[names[0], names[1]]], "default_sigma": 0.05}
    )  # fmt: skip


def _instance(xy, vis, **kw) -> Instance:
    return Instance(np.asarray(xy, np.float32), np.asarray(vis, np.uint8), **kw)


def test_images_fixture() -> None:
    ds = read_supervisely(FIXTURES / "supervisely_images")
    assert ds.skeleton.keypoints == ("nose", "neck", "tail")
    assert ds.skeleton.edges == (("nose", "neck"), ("neck", "tail"))
    assert [(i.image.file_name, i.image.width, i.image.height) for i in ds.images] == [
        ("dogs/dog_1.jpg", 640, 480), ("dogs/dog_2.png", 200, 100)
    ]  # fmt: skip
    first, second = ds.images[0].instances  # the rectangle is skipped
    assert first.keypoints.tolist() == [[100, 120], [150, 130], [300.5, 200.25]]
    assert first.visibility.tolist() == [2, 1, 2]  # neck is in the occluded tag
    assert second.visibility.tolist() == [0, 2, 0]  # disabled nose, tail missing
    assert second.keypoints.tolist() == [[0, 0], [410, 310], [0, 0]]
    assert ds.images[1].instances == []


def test_video_fixture() -> None:
    ds = read_supervisely(FIXTURES / "supervisely_video", _template(("nose", "neck")))
    (video,) = ds.videos
    assert (video.name, video.width, video.height, video.frame_count) == (
        "clip.mp4", 640, 480, 10
    )  # fmt: skip
    assert [i.image.frame_index for i in ds.images] == [1, 2]
    one, two = (i.instances[0] for i in ds.images)
    assert one.visibility.tolist() == [2, 2] and two.visibility.tolist() == [1, 0]
    assert one.track_id == two.track_id == 0  # a foreign key: the object's position
    (track,) = ds.tracks
    assert track.keyframes == {1, 2} and track.outside == {3}


# ------------------------------------------------------------------ bad input


def _project(tmp_path: Path, mutate) -> Path:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "supervisely_images", root)
    path = root / "dogs" / "ann" / "dog_1.jpg.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    return root


def test_node_key_not_in_template(tmp_path: Path) -> None:
    def mutate(data):
        data["objects"][1]["nodes"]["ffff0000"] = {"loc": [1, 2]}

    root = _project(tmp_path, mutate)
    with pytest.raises(SuperviselyFormatError, match=r"dog_1.jpg.json: objects\[1\]: node key "
                       "'ffff0000' is not in the template"):  # fmt: skip
        read_supervisely(root)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["objects"][1]["nodes"]["8f1b2c3d"].update(loc=[1]), "is not \\[x, y\\]"),
        (lambda d: d["objects"][1]["nodes"]["8f1b2c3d"].update(loc=["a", 2]), "not \\[x, y\\]"),
        # a third number was once dropped silently by the bulk reader
        (lambda d: d["objects"][1]["nodes"]["8f1b2c3d"].update(loc=[1, 2, 3]), "is not \\[x, y\\]"),
        (lambda d: d["objects"][1]["nodes"]["8f1b2c3d"].update(loc=[True, 2]), "is not \\[x, y\\]"),
        # finite in JSON (float64) but infinite as a float32 keypoint
        (
            lambda d: d["objects"][1]["nodes"]["8f1b2c3d"].update(loc=[1e39, 2]),
            "'8f1b2c3d': 'loc' \\[1e\\+39, 2\\] is beyond the range of float32",
        ),
        (
            lambda d: d["objects"][1]["nodes"]["8f1b2c3d"].update(loc=[10**400, 2]),
            "dog_1.jpg.json: not valid JSON: number is infinity",
        ),
        (lambda d: d["objects"][1]["tags"][0].update(value="wing"), "names 'wing'"),
        (lambda d: d.pop("size"), "'size' must be"),
    ],
)
def test_bad_annotations(tmp_path: Path, change, message: str) -> None:
    root = _project(tmp_path, change)
    with pytest.raises(SuperviselyFormatError, match=message):
        read_supervisely(root)


def _fixture_item(change) -> tuple[dict, list[SuperviselyItem]]:
    root = FIXTURES / "supervisely_images"
    meta = json.loads((root / "meta.json").read_text())
    ann = json.loads((root / "dogs" / "ann" / "dog_1.jpg.json").read_text())
    change(ann)
    return meta, [SuperviselyItem("dogs", "dog_1.jpg", ann)]


@pytest.mark.parametrize(
    "loc", [[10**400, 2], [float("nan"), 2], [2, float("-inf")], [1, 2, 3], "1,2", None]
)
def test_bad_python_locations_are_errors(loc) -> None:
    """Python input (``from_supervisely``) can hold what JSON cannot: ints beyond
    float64, NaN; each is an error naming the node, not a crash."""
    meta, items = _fixture_item(lambda d: d["objects"][1]["nodes"]["8f1b2c3d"].update(loc=loc))
    with pytest.raises(SuperviselyFormatError,
                       match=r"dog_1.jpg.json: objects\[1\]: node '8f1b2c3d': 'loc' .* is not "
                             r"\[x, y\] \(two finite numbers\)"):  # fmt: skip
        from_supervisely(meta, items)


def test_bad_meta_and_json(tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(FIXTURES / "supervisely_images", root)
    (root / "dogs" / "ann" / "dog_2.png.json").write_text("{not json")
    with pytest.raises(SuperviselyFormatError, match=r"dog_2.png.json: not valid JSON"):
        read_supervisely(root)
    with pytest.raises(SuperviselyFormatError, match="no class with shape 'graph'"):
        from_supervisely({"classes": [{"title": "car", "shape": "rectangle"}]}, [])
    with pytest.raises(SuperviselyFormatError, match=r"no meta.json"):
        read_supervisely(tmp_path)
    with pytest.raises(SuperviselyFormatError, match=r"'tail'.*template"):
        read_supervisely(FIXTURES / "supervisely_images", _template(("nose", "neck", "ear")))


def test_unwritable_names_raise_before_writing(tmp_path: Path) -> None:
    ds = PoseDataset(_template(), [LabeledImage(ImageRecord("a/b/c.jpg", 4, 4), [])])
    with pytest.raises(SuperviselyFormatError, match="nested deeper"):
        write_supervisely(ds, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ round trips

coord = st.floats(0, 4000, allow_nan=False, width=32)


@st.composite
def image_datasets(draw) -> PoseDataset:
    skeleton = draw(st.sampled_from([_template(), get_preset("coco17")]))
    k = skeleton.num_keypoints
    images = []
    for i in range(draw(st.integers(0, 4))):
        instances = []
        for _ in range(draw(st.integers(0, 3))):
            vis = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=k, max_size=k))
            xy = draw(st.lists(st.tuples(coord, coord), min_size=k, max_size=k))
            instances.append(_instance(xy, vis))
        name = draw(st.sampled_from([f"im{i}.jpg", f"set_a/im{i}.png", f"set_b/im{i}.jpg"]))
        images.append(LabeledImage(ImageRecord(name, 640, 480), instances))
    return PoseDataset(skeleton, images)


def _by_name(ds: PoseDataset) -> dict[str, LabeledImage]:
    return {item.image.file_name: item for item in ds.images}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_datasets())
def test_images_round_trip_is_lossless(ds: PoseDataset) -> None:
    if len({i.image.file_name for i in ds.images}) != len(ds.images):
        with pytest.raises(SuperviselyFormatError, match="appears twice"):
            to_supervisely(ds)
        return
    meta, items = to_supervisely(ds)
    again = from_supervisely(json.loads(json.dumps(meta)), items, ds.skeleton)
    before, after = _by_name(ds), _by_name(again)
    assert before.keys() == after.keys()
    for name, item in before.items():
        assert (after[name].image.width, after[name].image.height) == (640, 480)
        assert after[name].instances == item.instances


def _one_by_one(meta: dict, items: list[SuperviselyItem], skeleton) -> list[list[Instance]]:
    """Each image's instances read object by object (the reader's fallback)."""
    template = _sly_template(meta, skeleton, None, "p")
    out = []
    for item in items:
        objects = [o for o in item.annotation["objects"] if o.get("geometryType") == "graph"]
        out.append([
            _graph_instance(o.get("nodes"), _occluded_names(o.get("tags"), "w"), template, "w")
            for o in objects
        ])  # fmt: skip
    return out


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(image_datasets(), st.sampled_from(["as_written", "int_locs", "tuple_locs", "no_disabled"]))
def test_bulk_reading_equals_one_by_one(ds: PoseDataset, variant: str) -> None:
    """The column-wise reader gives, object for object, what the one-by-one reader
    gives, on files as posekit writes them and on variants other writers make
    (integer pixels, tuples from Python, missing nodes instead of disabled ones)."""
    if len({i.image.file_name for i in ds.images}) != len(ds.images):
        return
    meta, items = to_supervisely(ds)
    meta = json.loads(json.dumps(meta))
    for item in items:
        for obj in item.annotation["objects"]:
            nodes = obj["nodes"]
            for key in list(nodes):
                node = nodes[key]
                if variant == "int_locs":
                    node["loc"] = [int(v) for v in node["loc"]]
                elif variant == "tuple_locs":
                    node["loc"] = tuple(node["loc"])
                elif variant == "no_disabled" and node.get("disabled"):
                    del nodes[key]
    read = from_supervisely(meta, items, ds.skeleton)
    by_name = {i.image.file_name: i.instances for i in read.images}
    expected = _one_by_one(meta, items, ds.skeleton)
    assert len(by_name) == len(items)
    for item, instances in zip(items, expected):
        name = item.name if item.dataset == "ds0" else f"{item.dataset}/{item.name}"
        assert by_name[name] == instances


@st.composite
def video_datasets(draw) -> PoseDataset:
    skeleton = _template()
    n = draw(st.integers(1, 12))
    by_frame: dict[int, list[Instance]] = {}
    for track_id in draw(st.lists(st.integers(0, 50), max_size=3, unique=True)):
        for f in range(n):
            if draw(st.booleans()):
                vis = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=3, max_size=3))
                xy = draw(st.lists(st.tuples(coord, coord), min_size=3, max_size=3))
                by_frame.setdefault(f, []).append(_instance(xy, vis, track_id=track_id))
    images = [
        LabeledImage(ImageRecord(f"clip.mp4/frame_{f:06d}.png", 64, 48, video="clip.mp4",
                                 frame_index=f), by_frame[f])
        for f in sorted(by_frame)
    ]  # fmt: skip
    return PoseDataset(skeleton, images, videos=[VideoRecord("clip.mp4", 64, 48, frame_count=n)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(video_datasets())
def test_video_round_trip_keeps_frames_and_tracks(ds: PoseDataset) -> None:
    meta, items = to_supervisely(ds)
    again = from_supervisely(json.loads(json.dumps(meta)), items, ds.skeleton)
    assert [(v.name, v.width, v.height, v.frame_count) for v in again.videos] == [
        ("clip.mp4", 64, 48, ds.videos[0].frame_count)
    ]
    assert [i.image.file_name for i in again.images] == [i.image.file_name for i in ds.images]
    for x, y in zip(ds.images, again.images):
        assert sorted(x.instances, key=lambda i: i.track_id) == sorted(
            y.instances, key=lambda i: i.track_id
        )
    frames: dict[int, set[int]] = {}
    for item in ds.images:
        for inst in item.instances:
            frames.setdefault(inst.track_id, set()).add(item.image.frame_index)
    assert {t.track_id: t.keyframes for t in again.tracks} == frames


def test_registry_entry_and_media(tmp_path: Path) -> None:
    spec = get_format("supervisely")
    assert spec.kind == "folder"
    assert not spec.capabilities.boxes and not spec.capabilities.scores
    assert spec.capabilities.tracks and spec.capabilities.video
    image = tmp_path / "photo.jpg"
    image.write_bytes(b"not really a jpeg")
    ds = PoseDataset(
        _template(), [LabeledImage(ImageRecord("photo.jpg", 8, 8),
                                   [_instance([[1, 2], [3, 4], [0, 0]], [2, 1, 0])])]
    )  # fmt: skip
    meta_path = spec.write(ds, tmp_path / "proj", media={"photo.jpg": image})
    assert meta_path == tmp_path / "proj" / "meta.json"
    assert (tmp_path / "proj" / "ds0" / "img" / "photo.jpg").read_bytes() == image.read_bytes()
    ann = json.loads((tmp_path / "proj" / "ds0" / "ann" / "photo.jpg.json").read_text())
    assert ann["objects"][0]["tags"] == [{"name": OCCLUDED_TAG, "value": "neck"}]
    assert ann["objects"][0]["nodes"]["tail"] == {"loc": [0, 0], "disabled": True}
    again = spec.read(tmp_path / "proj", ds.skeleton)
    assert again.images[0].instances == ds.images[0].instances


# --------------------------------------------------------------- peer: the SDK


def _sdk(project: Path) -> dict:
    if not SDK_PYTHON.is_file():
        pytest.skip(
            f"no Python with the Supervisely SDK at {SDK_PYTHON} (python -m venv "
            "/tmp/venv-sly && /tmp/venv-sly/bin/pip install supervisely; or set "
            "POSEKIT_SUPERVISELY_PYTHON)"
        )
    done = subprocess.run(
        [str(SDK_PYTHON), str(PEER_SDK), str(project)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _check_against_sdk(ds: PoseDataset, peer: dict, ordered) -> None:
    names = ds.skeleton.keypoints
    for key, instances in ordered:
        got = peer[key]
        assert len(got) == len(instances)
        for g, inst in zip(got, instances):
            for s, name in enumerate(names):
                col, row, disabled = g["nodes"][name]
                assert disabled == (inst.visibility[s] == 0)
                if inst.visibility[s]:  # the SDK floors locations to integer pixels
                    assert [col, row] == np.floor(inst.keypoints[s]).astype(int).tolist()
            occluded = [names[s] for s in np.flatnonzero(inst.visibility == 1)]
            tags = [v for n, v in g["tags"] if n == OCCLUDED_TAG]
            assert tags == ([",".join(occluded)] if occluded else [])


def test_sdk_reads_posekit_image_projects(tmp_path: Path) -> None:
    skeleton = get_preset("coco17")
    rng = np.random.default_rng(5)
    images = []
    for i, name in enumerate(["a.jpg", "b.jpg", "other/c.png"]):
        instances = [
            # inside the image: the SDK crops graphs to the image and drops the others
            _instance(np.round(rng.uniform(0, 470, (17, 2)), 2), rng.integers(0, 3, 17))
            for _ in range(i + 1)
        ]
        images.append(LabeledImage(ImageRecord(name, 640, 480), instances))
    ds = PoseDataset(skeleton, images)
    write_supervisely(ds, tmp_path / "proj")
    peer = _sdk(tmp_path / "proj")
    ordered = [
        ("ds0/a.jpg", images[0].instances), ("ds0/b.jpg", images[1].instances),
        ("other/c.png", images[2].instances),
    ]  # fmt: skip
    assert set(peer) == {k for k, _ in ordered}
    _check_against_sdk(ds, peer, ordered)


def test_sdk_reads_posekit_video_projects(tmp_path: Path) -> None:
    skeleton = get_preset("coco17")
    rng = np.random.default_rng(6)
    by_frame = {
        f: [_instance(np.round(rng.uniform(0, 47, (17, 2)), 1), rng.integers(0, 3, 17),
                      track_id=t) for t in (3, 7)]
        for f in (0, 1, 2, 5)
    }  # fmt: skip
    images = [
        LabeledImage(ImageRecord(f"f{f}.png", 64, 48, video="walk.mp4", frame_index=f), v)
        for f, v in by_frame.items()
    ]
    ds = PoseDataset(skeleton, images, videos=[VideoRecord("walk.mp4", 64, 48, frame_count=8)],
                     tracks=[TrackRecord("walk.mp4", 3), TrackRecord("walk.mp4", 7)])  # fmt: skip
    write_supervisely(ds, tmp_path / "proj")
    peer = _sdk(tmp_path / "proj")
    figures = peer["ds0/walk.mp4"]
    ordered_instances = [inst for f in sorted(by_frame) for inst in by_frame[f]]
    assert [g["frame"] for g in figures] == [f for f in sorted(by_frame) for _ in (3, 7)]
    _check_against_sdk(ds, {"v": figures}, [("v", ordered_instances)])
    again = read_supervisely(tmp_path / "proj", skeleton)
    assert {t.track_id for t in again.tracks} == {3, 7}


def test_sdk_reads_the_hand_made_fixtures() -> None:
    peer = _sdk(FIXTURES / "supervisely_images")
    assert len(peer["dogs/dog_1.jpg"]) == 2 and peer["dogs/dog_2.png"] == []
    peer = _sdk(FIXTURES / "supervisely_video")
    assert [g["frame"] for g in peer["ds0/clip.mp4"]] == [1, 2]
