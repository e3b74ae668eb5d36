"""The annotation import route (``POST /api/projects/{pid}/import/{format}``) with the real
exports of other tools in ``shared/data/formats`` (CVAT XML, Label Studio JSON, SLEAP,
DeepLabCut), their zips, images already in the project, and bad input (422 naming the
bad element, nothing written)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from posekit.server import create_app
from posekit.server.settings import Settings

from .auth_helpers import login_admin, role_client, workspace_of

CVAT_TEMPLATE = {"name": "cvat-points", "keypoints": ["point_1", "point_2", "point_3"]}
DLC_TEMPLATE = {"name": "openfield", "keypoints": ["snout", "leftear", "rightear", "tailbase"]}


@pytest.fixture
def formats_data(shared_data: Path) -> Path:
    folder = shared_data / "formats"
    if not folder.is_dir():
        pytest.skip(f"format exports not found at {folder}")
    return folder


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        login_admin(client)
        yield client


def new_project(client: TestClient, name: str, template: dict | str) -> int:
    body = {"name": name}
    if isinstance(template, str):
        body["template"] = template
    else:
        body["template_definition"] = {**template, "default_sigma": 0.05}
    response = client.post("/api/projects", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def image_bytes(width: int, height: int, kind: str = "JPEG", shade: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (shade, 120, 30)).save(buffer, kind)
    return buffer.getvalue()


def cvat_images() -> list[tuple[str, tuple[str, bytes, str]]]:
    """The two images of ``cvat/images_points.xml`` (8x8 and 10x10)."""
    return [
        ("images", ("img0.jpg", image_bytes(8, 8), "image/jpeg")),
        ("images", ("img1.jpg", image_bytes(10, 10, shade=40), "image/jpeg")),
    ]


def import_file(client, pid, fmt, name, data, images=(), **params):
    files = [("file", (name, data, "application/octet-stream")), *images]
    return client.post(f"/api/projects/{pid}/import/{fmt}", files=files, params=params)


def items(client: TestClient, pid: int) -> dict[str, dict]:
    page = client.get(f"/api/projects/{pid}/items", params={"limit": 500}).json()
    return {item["file_name"]: item for item in page["items"]}


def instances(client: TestClient, item_id: int) -> list[dict]:
    return client.get(f"/api/items/{item_id}").json()["instances"]


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in files.items():
            bundle.writestr(name, data)
    return buffer.getvalue()


def state(client: TestClient) -> tuple[dict, list[str]]:
    """Row counts and media files: what 'nothing written' is checked against."""
    ws = workspace_of(client)
    media = sorted(str(p) for p in (ws.root / "media").rglob("*") if p.is_file())
    return ws.row_counts(), media


# ------------------------------------------------------------------ CVAT
def test_cvat_xml_with_its_images(client: TestClient, formats_data: Path) -> None:
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    xml = (formats_data / "cvat" / "images_points.xml").read_bytes()
    response = import_file(client, pid, "cvat", "train.xml", xml, cvat_images())
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["added"], report["instances"], report["attached"]) == (2, 1, 0)
    found = items(client, pid)
    assert set(found) == {"img0.jpg", "img1.jpg"}
    (person,) = instances(client, found["img1.jpg"]["id"])
    assert person["keypoints"] == [[1, 2], [3, 4], [5, 6]]
    assert person["visibility"] == [2, 2, 2]
    assert instances(client, found["img0.jpg"]["id"]) == []  # box, polyline: no points


def test_cvat_video_export_registers_frames_without_media(
    client: TestClient, formats_data: Path
) -> None:
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    xml = (formats_data / "cvat" / "video_points_track.xml").read_bytes()
    refused = import_file(client, pid, "cvat", "annotations.xml", xml)
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert "frame_000010.png" in detail and "annotations.xml" in detail
    assert ".staging" not in detail and "missing_media=register" in detail
    response = import_file(client, pid, "cvat", "annotations.xml", xml, missing_media="register")
    assert response.status_code == 200, response.text
    assert response.json()["missing_media"] == ["frame_000010.png"]
    assert response.json()["instances"] == 1


def test_cvat_zip_export_with_images_folder(client: TestClient, formats_data: Path) -> None:
    """CVAT's "export with images": annotations.xml beside images/ (and macOS debris)."""
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    xml = (formats_data / "cvat" / "images_points.xml").read_bytes()
    bundle = zipped(
        {
            "task_1/annotations.xml": xml,
            "task_1/images/img0.jpg": image_bytes(8, 8),
            "task_1/images/img1.jpg": image_bytes(10, 10, shade=40),
            "__MACOSX/task_1/._annotations.xml": b"\x00\x05\x16\x07junk",
        }
    )
    response = import_file(client, pid, "cvat", "task_1.zip", bundle)
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 2 and response.json()["missing_media"] == []
    assert all(item["has_media"] for item in items(client, pid).values())


def test_coco_zip_as_cvat_and_datumaro_export_it(client: TestClient, shared_data: Path) -> None:
    """``annotations/person_keypoints_default.json`` beside ``images/default/``."""
    sample = shared_data / "coco-val2017-sample"
    if not (sample / "images").is_dir():
        pytest.skip(f"COCO sample not found at {sample}")
    coco = json.loads((sample / "person_keypoints.json").read_text())
    members = {"annotations/person_keypoints_default.json": json.dumps(coco).encode()}
    for path in sorted((sample / "images").glob("*.jpg")):
        members[f"images/default/{path.name}"] = path.read_bytes()
    pid = new_project(client, "coco", "coco17")
    response = import_file(client, pid, "coco", "coco-export.zip", zipped(members))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["added"] == len(coco["images"]) and report["missing_media"] == []
    assert report["instances"] == len(coco["annotations"])
    assert all(item["has_media"] for item in items(client, pid).values())


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"<annotations><image name='a.jpg' width='3'><points></image>", "mismatched tag"),
        (
            b"<annotations><version>1.1</version><image id='0' name='a.jpg' width='4' "
            b"height='4'><points label='x' points='1,2;oops'/></image></annotations>",
            "points",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "boom">]><annotations>&e;</annotations>',
            "entit",
        ),
    ],
)
def test_bad_cvat_xml_is_422_naming_it_and_writes_nothing(
    client: TestClient, body: bytes, named: str
) -> None:
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    before = state(client)
    response = import_file(client, pid, "cvat", "broken.xml", body, cvat_images(), dataset="new")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "broken.xml" in detail and named in detail.lower(), detail
    assert ".staging" not in detail
    assert state(client) == before  # no dataset "new", no items, no media


# ------------------------------------------------------------------ Label Studio
def test_label_studio_export_with_images_uploaded_by_base_name(
    client: TestClient, formats_data: Path
) -> None:
    """The export names its image ``/data/upload/18/image1.jpg``: the file the user has
    (and uploads) is ``image1.jpg``."""
    pid = new_project(client, "ls", "coco17")
    data = (formats_data / "labelstudio" / "export_keypoints_with_person_box.json").read_bytes()
    image = ("images", ("image1.jpg", image_bytes(216, 174), "image/jpeg"))
    response = import_file(client, pid, "labelstudio", "export.json", data, [image])
    assert response.status_code == 200, response.text
    assert response.json()["missing_media"] == [] and response.json()["added"] == 1
    ((name, item),) = items(client, pid).items()
    assert name == "upload/18/image1.jpg" and item["has_media"]
    (person,) = instances(client, item["id"])
    labeled = [k for k, v in enumerate(person["visibility"]) if v]
    assert labeled == [0, 1, 2]  # nose, left_eye, right_eye
    task = json.loads(data)[0]
    nose = next(
        r for r in task["annotations"][0]["result"] if r["value"].get("keypointlabels") == ["nose"]
    )
    x = nose["value"]["x"] / 100 * nose["original_width"]
    assert person["keypoints"][0][0] == pytest.approx(x, abs=1e-3)


def test_label_studio_bad_percent_is_422(client: TestClient, formats_data: Path) -> None:
    pid = new_project(client, "ls", "coco17")
    tasks = json.loads(
        (formats_data / "labelstudio" / "export_keypoints_with_person_box.json").read_text()
    )
    tasks[0]["annotations"][0]["result"][0]["value"]["x"] = 140.0
    before = state(client)
    response = import_file(
        client, pid, "labelstudio", "ls.json", json.dumps(tasks).encode(), missing_media="register"
    )
    assert response.status_code == 422
    assert "ls.json" in response.json()["detail"] and "140" in response.json()["detail"]
    assert state(client) == before


# ------------------------------------------------------------------ existing images
def test_annotations_attach_to_images_already_in_the_project(
    client: TestClient, formats_data: Path
) -> None:
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    files = [("files", part) for _, part in cvat_images()]
    assert client.post(f"/api/projects/{pid}/upload", files=files).json()["added"] == 2
    xml = (formats_data / "cvat" / "images_points.xml").read_bytes()
    response = import_file(client, pid, "cvat", "train.xml", xml)  # no images: attach
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["added"], report["attached"], report["instances"]) == (0, 1, 1)
    assert [name for name, _ in report["skipped"]] == ["img0.jpg"]  # nothing to attach
    found = items(client, pid)
    assert len(instances(client, found["img1.jpg"]["id"])) == 1
    assert found["img1.jpg"]["status"] == "reviewed"

    again = import_file(client, pid, "cvat", "train.xml", xml).json()
    assert (again["added"], again["attached"], again["instances"]) == (0, 0, 0)
    reasons = dict(again["skipped"])
    assert "already in the dataset with annotations" in reasons["img1.jpg"]
    assert len(instances(client, found["img1.jpg"]["id"])) == 1


def test_existing_skip_leaves_images_in_the_project_alone(
    client: TestClient, formats_data: Path
) -> None:
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    files = [("files", part) for _, part in cvat_images()]
    client.post(f"/api/projects/{pid}/upload", files=files)
    xml = (formats_data / "cvat" / "images_points.xml").read_bytes()
    before = state(client)
    response = import_file(client, pid, "cvat", "train.xml", xml, existing="skip")
    assert response.status_code == 200, response.text
    assert response.json()["attached"] == 0
    assert sorted(name for name, _ in response.json()["skipped"]) == ["img0.jpg", "img1.jpg"]
    assert instances(client, items(client, pid)["img1.jpg"]["id"]) == []
    assert state(client)[0]["instances"] == before[0]["instances"]


# ------------------------------------------------------------------ names differing by folder
def upload(client: TestClient, pid: int, *files: tuple[str, bytes]) -> dict:
    parts = [("files", (name, data, "image/jpeg")) for name, data in files]
    response = client.post(f"/api/projects/{pid}/upload", files=parts)
    assert response.status_code == 200, response.text
    return response.json()


def label_studio_export(formats_data: Path, image: str | None = None) -> bytes:
    tasks = json.loads(
        (formats_data / "labelstudio" / "export_keypoints_with_person_box.json").read_text()
    )
    if image is not None:
        tasks[0]["data"]["image"] = image
    return json.dumps(tasks).encode()


@pytest.mark.parametrize(
    "url", ["/data/upload/18/image1.jpg", "/data/upload/18/3f2a9c1b-image1.jpg"]
)
def test_label_studio_export_attaches_to_the_image_uploaded_before(
    client: TestClient, formats_data: Path, url: str
) -> None:
    """The export's image (``upload/18/image1.jpg``, or Label Studio's hash-prefixed upload
    name) is the project's ``image1.jpg``: no image sent with the file."""
    pid = new_project(client, "ls", "coco17")
    upload(client, pid, ("image1.jpg", image_bytes(216, 174)))
    data = label_studio_export(formats_data, url)
    response = import_file(client, pid, "labelstudio", "export.json", data)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["added"], report["attached"], report["instances"]) == (0, 1, 1)
    assert report["matched"] == [[url.removeprefix("/data/"), "image1.jpg"]]
    ((name, item),) = items(client, pid).items()
    assert name == "image1.jpg" and item["status"] == "reviewed"
    assert len(instances(client, item["id"])) == 1

    again = import_file(client, pid, "labelstudio", "export.json", data).json()
    assert (again["added"], again["attached"]) == (0, 0)
    assert again["skipped"] == [
        [
            url.removeprefix("/data/"),
            "'image1.jpg' (same base name) is already in the dataset with annotations",
        ]
    ]


def test_ambiguous_base_name_is_reported_not_guessed(
    client: TestClient, formats_data: Path
) -> None:
    pid = new_project(client, "ls", "coco17")
    upload(
        client,
        pid,
        ("cam-a/image1.jpg", image_bytes(216, 174, shade=10)),
        ("cam-b/image1.jpg", image_bytes(216, 174, shade=200)),
    )
    before = state(client)
    data = label_studio_export(formats_data)
    response = import_file(client, pid, "labelstudio", "export.json", data)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["added"], report["attached"], report["matched"]) == (0, 0, [])
    assert report["skipped"] == [
        [
            "upload/18/image1.jpg",
            "not matched: 2 images in the dataset have its base name ('cam-a/image1.jpg', "
            "'cam-b/image1.jpg'); name one of them in the file",
        ]
    ]
    assert state(client) == before


def test_existing_skip_applies_to_a_base_name_match(client: TestClient, formats_data: Path) -> None:
    pid = new_project(client, "ls", "coco17")
    upload(client, pid, ("image1.jpg", image_bytes(216, 174)))
    before = state(client)
    data = label_studio_export(formats_data)
    report = import_file(client, pid, "labelstudio", "ls.json", data, existing="skip").json()
    assert (report["added"], report["attached"]) == (0, 0)
    assert report["matched"] == [["upload/18/image1.jpg", "image1.jpg"]]
    assert report["skipped"] == [
        [
            "upload/18/image1.jpg",
            "'image1.jpg' (same base name) is already in the dataset (kept as it is)",
        ]
    ]
    assert state(client) == before


def test_images_uploaded_with_the_file_win_over_a_base_name_match(
    client: TestClient, formats_data: Path
) -> None:
    """Sent with the file, ``image1.jpg`` is the export's image: the same picture as the
    project's attaches by content; another picture is a new image."""
    pid = new_project(client, "ls", "coco17")
    mine = image_bytes(216, 174, shade=10)
    upload(client, pid, ("image1.jpg", mine))
    data = label_studio_export(formats_data)
    other = ("images", ("image1.jpg", image_bytes(216, 174, shade=250), "image/jpeg"))
    report = import_file(client, pid, "labelstudio", "ls.json", data, [other]).json()
    assert (report["added"], report["attached"], report["matched"]) == (1, 0, [])
    found = items(client, pid)
    assert set(found) == {"image1.jpg", "upload/18/image1.jpg"}
    assert instances(client, found["image1.jpg"]["id"]) == []

    pid = new_project(client, "ls2", "coco17")
    upload(client, pid, ("image1.jpg", mine))
    same = ("images", ("image1.jpg", mine, "image/jpeg"))
    report = import_file(client, pid, "labelstudio", "ls.json", data, [same]).json()
    assert (report["added"], report["attached"], report["matched"]) == (0, 1, [])
    assert len(instances(client, items(client, pid)["image1.jpg"]["id"])) == 1


def test_cvat_zip_without_images_attaches_to_images_in_folders(
    client: TestClient, formats_data: Path
) -> None:
    """CVAT's zip names ``img1.jpg``; the project holds ``images/train/img1.jpg``."""
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    upload(client, pid, *[("images/train/" + name, data) for _, (name, data, _) in cvat_images()])
    xml = (formats_data / "cvat" / "images_points.xml").read_bytes()
    bundle = zipped({"annotations.xml": xml})
    response = import_file(client, pid, "cvat", "task.zip", bundle)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["added"], report["attached"], report["instances"]) == (0, 1, 1)
    assert sorted(report["matched"]) == [
        ["img0.jpg", "images/train/img0.jpg"],
        ["img1.jpg", "images/train/img1.jpg"],
    ]
    assert len(instances(client, items(client, pid)["images/train/img1.jpg"]["id"])) == 1


# ------------------------------------------------------------------ folder formats
def dlc_zip(formats_data: Path, top: str = "") -> bytes:
    root = formats_data / "deeplabcut"
    return zipped(
        {
            top + p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }
    )


def test_deeplabcut_project_as_a_zip(client: TestClient, formats_data: Path) -> None:
    pid = new_project(client, "dlc", DLC_TEMPLATE)
    before = state(client)
    refused = import_file(client, pid, "deeplabcut", "openfield.zip", dlc_zip(formats_data))
    assert refused.status_code == 422  # 114 of the 116 frames are not in the example
    assert "img0002.png" in refused.json()["detail"] and "openfield.zip" in refused.json()["detail"]
    assert state(client) == before

    response = import_file(
        client, pid, "deeplabcut", "openfield.zip", dlc_zip(formats_data), missing_media="register"
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["added"] == 116 and len(report["missing_media"]) == 114
    found = items(client, pid)
    first = found["labeled-data/m4s1/img0000.png"]
    assert first["has_media"] and (first["width"], first["height"]) == (640, 480)
    assert not found["labeled-data/m4s1/img0002.png"]["has_media"]
    (mouse,) = instances(client, first["id"])
    assert sum(v > 0 for v in mouse["visibility"]) >= 1


def test_deeplabcut_table_alone_says_to_zip_the_project(
    client: TestClient, formats_data: Path
) -> None:
    pid = new_project(client, "dlc", DLC_TEMPLATE)
    table = next((formats_data / "deeplabcut").rglob("CollectedData_*.csv")).read_bytes()
    response = import_file(client, pid, "deeplabcut", "CollectedData_Pranav.csv", table)
    assert response.status_code == 422
    assert "zip of the project folder" in response.json()["detail"]


def test_supervisely_project_round_trips_through_a_zip(
    client: TestClient, formats_data: Path
) -> None:
    """A Supervisely project zip (here posekit's own export of the CVAT import) imports
    into a new project with the same points."""
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    xml = (formats_data / "cvat" / "images_points.xml").read_bytes()
    assert import_file(client, pid, "cvat", "train.xml", xml, cvat_images()).status_code == 200
    exported = client.get(f"/api/projects/{pid}/export", params={"format": "supervisely"})
    assert exported.status_code == 200 and exported.content[:2] == b"PK"
    other = new_project(client, "sly", CVAT_TEMPLATE)
    response = import_file(client, other, "supervisely", "project.zip", exported.content)
    assert response.status_code == 200, response.text
    assert response.json()["missing_media"] == []
    found = items(client, other)
    (image_one,) = [item for name, item in found.items() if name.endswith("img1.jpg")]
    assert image_one["has_media"]
    (person,) = instances(client, image_one["id"])
    assert person["keypoints"] == [[1, 2], [3, 4], [5, 6]]


def test_sleap_dance_registers_every_labeled_frame(client: TestClient, formats_data: Path) -> None:
    pytest.importorskip("sleap_io", reason="sleap-io (the sleap extra) is not installed")
    pid = new_project(client, "dance", "coco17")
    data = (formats_data / "sleap" / "dance.mp4.labels.slp").read_bytes()
    response = import_file(client, pid, "sleap", "dance.slp", data, missing_media="register")
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 450


# ------------------------------------------------------------------ zips that are refused
@pytest.mark.parametrize(
    ("members", "named"),
    [
        ({"../annotations.xml": b"<annotations/>"}, "../annotations.xml"),
        ({"a/annotations.xml": b"<annotations/>", "b/annotations.xml": b"<a/>"}, "2 CVAT"),
        ({"readme.txt": b"hello"}, "no CVAT"),
    ],
)
def test_unusable_zip_is_422_naming_the_member(client: TestClient, members, named) -> None:
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    before = state(client)
    response = import_file(client, pid, "cvat", "export.zip", zipped(members))
    assert response.status_code == 422, response.text
    assert named in response.json()["detail"] and "export.zip" in response.json()["detail"]
    assert state(client) == before


def test_corrupt_image_in_a_zip_is_refused(client: TestClient, formats_data: Path) -> None:
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    xml = (formats_data / "cvat" / "images_points.xml").read_bytes()
    bundle = zipped(
        {
            "annotations.xml": xml,
            "images/img0.jpg": image_bytes(8, 8),
            "images/img1.jpg": image_bytes(10, 10)[:40],
        }
    )
    before = state(client)
    response = import_file(client, pid, "cvat", "export.zip", bundle)
    assert response.status_code == 422, response.text
    assert "img1.jpg" in response.json()["detail"]
    assert state(client) == before


# ------------------------------------------------------------------ who may import
@pytest.mark.parametrize("role", ["viewer", "annotator", "reviewer"])
def test_only_managers_import(client: TestClient, formats_data: Path, role: str) -> None:
    pid = new_project(client, "cvat", CVAT_TEMPLATE)
    other = role_client(client.app, pid, role)
    xml = (formats_data / "cvat" / "images_points.xml").read_bytes()
    response = import_file(other, pid, "cvat", "train.xml", xml, cvat_images())
    assert response.status_code == 403
    assert items(client, pid) == {}
    manager = role_client(client.app, pid, "manager")
    assert import_file(manager, pid, "cvat", "train.xml", xml, cvat_images()).status_code == 200
