"""Tests for posekit.store.imports: image and COCO imports, one transaction each."""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from posekit import get_preset
from posekit.store import StoreError, Workspace, export_coco, import_coco, import_images

from .store_factories import COCO_DIR, COCO_JSON, DATA, media_files


# ------------------------------------------------------------------ images
def test_import_images_reports_bad_files_by_name_and_imports_the_rest(
    ws: Workspace, tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    shutil.copytree(COCO_DIR / "images", folder)
    shutil.copytree(DATA / "crowdpose-sample" / "images", folder / "crowd")
    good = sorted(p for p in folder.rglob("*.jpg"))
    jpeg = (COCO_DIR / "images" / "000000000785.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (folder / "notes.jpg").write_text("this is not an image")
    (folder / "readme.txt").write_text("ignored: not an image extension")

    report = import_images(ws, "people", "train", [folder])
    failed = {Path(path).name: reason for path, reason in report.failures}
    assert set(failed) == {"truncated.jpg", "notes.jpg"}
    assert "truncated" in failed["truncated.jpg"] or "corrupt" in failed["truncated.jpg"]
    assert report.added == len(good)
    items = {item.file_name: item for item in ws.list_items("people", dataset="train")}
    assert set(items) == {p.relative_to(folder).as_posix() for p in good}
    with Image.open(COCO_DIR / "images" / "000000000785.jpg") as im:
        assert (items["000000000785.jpg"].width, items["000000000785.jpg"].height) == im.size
    for item in items.values():
        assert item.path is not None and item.path.is_relative_to(ws.media_root)
        assert item.path.read_bytes() == (folder / item.file_name).read_bytes()
        assert item.status == "new" and item.kind == "image"
    # Importing again adds nothing and says why.
    again = import_images(ws, "people", "train", [folder])
    assert again.added == 0 and len(again.skipped) == len(good)
    assert ws.count_items("people") == len(good)


def test_same_name_different_content_does_not_collide(ws: Workspace, tmp_path: Path) -> None:
    images = sorted((COCO_DIR / "images").glob("*.jpg"))
    for sub, src in (("a", images[0]), ("b", images[1])):
        (tmp_path / sub).mkdir()
        shutil.copy(src, tmp_path / sub / "1.jpg")
    first = import_images(ws, "people", "train", [tmp_path / "a"])
    second = import_images(ws, "people", "train", [tmp_path / "b"])
    assert first.added == second.added == 1
    assert second.renamed == [("1.jpg", "b/1.jpg")]
    items = {i.file_name: i for i in ws.list_items("people")}
    assert items["1.jpg"].path.read_bytes() == images[0].read_bytes()
    assert items["b/1.jpg"].path.read_bytes() == images[1].read_bytes()
    # The same content under a new name is a duplicate.
    shutil.copy(images[0], tmp_path / "copy.jpg")
    dup = import_images(ws, "people", "train", [tmp_path / "copy.jpg"])
    assert dup.added == 0 and dup.skipped == [("copy.jpg", "same content as '1.jpg'")]
    missing = import_images(ws, "people", "train", [tmp_path / "nope"])
    assert missing.failures == [(str(tmp_path / "nope"), "no such file or folder")]


def test_failed_image_import_leaves_no_trace(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_images(ws, "people", "train", [COCO_DIR / "images" / "000000000785.jpg"])
    before_rows, before_media = ws.row_counts(), media_files(ws)
    real_replace = os.replace
    calls = {"n": 0}

    def flaky_replace(src, dst):
        # Let the first file reach its final name, then fail (e.g. disk full):
        # the import must remove what it created and roll the database back.
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        import_images(ws, "people", "train", [COCO_DIR / "images"])
    monkeypatch.setattr(os, "replace", real_replace)
    assert ws.row_counts() == before_rows
    assert media_files(ws) == before_media


# ------------------------------------------------------------------ COCO
def test_coco_import_then_export_is_identity(ws: Workspace, coco_folder: Path) -> None:
    report = import_coco(ws, "people", "val", coco_folder / "keypoints.json")
    original = json.loads((coco_folder / "keypoints.json").read_text())
    assert report.added == len(original["images"]) == 4
    assert report.instances == len(original["annotations"]) == 14
    items = ws.list_items("people", dataset="val")
    assert all(i.path is not None and i.path.is_file() for i in items)
    assert {i.status for i in items} == {"reviewed"}

    out = ws.root.parent / "export.json"
    exported_report = export_coco(ws, "people", out)
    assert (exported_report.images, exported_report.instances) == (4, 14)
    exported = json.loads(out.read_text())
    by_id = {a["id"]: a for a in original["annotations"]}
    assert sorted(a["id"] for a in exported["annotations"]) == sorted(by_id)
    for ann in exported["annotations"]:
        assert ann == by_id[ann["id"]]
    assert sorted(exported["images"], key=lambda i: i["id"]) == sorted(
        original["images"], key=lambda i: i["id"]
    )
    assert exported["categories"] == original["categories"]
    assert exported["info"] == original["info"]
    assert exported["licenses"] == original["licenses"]
    # Re-importing the same file adds nothing.
    again = import_coco(ws, "people", "val", coco_folder / "keypoints.json")
    assert again.added == 0 and again.instances == 0 and len(again.skipped) == 4


def _malformed(case: str, data: dict) -> tuple[dict, str]:
    ann = data["annotations"][3]
    if case == "missing-key":
        del ann["image_id"]
        return data, r"annotations\[3\].*image_id"
    if case == "missing-top-key":
        del data["categories"]
        return data, "categories"
    if case == "missing-width":
        del data["images"][2]["width"]
        return data, r"images\[2\].*width"
    if case == "keypoint-count":
        ann["keypoints"] = ann["keypoints"][:-3]
        return data, r"annotations\[3\].*48"
    if case == "visibility-3":
        ann["keypoints"][2] = 3
        return data, r"annotations\[3\]"
    if case == "nan":
        ann["keypoints"][0] = math.nan
        return data, r"annotations\[3\]"
    if case == "duplicate-id":
        ann["id"] = data["annotations"][0]["id"]
        return data, str(data["annotations"][0]["id"])
    if case == "parent-path":
        data["images"][1]["file_name"] = "../evil.jpg"
        return data, r"evil\.jpg"
    if case == "absolute-path":
        data["images"][1]["file_name"] = "/abs/path.jpg"
        return data, r"/abs/path\.jpg"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "missing-key",
        "missing-top-key",
        "missing-width",
        "keypoint-count",
        "visibility-3",
        "nan",
        "duplicate-id",
        "parent-path",
        "absolute-path",
    ],
)
def test_malformed_coco_writes_nothing(ws: Workspace, coco_folder: Path, case: str) -> None:
    from posekit.formats.coco import CocoFormatError

    import_images(ws, "people", "val", [COCO_DIR / "images" / "000000000785.jpg"])
    before_rows, before_media = ws.row_counts(), media_files(ws)
    good = json.loads((coco_folder / "keypoints.json").read_text())
    bad, pattern = _malformed(case, copy.deepcopy(good))
    path = coco_folder / "bad.json"
    # allow_nan: the NaN case needs a literal NaN in the file, as some tools write.
    path.write_text(json.dumps(bad, allow_nan=True))
    with pytest.raises((CocoFormatError, StoreError), match=pattern):
        import_coco(ws, "people", "val", path)
    assert ws.row_counts() == before_rows
    assert media_files(ws) == before_media


def test_missing_images_error_or_register(ws: Workspace, coco_folder: Path) -> None:
    (coco_folder / "images" / "000000040083.jpg").unlink()
    before = ws.row_counts()
    with pytest.raises(StoreError, match=r"1 image\(s\) not found.*000000040083\.jpg"):
        import_coco(ws, "people", "val", coco_folder / "keypoints.json")
    assert ws.row_counts() == before and media_files(ws) == []
    report = import_coco(
        ws, "people", "val", coco_folder / "keypoints.json", missing_media="register"
    )
    assert report.added == 4 and report.missing_media == ["images/000000040083.jpg"]
    items = {i.file_name: i for i in ws.list_items("people")}
    assert items["images/000000040083.jpg"].path is None
    assert items["images/000000000785.jpg"].path.is_file()
    assert len(media_files(ws)) == 3


def test_register_only_import_copies_nothing(ws: Workspace, tmp_path: Path) -> None:
    report = import_coco(
        ws, "people", "val", COCO_JSON, image_root=tmp_path / "nowhere", copy_media=False
    )
    assert report.added == 4 and report.instances == 14
    assert media_files(ws) == []
    with pytest.raises(StoreError, match="no media file"):
        from posekit.store import export_yolo

        export_yolo(ws, "people", tmp_path / "yolo")


def test_bulk_import_export_round_trip_is_exact(tmp_path: Path) -> None:
    """Hundreds of annotations take the multi-row insert and one-pass JSON paths; odd
    strings (quotes, backslashes, commas, non-ASCII) and integers beyond 64 bits in
    carried-over fields survive."""
    from helpers_coco import make_coco

    data = make_coco(120, 700, seed=3, crowd_fraction=0.05)
    for index, ann in enumerate(data["annotations"][:40]):
        ann["note"] = ['a,"b"', "c\\d", {"k": "é,]"}, index, 2**70][index % 5]
    source = tmp_path / "big.json"
    source.write_text(json.dumps(data))
    workspace = Workspace(tmp_path / "ws")
    workspace.create_project("people", get_preset("coco17"))
    report = import_coco(workspace, "people", "big", source, copy_media=False)
    assert report.added == 120 and report.instances == 700
    out = tmp_path / "out.json"
    export_coco(workspace, "people", out)
    exported = json.loads(out.read_text())
    assert sorted(exported["annotations"], key=lambda a: a["id"]) == sorted(
        data["annotations"], key=lambda a: a["id"]
    )
    assert exported["images"] == data["images"]
    workspace.close()
