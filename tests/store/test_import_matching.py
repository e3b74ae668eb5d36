"""Annotations imported for images already in the dataset whose names differ by folder
(posekit.store.import_matching): the real COCO sample, the real Label Studio export
(``/data/upload/18/image1.jpg``, and Label Studio's ``<8 hex>-`` upload names), the real
CVAT export; ambiguous base names are reported, not guessed; nothing half-written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from posekit import Skeleton
from posekit.store import Workspace, import_coco, import_dataset, import_images
from posekit.store.import_report import MissingMediaError
from posekit.store.media_names import base_name_candidates

from .store_factories import COCO_DIR, COCO_JSON, DATA, media_files

FORMATS = DATA / "formats"
LABEL_STUDIO = FORMATS / "labelstudio" / "export_keypoints_with_person_box.json"


def need_formats() -> None:
    if not LABEL_STUDIO.is_file():
        pytest.skip(f"format exports not found at {FORMATS}")


def coco_with_folders(tmp_path: Path, folder_of: dict[str, str] | None = None) -> Path:
    """The real COCO sample, its images named ``images/train/<name>`` (or as given)."""
    data = json.loads(COCO_JSON.read_text())
    for image in data["images"]:
        name = image["file_name"]
        image["file_name"] = (folder_of or {}).get(name, f"images/train/{name}")
    path = tmp_path / "labels" / "keypoints.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


def instance_counts(ws: Workspace) -> dict[str, int]:
    return {item.file_name: len(ws.get_instances(item)) for item in ws.list_items("people")}


# ------------------------------------------------------------------ COCO
def test_coco_names_with_folders_attach_to_images_uploaded_by_base_name(
    ws: Workspace, tmp_path: Path
) -> None:
    import_images(ws, "people", "default", [COCO_DIR / "images"])
    labels = coco_with_folders(tmp_path)
    report = import_coco(ws, "people", "default", labels)  # the images are not there
    assert (report.added, report.attached, report.instances) == (0, 4, 14)
    assert sorted(report.matched) == [
        (f"images/train/{p.name}", p.name) for p in sorted((COCO_DIR / "images").glob("*.jpg"))
    ]
    assert report.skipped == [] and report.missing_media == []
    assert "4 matched by base name" in report.summary()
    assert instance_counts(ws) == {
        "000000000785.jpg": 1,
        "000000040083.jpg": 3,
        "000000196141.jpg": 5,
        "000000197388.jpg": 5,
    }
    assert {item.status for item in ws.list_items("people")} == {"reviewed"}
    # Again: matched again, and skipped as labeled now (the reason says how it matched).
    again = import_coco(ws, "people", "default", labels)
    assert (again.added, again.attached, again.instances) == (0, 0, 0)
    assert len(again.matched) == 4
    reasons = dict(again.skipped)
    assert reasons["images/train/000000000785.jpg"] == (
        "'000000000785.jpg' (same base name) is already in the dataset with annotations"
    )


def test_existing_skip_applies_to_base_name_matches(ws: Workspace, tmp_path: Path) -> None:
    import_images(ws, "people", "default", [COCO_DIR / "images"])
    before = ws.row_counts()
    report = import_coco(ws, "people", "default", coco_with_folders(tmp_path), existing="skip")
    assert (report.added, report.attached, len(report.matched)) == (0, 0, 4)
    assert dict(report.skipped)["images/train/000000040083.jpg"] == (
        "'000000040083.jpg' (same base name) is already in the dataset (kept as it is)"
    )
    assert ws.row_counts() == before


def test_images_in_folders_in_the_project_match_a_file_without_folders(
    ws: Workspace, tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    shutil.copytree(COCO_DIR / "images", photos / "val2017")
    import_images(ws, "people", "default", [photos])  # stored as val2017/<name>
    report = import_coco(ws, "people", "default", COCO_JSON, image_root=tmp_path / "nothing")
    assert (report.added, report.attached, report.instances) == (0, 4, 14)
    assert ("000000000785.jpg", "val2017/000000000785.jpg") in report.matched


def test_exact_name_wins_and_a_second_entry_of_that_image_is_not_guessed(
    ws: Workspace, tmp_path: Path
) -> None:
    import_images(ws, "people", "default", [COCO_DIR / "images"])
    # 000000000785.jpg named exactly once and with a folder once (its twin below).
    data = json.loads(
        coco_with_folders(tmp_path, {"000000000785.jpg": "000000000785.jpg"}).read_text()
    )
    twin = dict(data["images"][0], id=1, file_name="other/000000000785.jpg")
    data["images"].append(twin)
    data["annotations"].append(dict(data["annotations"][0], id=999_999, image_id=1))
    labels = tmp_path / "twins.json"
    labels.write_text(json.dumps(data))
    report = import_coco(ws, "people", "default", labels, image_root=tmp_path / "nothing")
    assert (report.added, report.attached) == (0, 4)
    assert ("other/000000000785.jpg", "000000000785.jpg") not in report.matched
    assert dict(report.skipped) == {
        "other/000000000785.jpg": "not matched to '000000000785.jpg' by base name: another "
        "entry of the file names that image exactly"
    }
    assert instance_counts(ws)["000000000785.jpg"] == 1


def test_two_entries_of_one_base_name_are_not_guessed(ws: Workspace, tmp_path: Path) -> None:
    import_images(ws, "people", "default", [COCO_DIR / "images"])
    data = json.loads(coco_with_folders(tmp_path).read_text())
    twin = dict(data["images"][0], id=1, file_name="val/000000000785.jpg")
    data["images"].append(twin)
    data["annotations"].append(dict(data["annotations"][0], id=999_999, image_id=1))
    labels = tmp_path / "twins.json"
    labels.write_text(json.dumps(data))
    report = import_coco(ws, "people", "default", labels)
    assert (report.added, report.attached, len(report.matched)) == (0, 3, 3)
    reasons = dict(report.skipped)
    assert set(reasons) == {"images/train/000000000785.jpg", "val/000000000785.jpg"}
    assert reasons["val/000000000785.jpg"] == (
        "not matched to '000000000785.jpg' by base name: entry "
        "'images/train/000000000785.jpg' of the file has that base name too"
    )
    assert instance_counts(ws)["000000000785.jpg"] == 0


def test_two_images_of_one_base_name_in_the_dataset_are_not_guessed(
    ws: Workspace, tmp_path: Path
) -> None:
    need_formats()
    for folder, shade in (("a", 10), ("b", 200)):
        (tmp_path / "photos" / folder).mkdir(parents=True)
        Image.new("RGB", (216, 174), (shade, 90, 90)).save(
            tmp_path / "photos" / folder / "image1.jpg"
        )
    import_images(ws, "people", "default", [tmp_path / "photos"])
    before, media = ws.row_counts(), media_files(ws)
    report = import_dataset(ws, "people", "default", LABEL_STUDIO, format="labelstudio")
    assert (report.added, report.attached, report.matched) == (0, 0, [])
    assert report.skipped == [
        (
            "upload/18/image1.jpg",
            "not matched: 2 images in the dataset have its base name ('a/image1.jpg', "
            "'b/image1.jpg'); name one of them in the file",
        )
    ]
    assert (ws.row_counts(), media_files(ws)) == (before, media)


# ------------------------------------------------------------------ Label Studio
def label_studio_image(ws: Workspace, tmp_path: Path, size: tuple[int, int] = (216, 174)) -> None:
    """``image1.jpg``, the image of the real export, uploaded into the project first."""
    Image.new("RGB", size, (10, 10, 200)).save(tmp_path / "image1.jpg")
    import_images(ws, "people", "default", [tmp_path / "image1.jpg"])


def test_label_studio_upload_path_matches_the_image_uploaded_before(
    ws: Workspace, tmp_path: Path
) -> None:
    need_formats()
    label_studio_image(ws, tmp_path)
    report = import_dataset(ws, "people", "default", LABEL_STUDIO, format="labelstudio")
    assert (report.added, report.attached, report.instances) == (0, 1, 1)
    assert report.matched == [("upload/18/image1.jpg", "image1.jpg")]
    (item,) = ws.list_items("people")
    (person,) = ws.get_instances(item)
    assert item.file_name == "image1.jpg" and item.status == "reviewed"
    assert [k for k, v in enumerate(person.visibility) if v] == [0, 1, 2]


def test_label_studio_hash_prefixed_upload_name_matches(ws: Workspace, tmp_path: Path) -> None:
    """Label Studio stores an upload of ``image1.jpg`` as ``upload/18/3f2a9c1b-image1.jpg``."""
    need_formats()
    label_studio_image(ws, tmp_path)
    tasks = json.loads(LABEL_STUDIO.read_text())
    tasks[0]["data"]["image"] = "/data/upload/18/3f2a9c1b-image1.jpg"
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    report = import_dataset(ws, "people", "default", export, format="labelstudio")
    assert (report.added, report.attached, report.instances) == (0, 1, 1)
    assert report.matched == [("upload/18/3f2a9c1b-image1.jpg", "image1.jpg")]


def test_base_name_match_of_another_size_is_not_taken(ws: Workspace, tmp_path: Path) -> None:
    need_formats()
    label_studio_image(ws, tmp_path, size=(200, 100))
    before = ws.row_counts()
    report = import_dataset(ws, "people", "default", LABEL_STUDIO, format="labelstudio")
    assert (report.added, report.attached, report.matched) == (0, 0, [])
    assert report.skipped == [
        (
            "upload/18/image1.jpg",
            "not matched to 'image1.jpg' by base name: the file says 216x174 pixels, "
            "that image is 200x100",
        )
    ]
    assert ws.row_counts() == before


def test_image_file_there_wins_over_a_base_name_match(ws: Workspace, tmp_path: Path) -> None:
    """The export's image is there (another picture than the project's ``image1.jpg``):
    it is a new image, not the project's one."""
    need_formats()
    label_studio_image(ws, tmp_path)
    root = tmp_path / "root"
    (root / "upload" / "18").mkdir(parents=True)
    Image.new("RGB", (216, 174), (250, 250, 0)).save(root / "upload" / "18" / "image1.jpg")
    report = import_dataset(
        ws, "people", "default", LABEL_STUDIO, format="labelstudio", image_root=root
    )
    assert (report.added, report.attached, report.matched) == (1, 0, [])
    assert instance_counts(ws) == {"image1.jpg": 0, "upload/18/image1.jpg": 1}


def test_failed_import_after_a_match_writes_nothing(ws: Workspace, tmp_path: Path) -> None:
    """One image matched by base name, another one missing: nothing is attached."""
    import_images(ws, "people", "default", [COCO_DIR / "images" / "000000000785.jpg"])
    before, media = ws.row_counts(), media_files(ws)
    with pytest.raises(MissingMediaError) as caught:
        import_coco(ws, "people", "default", coco_with_folders(tmp_path))
    assert "images/train/000000040083.jpg" in str(caught.value)
    assert "images/train/000000000785.jpg" not in caught.value.missing
    assert (ws.row_counts(), media_files(ws)) == (before, media)


# ------------------------------------------------------------------ CVAT
def test_cvat_export_attaches_to_images_uploaded_in_a_folder(ws: Workspace, tmp_path: Path) -> None:
    """The real CVAT export names ``img0.jpg`` (8x8) and ``img1.jpg`` (10x10, 3 points);
    the project holds them as ``task-1/img0.jpg`` and ``task-1/img1.jpg``."""
    need_formats()
    template = Skeleton.from_dict(
        {
            "name": "cvat-points",
            "keypoints": ["point_1", "point_2", "point_3"],
            "default_sigma": 0.05,
        }
    )
    ws.create_project("cvat", template)
    photos = tmp_path / "photos" / "task-1"
    photos.mkdir(parents=True)
    Image.new("RGB", (8, 8), (200, 10, 10)).save(photos / "img0.jpg")
    Image.new("RGB", (10, 10), (10, 200, 10)).save(photos / "img1.jpg")
    import_images(ws, "cvat", "default", [tmp_path / "photos"])
    xml = FORMATS / "cvat" / "images_points.xml"
    report = import_dataset(ws, "cvat", "default", xml, format="cvat", image_root=tmp_path / "none")
    assert (report.added, report.attached, report.instances) == (0, 1, 1)
    assert sorted(report.matched) == [
        ("img0.jpg", "task-1/img0.jpg"),
        ("img1.jpg", "task-1/img1.jpg"),
    ]
    assert report.skipped == [
        ("img0.jpg", "'task-1/img0.jpg' (same base name) is already in the dataset")
    ]
    items = {item.file_name: item for item in ws.list_items("cvat")}
    (points,) = ws.get_instances(items["task-1/img1.jpg"])
    assert points.keypoints.tolist() == [[1, 2], [3, 4], [5, 6]]


def test_base_name_candidates() -> None:
    by_base = {"a.jpg": ["a.jpg"], "b.jpg": ["t/b.jpg", "v/b.jpg"]}
    assert base_name_candidates("upload/18/a.jpg", by_base) == ["a.jpg"]
    assert base_name_candidates("upload/18/0123abcd-a.jpg", by_base) == ["a.jpg"]
    # Label Studio writes the prefix in lower case
    assert base_name_candidates("upload/18/0123ABCD-a.jpg", by_base) == []
    assert base_name_candidates("x/A.jpg", by_base) == []  # case-sensitive
    assert base_name_candidates("b.jpg", by_base) == ["t/b.jpg", "v/b.jpg"]
