"""Per-client rate limiting (posekit.server.ratelimit): 429 with Retry-After for
listings beyond the burst, never for the editor's saves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient

from posekit.server import Settings, create_app
from posekit.server.ratelimit import TokenBuckets, is_editor_save

from .auth_helpers import login_admin

BASE = "http://127.0.0.1:8000"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(workspace=tmp_path / "ws", rate_limit_per_second=0.01, rate_limit_burst=5)
    with TestClient(create_app(settings), base_url=BASE) as client:
        login_admin(client)
        yield client


def _item(client: TestClient) -> int:
    import io

    from PIL import Image

    pid = client.post("/api/projects", json={"name": "p", "template": "coco17"}).json()["id"]
    out = io.BytesIO()
    Image.new("RGB", (64, 48)).save(out, "JPEG")
    files = [("files", ("a.jpg", out.getvalue(), "image/jpeg"))]
    assert client.post(f"/api/projects/{pid}/upload", files=files).status_code == 200
    return client.get(f"/api/projects/{pid}/items").json()["items"][0]["id"]


def _instance() -> dict:
    return {"keypoints": [[10.0 + i, 20.0] for i in range(17)], "visibility": [2] * 17}


def test_a_flood_of_listings_gets_429_with_retry_after(client):
    statuses = [client.get("/api/projects").status_code for _ in range(12)]
    assert statuses.count(200) <= 5 and statuses[-1] == 429
    refused = client.get("/api/projects")
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "too many requests" in refused.json()["detail"]
    assert refused.headers["x-frame-options"] == "DENY"  # still behind the security headers


def test_editor_saves_are_never_refused(client):
    iid = _item(client)  # uses up the burst (project, upload, items)
    for _ in range(10):
        client.get("/api/projects")
    assert client.get("/api/projects").status_code == 429
    before = client.app.state.posekit.ws.row_counts()["instances"]  # type: ignore[attr-defined]
    created = [client.post(f"/api/items/{iid}/instances", json=_instance()) for _ in range(20)]
    assert [r.status_code for r in created] == [201] * 20
    record = created[0].json()
    updated = client.put(
        f"/api/instances/{record['id']}", json={"version": record["version"], "score": 0.5}
    )
    assert updated.status_code == 200
    review = client.post(
        f"/api/items/{iid}/review", json={"instance_ids": [record["id"]], "action": "accept"}
    )
    assert review.status_code == 200, review.text
    deleted = client.delete(f"/api/instances/{created[1].json()['id']}")
    assert deleted.status_code == 204
    after = client.app.state.posekit.ws.row_counts()["instances"]  # type: ignore[attr-defined]
    assert after == before + 19
    assert client.get("/api/health").status_code == 200
    assert client.get("/").status_code == 200  # the UI's files are not limited


def test_clients_have_their_own_buckets():
    clock = [0.0]
    buckets = TokenBuckets(rate=1.0, burst=2, clock=lambda: clock[0])
    assert [buckets.take("a"), buckets.take("a")] == [0.0, 0.0]
    assert buckets.take("a") == pytest.approx(1.0)
    assert buckets.take("b") == 0.0
    clock[0] = 1.0
    assert buckets.take("a") == 0.0  # refilled at the rate


def test_rate_limit_zero_turns_it_off(tmp_path: Path):
    settings = Settings(workspace=tmp_path / "ws", rate_limit_per_second=0, rate_limit_burst=1)
    with TestClient(create_app(settings), base_url=BASE) as client:
        login_admin(client)
        assert {client.get("/api/projects").status_code for _ in range(30)} == {200}


def test_what_counts_as_an_editor_save():
    assert is_editor_save("POST", "/api/items/3/instances")
    assert is_editor_save("PUT", "/api/instances/7")
    assert is_editor_save("DELETE", "/api/instances/7")
    assert is_editor_save("POST", "/api/items/3/review")
    assert not is_editor_save("GET", "/api/items/3/instances")
    assert not is_editor_save("POST", "/api/items/3/assist")
    assert not is_editor_save("POST", "/api/projects/1/upload")
