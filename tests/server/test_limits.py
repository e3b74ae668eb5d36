"""Resource limits and bad input on the server: body limits per kind of request, JSON
that is too deep or has huge numbers, long file names, huge ids, the one pixel limit
and bounded image decoding."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient
from PIL import Image

from posekit.core import Instance
from posekit.media import image as image_module
from posekit.server import Settings, create_app

from .auth_helpers import login_admin

BASE = "http://127.0.0.1:8000"
HUGE_ID = "99999999999999999999999"
JSON = {"content-type": "application/json"}


def _jpeg(size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    if noise:
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    else:
        image = Image.new("RGB", size, (30, 120, 200))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=95)
    return out.getvalue()


def _client(tmp_path: Path, **settings: object) -> Iterator[TestClient]:
    app = create_app(Settings(workspace=tmp_path / "ws", **settings))
    with TestClient(app, base_url=BASE) as client:
        login_admin(client)
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from _client(tmp_path)


def _project(client: TestClient, image: bytes | None = None) -> tuple[int, int]:
    pid = client.post("/api/projects", json={"name": "p", "template": "coco17"}).json()["id"]
    files = [("files", ("a.jpg", image or _jpeg(), "image/jpeg"))]
    response = client.post(f"/api/projects/{pid}/upload", files=files)
    assert response.status_code == 200, response.text
    return pid, client.get(f"/api/projects/{pid}/items").json()["items"][0]["id"]


def _state(client: TestClient) -> tuple[dict, list[str]]:
    ws = client.app.state.posekit.ws  # type: ignore[attr-defined]
    media = sorted(str(p) for p in (ws.root / "media").rglob("*") if p.is_file())
    return ws.row_counts(), media


def _instance(k: int = 17) -> dict:
    return {"keypoints": [[10.0 + i, 20.0] for i in range(k)], "visibility": [2] * k}


# ------------------------------------------------------------------ body limits
def test_json_body_over_its_limit_is_refused_before_parsing(client):
    _, iid = _project(client)
    before = _state(client)
    body = json.dumps({**_instance(), "extra": {"pad": "x" * (2 * 1024 * 1024)}})
    response = client.post(f"/api/items/{iid}/instances", content=body, headers=JSON)
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert "request body" in detail and str(1024 * 1024) in detail
    assert _state(client) == before


def test_chunked_json_body_is_cut_off_at_the_limit(client):
    _, iid = _project(client)
    before = _state(client)

    def chunks() -> Iterator[bytes]:
        yield b'{"keypoints": ['
        for _ in range(40_000):
            yield b"[1.0, 2.0]," * 10
        yield b"[1.0, 2.0]]}"

    response = client.post(f"/api/items/{iid}/instances", content=chunks(), headers=JSON)
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]
    assert _state(client) == before


def test_uploads_keep_their_large_limit(client):
    pid, _ = _project(client)
    big = _jpeg((1600, 1200), noise=True)
    assert len(big) > 1024 * 1024  # over the JSON limit
    files = [("files", ("big.jpg", big, "image/jpeg"))]
    response = client.post(f"/api/projects/{pid}/upload", files=files)
    assert response.status_code == 200 and response.json()["added"] == 1


def test_large_allowed_bodies_are_parsed_off_the_event_loop(client, monkeypatch):
    import posekit.server.deps as deps

    calls: list[int] = []
    original = deps.run_in_threadpool

    async def spy(function, *args):
        calls.append(len(args[0]))
        return await original(function, *args)

    monkeypatch.setattr(deps, "run_in_threadpool", spy)
    _, iid = _project(client)
    small = client.post(f"/api/items/{iid}/instances", json=_instance())
    assert small.status_code == 201 and calls == []
    padded = {**_instance(), "extra": {"note": "x" * (200 * 1024)}}
    big = client.post(f"/api/items/{iid}/instances", json=padded)
    assert big.status_code in (201, 422), big.text
    assert calls and calls[0] > 200 * 1024


# ------------------------------------------------------------------ bad JSON
def test_deeply_nested_json_is_a_400_not_a_500(client):
    _, iid = _project(client)
    before = _state(client)
    deep = '{"keypoints": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post(f"/api/items/{iid}/instances", content=deep, headers=JSON)
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
    assert _state(client) == before


def test_deeply_nested_coco_file_is_a_422_naming_the_file(client):
    pid, _ = _project(client)
    before = _state(client)
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    files = [("file", ("deep.json", deep, "application/json"))]
    response = client.post(f"/api/projects/{pid}/import/coco", files=files)
    assert response.status_code == 422
    assert "'deep.json'" in response.json()["detail"] and "deep" in response.json()["detail"]
    assert _state(client) == before


def test_integer_of_5000_digits_is_a_422_naming_the_element(client):
    _, iid = _project(client)
    before = _state(client)
    digits = "7" * 5000
    body = '{"keypoints": [[1, 2], [' + digits + ", 3]], " + '"visibility": [2, 2]}'
    response = client.post(f"/api/items/{iid}/instances", content=body, headers=JSON)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.keypoints.1.0: integer of 5000 digits")
    put = client.put("/api/instances/1", content='{"version": ' + digits + "}", headers=JSON)
    assert put.status_code == 422 and put.json()["detail"].startswith("body.version:")
    assert _state(client) == before


def test_integer_of_5000_digits_in_a_coco_file_names_the_element(client):
    pid, _ = _project(client)
    before = _state(client)
    doc = (
        '{"images": [{"id": ' + "1" * 5000 + ', "file_name": "a.jpg", "width": 64, '
        '"height": 48}], "annotations": [], "categories": []}'
    )
    files = [("file", ("big.json", doc.encode(), "application/json"))]
    response = client.post(f"/api/projects/{pid}/import/coco", files=files)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'big.json'" in detail and "images.0.id" in detail and "5000 digits" in detail
    assert _state(client) == before


def test_nan_is_not_a_json_number(client):
    _, iid = _project(client)
    body = '{"keypoints": [[NaN, 1]], "visibility": [2]}'
    response = client.post(f"/api/items/{iid}/instances", content=body, headers=JSON)
    assert response.status_code == 422 and "NaN" in response.json()["detail"]


# ------------------------------------------------------------------ names and ids
def test_300_character_file_name_is_a_422_naming_the_file(client):
    pid, _ = _project(client)
    before = _state(client)
    name = "n" * 300 + ".jpg"
    files = [("files", (name, _jpeg(), "image/jpeg"))]
    response = client.post(f"/api/projects/{pid}/upload", files=files)
    assert response.status_code == 422
    assert "nnnnnnnn" in response.json()["detail"] and "255" in response.json()["detail"]
    coco = b'{"images": [], "annotations": [], "categories": []}'
    imported = client.post(
        f"/api/projects/{pid}/import/coco",
        files=[("file", ("a.json", coco, "application/json")), ("images", files[0][1])],
    )
    assert imported.status_code == 422 and "nnnnnnnn" in imported.json()["detail"]
    assert _state(client) == before


@pytest.mark.parametrize(
    ("method", "path", "parameter"),
    [
        ("GET", f"/api/items/{HUGE_ID}", "item_id"),
        ("GET", f"/api/items/{HUGE_ID}/image", "item_id"),
        ("PUT", f"/api/instances/{HUGE_ID}", "instance_id"),
        ("DELETE", f"/api/instances/{HUGE_ID}", "instance_id"),
        ("GET", f"/api/projects/{HUGE_ID}", "project_id"),
        ("GET", f"/api/jobs/{HUGE_ID}", "job_id"),
    ],
)
def test_huge_ids_are_a_422_naming_the_parameter(client, method, path, parameter):
    response = client.request(method, path, json={"version": 1})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"path.{parameter}:")


def test_huge_number_in_a_body_is_a_422_not_a_500(client):
    _, iid = _project(client)
    record = client.post(f"/api/items/{iid}/instances", json=_instance()).json()
    response = client.put(f"/api/instances/{record['id']}", json={"version": 10**22})
    assert response.status_code in (409, 422), response.text
    assert client.get(f"/api/items/{iid}").json()["instances"][0]["version"] == 1


# ------------------------------------------------------------------ pixels and memory
def test_one_pixel_limit_for_library_cli_and_server(tmp_path: Path):
    assert Settings(workspace=tmp_path).max_pixels == image_module.MAX_PIXELS == 100_000_000


def test_image_over_the_pixel_limit_is_refused_at_upload_naming_it(tmp_path: Path):
    for client in _client(tmp_path, max_pixels=300 * 200 - 1):
        pid, _ = _project(client)
        before = _state(client)
        files = [("files", ("huge.jpg", _jpeg((300, 200)), "image/jpeg"))]
        response = client.post(f"/api/projects/{pid}/upload", files=files)
        assert response.status_code == 413
        assert "'huge.jpg'" in response.json()["detail"] and "300x200" in response.json()["detail"]
        assert _state(client) == before


def test_load_image_max_side_decodes_reduced(tmp_path: Path):
    from posekit.media import load_image

    path = tmp_path / "wide.jpg"
    path.write_bytes(_jpeg((3000, 1000)))
    full = load_image(path)
    reduced = load_image(path, max_side=700)
    assert full.shape == (1000, 3000, 3)
    assert max(reduced.shape[:2]) <= 700 and reduced.shape[2] == 3
    assert abs(reduced.shape[1] / reduced.shape[0] - 3.0) < 0.02
    assert abs(float(reduced.mean()) - float(full.mean())) < 3


class _CornerEstimator:
    """A fake model: every keypoint at the top-left corner of its box; records inputs."""

    name = "fake"

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def estimate(self, images, detections, skeleton):
        self.shapes.append(images[0].shape)
        out = []
        for boxes in detections:
            x1, y1 = boxes.boxes[0][:2]
            k = skeleton.num_keypoints
            keypoints = np.tile(np.array([[x1, y1]], np.float32), (k, 1))
            out.append(
                [Instance(keypoints, np.full(k, 2, np.uint8), box=boxes.boxes[0], score=0.9)]
            )
        return out

    def close(self) -> None:
        pass


def test_assist_on_a_large_image_decodes_reduced_and_answers_in_image_pixels(tmp_path: Path):
    import threading

    for client in _client(tmp_path, assist_max_side=512):
        _, iid = _project(client, _jpeg((2000, 1500)))
        state = client.app.state.posekit  # type: ignore[attr-defined]
        fake = _CornerEstimator()
        state.models.get = lambda spec, fake=fake: (fake, threading.Lock())
        response = client.post(f"/api/items/{iid}/assist", json={"box": [400, 300, 900, 1200]})
        assert response.status_code == 200, response.text
        assert max(fake.shapes[0][:2]) <= 512
        keypoints = np.array(response.json()["keypoints"])
        assert np.allclose(keypoints, [400, 300], atol=1.0)
        assert response.json()["box"] == [400, 300, 900, 1200]
        cached = state.images.get(iid, state.item_media(iid).path)
        assert cached.pixels.nbytes <= 512 * 512 * 3
        thumb = client.get(f"/api/items/{iid}/thumbnail", params={"size": 64})
        assert thumb.status_code == 200
        assert max(Image.open(io.BytesIO(thumb.content)).size) == 64
