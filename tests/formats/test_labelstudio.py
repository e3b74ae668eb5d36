"""Tests for posekit.formats.labelstudio: the real Label Studio exports and ML-backend
predictions, the labeling config, grouping by parentID, bad input, a property-tested
round trip, and (when label-studio-sdk is installed in its own venv) the SDK's converter
on posekit's exports."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.labelstudio import (
    DERIVED_BOX_NOTE,
    IMAGE_URL_KEY,
    LabelStudioFormatError,
    from_labelstudio,
    labelstudio_config,
    parse_labelstudio_config,
    read_labelstudio,
    to_labelstudio,
    write_labelstudio,
)
from posekit.formats.registry import get_format
from posekit.skeleton import Skeleton, get_preset

LS = "formats/labelstudio"
COCO17 = get_preset("coco17")

#: Python of a virtual environment with label-studio-sdk (it needs numpy 2, so it
#: lives outside the project venv); tests that run the SDK skip without it.
LS_PYTHON = Path(os.environ.get("POSEKIT_LABELSTUDIO_PYTHON", "/tmp/venv-ls/bin/python"))


@pytest.fixture(scope="module")
def ls_dir(shared_data: Path) -> Path:
    return shared_data / LS


def test_export_with_person_box(ls_dir: Path):
    ds = read_labelstudio(
        ls_dir / "export_keypoints_with_person_box.json",
        label_config=ls_dir / "label_config_keypoints.xml",
    )
    assert ds.skeleton.name == "coco17"
    (item,) = ds.images
    assert (item.image.file_name, item.image.width, item.image.height, item.image.id) == (
        "upload/18/image1.jpg",
        216,
        174,
        10764,
    )
    (person,) = item.instances
    assert person.visibility[:3].tolist() == [2, 2, 2] and person.num_labeled == 3
    np.testing.assert_allclose(
        person.keypoints[0], [64.44444444444444 * 2.16, 39.290780141843975 * 1.74], rtol=1e-6
    )
    np.testing.assert_allclose(
        person.box,
        [
            38.849487785658 * 2.16,
            7.65957446808511 * 1.74,
            86.154452324665 * 2.16,
            58.58156028368794 * 1.74,
        ],
        rtol=1e-6,
    )
    assert person.status == "accepted" and person.source == "manual"


def test_config_of_the_sample_gives_the_preset(ls_dir: Path):
    config = parse_labelstudio_config((ls_dir / "label_config_keypoints.xml").read_text("utf-8"))
    assert config["keypoints"] == list(COCO17.keypoints)
    assert config["image_key"] == "image" and config["box_labels"] == ["person"]


@pytest.mark.parametrize("name", ["with_parent", "no_parent"])
def test_ml_backend_predictions(ls_dir: Path, name: str):
    predictions = json.loads((ls_dir / f"prediction_keypoints_{name}.json").read_text("utf-8"))
    with pytest.raises(LabelStudioFormatError, match="predictions without their tasks"):
        from_labelstudio(predictions, COCO17)
    task = {"data": {"image": "frame.jpg"}, "predictions": predictions}
    ds = from_labelstudio(task, COCO17, image_sizes={"frame.jpg": (640, 480)})
    (person,) = ds.images[0].instances
    labeled = [COCO17.keypoints[i] for i in np.flatnonzero(person.visibility)]
    assert labeled == [
        "left_shoulder",
        "right_shoulder",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
    ]
    assert person.status == "predicted" and person.source == "model:yolo"
    assert person.keypoint_scores[COCO17.index("left_shoulder")] == pytest.approx(0.98749, abs=1e-5)
    if name == "with_parent":
        assert person.score == pytest.approx(0.8605291843414307)
        assert person.box is not None
    else:  # the prediction's score is the one person's score
        assert person.score == pytest.approx(0.9787625372409821) and person.box is None


def test_mixed_shapes_ungrouped_keypoints_are_one_person(ls_dir: Path):
    template = Skeleton.from_dict(
        {"name": "two", "keypoints": ["keypoint_label1", "keypoint_label2"], "default_sigma": 0.05}
    )
    ds = read_labelstudio(
        ls_dir / "export_mixed_shapes.json",
        template,
        label_config=ls_dir / "label_config_mixed.xml",
    )
    (person,) = ds.images[0].instances  # the other rectangle and the polygon are not persons
    assert person.box is None and person.visibility.tolist() == [2, 2]
    np.testing.assert_allclose(
        person.keypoints[0], [22.595281306715066 * 5, 31.773049645390074 * 3.2], rtol=1e-6
    )
    with pytest.raises(LabelStudioFormatError, match="carry no skeleton"):
        read_labelstudio(ls_dir / "export_mixed_shapes.json")


def test_config_from_template_round_trips():
    xml = labelstudio_config(get_preset("halpe26"))
    parsed = parse_labelstudio_config(xml)
    assert parsed["keypoints"] == list(get_preset("halpe26").keypoints)
    assert parsed["box_labels"] == ["person"]
    assert 'perRegion="true"' in xml and 'value="occluded"' in xml


def test_config_refuses_entities():
    evil = '<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "x">]><View>&a;</View>'
    with pytest.raises(LabelStudioFormatError, match="not valid XML"):
        parse_labelstudio_config(evil)


# --------------------------------------------------------------- bad input


@pytest.fixture
def export(ls_dir: Path) -> list:
    return json.loads((ls_dir / "export_keypoints_with_person_box.json").read_text("utf-8"))


def _results(export: list) -> list:
    return export[0]["annotations"][0]["result"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r: r[0]["value"].__setitem__("x", 100.5),
            r"region 'YuLAREYKpq': value.x 100.5 is outside 0-100",
        ),
        (
            lambda r: r[1]["value"].__setitem__("y", -1),
            r"region 'gD9Q-39A_4': value.y -1 is outside 0-100",
        ),
        (
            lambda r: r[0].__setitem__("parentID", "nowhere"),
            r"'YuLAREYKpq'.*parentID 'nowhere' points to no region",
        ),
        (
            lambda r: r[0]["value"].__setitem__("keypointlabels", ["tail"]),
            r"keypoint 'tail' is not in template 'coco17'",
        ),
        (
            lambda r: r[1]["value"].__setitem__("keypointlabels", ["nose"]),
            r"'nose' appears twice in person",
        ),
        (lambda r: r[0]["value"].__setitem__("x", "12"), r"value.x must be a number"),
        (lambda r: r[3].__setitem__("original_width", 300), r"differs from"),
        (lambda r: r[0].__setitem__("image_rotation", 90), r"image_rotation 90 is not supported"),
    ],
)
def test_bad_regions_name_the_task_and_region(export: list, mutate, message):
    mutate(_results(export))
    with pytest.raises(LabelStudioFormatError, match=r"task\[0\] \(id 10764\).*" + message):
        from_labelstudio(export, COCO17)


def test_parent_that_is_not_a_box(export: list):
    results = _results(export)
    results.append(
        {"id": "poly", "type": "polygonlabels", "value": {"points": [], "polygonlabels": ["x"]}}
    )
    results[0]["parentID"] = "poly"
    with pytest.raises(LabelStudioFormatError, match="is a polygonlabels region, not the person"):
        from_labelstudio(export, COCO17)


def test_ungrouped_repeated_keypoint_is_ambiguous(export: list):
    results = _results(export)
    for r in results[:3]:
        r.pop("parentID")
    extra = copy.deepcopy(results[0])
    extra["id"] = "second-nose"
    results.append(extra)
    with pytest.raises(LabelStudioFormatError, match="'nose' appears twice without a parentID"):
        from_labelstudio(export, COCO17)
    results.pop()
    (item,) = from_labelstudio(export, COCO17).images
    assert [i.num_labeled for i in item.instances] == [0, 3]  # the box alone, the points alone


def test_unsafe_file_name_and_duplicates(export: list):
    bad = copy.deepcopy(export)
    bad[0]["data"]["image"] = "../../etc/passwd"
    with pytest.raises(LabelStudioFormatError, match=r"task\[0\].*image"):
        from_labelstudio(bad, COCO17)
    with pytest.raises(LabelStudioFormatError, match=r"task\[1\].*also the image of"):
        from_labelstudio(export + copy.deepcopy(export), COCO17)


def test_malformed_json(tmp_path: Path):
    path = tmp_path / "x.json"
    path.write_text("[{", "utf-8")
    with pytest.raises(LabelStudioFormatError, match="not valid JSON"):
        read_labelstudio(path, COCO17)


def test_cancelled_annotations_are_skipped_latest_wins(export: list):
    older = copy.deepcopy(export[0]["annotations"][0])
    older["updated_at"] = "2000-01-01T00:00:00Z"
    older["result"] = older["result"][3:4]  # just the box
    cancelled = copy.deepcopy(older)
    cancelled["was_cancelled"] = True
    cancelled["updated_at"] = "2999-01-01T00:00:00Z"
    export[0]["annotations"] = [older, export[0]["annotations"][0], cancelled]
    (person,) = from_labelstudio(export, COCO17).images[0].instances
    assert person.num_labeled == 3


# --------------------------------------------------------------- export


def _dataset() -> PoseDataset:
    xy = np.tile([[10.0, 20.0]], (17, 1)) + np.arange(17)[:, None]
    vis = np.full(17, 2)
    vis[3], vis[4] = 0, 1
    a = Instance(xy, vis, box=np.array([0, 0, 60, 70]))
    b = Instance(xy + 30, vis)  # no box: written with a derived, marked box
    c = Instance(
        xy + 5,
        vis,
        keypoint_scores=np.where(vis > 0, 0.25, 0.0),
        score=0.5,
        status="predicted",
        source="model:x",
    )
    d = Instance(xy, vis, status="rejected")
    return PoseDataset(
        COCO17,
        [
            LabeledImage(ImageRecord("a/b.jpg", 200, 100, 5), [a, b, d]),
            LabeledImage(ImageRecord("c.jpg", 300, 200, 6), [c]),
            LabeledImage(ImageRecord("empty.jpg", 30, 20, 7), []),
        ],
    )


def test_export_layout(tmp_path: Path):
    ds = _dataset()
    path = write_labelstudio(ds, tmp_path / "export.json")
    tasks = json.loads(path.read_text("utf-8"))
    assert (tmp_path / "export.label_config.xml").is_file()
    first = tasks[0]
    assert first["data"] == {"image": "/data/local-files/?d=a/b.jpg"}
    results = first["annotations"][0]["result"]
    boxes = [r for r in results if r["type"] == "rectanglelabels"]
    assert len(boxes) == 2  # the rejected instance is not written
    assert boxes[1]["meta"] == {"text": [DERIVED_BOX_NOTE]}
    points = [r for r in results if r["type"] == "keypointlabels"]
    assert {p["parentID"] for p in points} == {b["id"] for b in boxes}
    assert len(points) == 2 * 16
    occluded = [r for r in results if r["type"] == "choices"]
    assert len(occluded) == 2 and all(r["value"] == {"choices": ["occluded"]} for r in occluded)
    assert tasks[1]["annotations"] == [] and tasks[1]["predictions"][0]["model_version"] == "x"
    back = read_labelstudio(path)  # the template comes from the config written beside it
    assert back.skeleton.name == "coco17"
    expected = _dataset()
    expected.images[0].instances.pop()  # the rejected one
    assert back == expected


def test_registered():
    spec = get_format("labelstudio")
    assert spec.read is read_labelstudio and spec.write is write_labelstudio
    caps = spec.capabilities
    assert caps.scores and caps.boxes and not caps.tracks and not caps.video
    assert caps.visibility_states == (0, 1, 2)


# --------------------------------------------------------------- round trip


@st.composite
def instances(draw, width: int, height: int, status: str, source: str):
    k = COCO17.num_keypoints
    vis = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=k, max_size=k)))
    xs = draw(st.lists(st.floats(0, width, width=32), min_size=k, max_size=k))
    ys = draw(st.lists(st.floats(0, height, width=32), min_size=k, max_size=k))
    box = None
    if draw(st.booleans()) or not vis.any():
        x1, x2 = sorted(draw(st.lists(st.floats(0, width, width=32), min_size=2, max_size=2)))
        y1, y2 = sorted(draw(st.lists(st.floats(0, height, width=32), min_size=2, max_size=2)))
        box = np.array([x1, y1, x2, y2])
    # Label Studio carries a score per keypoint region: only labeled points have one,
    # so an instance without any labeled point has no keypoint scores to carry.
    scores = None
    if draw(st.booleans()) and vis.any():
        scores = np.where(
            vis > 0, draw(st.lists(st.floats(0, 1, width=32), min_size=k, max_size=k)), 0
        )
    return Instance(
        np.stack([xs, ys], axis=1),
        vis,
        keypoint_scores=scores,
        box=box,
        score=draw(st.none() | st.floats(0, 1)),
        status=status,
        source=source,
    )


@st.composite
def datasets(draw):
    images = []
    for n in range(draw(st.integers(1, 3))):
        width, height = draw(st.integers(1, 4000)), draw(st.integers(1, 4000))
        items = draw(st.lists(instances(width, height, "accepted", "manual"), max_size=3))
        for source in draw(
            st.lists(st.sampled_from(["model:a", "model:b", "manual"]), unique=True, max_size=2)
        ):
            items += draw(
                st.lists(instances(width, height, "predicted", source), min_size=1, max_size=2)
            )
        images.append(LabeledImage(ImageRecord(f"dir/{n}.jpg", width, height, n + 1), items))
    return PoseDataset(COCO17, images)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_round_trip_is_lossless(ds: PoseDataset):
    back = from_labelstudio(json.loads(json.dumps(to_labelstudio(ds))), COCO17)
    assert back == ds


def _clipped_dataset() -> PoseDataset:
    """Points and boxes outside the image, an instance with no point and no box, a
    non-ASCII file name and an image URL carried from Label Studio."""
    ds = _dataset()
    xy = np.tile([[-5.0, 250.5]], (17, 1))
    vis = np.zeros(17)
    vis[:3] = 2
    ds.images[1].instances.append(Instance(xy, vis, box=np.array([-1, 2, 400, 300])))
    ds.images[1].instances.append(Instance(np.zeros((17, 2)), np.zeros(17)))
    ds.images[2].image.file_name = 'dir/\u00e9t\u00e9 "x".jpg'
    ds.images[0].image.extra[IMAGE_URL_KEY] = "s3://bucket/a b.jpg"
    return ds


@pytest.mark.parametrize("build", [_dataset, _clipped_dataset])
def test_direct_json_is_the_task_list_bytes(build):
    """write_labelstudio's direct encoder writes orjson's bytes of to_labelstudio."""
    import orjson

    from posekit.formats.labelstudio_json import labelstudio_json_bytes

    ds = build()
    expected = orjson.dumps(to_labelstudio(ds))
    assert labelstudio_json_bytes(ds, image_prefix="/data/local-files/?d=") == expected


def test_direct_json_leaves_huge_ids_to_the_task_list(tmp_path: Path):
    from posekit.formats.labelstudio_json import labelstudio_json_bytes

    ds = _dataset()
    ds.images[0].image.id = 2**70  # beyond orjson's 64-bit integers
    assert labelstudio_json_bytes(ds, image_prefix="") is None
    path = write_labelstudio(ds, tmp_path / "big.json")
    assert json.loads(path.read_text("utf-8"))[0]["id"] == 2**70


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_direct_json_equals_task_list_bytes(ds: PoseDataset):
    import orjson

    from posekit.formats.labelstudio_json import labelstudio_json_bytes

    expected = orjson.dumps(to_labelstudio(ds))
    assert labelstudio_json_bytes(ds, image_prefix="/data/local-files/?d=") == expected


# --------------------------------------------------------------- the SDK's converter


def _run_sdk(folder: Path) -> dict:
    script = r"""
import glob, json, os, sys
from label_studio_sdk.converter import Converter
os.chdir(sys.argv[1])
c = Converter(open("export.label_config.xml").read(), project_dir=".", download_resources=False)
c.convert_to_yolo("export.json", "yolo", is_dir=False)
c.convert_to_coco("export.json", "coco", is_dir=False)
c.convert_to_json("export.json", "json", is_dir=False)
out = {"yolo": {}, "coco": json.load(open("coco/result.json"))}
for f in glob.glob("yolo/labels/*.txt"):
    rows = [line.split() for line in open(f).read().splitlines() if line]
    out["yolo"][os.path.basename(f)] = [list(map(float, row)) for row in rows]
print(json.dumps(out))
"""
    done = subprocess.run(
        [str(LS_PYTHON), "-c", script, str(folder)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(
    not LS_PYTHON.is_file(), reason=f"label-studio-sdk venv not found at {LS_PYTHON}"
)
def test_sdk_converter_keeps_one_person_per_parent(tmp_path: Path, ls_dir: Path):
    ds = read_labelstudio(
        ls_dir / "export_keypoints_with_person_box.json",
        label_config=ls_dir / "label_config_keypoints.xml",
    )
    extra = _dataset().images[0]
    extra.instances = extra.instances[:2]
    ds.images.append(extra)
    write_labelstudio(ds, tmp_path / "export.json")
    result = _run_sdk(tmp_path)
    for item in ds.images:
        lines = result["yolo"][Path(item.image.file_name).stem + ".txt"]
        assert len(lines) == len(item.instances)  # one person per parentID
        for line, instance in zip(lines, item.instances):
            kps = np.array(line[5:]).reshape(-1, 3)
            labeled = instance.visibility > 0
            np.testing.assert_array_equal(kps[:, 2] > 0, labeled)
            expected = instance.keypoints / [item.image.width, item.image.height]
            np.testing.assert_allclose(kps[labeled, :2], expected[labeled], atol=1e-6)
    # the SDK's own COCO exporter merges all keypoints of a task into one annotation
    coco = result["coco"]
    with_keypoints = [a for a in coco["annotations"] if a.get("keypoints")]
    assert len(with_keypoints) == len(ds.images)
    # and posekit re-imports its own export identically
    assert read_labelstudio(tmp_path / "export.json") == ds
