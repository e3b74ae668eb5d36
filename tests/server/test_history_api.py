"""HTTP API of instance history: two users edit, the history names both in order;
restore makes a new version (a stale one is a 409); a deleted instance's history stays
listable and restorable; who may list and restore; COCO export with authors."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient
from PIL import Image

from posekit.server import Settings, create_app

from .auth_helpers import admin_client, role_client


def _png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (index * 40, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Team:
    app: Any
    pid: int
    iid: int
    manager: TestClient
    annotator: TestClient
    viewer: TestClient

    @staticmethod
    def name(client: TestClient) -> str:
        return client.user.username  # type: ignore[attr-defined]


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, base_url="http://127.0.0.1:8000"):
        admin = admin_client(app)
        response = admin.post("/api/projects", json={"name": "people", "template": "coco17"})
        assert response.status_code == 201, response.text
        pid = response.json()["id"]
        files = [("files", (f"img{i}.png", _png(i), "image/png")) for i in range(2)]
        admin.post(f"/api/projects/{pid}/upload", files=files).raise_for_status()
        iid = admin.get(f"/api/projects/{pid}/items").json()["items"][0]["id"]
        manager = role_client(app, pid, "manager")
        annotator = role_client(app, pid, "annotator")
        body = {"item_ids": [iid], "assignee": Team.name(annotator)}
        manager.post(f"/api/projects/{pid}/assign", json=body).raise_for_status()
        yield Team(app, pid, iid, manager, annotator, role_client(app, pid, "viewer"))


def _person(x: float) -> dict:
    return {"keypoints": [[x + k, 5.0 + k / 2] for k in range(17)], "visibility": [2] * 17}


def _history(client: TestClient, instance_id: int) -> dict:
    response = client.get(f"/api/instances/{instance_id}/history")
    assert response.status_code == 200, response.text
    return response.json()


def test_two_users_edit_and_the_history_names_both_in_order(team: Team) -> None:
    ann, mgr = team.annotator, team.manager
    created = ann.post(f"/api/items/{team.iid}/instances", json=_person(5))
    assert created.status_code == 201, created.text
    inst = created.json()
    assert inst["author_id"] == ann.user.id  # type: ignore[attr-defined]
    edited = mgr.put(f"/api/instances/{inst['id']}", json={"version": 1, **_person(7)})
    assert edited.status_code == 200 and edited.json()["author_id"] == mgr.user.id  # type: ignore[attr-defined]
    reviewed = ann.post(
        f"/api/items/{team.iid}/review", json={"instance_ids": [inst["id"]], "action": "reject"}
    )
    assert reviewed.status_code == 200, reviewed.text
    history = _history(team.viewer, inst["id"])
    assert history["instance_id"] == inst["id"] and history["deleted"] is False
    trail = [
        (v["version"], v["author"], v["replaced_by_action"], v["replaced_by_name"], v["current"])
        for v in history["versions"]
    ]
    a, m = team.name(ann), team.name(mgr)
    assert trail == [
        (1, a, "update", m, False),
        (2, m, "review", a, False),
        (3, a, None, None, True),
    ]
    versions = history["versions"]
    assert versions[0]["keypoints"][3] == [8.0, 6.5] and versions[1]["keypoints"][3] == [10.0, 6.5]
    assert [v["status"] for v in versions] == ["accepted", "accepted", "rejected"]
    assert versions[0]["written_at"] <= versions[0]["replaced_at"] == versions[1]["written_at"]


def test_restore_makes_a_new_version_and_refuses_a_stale_one(team: Team) -> None:
    ann, mgr = team.annotator, team.manager
    inst = ann.post(f"/api/items/{team.iid}/instances", json=_person(5)).json()
    mgr.put(f"/api/instances/{inst['id']}", json={"version": 1, **_person(9)}).raise_for_status()
    url = f"/api/instances/{inst['id']}/history/1/restore"
    stale = ann.post(url, json={"expected_version": 1})
    assert stale.status_code == 409
    assert stale.json()["current"]["version"] == 2 and "stale version 1" in stale.json()["detail"]
    assert team.viewer.post(url, json={"expected_version": 2}).status_code == 403
    restored = ann.post(url, json={"expected_version": 2})
    assert restored.status_code == 200, restored.text
    out = restored.json()
    assert (out["id"], out["version"], out["keypoints"][0]) == (inst["id"], 3, [5.0, 5.0])
    assert out["author_id"] == ann.user.id  # type: ignore[attr-defined]
    trail = [(v["version"], v["replaced_by_action"]) for v in _history(mgr, inst["id"])["versions"]]
    assert trail == [(1, "update"), (2, "restore"), (3, None)]
    assert (
        ann.post(
            f"/api/instances/{inst['id']}/history/3/restore", json={"expected_version": 3}
        ).status_code
        == 422
    )
    missing = ann.post(
        f"/api/instances/{inst['id']}/history/8/restore", json={"expected_version": 3}
    )
    assert missing.status_code == 404 and "has no version 8" in missing.text
    bad = ann.post(url, json={"expected_version": 0})
    assert bad.status_code == 422 and "expected_version" in bad.text


def test_a_deleted_instance_keeps_its_history_and_can_be_restored(team: Team) -> None:
    ann, mgr = team.annotator, team.manager
    inst = ann.post(f"/api/items/{team.iid}/instances", json=_person(5)).json()
    deleted = mgr.delete(f"/api/instances/{inst['id']}", params={"version": 1})
    assert deleted.status_code == 204
    history = _history(team.viewer, inst["id"])
    assert history["deleted"] is True
    assert [
        (v["version"], v["replaced_by_action"], v["replaced_by_name"]) for v in history["versions"]
    ] == [(1, "delete", team.name(mgr))]
    url = f"/api/instances/{inst['id']}/history/1/restore"
    stale = mgr.post(url, json={"expected_version": 2})
    assert stale.status_code == 409 and "deleted at version 1" in stale.text
    restored = mgr.post(url, json={"expected_version": 1})
    assert restored.status_code == 200, restored.text
    assert (restored.json()["id"], restored.json()["version"]) == (inst["id"], 2)
    item = ann.get(f"/api/items/{team.iid}").json()
    assert [i["id"] for i in item["instances"]] == [inst["id"]]


def test_history_needs_a_login_and_a_role(team: Team) -> None:
    inst = team.annotator.post(f"/api/items/{team.iid}/instances", json=_person(5)).json()
    anonymous = TestClient(team.app, base_url="http://127.0.0.1:8000")
    assert anonymous.get(f"/api/instances/{inst['id']}/history").status_code == 401
    stranger = role_client(team.app, None, None)
    assert stranger.get(f"/api/instances/{inst['id']}/history").status_code == 403
    assert team.viewer.get("/api/instances/987654/history").status_code == 404


def test_coco_export_with_authors(team: Team) -> None:
    ann = team.annotator
    ann.post(f"/api/items/{team.iid}/instances", json=_person(5)).raise_for_status()
    response = team.manager.get(
        f"/api/projects/{team.pid}/export", params={"format": "coco", "with_authors": True}
    )
    assert response.status_code == 200, response.text
    data = json.loads(response.content)
    assert [a["author"] for a in data["annotations"]] == [team.name(ann)]
    plain = team.manager.get(f"/api/projects/{team.pid}/export", params={"format": "coco"})
    assert "author" not in json.loads(plain.content)["annotations"][0]
    refused = team.manager.get(
        f"/api/projects/{team.pid}/export", params={"format": "yolo", "with_authors": True}
    )
    assert refused.status_code == 422 and "with_authors" in refused.json()["detail"]

    from pycocotools.coco import COCO

    path = Path(team.app.state.posekit.ws.root) / "exported.json"
    path.write_bytes(response.content)
    with contextlib.redirect_stdout(io.StringIO()):
        loaded = COCO(str(path))
    assert [loaded.anns[i]["author"] for i in loaded.getAnnIds()] == [team.name(ann)]
