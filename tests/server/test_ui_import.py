"""The project page's "Import annotations" dialog in real Chromium against the real server:
a real CVAT export and a Label Studio export imported through the dialog show up in the
grid and the editor; the Label Studio export attaches to an image uploaded before under
its base name; a broken file shows the server's 422 message; viewers and annotators do
not see the menu."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from .auth_helpers import make_user
from .conftest import LiveServer, checked_page, require_browser

CVAT_TEMPLATE = {
    "name": "cvat-points",
    "keypoints": ["point_1", "point_2", "point_3"],
    "default_sigma": 0.05,
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The real exports, under the names a user would have, with images of their sizes."""
    source = shared_data / "formats"
    if not source.is_dir():
        pytest.skip(f"format exports not found at {source}")
    root = tmp_path_factory.mktemp("import-files")
    shutil.copy(source / "cvat" / "images_points.xml", root / "annotations.xml")
    shutil.copy(
        source / "labelstudio" / "export_keypoints_with_person_box.json",
        root / "project-1-at-2025-04-29.json",
    )
    (root / "broken.xml").write_text("<annotations><image name='a.jpg'><points></annotations>")
    images = root / "cvat-images"
    images.mkdir()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(images / "img0.jpg")
    Image.new("RGB", (10, 10), (10, 200, 10)).save(images / "img1.jpg")
    (images / "notes.txt").write_text("not an image: the folder picker leaves it out")
    Image.new("RGB", (216, 174), (10, 10, 200)).save(root / "image1.jpg")
    # The DeepLabCut example project folder, zipped as a user would.
    shutil.make_archive(str(root / "openfield"), "zip", root_dir=source / "deeplabcut")
    return root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_browser()
    live = LiveServer(tmp_path_factory.mktemp("ui-import") / "ws")
    try:
        live.cvat_id = live.post(  # type: ignore[attr-defined]
            "/api/projects", {"name": "from cvat", "template_definition": CVAT_TEMPLATE}
        )["id"]
        live.dlc_id = live.post(  # type: ignore[attr-defined]
            "/api/projects",
            {
                "name": "from deeplabcut",
                "template_definition": {
                    "name": "openfield",
                    "keypoints": ["snout", "leftear", "rightear", "tailbase"],
                    "default_sigma": 0.05,
                },
            },
        )["id"]
        live.ls_id = live.post(  # type: ignore[attr-defined]
            "/api/projects", {"name": "from label studio", "template": "coco17"}
        )["id"]
        yield live
    finally:
        live.close()


@pytest.fixture()
def page(browser: Any, server: LiveServer) -> Iterator[Any]:
    """A fresh 1280x800 page, logged in as a fresh admin, at the project list."""
    with checked_page(browser, server, viewport=(1280, 800)) as page:
        page.wait_for_selector("body[data-page=projects]")
        yield page


def open_import(page: Any, server: LiveServer, project_id: int) -> None:
    page.goto(f"{server.url}/#/projects/{project_id}?t=import")
    page.wait_for_selector("body[data-page=project] #import-button")
    page.click("#import-button")
    page.wait_for_selector("#import-dialog")


def cards(page: Any) -> dict[str, str]:
    return {
        card.get_attribute("title"): card.inner_text()
        for card in page.locator("#item-grid .card").all()
    }


def test_cvat_export_and_its_image_folder_through_the_dialog(
    page: Any, server: LiveServer, files: Path
) -> None:
    open_import(page, server, server.cvat_id)
    page.set_input_files("#imp-file", str(files / "annotations.xml"))
    page.wait_for_function("document.querySelector('#imp-format').value === 'cvat'")
    page.set_input_files("#imp-folder", str(files / "cvat-images"))
    assert page.inner_text("#imp-chosen") == "2 images chosen"
    page.click("#imp-start")
    page.wait_for_selector("#imp-summary:has-text('Imported')")
    summary = page.inner_text("#imp-summary")
    assert summary.startswith("Imported 2 new images with 1 instance"), summary
    assert page.inner_text("#imp-error") == ""
    # The grid behind the dialog is drawn again with the new items.
    page.wait_for_function("document.querySelectorAll('#item-grid .card').length === 2")
    shown = cards(page)
    assert set(shown) == {"img0.jpg", "img1.jpg"} and "1 labeled" in shown["img1.jpg"]
    page.click("#imp-close")
    assert page.locator("#import-dialog").count() == 0

    page.click("#item-grid .card[title='img1.jpg']")
    page.wait_for_selector("body[data-page=annotate]")
    page.wait_for_function("window.posekit.state() && window.posekit.state().instances.length")
    (person,) = page.evaluate("window.posekit.state()")["instances"]
    assert person["keypoints"] == [[1, 2], [3, 4], [5, 6]]
    assert person["visibility"] == [2, 2, 2]

    # The same file again: nothing new, and the dialog says why per image.
    open_import(page, server, server.cvat_id)
    page.set_input_files("#imp-file", str(files / "annotations.xml"))
    page.click("#imp-start")
    page.wait_for_selector("#imp-summary:has-text('Imported')")
    assert page.inner_text("#imp-summary").startswith("Imported 0 new images with 0 instances")
    details = page.inner_text("#imp-details")
    assert "skipped img1.jpg" in details and "already in the dataset with annotations" in details


def test_label_studio_export_through_the_dialog(page: Any, server: LiveServer, files: Path) -> None:
    open_import(page, server, server.ls_id)
    page.set_input_files("#imp-file", str(files / "project-1-at-2025-04-29.json"))
    page.wait_for_function("document.querySelector('#imp-format').value === 'labelstudio'")
    page.set_input_files("#imp-images", str(files / "image1.jpg"))
    page.click("#imp-start")
    page.wait_for_selector("#imp-summary:has-text('Imported')")
    assert page.inner_text("#imp-summary").startswith("Imported 1 new image with 1 instance")
    page.wait_for_function("document.querySelectorAll('#item-grid .card').length === 1")
    assert cards(page) == {"upload/18/image1.jpg": page.inner_text("#item-grid .card")}
    page.click("#imp-close")
    page.click("#item-grid .card")
    page.wait_for_selector("body[data-page=annotate]")
    page.wait_for_function("window.posekit.state() && window.posekit.state().instances.length")
    (person,) = page.evaluate("window.posekit.state()")["instances"]
    assert [k for k, v in enumerate(person["visibility"]) if v] == [0, 1, 2]
    assert person["box"] is not None  # the person rectangle of the export


def test_label_studio_export_attaches_to_an_image_uploaded_before(
    page: Any, server: LiveServer, files: Path
) -> None:
    """No image chosen: the export's ``upload/18/image1.jpg`` is the project's
    ``image1.jpg`` (same base name), and the dialog says which image it took."""
    pid = server.post("/api/projects", {"name": "ls base name", "template": "coco17"})["id"]
    picture = ("image1.jpg", (files / "image1.jpg").read_bytes(), "image/jpeg")
    uploaded = server.http.post(f"/api/projects/{pid}/upload", files=[("files", picture)])
    assert uploaded.status_code == 200, uploaded.text
    open_import(page, server, pid)
    assert "same base name in another folder" in page.inner_text("#import-dialog")
    page.set_input_files("#imp-file", str(files / "project-1-at-2025-04-29.json"))
    page.wait_for_function("document.querySelector('#imp-format').value === 'labelstudio'")
    assert page.inner_text("#imp-chosen").startswith("no images")
    page.click("#imp-start")
    page.wait_for_selector("#imp-summary:has-text('Imported')")
    summary = page.inner_text("#imp-summary")
    assert summary.startswith(
        "Imported 0 new images with 1 instance, annotations attached to 1 image already in "
        "the project, 1 image matched by base name"
    ), summary
    details = page.inner_text("#imp-details")
    assert "matched upload/18/image1.jpg -> image1.jpg (same base name)" in details, details
    assert page.inner_text("#imp-error") == ""
    page.wait_for_selector("#item-grid .card[title='image1.jpg']:has-text('1 labeled')")
    assert list(cards(page)) == ["image1.jpg"]


def test_deeplabcut_project_zip_through_the_dialog(
    page: Any, server: LiveServer, files: Path
) -> None:
    open_import(page, server, server.dlc_id)
    page.select_option("#imp-format", "deeplabcut")
    assert "zip of the DeepLabCut project folder" in page.inner_text("#imp-hint")
    assert page.get_attribute("#imp-file", "accept") == ".zip"
    page.set_input_files("#imp-file", str(files / "openfield.zip"))
    page.click("#imp-start")  # 114 of the example's 116 frames are not in it
    page.wait_for_selector("#imp-error:has-text('Not imported')")
    assert "img0002.png" in page.inner_text("#imp-error")
    page.select_option("#imp-missing", "register")
    page.click("#imp-start")
    page.wait_for_selector("#imp-summary:has-text('Imported')")
    summary = page.inner_text("#imp-summary")
    assert summary.startswith("Imported 116 new images with 116 instances"), summary
    assert "114 images registered without the image file" in summary
    assert page.inner_text("#imp-error") == ""
    page.wait_for_selector("#item-grid .card[title='labeled-data/m4s1/img0000.png']")


def test_broken_file_shows_the_servers_message(page: Any, server: LiveServer, files: Path) -> None:
    before = server.get(f"/api/projects/{server.cvat_id}/items")["total"]
    open_import(page, server, server.cvat_id)
    page.set_input_files("#imp-file", str(files / "broken.xml"))
    page.wait_for_function("document.querySelector('#imp-format').value === 'cvat'")
    page.click("#imp-start")
    page.wait_for_selector("#imp-error:has-text('Not imported')")
    message = page.inner_text("#imp-error")
    assert "broken.xml" in message and "malformed XML" in message, message
    assert page.inner_text("#imp-summary") == ""
    assert server.get(f"/api/projects/{server.cvat_id}/items")["total"] == before


@pytest.mark.parametrize("role", ["viewer", "annotator"])
def test_viewers_and_annotators_see_no_import_menu(
    browser: Any, server: LiveServer, role: str
) -> None:
    user, _ = make_user(server.app, role=role, project_id=server.cvat_id)
    with checked_page(browser, server, user=user, viewport=(1280, 800)) as page:
        page.goto(f"{server.url}/#/projects/{server.cvat_id}?t=roles")
        page.wait_for_selector("body[data-page=project] #item-grid")
        page.wait_for_function(f"document.body.dataset.role === '{role}'")
        assert page.locator("#import-button").count() == 1
        assert not page.locator("#import-button").is_visible()
