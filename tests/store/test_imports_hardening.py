"""Hardening of dataset imports (issue 8): annotations for images already in the
project, declared sizes against the files, box-only annotations, float32 overflow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from posekit import get_preset
from posekit.formats.coco import CocoFormatError
from posekit.store import StoreError, Workspace, import_coco, import_images

from .store_factories import media_files

NAMES = list(get_preset("coco17").keypoints)


def _images(folder: Path, count: int = 2, size: tuple[int, int] = (64, 48)) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(count):
        name = f"img{index}.png"
        Image.new("RGB", size, (50 * index, 90, 160)).save(folder / name)
        names.append(name)
    return names


def _coco(names: list[str], size: tuple[int, int] = (64, 48), **annotation) -> dict:
    keypoints = []
    for k in range(17):
        keypoints += [10 + k, 5 + k, 2]
    ann = {"keypoints": keypoints, "num_keypoints": 17, "bbox": [1, 2, 30, 40], **annotation}
    return {
        "images": [
            {"id": i + 1, "file_name": n, "width": size[0], "height": size[1]}
            for i, n in enumerate(names)
        ],
        "annotations": [
            {"id": i + 1, "image_id": i + 1, "category_id": 1, **ann} for i in range(len(names))
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": list(NAMES)}],
    }


@pytest.fixture
def workspace(tmp_path: Path):
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    yield ws
    ws.close()


def _write(tmp_path: Path, data: dict, name: str = "labels.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_annotations_attach_to_images_imported_before(workspace: Workspace, tmp_path: Path):
    photos = tmp_path / "photos"
    names = _images(photos)
    assert import_images(workspace, "p", "default", [photos]).added == 2
    labels = _write(tmp_path, _coco(names))
    report = import_coco(workspace, "p", "default", labels, image_root=photos)
    assert (report.added, report.attached, report.instances) == (0, 2, 2)
    assert "attached to 2 images" in report.summary()
    items = workspace.list_items("p")
    assert len(items) == 2
    for item in items:
        assert item.status == "reviewed"
        assert len(workspace.get_instances(item)) == 1
    # Importing the same file again adds nothing (the items hold ground truth now).
    again = import_coco(workspace, "p", "default", labels, image_root=photos)
    assert (again.added, again.attached, again.instances, len(again.skipped)) == (0, 0, 0, 2)
    assert sum(len(workspace.get_instances(i)) for i in workspace.list_items("p")) == 2


def test_annotations_attach_by_content_under_another_name(workspace: Workspace, tmp_path: Path):
    photos = tmp_path / "photos"
    names = _images(photos, 1)
    import_images(workspace, "p", "default", [photos])
    renamed = tmp_path / "other"
    renamed.mkdir()
    (renamed / "renamed.png").write_bytes((photos / names[0]).read_bytes())
    report = import_coco(
        workspace, "p", "default", _write(tmp_path, _coco(["renamed.png"])), image_root=renamed
    )
    assert (report.added, report.attached) == (0, 1)
    [item] = workspace.list_items("p")
    assert item.file_name == names[0] and len(workspace.get_instances(item)) == 1


def test_declared_size_must_match_the_image_file(workspace: Workspace, tmp_path: Path):
    photos = tmp_path / "photos"
    names = _images(photos, 1, size=(640, 480))
    data = _coco(names, size=(640, 480))
    data["images"][0]["width"] = 641
    with pytest.raises(StoreError, match=r"images\[0\] \('img0.png'\).*641x480.*640x480"):
        import_coco(workspace, "p", "default", _write(tmp_path, data), image_root=photos)
    assert workspace.count_items("p") == 0 and media_files(workspace) == []


def test_absurd_declared_size_is_refused_by_the_reader(workspace: Workspace, tmp_path: Path):
    data = _coco(["a.png"])
    data["images"][0]["width"] = 10**12
    with pytest.raises(CocoFormatError, match=r"images\[0\].*over the pixel limit"):
        import_coco(workspace, "p", "default", _write(tmp_path, data), copy_media=False)
    assert workspace.count_items("p") == 0


@pytest.mark.parametrize("keypoints", ["absent", None])
def test_annotation_without_keypoints_is_box_only_and_counted(
    workspace: Workspace, tmp_path: Path, keypoints
):
    photos = tmp_path / "photos"
    names = _images(photos, 1)
    data = _coco(names)
    ann = data["annotations"][0]
    del ann["num_keypoints"]
    if keypoints == "absent":
        del ann["keypoints"]
    else:
        ann["keypoints"] = None
    report = import_coco(workspace, "p", "default", _write(tmp_path, data), image_root=photos)
    assert (report.instances, report.box_only) == (1, 1)
    assert "1 of the instances box-only" in report.summary()
    [inst] = workspace.get_instances(workspace.list_items("p")[0])
    assert not inst.visibility.any() and inst.box is not None


def test_annotation_with_neither_keypoints_nor_bbox_is_refused(
    workspace: Workspace, tmp_path: Path
):
    data = _coco(["a.png"])
    for key in ("keypoints", "bbox", "num_keypoints"):
        del data["annotations"][0][key]
    with pytest.raises(CocoFormatError, match=r"annotations\[0\].*neither 'keypoints' nor 'bbox'"):
        import_coco(workspace, "p", "default", _write(tmp_path, data), copy_media=False)
    assert workspace.count_items("p") == 0


@pytest.mark.parametrize("value", [1e39, 1e308])
def test_keypoint_beyond_float32_is_refused(workspace: Workspace, tmp_path: Path, value):
    data = _coco(["a.png"])
    data["annotations"][0]["keypoints"][3] = value
    with pytest.raises(CocoFormatError, match=r"annotations\[0\].*keypoint 1 .*float32"):
        import_coco(workspace, "p", "default", _write(tmp_path, data), copy_media=False)
    assert workspace.count_items("p") == 0


@pytest.mark.parametrize(
    ("key", "value", "pattern"),
    [
        ("bbox", [1, 2, 1e39, 4], r"'bbox'.*float32"),
        ("bbox", [3e38, 2, 3e38, 4], r"'bbox'.*float32"),  # x + w overflows
        ("area", 1e39, r"'area'.*float32"),
    ],
)
def test_box_and_area_beyond_float32_are_refused(
    workspace: Workspace, tmp_path: Path, key, value, pattern
):
    data = _coco(["a.png"])
    data["annotations"][0][key] = value
    with pytest.raises(CocoFormatError, match=r"annotations\[0\].*" + pattern):
        import_coco(workspace, "p", "default", _write(tmp_path, data), copy_media=False)
    assert workspace.count_items("p") == 0


def test_wrong_keypoint_count_everywhere_blames_the_category(tmp_path: Path):
    from posekit.formats.coco import from_coco

    data = _coco(["a.png", "b.png"])
    data["categories"][0]["keypoints"] = list(NAMES[:16])
    with pytest.raises(CocoFormatError, match=r"categories\[0\].*'keypoints' names 16 keypoints"):
        from_coco(data, get_preset("coco17"))


def test_stale_staging_of_killed_imports_is_swept_on_open(tmp_path: Path):
    import os
    import subprocess
    import sys
    import uuid

    from posekit.store.media_staging import make_staging_dir

    root = tmp_path / "ws"
    ws = Workspace(root)
    ws.create_project("p", get_preset("coco17"))
    photos = tmp_path / "photos"
    _images(photos, 1)
    import_images(ws, "p", "default", [photos])
    kept = media_files(ws)
    live = make_staging_dir(ws, "upload-")  # this process runs: kept
    ws.close()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    folder = root / "media" / "1" / "1"
    stale = [
        folder / f".incoming-{dead}-{uuid.uuid4().hex}",  # a killed import's copy
        folder / f".incoming-{uuid.uuid4().hex}",  # the old naming, a day old
    ]
    for path in stale:
        path.write_bytes(b"partial")
    os.utime(stale[1], (1, 1))
    gone_dir = root / ".staging" / f"coco-{dead}-{uuid.uuid4().hex}"
    (gone_dir / "images").mkdir(parents=True)
    (gone_dir / "images" / "a.jpg").write_bytes(b"x")

    reopened = Workspace(root)
    try:
        assert not any(p.exists() for p in stale) and not gone_dir.exists()
        assert live.is_dir()
        assert media_files(reopened) == kept
        [item] = reopened.list_items("p")
        assert item.path is not None and item.path.is_file()
    finally:
        reopened.close()


def test_corrupt_file_reported_once_without_the_path_twice(
    workspace: Workspace, tmp_path: Path, caplog
):
    photos = tmp_path / "photos"
    _images(photos, 1)
    (photos / "bad.jpg").write_text("not an image")
    with caplog.at_level("WARNING"):
        report = import_images(workspace, "p", "default", [photos])
    [(path, reason)] = report.failures
    assert path.endswith("bad.jpg") and "bad.jpg" not in reason
    assert not [r for r in caplog.records if "bad.jpg" in r.getMessage()]


def test_empty_folder_is_a_failure_listing_the_extensions(workspace: Workspace, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    report = import_images(workspace, "p", "default", [empty])
    [(path, reason)] = report.failures
    assert path == str(empty) and ".jpg" in reason and ".png" in reason
    assert report.added == 0 and workspace.count_items("p") == 0


def test_names_invalid_on_windows_are_made_portable(workspace: Workspace, tmp_path: Path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (64, 48)).save(photos / "<img src=x onerror=y>.png")
    Image.new("RGB", (64, 48), (9, 9, 9)).save(photos / "con.png")
    report = import_images(workspace, "p", "default", [photos])
    assert report.added == 2
    names = sorted(i.file_name for i in workspace.list_items("p"))
    assert names == ["_con.png", "_img src=x onerror=y_.png"]
    data = _coco(["a|b.png"])
    Image.new("RGB", (64, 48), (1, 2, 3)).save(photos / "a|b.png")
    import_coco(workspace, "p", "other", _write(tmp_path, data), image_root=photos)
    assert [i.file_name for i in workspace.list_items("p", dataset="other")] == ["a_b.png"]


def test_fully_rejected_image_is_not_exported_as_an_image_with_nobody(
    workspace: Workspace, tmp_path: Path
):
    import numpy as np

    from posekit import Instance
    from posekit.store import export_coco

    photos = tmp_path / "photos"
    _images(photos, 2)
    import_images(workspace, "p", "default", [photos])
    first, second = workspace.list_items("p")
    xy, vis = np.full((17, 2), 20, np.float32), np.full(17, 2, np.uint8)
    prediction = Instance(xy, vis, score=0.9, status="predicted", source="model:test")
    ids = workspace.write_predictions({first.id: [prediction], second.id: [prediction]},
                                      overwrite=False)  # fmt: skip
    workspace.review(first.id, {ids[first.id][0]: "reject"})
    workspace.review(second.id, {ids[second.id][0]: "accept"})
    assert workspace.get_item(first.id).status == "reviewed"
    out = tmp_path / "out.json"
    report = export_coco(workspace, "p", out)
    data = json.loads(out.read_text())
    assert [i["file_name"] for i in data["images"]] == [second.file_name]
    assert (report.images, report.instances, report.left_out) == (1, 1, 1)
    assert "left out" in report.summary()
    from posekit.store import export

    everything = export(workspace, "p", tmp_path / "all.json", images="all")
    assert everything.images == 2
