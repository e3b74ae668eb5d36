"""The fast parse of :func:`posekit.formats.coco_json.prepare_coco_file` (msgspec, keypoints
as one integer matrix) against the usual one (``prepare_coco(load_coco_json(path))``).

Every file must give the same :class:`CocoRows` (arrays, fields, dataset) or the same
error message, whether the fast parse applies to it, applies only in part (keypoints
parsed as lists) or hands the file back to the usual parse.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from posekit import get_preset
from posekit.formats import coco_json
from posekit.formats.coco import CocoFormatError, load_coco_json
from posekit.formats.coco_read import prepare_coco, prepare_coco_file
from posekit.skeleton import Skeleton

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers_coco import make_coco

SHARED = Path("/work/shared/data")
SHARED_COCO = SHARED / "coco-val2017-sample" / "person_keypoints.json"
_ARRAYS = ("xy", "vis", "boxes", "kp_stash", "box_stash", "mapping")
_VALUES = (
    "rows", "row_image", "box_index", "counts", "special", "records", "identity", "k_file",
    "category_id", "info", "licenses", "category", "extra_categories", "extra_annotations",
    "extra",
)  # fmt: skip


def _usual(path: Path, skeleton: Skeleton | None) -> Any:
    return prepare_coco(load_coco_json(path), skeleton, source=str(path))


def _fast_kind(path: Path) -> str:
    """Which parse :func:`prepare_coco_file` takes: matrix, lists or usual."""
    parsed = coco_json.fast_parse(path.read_bytes())
    if parsed is None:
        return "usual"
    return "matrix" if parsed[1].matrix is not None else "lists"


def _same(path: Path, skeleton: Skeleton | None = None) -> Any:
    """Both parses of ``path``: the same rows, or the same error; returns the rows."""
    try:
        expected = _usual(path, skeleton)
    except CocoFormatError as exc:
        with pytest.raises(CocoFormatError) as got:
            prepare_coco_file(path, skeleton)
        assert str(got.value) == str(exc)
        return None
    rows = prepare_coco_file(path, skeleton)
    for name in _ARRAYS:
        assert np.array_equal(getattr(rows, name), getattr(expected, name)), name
        assert getattr(rows, name).dtype == getattr(expected, name).dtype, name
    for name in _VALUES:
        assert getattr(rows, name) == getattr(expected, name), name
    # Key order of what is kept verbatim (written back on export).
    assert [list(a) for a in rows.extra_annotations] == [
        list(a) for a in expected.extra_annotations
    ]
    assert [list(r.extra) for r in rows.records] == [list(r.extra) for r in expected.records]
    try:
        expected_fields = expected.fields()
    except CocoFormatError as exc:
        with pytest.raises(CocoFormatError) as got:
            rows.fields()
        assert str(got.value) == str(exc)
        return None
    got_fields = rows.fields()
    for name in vars(expected_fields):
        a, b = getattr(got_fields, name), getattr(expected_fields, name)
        if name == "keypoint_scores":
            assert [None if s is None else s.tolist() for s in a] == [
                None if s is None else s.tolist() for s in b
            ]
        else:
            assert a == b, name
    assert rows.dataset() == expected.dataset()
    return rows


def _write(tmp_path: Path, data: Any, name: str = "f.json", **dump: Any) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data, **dump))
    return path


def _base(num_annotations: int = 120) -> dict[str, Any]:
    return make_coco(30, num_annotations, seed=7, crowd_fraction=0.1)


def test_usual_file_takes_the_matrix_and_gives_the_same_rows(tmp_path: Path) -> None:
    for dump in ({}, {"indent": 2}, {"separators": (",", ":")}):
        path = _write(tmp_path, _base(), **dump)
        assert _fast_kind(path) == "matrix"
        rows = _same(path, get_preset("coco17"))
        assert isinstance(rows.anns[0]["keypoints"], msgspec.Raw)
        _same(path, None)  # the preset found from the names


def test_per_annotation_variants_in_the_matrix(tmp_path: Path) -> None:
    data = _base()
    anns = data["annotations"]
    anns[1]["posekit"] = {"status": "predicted", "source": "model:x",
                          "keypoint_scores": [0.5] * 17}  # fmt: skip
    anns[2]["score"] = 0.25
    anns[3]["track_id"] = 4
    anns[4]["num_keypoints"] += 1
    anns[5]["iscrowd"] = False
    anns[6]["area"] = 12
    anns[7]["keypoints"][2] = 0  # a not-labeled point with coordinates: stashed
    anns[8]["keypoints"][0] = 2**24 + 1  # not exact in float32: stashed
    anns[9]["keypoints"][0] = -5
    anns[10]["bbox"] = None
    del anns[11]["bbox"]
    anns[12]["segmentation"] = None
    anns[13]["area"] = None
    del anns[14]["iscrowd"]
    anns[15]["bbox"] = [1.0, 2, 3, 4]
    anns.reverse()  # not in image order
    path = _write(tmp_path, data)
    assert _fast_kind(path) == "matrix"
    rows = _same(path, get_preset("coco17"))
    stashed = {rows.anns[a]["id"] for a in np.flatnonzero(rows.kp_stash).tolist()}
    assert {data["annotations"][-8]["id"], data["annotations"][-9]["id"]} <= stashed


@pytest.mark.parametrize(
    "change",
    [
        "float", "null", "absent", "short", "long", "all-short", "string", "nested", "empty",
        "scalar", "object", "bool", "nan-string",
    ],
)  # fmt: skip
def test_odd_keypoints_give_the_same_result_or_error(tmp_path: Path, change: str) -> None:
    data = _base()
    ann = data["annotations"][40]
    if change == "float":
        ann["keypoints"][0] = 10.5
    elif change == "null":
        ann["keypoints"] = None
    elif change == "absent":
        del ann["keypoints"]
    elif change == "short":
        ann["keypoints"] = ann["keypoints"][:-3]
    elif change == "long":
        ann["keypoints"] = [*ann["keypoints"], 1, 2, 2]
    elif change == "all-short":
        for other in data["annotations"]:
            other["keypoints"] = other["keypoints"][:-3]
    elif change == "string":
        ann["keypoints"][4] = "7"
    elif change == "nested":
        ann["keypoints"] = [ann["keypoints"][:3], *ann["keypoints"][3:-1]]
    elif change == "empty":
        ann["keypoints"] = []
    elif change == "scalar":
        ann["keypoints"] = 5
    elif change == "object":
        ann["keypoints"] = {"x": 1}
    elif change == "bool":
        ann["keypoints"][5] = True
    elif change == "nan-string":
        ann["keypoints"][5] = "NaN"
    path = _write(tmp_path, data)
    # (All of one wrong length: a matrix, handed back as lists by _prepare_coco.)
    assert _fast_kind(path) == ("matrix" if change == "all-short" else "lists")
    _same(path, get_preset("coco17"))


def test_out_of_range_values_give_the_same_error(tmp_path: Path) -> None:
    for value, p in ((3, 2), (-1, 2), (10**17, 0)):
        data = _base()
        data["annotations"][50]["keypoints"][3 + p] = value
        _same(_write(tmp_path, data), get_preset("coco17"))


@pytest.mark.parametrize(
    "change",
    [
        "unknown-annotation-key", "unknown-top-key", "other-category", "big-int-image-id",
        "big-int-segmentation", "big-negative", "u64", "nan-literal", "duplicate-id",
        "unknown-image", "annotations-not-list", "annotation-not-object", "not-object",
        "duplicate-key", "missing-annotations",
    ],
)  # fmt: skip
def test_files_the_fast_parse_hands_back(tmp_path: Path, change: str) -> None:
    data = _base()
    anns = data["annotations"]
    text = None
    if change == "unknown-annotation-key":
        anns[3]["attributes"] = {"occluded": True}
    elif change == "unknown-top-key":
        data["extra_top"] = [1, 2]
    elif change == "other-category":
        data["categories"].append({"id": 9, "name": "car", "supercategory": "vehicle"})
        anns[5]["category_id"] = 9
    elif change == "big-int-image-id":
        data["images"][0]["id"] = 10**20
    elif change == "big-int-segmentation":
        anns[6]["segmentation"] = {"counts": [10**25, 3], "size": [4, 5]}
    elif change == "big-negative":
        data["images"][1]["license"] = -(2**63) - 1
    elif change == "u64":
        anns[7]["id"] = 2**64 - 1
    elif change == "nan-literal":
        text = json.dumps(data).replace('"area": ', '"area": NaN, "x": ', 1)
    elif change == "duplicate-id":
        anns[9]["id"] = anns[8]["id"]
    elif change == "unknown-image":
        anns[9]["image_id"] = 999_999
    elif change == "annotations-not-list":
        data["annotations"] = {"a": 1}
    elif change == "annotation-not-object":
        anns[2] = [1, 2]
    elif change == "not-object":
        data = [data]
    elif change == "duplicate-key":
        text = json.dumps(data).replace('"iscrowd": 0', '"iscrowd": 7, "iscrowd": 0', 1)
    elif change == "missing-annotations":
        del data["annotations"]
    path = tmp_path / "f.json"
    path.write_text(text if text is not None else json.dumps(data))
    if change in ("unknown-annotation-key", "unknown-top-key", "big-int-image-id", "u64"):
        assert _fast_kind(path) == "usual" or change == "u64"
    _same(path, get_preset("coco17"))


@pytest.mark.parametrize("text", [b"{", b'{"images": [}', b"\xff\xfe{}", b"", b"[1, 2]"])
def test_broken_json_gives_the_same_error(tmp_path: Path, text: bytes) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(text)
    _same(path, get_preset("coco17"))


def test_file_in_another_keypoint_order(tmp_path: Path) -> None:
    data = _base()
    template = get_preset("coco17")
    names = data["categories"][0]["keypoints"]
    order = list(range(len(names)))[::-1]
    data["categories"][0]["keypoints"] = [names[i] for i in order]
    for ann in data["annotations"]:
        k = ann["keypoints"]
        ann["keypoints"] = [v for i in order for v in k[3 * i : 3 * i + 3]]
    path = _write(tmp_path, data)
    assert _fast_kind(path) == "matrix"
    rows = _same(path, template)
    assert not rows.identity


def test_empty_and_box_only_files(tmp_path: Path) -> None:
    data = _base(0)
    _same(_write(tmp_path, data), get_preset("coco17"))
    data = _base(5)
    for ann in data["annotations"]:
        ann["keypoints"] = None
    _same(_write(tmp_path, data), get_preset("coco17"))


def test_long_digit_runs_finds_every_run_of_19() -> None:
    rng = np.random.default_rng(0)
    alphabet = list(b"0123456789a,")
    for _ in range(2000):
        size = int(rng.integers(0, 90))
        raw = bytes(rng.choice(alphabet, size=size, p=[0.095] * 10 + [0.025] * 2).tolist())
        longest = max((len(run) for run in raw.replace(b"a", b",").split(b",")), default=0)
        assert coco_json.long_digit_runs(raw) == (longest >= 19), raw
    for length in range(15, 26):
        for offset in range(9):
            raw = b"x" * offset + b"7" * length + b"y"
            assert coco_json.long_digit_runs(raw) == (length >= 19)
            assert coco_json.long_digit_runs(raw[:-1]) == (length >= 19)


def test_without_msgspec_the_usual_parse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, _base())
    monkeypatch.setitem(sys.modules, "msgspec", None)  # import msgspec raises ImportError
    assert coco_json.fast_parse(path.read_bytes()) is None
    rows = prepare_coco_file(path, get_preset("coco17"))
    assert rows.dataset() == _usual(path, get_preset("coco17")).dataset()


def test_shared_coco_file() -> None:
    if not SHARED_COCO.is_file():
        pytest.skip(f"{SHARED_COCO} not present")
    assert _fast_kind(SHARED_COCO) == "matrix"
    _same(SHARED_COCO, get_preset("coco17"))
    _same(SHARED_COCO, None)
    others = [SHARED / "crowdpose-sample" / "keypoints.json"]
    others.append(SHARED / "posetrack18-sample" / "annotations" / "val.json")
    for path in others:
        if path.is_file():
            _same(path, None)  # (the same preset, or the same error)


def test_parse_leaves_the_input_file_data_alone(tmp_path: Path) -> None:
    data = _base()
    kept = copy.deepcopy(data)
    path = _write(tmp_path, data)
    prepare_coco_file(path, get_preset("coco17")).dataset()
    assert json.loads(path.read_text()) == kept
