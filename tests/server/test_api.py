"""HTTP API tests: a fresh workspace per test, FastAPI TestClient, real sample images."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient

from posekit.server import Settings, create_app

from .auth_helpers import login_admin

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def coco_sample(shared_data: Path) -> Path:
    return shared_data / "coco-val2017-sample"


def make_client(tmp_path: Path, **settings: object) -> Iterator[TestClient]:
    app = create_app(Settings(workspace=tmp_path / "ws", **settings))
    # A loopback address: the server answers no other names (DNS rebinding).
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        login_admin(client)
        yield client


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from make_client(tmp_path)


def new_project(client: TestClient, name: str = "people") -> int:
    response = client.post("/api/projects", json={"name": name, "template": "coco17"})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def upload(client: TestClient, pid: int, paths: list[Path], dataset: str = "default"):
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
    return client.post(f"/api/projects/{pid}/upload", params={"dataset": dataset}, files=files)


@pytest.fixture
def project_with_images(client: TestClient, coco_sample: Path) -> tuple[int, list[int]]:
    pid = new_project(client)
    response = upload(client, pid, sorted((coco_sample / "images").glob("*.jpg")))
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 4
    items = client.get(f"/api/projects/{pid}/items").json()["items"]
    return pid, [i["id"] for i in items]


def manual_instance(k: int = 17, x: float = 100.0) -> dict:
    keypoints = [[x + i, 50.0 + 2 * i] for i in range(k)]
    visibility = [2] * k
    visibility[3] = 1
    visibility[4] = 0
    return {"keypoints": keypoints, "visibility": visibility, "box": [90, 40, 140, 100]}


def workspace_state(tmp_path: Path) -> tuple[dict, list[str]]:
    """Row counts and media files: what 'nothing written' is checked against."""
    from posekit.store import Workspace

    with Workspace(tmp_path / "ws") as ws:
        counts = ws.row_counts()
    media = sorted(str(p) for p in (tmp_path / "ws" / "media").rglob("*") if p.is_file())
    return counts, media


# ------------------------------------------------------------------ meta, CRUD
def test_health_templates_and_openapi(client: TestClient):
    assert client.get("/api/health").json()["status"] == "ok"
    names = [t["name"] for t in client.get("/api/templates").json()]
    assert "coco17" in names and "mpii16" in names
    coco = client.get("/api/templates/coco17").json()
    assert coco["keypoints"][0] == "nose" and len(coco["sigmas"]) == 17
    # flip_index swaps left/right: left_eye (1) <-> right_eye (2)
    assert coco["flip_index"][1] == 2 and coco["flip_index"][2] == 1
    assert all(len(e) == 2 for e in coco["edges"])
    assert client.get("/api/templates/nope").status_code == 404

    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/projects",
        "/api/projects/{project_id}/items",
        "/api/items/{item_id}/image",
        "/api/items/{item_id}/assist",
        "/api/instances/{instance_id}",
        "/api/projects/{project_id}/jobs",
        "/api/jobs/{job_id}/cancel",
        "/api/projects/{project_id}/upload",
        "/api/projects/{project_id}/import/{format}",  # /import/coco is format=coco
        "/api/projects/{project_id}/export",
    ):
        assert path in paths, path
    put = paths["/api/instances/{instance_id}"]["put"]["responses"]
    assert "409" in put and "ConflictOut" in json.dumps(put["409"])
    jobs = paths["/api/projects/{project_id}/jobs"]["post"]["responses"]
    assert {"202", "409", "429"} <= set(jobs)
    assert {"413", "415", "422"} <= set(
        paths["/api/projects/{project_id}/upload"]["post"]["responses"]
    )


def test_project_and_dataset_crud(client: TestClient):
    pid = new_project(client, "people")
    detail = client.get(f"/api/projects/{pid}").json()
    assert detail["template"]["name"] == "coco17"
    assert [d["name"] for d in detail["datasets"]] == ["default"]
    again = client.post("/api/projects", json={"name": "people", "template": "coco17"})
    assert again.status_code == 409 and "people" in again.json()["detail"]
    bad = client.post("/api/projects", json={"name": "x", "template": "no-such-preset"})
    assert bad.status_code == 422 and "no-such-preset" in bad.json()["detail"]

    custom = {
        "name": "tri",
        "keypoints": ["a", "b", "left_c"],
        "edges": [["a", "b"], ["b", "zzz"]],
        "default_sigma": 0.05,
    }
    response = client.post("/api/projects", json={"name": "custom", "template_definition": custom})
    assert response.status_code == 422 and "zzz" in response.json()["detail"]
    custom["edges"] = [["a", "b"]]
    response = client.post("/api/projects", json={"name": "custom", "template_definition": custom})
    assert response.status_code == 201, response.text
    assert response.json()["template"]["keypoints"] == ["a", "b", "left_c"]

    ds = client.post(f"/api/projects/{pid}/datasets", json={"name": "batch2"})
    assert ds.status_code == 201 and ds.json()["num_items"] == 0
    assert client.post(f"/api/projects/{pid}/datasets", json={"name": "batch2"}).status_code == 409
    listed = {p["name"]: p for p in client.get("/api/projects").json()}
    assert set(listed) == {"people", "custom"}
    assert client.get("/api/projects/999").status_code == 404


def test_names_are_returned_verbatim(client: TestClient, coco_sample: Path):
    """Names are data: returned as JSON text unchanged (the UI escapes them)."""
    pid = new_project(client, XSS)
    assert client.get(f"/api/projects/{pid}").json()["name"] == XSS
    image = (coco_sample / "images" / "000000000785.jpg").read_bytes()
    response = client.post(
        f"/api/projects/{pid}/upload",
        params={"dataset": XSS},
        files=[("files", (f"{XSS}.jpg", image, "image/jpeg"))],
    )
    assert response.status_code == 200, response.text
    item = client.get(f"/api/projects/{pid}/items").json()["items"][0]
    # File names are made valid on Windows too (they end up in exports): <, > become _.
    assert item["file_name"] == "_img src=x onerror=alert(1)_.jpg" and item["dataset"] == XSS
    assert response.headers["content-type"].startswith("application/json")


# ------------------------------------------------------------------ items
def test_items_paging_filters_and_confidence_order(client, project_with_images):
    pid, ids = project_with_images
    page = client.get(f"/api/projects/{pid}/items", params={"limit": 3}).json()
    assert page["total"] == 4 and len(page["items"]) == 3
    names = [i["file_name"] for i in page["items"]]
    assert names == sorted(names)
    rest = client.get(f"/api/projects/{pid}/items", params={"offset": 3}).json()["items"]
    assert len(rest) == 1 and rest[0]["file_name"] not in names

    # Item 0: one accepted manual instance; items 1-3: predictions with chosen scores.
    client.post(f"/api/items/{ids[0]}/instances", json=manual_instance())
    scores = {ids[1]: 0.9, ids[2]: 0.2, ids[3]: None}
    for item_id, score in scores.items():
        body = manual_instance() | {"status": "predicted", "source": "model:test"}
        if score is not None:
            body["score"] = score
            low = body | {"score": score + 0.5}
            client.post(f"/api/items/{item_id}/instances", json=low)
        assert client.post(f"/api/items/{item_id}/instances", json=body).status_code == 201

    def listing(**params):
        return client.get(f"/api/projects/{pid}/items", params=params).json()

    queue = listing(filter="predicted", order="confidence")
    assert [i["id"] for i in queue["items"]] == [ids[2], ids[1], ids[3]]
    assert queue["items"][0]["min_score"] == pytest.approx(0.2)
    assert queue["items"][0]["num_predicted"] == 2 and queue["items"][0]["status"] == "predicted"
    # Item statuses are posekit.statuses.ITEM_STATUSES (0.1.0: "accepted", "unlabeled").
    reviewed = listing(filter="reviewed")["items"]
    assert [i["id"] for i in reviewed] == [ids[0]] and reviewed[0]["status"] == "reviewed"
    assert listing(filter="new")["total"] == 0
    assert listing(dataset="default")["total"] == 4
    assert client.get(f"/api/projects/{pid}/items", params={"dataset": "nope"}).status_code == 404
    bad = client.get(f"/api/projects/{pid}/items", params={"filter": "bogus"})
    assert bad.status_code == 422 and "filter" in bad.json()["detail"]


def test_image_caching_headers_and_304(client, project_with_images):
    _, ids = project_with_images
    response = client.get(f"/api/items/{ids[0]}/image")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    etag = response.headers["etag"]
    assert "private" in response.headers["cache-control"]
    assert "max-age=" in response.headers["cache-control"]
    from PIL import Image

    assert Image.open(io.BytesIO(response.content)).size == (640, 425)
    again = client.get(f"/api/items/{ids[0]}/image", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(f"/api/items/{ids[0]}/image", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200

    thumb = client.get(f"/api/items/{ids[0]}/thumbnail", params={"size": 128})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 128
    cached = client.get(
        f"/api/items/{ids[0]}/thumbnail",
        params={"size": 128},
        headers={"If-None-Match": thumb.headers["etag"]},
    )
    assert cached.status_code == 304
    assert client.get("/api/items/9999/image").status_code == 404


# ------------------------------------------------------------------ instances
def test_instance_create_update_delete_with_versions(client, project_with_images):
    _, ids = project_with_images
    created = client.post(f"/api/items/{ids[0]}/instances", json=manual_instance())
    assert created.status_code == 201
    inst = created.json()
    assert inst["version"] == 1 and inst["item_id"] == ids[0] and inst["source"] == "manual"
    assert inst["visibility"][3:5] == [1, 0]

    moved = manual_instance(x=200.0)
    updated = client.put(f"/api/instances/{inst['id']}", json={"version": 1, **moved})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    assert updated.json()["keypoints"][0] == [200.0, 50.0]
    partial = client.put(f"/api/instances/{inst['id']}", json={"version": 2, "status": "rejected"})
    assert partial.json()["version"] == 3 and partial.json()["status"] == "rejected"
    assert partial.json()["keypoints"][0] == [200.0, 50.0]  # untouched fields kept

    stored = client.get(f"/api/items/{ids[0]}").json()["instances"]
    assert len(stored) == 1 and stored[0]["version"] == 3 and stored[0]["status"] == "rejected"

    wrong_k = manual_instance(k=5)
    response = client.post(f"/api/items/{ids[0]}/instances", json=wrong_k)
    assert response.status_code == 422 and "17" in response.json()["detail"]
    bad_vis = manual_instance() | {"visibility": [3] * 17}
    response = client.post(f"/api/items/{ids[0]}/instances", json=bad_vis)
    assert response.status_code == 422 and "visibility" in response.json()["detail"]

    assert client.delete(f"/api/instances/{inst['id']}", params={"version": 3}).status_code == 204
    assert client.delete(f"/api/instances/{inst['id']}").status_code == 404
    assert client.get(f"/api/items/{ids[0]}").json()["instances"] == []


def test_stale_update_and_delete_give_409_with_current_and_write_nothing(
    client, project_with_images
):
    _, ids = project_with_images
    inst = client.post(f"/api/items/{ids[0]}/instances", json=manual_instance()).json()
    # User A saves first.
    first = client.put(
        f"/api/instances/{inst['id']}", json={"version": 1, **manual_instance(x=300)}
    )
    assert first.status_code == 200
    # User B still holds version 1.
    stale = client.put(f"/api/instances/{inst['id']}", json={"version": 1, **manual_instance(x=5)})
    assert stale.status_code == 409
    body = stale.json()
    assert "stale version 1" in body["detail"]
    assert body["current"]["version"] == 2 and body["current"]["keypoints"][0] == [300.0, 50.0]
    stored = client.get(f"/api/items/{ids[0]}").json()["instances"][0]
    assert stored["version"] == 2 and stored["keypoints"][0] == [300.0, 50.0]

    stale_delete = client.delete(f"/api/instances/{inst['id']}", params={"version": 1})
    assert stale_delete.status_code == 409 and stale_delete.json()["current"]["version"] == 2
    assert len(client.get(f"/api/items/{ids[0]}").json()["instances"]) == 1


def test_review_accepts_and_rejects(client, project_with_images):
    _, ids = project_with_images
    body = manual_instance() | {"status": "predicted", "source": "model:test", "score": 0.5}
    a = client.post(f"/api/items/{ids[1]}/instances", json=body).json()
    b = client.post(f"/api/items/{ids[1]}/instances", json=body).json()
    response = client.post(
        f"/api/items/{ids[1]}/review", json={"action": "accept", "instance_ids": [a["id"]]}
    )
    assert response.status_code == 200
    assert response.json()["instances"][0]["status"] == "accepted"
    assert response.json()["instances"][0]["version"] == 2
    client.post(f"/api/items/{ids[1]}/review", json={"action": "reject", "instance_ids": [b["id"]]})
    item = client.get(f"/api/items/{ids[1]}").json()
    assert [i["status"] for i in item["instances"]] == ["accepted", "rejected"]
    assert item["item"]["status"] == "reviewed" and item["item"]["num_predicted"] == 0
    foreign = client.post(
        f"/api/items/{ids[2]}/review", json={"action": "accept", "instance_ids": [a["id"]]}
    )
    assert foreign.status_code == 422 and str(a["id"]) in foreign.json()["detail"]


# ------------------------------------------------------------------ assist
def test_assist_with_blazepose_on_a_real_image(client, project_with_images, coco_sample):
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    _, ids = project_with_images
    gt = json.loads((coco_sample / "person_keypoints.json").read_text())
    item = client.get(f"/api/items/{ids[0]}").json()["item"]
    image_id = next(i["id"] for i in gt["images"] if i["file_name"] == item["file_name"])
    ann = max(
        (a for a in gt["annotations"] if a["image_id"] == image_id and a["num_keypoints"] > 10),
        key=lambda a: a["area"],
    )
    x, y, w, h = ann["bbox"]
    response = client.post(f"/api/items/{ids[0]}/assist", json={"box": [x, y, x + w, y + h]})
    assert response.status_code == 200, response.text
    pred = response.json()
    assert pred["id"] is None and pred["version"] == 0 and pred["item_id"] == ids[0]
    assert pred["status"] == "predicted" and pred["source"] == "model:blazepose"
    assert len(pred["keypoints"]) == 17 and len(pred["keypoint_scores"]) == 17
    # The predicted visible keypoints land near the annotated ones.
    gt_kps = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
    labeled = gt_kps[:, 2] > 0
    error = np.linalg.norm(np.asarray(pred["keypoints"])[labeled] - gt_kps[labeled, :2], axis=1)
    assert np.median(error) < 0.1 * max(w, h)
    # Not saved until the client posts it.
    assert client.get(f"/api/items/{ids[0]}").json()["instances"] == []
    saved = client.post(
        f"/api/items/{ids[0]}/instances",
        json={k: v for k, v in pred.items() if k not in ("id", "version", "item_id")},
    )
    assert saved.status_code == 201 and saved.json()["source"] == "model:blazepose"

    assert (
        client.post(f"/api/items/{ids[0]}/assist", json={"box": [50, 50, 10, 10]}).status_code
        == 422
    )
    unknown = client.post(
        f"/api/items/{ids[0]}/assist", json={"box": [0, 0, 9, 9], "model": "nope"}
    )
    assert unknown.status_code == 422 and "nope" in unknown.json()["detail"]


# ------------------------------------------------------------------ jobs
def wait_job(client: TestClient, job_id: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_autolabel_job_runs_with_progress(client, project_with_images):
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    pid, _ = project_with_images
    response = client.post(f"/api/projects/{pid}/jobs", json={"batch_size": 2})
    assert response.status_code == 202 and response.json()["status"] in ("queued", "running")
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "done", job
    assert job["done"] == job["total"] == 4 and job["failures"] == []
    assert job["processed"] == 4 and job["instances"] >= 4 and "cpu" in job["device"]
    predicted = client.get(f"/api/projects/{pid}/items", params={"filter": "predicted"}).json()
    assert predicted["total"] >= 3
    assert [j["id"] for j in client.get(f"/api/projects/{pid}/jobs").json()] == [job["id"]]


def test_jobs_conflict_queue_full_and_cancel(tmp_path, coco_sample):
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    for client in make_client(tmp_path, job_queue_size=2):
        jobs = client.app.state.posekit.jobs
        pids = [new_project(client, f"p{i}") for i in range(4)]
        images = sorted((coco_sample / "images").glob("*.jpg"))
        for pid in pids:
            assert upload(client, pid, images).status_code == 200
        jobs.pause()  # nothing starts: the queue state is deterministic
        first = client.post(f"/api/projects/{pids[0]}/jobs", json={"batch_size": 1}).json()
        conflict = client.post(f"/api/projects/{pids[0]}/jobs", json={})
        assert conflict.status_code == 409 and "p0" in conflict.json()["detail"]
        second = client.post(f"/api/projects/{pids[1]}/jobs", json={}).json()
        full = client.post(f"/api/projects/{pids[2]}/jobs", json={})
        assert full.status_code == 429 and "full" in full.json()["detail"]

        # Cancelling a queued job ends it at once and frees its place.
        cancelled = client.post(f"/api/jobs/{second['id']}/cancel").json()
        assert cancelled["status"] == "cancelled" and cancelled["started_at"] is None

        jobs.resume()
        deadline = time.monotonic() + 30
        while client.get(f"/api/jobs/{first['id']}").json()["status"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        stopped = client.post(f"/api/jobs/{first['id']}/cancel").json()
        assert stopped["id"] == first["id"]
        job = wait_job(client, first["id"])
        assert job["status"] == "cancelled", job
        assert job["total"] == 4 and job["done"] < 4  # stopped between batches
        # The project is free again; the cancelled run resumes where it stopped.
        again = client.post(f"/api/projects/{pids[0]}/jobs", json={})
        assert again.status_code == 202
        resumed = wait_job(client, again.json()["id"])
        assert resumed["status"] == "done" and resumed["total"] == 4 - job["processed"]
        assert client.get("/api/jobs/999").status_code == 404


# ------------------------------------------------------------------ upload
def test_upload_limits_refuse_with_4xx_and_write_nothing(tmp_path, coco_sample):
    image = coco_sample / "images" / "000000000785.jpg"
    data = image.read_bytes()
    for client in make_client(tmp_path, max_upload_bytes=len(data) - 1, max_pixels=640 * 425):
        pid = new_project(client)
        before = workspace_state(tmp_path)

        def send(name: str, payload: bytes, client=client, pid=pid):
            files = [("files", ("good.png", _png(), "image/png"))]
            files.append(("files", (name, payload, "image/jpeg")))
            return client.post(f"/api/projects/{pid}/upload", files=files)

        too_big = send("big.jpg", data)
        assert too_big.status_code == 413 and "big.jpg" in too_big.json()["detail"]
        text = send("notes.jpg", b"just some text, not an image\n" * 10)
        assert text.status_code == 415 and "notes.jpg" in text.json()["detail"]
        truncated = send("cut.jpg", data[: len(data) // 2])
        assert truncated.status_code == 422 and "cut.jpg" in truncated.json()["detail"]
        from PIL import Image

        out = io.BytesIO()
        Image.new("RGB", (700, 500), (1, 2, 3)).save(out, "PNG")
        pixels = send("huge.png", out.getvalue())
        assert pixels.status_code == 413 and "huge.png" in pixels.json()["detail"]
        assert "pixels" in pixels.json()["detail"]
        assert workspace_state(tmp_path) == before

        # A PNG named .jpg is accepted by content; a JPEG without extension gets one.
        ok = client.post(
            f"/api/projects/{pid}/upload",
            files=[
                ("files", ("actually-png.jpg", _png(), "image/jpeg")),
                ("files", ("noext", _png((5, 6, 7)), "application/octet-stream")),
            ],
        )
        assert ok.status_code == 200 and ok.json()["added"] == 2
        names = {i["file_name"] for i in client.get(f"/api/projects/{pid}/items").json()["items"]}
        assert names == {"actually-png.jpg", "noext.png"}


def _png(color: tuple[int, int, int] = (10, 200, 30)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    "name",
    [
        "../evil.png",
        "a/../../evil.png",
        "/etc/evil.png",
        "..\\..\\evil.png",
        "C:/evil.png",
    ],
)
def test_path_traversal_names_are_refused(client, tmp_path, name):
    pid = new_project(client)
    before = workspace_state(tmp_path)
    response = client.post(
        f"/api/projects/{pid}/upload", files=[("files", (name, _png(), "image/png"))]
    )
    assert response.status_code in (400, 422), response.text
    assert workspace_state(tmp_path) == before
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "ws" / "evil.png").exists()


@pytest.mark.parametrize("name", ["a\x00.png", "a\nb.png", "", "   "])
def test_upload_names_with_control_characters_are_refused(name):
    # Checked directly: HTTP clients rewrite such names before sending them.
    from posekit.server.uploads import UploadRefused, safe_upload_name

    with pytest.raises(UploadRefused) as info:
        safe_upload_name(name)
    assert info.value.status == 422


def test_upload_keeps_folders_and_skips_duplicates(client):
    pid = new_project(client)
    files = [("files", ("sub/dir/a.png", _png(), "image/png"))]
    first = client.post(f"/api/projects/{pid}/upload", files=files)
    assert first.json()["added"] == 1
    second = client.post(f"/api/projects/{pid}/upload", files=files)
    assert second.json()["added"] == 0 and len(second.json()["skipped"]) == 1
    items = client.get(f"/api/projects/{pid}/items").json()["items"]
    assert [i["file_name"] for i in items] == ["sub/dir/a.png"]


def test_request_body_over_limit_is_refused_before_reading(tmp_path):
    for client in make_client(tmp_path, max_request_bytes=1000):
        pid = new_project(client)
        response = client.post(
            f"/api/projects/{pid}/upload", files=[("files", ("a.bin", b"x" * 5000, "image/png"))]
        )
        assert response.status_code == 413 and "1000" in response.json()["detail"]


# ------------------------------------------------------------------ COCO import / export
def test_coco_import_and_malformed_file(client, tmp_path, coco_sample):
    pid = new_project(client)
    coco = json.loads((coco_sample / "person_keypoints.json").read_text())
    images = [
        ("images", (p.name, p.read_bytes(), "image/jpeg"))
        for p in sorted((coco_sample / "images").glob("*.jpg"))
    ]
    before = workspace_state(tmp_path)

    broken = json.loads(json.dumps(coco))
    broken["annotations"][3]["keypoints"] = broken["annotations"][3]["keypoints"][:-3]
    response = client.post(
        f"/api/projects/{pid}/import/coco",
        files=[("file", ("gt.json", json.dumps(broken).encode(), "application/json")), *images],
    )
    assert response.status_code == 422
    assert "annotations[3]" in response.json()["detail"] and "gt.json" in response.json()["detail"]
    not_json = client.post(
        f"/api/projects/{pid}/import/coco", files=[("file", ("gt.json", b"{nope", "text/plain"))]
    )
    assert not_json.status_code == 422 and "gt.json" in not_json.json()["detail"]
    traversal = json.loads(json.dumps(coco))
    traversal["images"][0]["file_name"] = "../../outside.jpg"
    response = client.post(
        f"/api/projects/{pid}/import/coco",
        files=[("file", ("gt.json", json.dumps(traversal).encode(), "application/json"))],
        params={"missing_media": "register"},
    )
    assert response.status_code == 422 and "outside.jpg" in response.json()["detail"]
    missing = client.post(
        f"/api/projects/{pid}/import/coco",
        files=[("file", ("gt.json", json.dumps(coco).encode(), "application/json"))],
    )
    assert missing.status_code == 422 and "not found" in missing.json()["detail"]
    assert workspace_state(tmp_path) == before

    ok = client.post(
        f"/api/projects/{pid}/import/coco",
        files=[("file", ("gt.json", json.dumps(coco).encode(), "application/json")), *images],
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["added"] == 4 and ok.json()["instances"] == len(coco["annotations"])
    assert (
        client.get(f"/api/projects/{pid}/items", params={"filter": "reviewed"}).json()["total"] == 4
    )


def test_export_coco_contains_edits_and_yolo_zip(client, project_with_images):
    pid, ids = project_with_images
    inst = client.post(f"/api/items/{ids[0]}/instances", json=manual_instance()).json()
    edited = manual_instance(x=321.0)
    client.put(f"/api/instances/{inst['id']}", json={"version": 1, **edited})
    predicted = manual_instance() | {"status": "predicted", "source": "model:t", "score": 0.3}
    client.post(f"/api/items/{ids[1]}/instances", json=predicted)

    both = {"format": "coco", "status": ["accepted", "predicted"]}
    response = client.get(f"/api/projects/{pid}/export", params=both)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = json.loads(response.content)
    # The two images nobody labeled are left out (not written as images with nobody).
    assert len(data["images"]) == 2 and len(data["annotations"]) == 2
    kps = [a["keypoints"] for a in data["annotations"]]
    assert any(k[0] == 321.0 and k[3 * 3 + 2] == 1 and k[4 * 3 + 2] == 0 for k in kps)
    only_accepted = client.get(
        f"/api/projects/{pid}/export", params={"format": "coco", "status": "accepted"}
    )
    assert len(json.loads(only_accepted.content)["annotations"]) == 1
    # No status given: the format's default_statuses (posekit.statuses.DEFAULT_EXPORT_STATUSES,
    # accepted only; 0.1.0 exported predictions too by default for COCO).
    default = client.get(f"/api/projects/{pid}/export", params={"format": "coco"})
    assert len(json.loads(default.content)["annotations"]) == 1

    yolo = client.get(f"/api/projects/{pid}/export", params={"format": "yolo"})
    assert yolo.status_code == 200 and yolo.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(yolo.content)) as archive:
        names = archive.namelist()
        assert "data.yaml" in names
        assert "kpt_shape" in archive.read("data.yaml").decode()
        assert sum(n.endswith(".jpg") for n in names) >= 1
    bad = client.get(f"/api/projects/{pid}/export", params={"format": "xml"})
    assert bad.status_code == 422


# ------------------------------------------------------------------ formats
def _choices(schema: dict) -> list:
    """The values a JSON schema allows (a one-value Literal is a ``const``)."""
    return schema["enum"] if "enum" in schema else [schema["const"]]


def test_formats_list_the_format_table(client: TestClient):
    from posekit.formats.registry import FORMATS, readable_formats, writable_formats

    response = client.get("/api/formats")
    assert response.status_code == 200
    listed = {f["name"]: f for f in response.json()}
    assert list(listed) == list(FORMATS)
    assert [n for n, f in listed.items() if f["can_read"]] == readable_formats()
    assert [n for n, f in listed.items() if f["can_write"]] == writable_formats()
    coco = listed["coco"]
    spec = FORMATS["coco"]
    assert coco["title"] == spec.title and coco["extensions"] == list(spec.extensions)
    assert coco["kind"] == spec.kind == "file"
    assert coco["default_statuses"] == list(spec.default_statuses)
    assert coco["capabilities"] == {
        "visibility_states": list(spec.capabilities.visibility_states),
        "scores": spec.capabilities.scores,
        "tracks": spec.capabilities.tracks,
        "boxes": spec.capabilities.boxes,
        "video": spec.capabilities.video,
    }
    assert listed["yolo"]["kind"] == "folder" and listed["yolo"]["can_write"]

    # The export and import routes take exactly the table's names.
    schema = client.get("/openapi.json").json()
    export = schema["paths"]["/api/projects/{project_id}/export"]["get"]["parameters"]
    (fmt,) = [p for p in export if p["name"] == "format"]
    assert _choices(fmt["schema"]) == writable_formats()
    imports = schema["paths"]["/api/projects/{project_id}/import/{format}"]["post"]["parameters"]
    (fmt,) = [p for p in imports if p["name"] == "format"]
    assert _choices(fmt["schema"]) == readable_formats()
    pid = new_project(client)
    refused = client.post(
        f"/api/projects/{pid}/import/xml", files=[("file", ("a.xml", b"<a/>", "text/xml"))]
    )
    assert refused.status_code == 422 and "format" in refused.json()["detail"]


def test_item_filter_and_statuses_are_the_store_vocabulary(client: TestClient):
    from posekit.statuses import INSTANCE_STATUSES, ITEM_STATUSES

    schema = client.get("/openapi.json").json()
    items = schema["paths"]["/api/projects/{project_id}/items"]["get"]["parameters"]
    (filter_param,) = [p for p in items if p["name"] == "filter"]
    assert filter_param["schema"]["enum"] == ["all", *ITEM_STATUSES]
    item = schema["components"]["schemas"]["ItemOut"]["properties"]["status"]
    assert item["enum"] == list(ITEM_STATUSES)
    instance = schema["components"]["schemas"]["InstanceIn"]["properties"]["status"]
    assert instance["enum"] == list(INSTANCE_STATUSES)
