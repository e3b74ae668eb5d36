"""Browser tests of project setup in real Chromium: a custom template drawn in the
template editor, changed after an image was labeled (rename, add, delete), the
instance migrated, a second editor on the old layout stopped by a conflict, the COCO
export in the new names; the auto-label dialog with a chosen model (a tiny random
ViTPose in a model folder the server is told about) and one that cannot load."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import LiveServer, new_page, require_browser

IMAGE = "000000000785.jpg"  # one skier, 640x425
# Where the editor's points go, in canvas units (the canvas is 400 x 500).
POINTS = {
    "head": (200, 60),
    "left_hand": (290, 220),
    "right_hand": (110, 220),
    "tail": (200, 420),
    "spine": (200, 250),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Iterator[LiveServer]:
    require_browser()
    images = shared_data / "coco-val2017-sample" / "images"
    if not images.is_dir():
        pytest.skip(f"COCO sample images not found at {images}")
    root = tmp_path_factory.mktemp("ui-setup")
    models = root / "models"
    models.mkdir()
    with pytest.MonkeyPatch.context() as env:  # the app reads it once, when made
        env.setenv("POSEKIT_MODEL_DIRS", str(models))
        live = LiveServer(root / "ws")
    live.images = images  # type: ignore[attr-defined]
    live.models = models  # type: ignore[attr-defined]
    with live:
        yield live


def _new_page(browser: Any, server: LiveServer) -> Any:
    page = new_page(browser, server, viewport=(1400, 900))  # logged in, then at /
    page.on("dialog", lambda dialog: dialog.dismiss())
    return page


def _upload(server: LiveServer, project_id: int, name: str = IMAGE) -> int:
    path = server.images / name  # type: ignore[attr-defined]
    files = [("files", (path.name, path.read_bytes(), "image/jpeg"))]
    response = server.http.post(f"/api/projects/{project_id}/upload", files=files)
    assert response.status_code == 200, response.text
    return server.item_id(project_id, name)


def _canvas(page: Any, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#template-canvas").bounding_box()
    return box["x"] + x * box["width"] / 400, box["y"] + y * box["height"] / 500


def _drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=6)
    page.mouse.up()


def _rename(page: Any, index: int, name: str) -> None:
    field = page.locator(f".kp-name-input[data-index='{index}']")
    field.fill(name)
    field.press("Tab")


def _wait_valid(page: Any) -> None:
    page.wait_for_selector("#template-editor[data-valid='1']")
    page.wait_for_selector("#template-save:not([disabled])")


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate("window.posekit.state()")


def _live(page: Any) -> list[dict[str, Any]]:
    return [inst for inst in _state(page)["instances"] if not inst["deleted"]]


def _open_item(page: Any, server: LiveServer, project_id: int, item_id: int) -> None:
    page.goto(f"{server.url}/#/projects/{project_id}/items/{item_id}")
    page.wait_for_selector("body[data-page=annotate]")
    page.wait_for_selector(".page[data-ready='1']")


def test_custom_template_then_changed_after_labeling(browser: Any, server: LiveServer) -> None:
    page = _new_page(browser, server)
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-page=projects]")
    # The preset choice defaults to COCO-17.
    assert page.locator("select[name=template]").input_value() == "coco17"

    # Draw a five-point template: points, two edges, one flip pair.
    page.click("#design-template")
    page.wait_for_selector("#template-editor #template-canvas")
    page.select_option("#template-start", "empty")
    page.wait_for_function("document.querySelectorAll('.kp-name-input').length === 0")
    page.click("#tool-add")
    for index, (name, (x, y)) in enumerate(POINTS.items()):
        page.mouse.click(*_canvas(page, x, y))
        _rename(page, index, name)
    page.click("#tool-connect")
    _drag(page, _canvas(page, *POINTS["head"]), _canvas(page, *POINTS["left_hand"]))
    _drag(page, _canvas(page, *POINTS["head"]), _canvas(page, *POINTS["right_hand"]))
    page.click("#pair-by-name")
    assert page.locator("#template-edges li").count() == 2
    page.fill("#template-name", "critter5")
    page.fill("#new-project-name", "critters")
    _wait_valid(page)
    page.click("#template-save")
    page.wait_for_selector("body[data-page=project]")
    project = next(p for p in server.get("/api/projects") if p["name"] == "critters")
    detail = server.get(f"/api/projects/{project['id']}")
    assert detail["template"]["keypoints"] == list(POINTS)
    assert detail["template"]["edges"] == [[0, 1], [0, 2]]
    assert detail["template"]["flip_index"] == [0, 2, 1, 3, 4]
    pid = project["id"]

    # Label the image: a box, then the template placed in it.
    item_id = _upload(server, pid)
    _open_item(page, server, pid, item_id)
    page.keyboard.press("b")
    corner = page.evaluate("window.posekit.clientFromImage(200, 40)")
    opposite = page.evaluate("window.posekit.clientFromImage(430, 420)")
    _drag(page, (corner["x"], corner["y"]), (opposite["x"], opposite["y"]))
    page.keyboard.press("t")
    page.wait_for_selector("#save-status[data-state=saved]")
    page.wait_for_function("window.posekit.state().instances.every((i) => i.id !== null)")
    (labeled,) = _live(page)
    assert len(labeled["keypoints"]) == 5 and all(v > 0 for v in labeled["visibility"])

    # A second editor holds the item in the old layout.
    other = _new_page(browser, server)
    _open_item(other, server, pid, item_id)
    (held,) = _live(other)

    # Rename head -> nose, add neck, delete tail (it holds a labeled point).
    page.goto(f"{server.url}/#/projects/{pid}")
    page.wait_for_selector("body[data-page=project]")
    page.click("#edit-template")
    page.wait_for_selector("#template-editor .kp-name-input")
    _rename(page, 0, "nose")
    page.click("#tool-add")
    page.mouse.click(*_canvas(page, 200, 120))
    _rename(page, 5, "neck")
    page.locator("#template-keypoints tr", has=page.locator("input[value=tail]")).locator(
        ".delete-point"
    ).click()
    _wait_valid(page)
    page.click("#template-save")
    page.wait_for_selector("#template-confirm")
    lines = page.inner_text("#template-confirm-lines")
    assert "head → nose" in lines and "neck" in lines and "1 labeled point" in lines
    page.click("#template-confirm-apply")
    page.wait_for_function("!document.querySelector('#template-editor')")
    page.wait_for_selector("body[data-page=project]")

    # The instance: nose where head was, neck not labeled, tail gone.
    _open_item(page, server, pid, item_id)
    (migrated,) = _live(page)
    names = server.get(f"/api/projects/{pid}")["template"]["keypoints"]
    assert names == ["nose", "left_hand", "right_hand", "spine", "neck"]
    assert migrated["keypoints"][0] == pytest.approx(labeled["keypoints"][0])
    assert migrated["keypoints"][3] == pytest.approx(labeled["keypoints"][4])
    assert migrated["visibility"] == [*labeled["visibility"][:3], labeled["visibility"][4], 0]
    assert migrated["version"] == held["version"] + 1

    # The editor still in the old layout gets the conflict view, not a save.
    start = other.evaluate(f"window.posekit.clientPoint({held['key']}, 0)")
    _drag(other, (start["x"], start["y"]), (start["x"] + 25, start["y"] + 10))
    other.wait_for_selector("#save-status[data-state=conflict]")
    stored = server.get(f"/api/items/{item_id}")["instances"][0]
    assert stored["keypoints"][0] == pytest.approx(labeled["keypoints"][0])
    assert len(stored["visibility"]) == 5 and stored["visibility"][4] == 0

    # Exports use the new names.
    coco = server.http.get(f"/api/projects/{pid}/export", params={"format": "coco"}).json()
    assert coco["categories"][0]["keypoints"] == names
    assert page.errors == [] and other.errors == []
    other.context.close()
    page.context.close()


def _wait_job(server: LiveServer, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        job = server.get(f"/api/jobs/{job_id}")
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish")


def test_autolabel_dialog_with_a_chosen_model(browser: Any, server: LiveServer) -> None:
    pytest.importorskip("transformers")
    pytest.importorskip("ai_edge_litert", reason="the BlazePose detector needs [mediapipe]")
    from .test_template_change import tiny_vitpose

    folder = tiny_vitpose(server.models / "tiny-vitpose")  # type: ignore[attr-defined]
    broken = server.models / "broken-vitpose"  # type: ignore[attr-defined]
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "vitpose"}')
    created = server.post("/api/projects", {"name": "people", "template": "coco17"})
    pid = created["id"]
    item_id = _upload(server, pid)

    page = _new_page(browser, server)
    page.goto(f"{server.url}/#/projects/{pid}")
    page.wait_for_selector("body[data-page=project]")
    page.click("#autolabel-button")
    page.wait_for_selector("#autolabel-dialog #al-pose")
    spec = f"vitpose:{folder.resolve()}"
    page.select_option("#al-pose", spec)
    page.fill("#al-instance-score", "0")
    page.fill("#al-oks-nms", "0")
    page.click("#al-start")
    page.wait_for_function("!document.querySelector('#autolabel-dialog')")
    job = _wait_job(server, server.get(f"/api/projects/{pid}/jobs")[0]["id"])
    assert job["status"] == "done" and job["options"]["pose"] == spec, job
    instances = server.get(f"/api/items/{item_id}")["instances"]
    assert instances and all(i["status"] == "predicted" for i in instances)
    assert all(i["produced_by"]["pose"] == spec for i in instances)
    page.wait_for_function("document.querySelector('#job-label').textContent.startsWith('done')")

    # A model that cannot load: the job view says so, without a traceback.
    page.click("#autolabel-button")
    page.wait_for_selector("#autolabel-dialog #al-pose")
    page.select_option("#al-pose", f"vitpose:{broken.resolve()}")
    page.select_option("#al-existing", "replace-predictions")
    page.click("#al-start")
    page.wait_for_function(
        "document.querySelector('#job-label').textContent.includes('could not be loaded')",
        timeout=120_000,
    )
    text = page.inner_text("#job-label")
    assert text.startswith("failed") and "Traceback" not in text
    assert page.errors == []
    page.context.close()
