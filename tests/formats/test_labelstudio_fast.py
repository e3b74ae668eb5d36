"""Tests for the fast path of the Label Studio reader (typed msgspec decode and
columns, :func:`posekit.formats.labelstudio_fast.from_labelstudio_json`): it gives
the generic reader's dataset (same arrays, dtypes, records) on the real exports and
on posekit's own exports, it is the path taken on posekit's exports, and whatever it
does not take (malformed input, rare cases) goes to the generic reader, whose errors
name the task and region."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats import labelstudio_fast
from posekit.formats.labelstudio import (
    IMAGE_URL_KEY,
    LabelStudioFormatError,
    from_labelstudio,
    read_labelstudio,
    write_labelstudio,
)
from posekit.formats.labelstudio_fast import from_labelstudio_json
from posekit.skeleton import Skeleton, get_preset

LS = "formats/labelstudio"
COCO17 = get_preset("coco17")
TWO = Skeleton.from_dict(
    {"name": "two", "keypoints": ["keypoint_label1", "keypoint_label2"], "default_sigma": 0.05}
)


def assert_same(a: PoseDataset, b: PoseDataset) -> None:
    """Stricter than ``==``: the same dtypes and shapes too, field by field."""
    assert a.skeleton == b.skeleton
    assert len(a.images) == len(b.images)
    for x, y in zip(a.images, b.images):
        assert x.image == y.image
        assert len(x.instances) == len(y.instances)
        for i, j in zip(x.instances, y.instances):
            for name in ("keypoints", "visibility", "keypoint_scores", "box"):
                u, v = getattr(i, name), getattr(j, name)
                if u is None or v is None:
                    assert u is None and v is None, name
                    continue
                assert u.dtype == v.dtype and u.shape == v.shape, name
                assert u.tobytes() == v.tobytes(), name
            assert type(i.score) is type(j.score) and i.score == j.score
            assert (i.source, i.status, i.track_id, i.iscrowd, i.area, i.id, i.extra) == (
                j.source,
                j.status,
                j.track_id,
                j.iscrowd,
                j.area,
                j.id,
                j.extra,
            )


def generic(raw: bytes, skeleton: Skeleton | None = None, **options: Any) -> PoseDataset:
    return from_labelstudio(orjson.loads(raw), skeleton, **options)


class FastPath:
    """Counts the fast path's results and its hand-overs to the generic reader."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.taken = self.left = 0
        build = labelstudio_fast._from_tasks

        def spy(*args: Any, **kwargs: Any) -> PoseDataset:
            try:
                out = build(*args, **kwargs)
            except labelstudio_fast._NotFast:
                self.left += 1
                raise
            self.taken += 1
            return out

        monkeypatch.setattr(labelstudio_fast, "_from_tasks", spy)


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> FastPath:
    return FastPath(monkeypatch)


@pytest.fixture(scope="module")
def ls_dir(shared_data: Path) -> Path:
    return shared_data / LS


# --------------------------------------------------------------- real exports


def test_real_export_with_person_box(ls_dir: Path, fast: FastPath):
    path = ls_dir / "export_keypoints_with_person_box.json"
    config = (ls_dir / "label_config_keypoints.xml").read_text("utf-8")
    ds = from_labelstudio_json(path.read_bytes(), label_config=config)
    assert fast.taken == 1
    assert_same(ds, generic(path.read_bytes(), label_config=config))
    assert_same(ds, read_labelstudio(path, label_config=ls_dir / "label_config_keypoints.xml"))


def test_real_export_mixed_shapes(ls_dir: Path, fast: FastPath):
    raw = (ls_dir / "export_mixed_shapes.json").read_bytes()
    config = (ls_dir / "label_config_mixed.xml").read_text("utf-8")
    ds = from_labelstudio_json(raw, TWO, label_config=config)
    assert fast.left == 1  # ungrouped keypoints: the generic reader's case
    assert_same(ds, generic(raw, TWO, label_config=config))


@pytest.mark.parametrize("name", ["with_parent", "no_parent"])
def test_real_predictions_in_a_task(ls_dir: Path, name: str, fast: FastPath):
    predictions = json.loads((ls_dir / f"prediction_keypoints_{name}.json").read_text("utf-8"))
    raw = orjson.dumps({"data": {"image": "frame.jpg"}, "predictions": predictions})
    sizes = {"frame.jpg": (640, 480)}
    ds = from_labelstudio_json(raw, COCO17, image_sizes=sizes)
    assert_same(ds, generic(raw, COCO17, image_sizes=sizes))
    assert fast.taken + fast.left == 1
    with pytest.raises(LabelStudioFormatError, match="predictions without their tasks"):
        from_labelstudio_json(orjson.dumps(predictions), COCO17)


# --------------------------------------------------------------- posekit's exports


def _dataset() -> PoseDataset:
    """Occluded and unlabeled points, a derived box, keypoint and instance scores, two
    prediction sources, a rejected instance, an empty image, an image URL carried from
    Label Studio and a non-ASCII file name."""
    xy = np.tile([[10.0, 20.0]], (17, 1)) + np.arange(17)[:, None]
    vis = np.full(17, 2)
    vis[3], vis[4] = 0, 1
    a = Instance(xy, vis, box=np.array([0, 0, 60, 70]), score=0.75)
    b = Instance(xy + 30, vis)
    c = Instance(xy + 5, vis, keypoint_scores=np.where(vis > 0, 0.25, 0.0), score=0.5,
                 status="predicted", source="model:x")  # fmt: skip
    d = Instance(xy + 1, vis, box=np.array([1, 2, 3, 4]), status="predicted", source="manual")
    rejected = Instance(xy, vis, status="rejected")
    ds = PoseDataset(
        COCO17,
        [
            LabeledImage(ImageRecord("a/b.jpg", 200, 100, 5), [a, b, rejected]),
            LabeledImage(ImageRecord("c.jpg", 300, 200, 6), [c, d]),
            LabeledImage(ImageRecord("empty.jpg", 30, 20, 7), []),
            LabeledImage(ImageRecord("dir/\u00e9t\u00e9 x.jpg", 64, 80, None), [a.copy()]),
        ],
    )
    ds.images[1].image.extra[IMAGE_URL_KEY] = "s3://bucket/c.jpg"
    return ds


def test_posekit_export_takes_the_fast_path(tmp_path: Path, fast: FastPath):
    path = write_labelstudio(_dataset(), tmp_path / "export.json")
    ds = read_labelstudio(path)
    assert fast.taken == 1 and fast.left == 0
    assert_same(ds, generic(path.read_bytes(), COCO17))
    expected = _dataset()
    expected.images[0].instances.pop()  # the rejected one is not written
    expected.images[3].image.id = 8  # ids are given on export
    assert ds == expected


@st.composite
def datasets(draw) -> PoseDataset:
    k = COCO17.num_keypoints
    images = []
    for n in range(draw(st.integers(1, 3))):
        width, height = draw(st.integers(1, 4000)), draw(st.integers(1, 4000))
        items = []
        for _ in range(draw(st.integers(0, 3))):
            vis = np.array(draw(st.lists(st.sampled_from([0, 1, 2]), min_size=k, max_size=k)))
            xs = draw(st.lists(st.floats(0, width, width=32), min_size=k, max_size=k))
            ys = draw(st.lists(st.floats(0, height, width=32), min_size=k, max_size=k))
            box = None
            if draw(st.booleans()) or not vis.any():
                x1, x2 = sorted(draw(st.lists(st.floats(0, width), min_size=2, max_size=2)))
                y1, y2 = sorted(draw(st.lists(st.floats(0, height), min_size=2, max_size=2)))
                box = np.array([x1, y1, x2, y2])
            predicted = draw(st.booleans())
            scores = None
            if predicted and vis.any() and draw(st.booleans()):
                scores = np.where(vis > 0, draw(st.lists(st.floats(0, 1), min_size=k,
                                                         max_size=k)), 0)  # fmt: skip
            items.append(
                Instance(
                    np.stack([xs, ys], axis=1),
                    vis,
                    keypoint_scores=scores,
                    box=box,
                    score=draw(st.none() | st.floats(0, 1)),
                    status="predicted" if predicted else "accepted",
                    source=draw(st.sampled_from(["model:a", "model:b"])) if predicted else "manual",
                )
            )
        images.append(LabeledImage(ImageRecord(f"d/{n}.jpg", width, height, n + 1), items))
    return PoseDataset(COCO17, images)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(datasets())
def test_fast_path_equals_generic_on_round_trips(ds: PoseDataset):
    from posekit.formats.labelstudio_json import labelstudio_json_bytes

    raw = labelstudio_json_bytes(ds, image_prefix="/data/local-files/?d=")
    assert raw is not None
    tasks = labelstudio_fast._decode(raw)
    fast = labelstudio_fast._from_tasks(tasks, COCO17, None, None, "x")  # no _NotFast
    assert_same(fast, generic(raw, COCO17, source="x"))
    assert fast.num_instances == ds.num_instances  # (grouped: annotation, then predictions)


# --------------------------------------------------------------- what the fast path leaves


def _export() -> list[dict[str, Any]]:
    return orjson.loads(_raw_export())


def _raw_export() -> bytes:
    from posekit.formats.labelstudio_json import labelstudio_json_bytes

    raw = labelstudio_json_bytes(_dataset(), image_prefix="/data/local-files/?d=")
    assert raw is not None
    return raw


def _first_results(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return tasks[0]["annotations"][0]["result"]


def _keypoint(results: list[dict[str, Any]], n: int = 0) -> dict[str, Any]:
    return [r for r in results if r["type"] == "keypointlabels"][n]


@pytest.mark.parametrize(
    "mutate",
    [
        # rare but valid: the generic reader reads them
        lambda t: _first_results(t)[0]["value"].__setitem__("rotation", 30),
        lambda t: _first_results(t)[0].__setitem__("score", None),
        lambda t: _first_results(t).append({"type": "relation", "from_id": "p0", "to_id": "p1"}),
        lambda t: _first_results(t).append(
            {"id": "poly", "type": "polygonlabels", "value": {"points": [[1, 2]]}}
        ),
        lambda t: _first_results(t).append({"type": "choices", "value": {"choices": ["occluded"]}}),
        lambda t: [r.pop("parentID") for r in _first_results(t)[1:] if "parentID" in r],
        lambda t: _keypoint(_first_results(t))["value"].__setitem__("keypointlabels", ["Nose"]),
        lambda t: _keypoint(_first_results(t)).__setitem__("id", 7),
        lambda t: t[0].__setitem__("id", 2**70),  # orjson reads it as a float: no image id
        lambda t: t[0].__setitem__("id", 2**64 - 1),
        lambda t: t[0].__setitem__("id", "task-1"),
        lambda t: t[0]["meta"]["posekit"].__setitem__("width", 0),
        lambda t: [
            r.pop(k) for r in _first_results(t) for k in ("original_width", "original_height")
        ],
        lambda t: t[0]["data"].__setitem__("other", 1),
        lambda t: t[0]["annotations"].insert(0, {"result": [], "was_cancelled": True}),
        lambda t: t[0]["annotations"].append({"result": [], "updated_at": "1999-01-01T00:00:00Z"}),
        lambda t: t[0]["predictions"].append({"model_version": 3, "result": []}),
        lambda t: _first_results(t)[0]["value"].__setitem__("x", 10),  # an int percent
        # occlusion choices after all regions, keypoints before their box (searched)
        lambda t: _first_results(t).sort(
            key=lambda r: (
                ("choices", "rectanglelabels").index(r["type"])
                if r["type"] != "keypointlabels"
                else -1
            )
        ),
        # a second keypoint region with an occluded point's id: both are occluded
        lambda t: _first_results(t).append(
            {**copy.deepcopy(_keypoint(_first_results(t), 3)), "parentID": "p1"}
        ),
    ],
)
def test_left_to_the_generic_reader_or_taken_alike(mutate):
    tasks = _export()
    mutate(tasks)
    raw = json.dumps(tasks).encode()
    try:
        expected = generic(raw, COCO17)
    except LabelStudioFormatError as exc:
        with pytest.raises(LabelStudioFormatError) as caught:
            from_labelstudio_json(raw, COCO17)
        assert str(caught.value) == str(exc)
        return
    assert_same(from_labelstudio_json(raw, COCO17), expected)


def test_task_id_beyond_64_bits_reads_as_before(tmp_path: Path):
    tasks = _export()
    tasks[0]["id"] = 2**70
    path = tmp_path / "big.json"
    path.write_text(json.dumps(tasks), "utf-8")
    ds = read_labelstudio(path, COCO17)
    assert ds.images[0].image.id is None  # as orjson reads it (a float): not an image id
    assert_same(ds, generic(path.read_bytes(), COCO17, source=str(path)))


# --------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t[0].__setitem__("meta", [1]), r"task\[0\] \(id 5\): 'meta' must be an object"),
        (
            lambda t: t[0]["meta"].__setitem__("posekit", "x"),
            r"task\[0\] \(id 5\): meta.posekit must be an object",
        ),
        (
            lambda t: _first_results(t).append({"id": "c", "type": "choices", "value": [1]}),
            r"task\[0\] \(id 5\): annotation region 'c': 'value' must be an object",
        ),
        (
            lambda t: _first_results(t).append(
                {"id": "c", "type": "choices", "value": {"choices": "not occluded"}}
            ),
            r"region 'c': value.choices must be a list",
        ),
        (
            lambda t: _first_results(t)[0].__setitem__("meta", "derived"),
            r"region 'p0': 'meta' must be an object",
        ),
        (
            lambda t: _first_results(t)[0].__setitem__("meta", {"text": 3}),
            r"region 'p0': meta.text must be a list",
        ),
        (
            lambda t: _first_results(t).append(
                {
                    "id": "lone",
                    "type": "rectanglelabels",
                    "original_width": 200,
                    "original_height": 100,
                    "value": {"rectanglelabels": 5},
                }
            ),
            r"region 'lone': value.rectanglelabels must be a list",
        ),
        (
            lambda t: _keypoint(_first_results(t)).__setitem__("value", [1]),
            r"region 'p0k0': 'value' must be an object",
        ),
        (
            lambda t: t[0]["annotations"][0].__setitem__("result", {"a": 1}),
            r"task\[0\] \(id 5\): annotation: 'result' must be a list",
        ),
        (
            lambda t: _keypoint(_first_results(t))["value"].__setitem__("x", "12"),
            r"region 'p0k0': value.x must be a number",
        ),
        (
            lambda t: _keypoint(_first_results(t))["value"].__setitem__("keypointlabels", []),
            r"region 'p0k0': value.keypointlabels must be one name",
        ),
    ],
)
def test_malformed_input_names_the_task_and_region(tmp_path: Path, mutate, message):
    tasks = _export()
    mutate(tasks)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tasks), "utf-8")
    with pytest.raises(LabelStudioFormatError, match=message):
        read_labelstudio(path, COCO17)
    with pytest.raises(LabelStudioFormatError, match=message):
        from_labelstudio(tasks, COCO17)


def test_malformed_json_and_labels_of_a_bad_value(tmp_path: Path):
    path = tmp_path / "x.json"
    path.write_bytes(_raw_export()[:-10])
    with pytest.raises(LabelStudioFormatError, match=r"x.json: not valid JSON"):
        read_labelstudio(path, COCO17)
    tasks = _export()
    _keypoint(_first_results(tasks))["value"] = "nose"
    with pytest.raises(LabelStudioFormatError):  # not an AttributeError
        from_labelstudio(tasks)  # the template from the labels used


# --------------------------------------------------------------- the writer's file


@pytest.mark.parametrize("build", [_dataset, lambda: PoseDataset(COCO17, [])])
def test_written_file_is_the_task_list_bytes(tmp_path: Path, build):
    """write_labelstudio writes the encoded tasks one after the other: the file holds
    orjson's bytes of to_labelstudio."""
    from posekit.formats.labelstudio import to_labelstudio

    path = write_labelstudio(build(), tmp_path / "export.json")
    assert path.read_bytes() == orjson.dumps(to_labelstudio(build()))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_written_file_falls_back_after_a_partial_stream(tmp_path: Path):
    """A task id beyond 64 bits on the last task: the stream has written the first
    tasks when orjson refuses it; the file is then the task list's JSON, whole."""
    ds = _dataset()
    ds.images[-1].image.id = 2**70
    path = write_labelstudio(ds, tmp_path / "big.json")
    tasks = json.loads(path.read_text("utf-8"))
    assert [t["id"] for t in tasks] == [5, 6, 7, 2**70]
    from posekit.formats.labelstudio import to_labelstudio

    assert tasks == json.loads(json.dumps(to_labelstudio(ds)))
