"""Issue 8 leftovers: staging inside the workspace, big JSON bodies parsed off the
event loop, the unsupported-file message naming video types, rejected instances not
counted as labeled."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient
from PIL import Image

from posekit.server import create_app
from posekit.server.settings import Settings

from .auth_helpers import login_admin, session_token, workspace_of
from .test_api import manual_instance, new_project

STATIC = Path(__file__).parents[2] / "src" / "posekit" / "server" / "static"
BASE = "http://127.0.0.1:8000"


def _png(color: tuple[int, int, int] = (90, 120, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), color).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def client(tmp_path: Path):
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, base_url=BASE) as client:
        login_admin(client)
        yield client


# ------------------------------------------------------------------ staging
def test_uploads_imports_and_exports_stage_inside_the_workspace(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route's temporary folders are the store's (swept after a kill -9), not /tmp."""
    import posekit.server.routes.transfer as transfer
    import posekit.store.exports as exports

    staging = tmp_path / "ws" / ".staging"
    seen: list[Path] = []
    save_upload, export = transfer.save_upload, exports.export

    def recording_save(source: Any, target: Path, *args: Any) -> int:
        seen.append(Path(target))
        return save_upload(source, target, *args)

    def recording_export(ws: Any, project: Any, destination: Any, **kwargs: Any) -> Any:
        seen.append(Path(destination))
        return export(ws, project, destination, **kwargs)

    monkeypatch.setattr(transfer, "save_upload", recording_save)
    monkeypatch.setattr(exports, "export", recording_export)
    pid = new_project(client)
    upload = client.post(f"/api/projects/{pid}/upload", files=[("files", ("a.png", _png()))])
    assert upload.status_code == 200, upload.text
    coco = {
        "images": [{"id": 1, "file_name": "b.png", "width": 80, "height": 60}],
        "annotations": [],
        "categories": [{"id": 1, "name": "person", "keypoints": [], "skeleton": []}],
    }
    imported = client.post(
        f"/api/projects/{pid}/import/coco",
        params={"dataset": "other"},
        files=[("file", ("c.json", json.dumps(coco))), ("images", ("b.png", _png((1, 2, 3))))],
    )
    assert imported.status_code in (200, 422), imported.text  # the staging is what counts
    exported = client.get(f"/api/projects/{pid}/export", params={"format": "yolo"})
    assert exported.status_code == 200, exported.text
    assert len(seen) >= 3
    assert all(path.resolve().is_relative_to(staging.resolve()) for path in seen), seen
    assert list(staging.iterdir()) == []  # every request removed its own folder


# ------------------------------------------------------------------ big JSON bodies
def test_a_big_json_body_is_parsed_while_health_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Order, not timing: the parse of a body over 64 KB waits until /api/health has
    answered; were it parsed on the event loop, health could not answer meanwhile."""
    import httpx

    import posekit.server.deps as deps

    app = create_app(Settings(workspace=tmp_path / "ws"))
    ws = workspace_of(app)
    from .auth_helpers import make_user

    admin, _ = make_user(app, admin=True, password=None)
    token = session_token(app, admin)
    events: list[str] = []
    health_answered = threading.Event()
    real_parse = deps.parse_json_body

    def parse_waiting_for_health(body: bytes) -> Any:
        if len(body) > deps.INLINE_JSON_BYTES:
            events.append("parse started")
            events.append("parse ended" if health_answered.wait(20) else "parse gave up")
        return real_parse(body)

    monkeypatch.setattr(deps, "parse_json_body", parse_waiting_for_health)
    body = json.dumps(manual_instance()) + " " * (deps.INLINE_JSON_BYTES * 4)  # ~260 KB

    async def scenario() -> tuple[int, int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE, cookies={"posekit_session": token}
        ) as http:
            pid = await http.post("/api/projects", json={"name": "p", "template": "coco17"})
            pid = pid.json()["id"]
            files = [("files", ("a.png", _png()))]
            await http.post(f"/api/projects/{pid}/upload", files=files)
            item = (await http.get(f"/api/projects/{pid}/items")).json()["items"][0]["id"]
            save = asyncio.create_task(
                http.post(
                    f"/api/items/{item}/instances",
                    content=body,
                    headers={"content-type": "application/json"},
                )
            )
            while "parse started" not in events:
                await asyncio.sleep(0.005)
                assert not save.done(), save.result().text
            health = await http.get("/api/health")
            events.append("health answered")
            health_answered.set()
            saved = await save
            return health.status_code, saved.status_code

    try:
        health_status, save_status = asyncio.run(scenario())
    finally:
        ws.close()
    assert events == ["parse started", "health answered", "parse ended"]
    assert health_status == 200 and save_status == 201


# ------------------------------------------------------------------ messages
def test_unsupported_file_type_names_video_extensions_too(
    client: TestClient, tmp_path: Path
) -> None:
    from posekit.media.video import VIDEO_EXTENSIONS
    from posekit.skeleton import get_preset
    from posekit.store import import_images

    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    ws = workspace_of(client)
    project = ws.create_project("cli", get_preset("coco17"))
    report = import_images(ws, project, "default", [notes])
    ((name, reason),) = report.failures
    assert name == str(notes) and "unsupported file type '.txt'" in reason
    assert all(ext in reason for ext in VIDEO_EXTENSIONS) and ".jpg" in reason
    pid = new_project(client, "web")
    refused = client.post(
        f"/api/projects/{pid}/upload", files=[("files", ("notes.jpg", b"plain text " * 50))]
    )
    assert refused.status_code == 415
    detail = refused.json()["detail"]
    assert "notes.jpg" in detail and ".mp4" in detail and ".mov" in detail and "JPEG" in detail
    assert ws.count_items(ws.get_project("web")) == 0


# ------------------------------------------------------------------ grid counts
def _card_badges(items: list[dict[str, Any]]) -> list[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("needs node to run the UI module")
    script = (
        f"import {{ cardBadge }} from {json.dumps(str(STATIC / 'projects.js'))};"
        f"console.log(JSON.stringify({json.dumps(items)}.map(cardBadge)));"
    )
    out = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_rejected_instances_are_not_counted_as_labeled(client: TestClient) -> None:
    pid = new_project(client)
    files = [("files", (f"{n}.png", _png((n * 40, 10, 10)))) for n in range(2)]
    assert client.post(f"/api/projects/{pid}/upload", files=files).status_code == 200
    items = client.get(f"/api/projects/{pid}/items").json()["items"]
    ids = []
    for item in items:
        for _ in range(3):
            created = client.post(f"/api/items/{item['id']}/instances", json=manual_instance())
            assert created.status_code == 201, created.text
            ids.append((item["id"], created.json()["id"]))
    first = items[0]["id"]
    every = [i for item_id, i in ids if item_id == first]
    reviewed = client.post(
        f"/api/items/{first}/review", json={"instance_ids": every, "action": "reject"}
    )
    assert reviewed.status_code == 200, reviewed.text
    second = items[1]["id"]
    one = [i for item_id, i in ids if item_id == second][:1]
    client.post(f"/api/items/{second}/review", json={"instance_ids": one, "action": "reject"})
    listed = {i["id"]: i for i in client.get(f"/api/projects/{pid}/items").json()["items"]}
    assert listed[first]["num_rejected"] == 3 and listed[first]["num_instances"] == 3
    assert listed[second]["num_rejected"] == 1
    assert client.get(f"/api/items/{first}").json()["item"]["num_rejected"] == 3
    assert _card_badges([listed[first], listed[second]]) == ["3 rejected", "2 labeled"]
