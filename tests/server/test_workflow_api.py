"""HTTP API of the team workflow: assignment, queues, submit, review decisions, comments
and the item listing's workflow filters, each as the role that may (and may not) do it."""

from __future__ import annotations

import io
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


def png(index: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (index * 20 % 256, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Teams:
    app: Any
    pid: int
    ids: list[int]
    admin: TestClient
    manager: TestClient
    annotator: TestClient
    annotator2: TestClient
    reviewer: TestClient
    viewer: TestClient

    def name(self, client: TestClient) -> str:
        return client.user.username  # type: ignore[attr-defined]


@pytest.fixture
def teams(tmp_path: Path) -> Iterator[Teams]:
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, base_url="http://127.0.0.1:8000"):  # runs the lifespan
        admin = admin_client(app)
        response = admin.post("/api/projects", json={"name": "people", "template": "coco17"})
        assert response.status_code == 201, response.text
        pid = response.json()["id"]
        files = [("files", (f"img{i}.png", png(i), "image/png")) for i in range(5)]
        response = admin.post(f"/api/projects/{pid}/upload", files=files)
        assert response.status_code == 200, response.text
        items = admin.get(f"/api/projects/{pid}/items").json()["items"]
        clients = {
            role: role_client(app, pid, kind)
            for role, kind in [
                ("manager", "manager"),
                ("annotator", "annotator"),
                ("annotator2", "annotator"),
                ("reviewer", "reviewer"),
                ("viewer", "viewer"),
            ]
        }
        yield Teams(app, pid, sorted(i["id"] for i in items), admin, **clients)


def instance() -> dict:
    return {"keypoints": [[5.0 + k, 5.0 + k / 2] for k in range(17)], "visibility": [2] * 17}


def test_assign_modes_and_listing_filters(teams: Teams) -> None:
    pid, ids, manager = teams.pid, teams.ids, teams.manager
    ann = teams.name(teams.annotator)
    response = manager.post(
        f"/api/projects/{pid}/assign", json={"item_ids": ids[:2], "assignee": ann}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"item_ids": ids[:2], "assignee": ann}
    body = {
        "first_item_id": ids[2],
        "last_item_id": ids[3],
        "assignee": teams.name(teams.annotator2),
    }
    assert manager.post(f"/api/projects/{pid}/assign", json=body).json()["item_ids"] == ids[2:4]
    response = manager.post(
        f"/api/projects/{pid}/assign", json={"next_unlabeled": 5, "assignee": ann}
    )
    assert response.json()["item_ids"] == ids[4:]
    response = manager.post(
        f"/api/projects/{pid}/assign", json={"item_ids": [ids[1]], "assignee": None}
    )
    assert response.json() == {"item_ids": [ids[1]], "assignee": None}

    page = manager.get(f"/api/projects/{pid}/items", params={"assignee": ann}).json()
    assert [i["id"] for i in page["items"]] == [ids[0], ids[4]]
    assert {i["assignee"] for i in page["items"]} == {ann}
    page = manager.get(f"/api/projects/{pid}/items", params={"assignee": "none"}).json()
    assert [i["id"] for i in page["items"]] == [ids[1]]
    response = manager.get(f"/api/projects/{pid}/items", params={"assignee": "nobody-here"})
    assert response.status_code == 422 and "assignee: no user named 'nobody-here'" in response.text
    response = manager.get(f"/api/projects/{pid}/items", params={"stage": "later"})
    assert response.status_code == 422 and "stage" in response.text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"assignee": None}, "give exactly one of item_ids"),
        ({"item_ids": [1], "next_unlabeled": 2, "assignee": None}, "give exactly one"),
        ({"first_item_id": 1, "assignee": None}, "needs both first_item_id and last_item_id"),
        ({"next_unlabeled": 2, "assignee": None}, "next_unlabeled needs an assignee"),
        ({"item_ids": [], "assignee": None}, "body.item_ids"),
        ({"item_ids": [1], "assignee": None, "extra": 1}, "body.extra"),
    ],
)
def test_assign_refuses_bad_bodies(teams: Teams, body: dict, message: str) -> None:
    response = teams.manager.post(f"/api/projects/{teams.pid}/assign", json=body)
    assert response.status_code == 422 and message in response.json()["detail"]


def test_assign_needs_a_manager_and_an_annotator(teams: Teams) -> None:
    pid, ids = teams.pid, teams.ids
    body = {"item_ids": ids[:1], "assignee": teams.name(teams.annotator)}
    for client in (teams.annotator, teams.reviewer, teams.viewer):
        assert client.post(f"/api/projects/{pid}/assign", json=body).status_code == 403
    body["assignee"] = teams.name(teams.viewer)
    response = teams.manager.post(f"/api/projects/{pid}/assign", json=body)
    assert response.status_code == 422 and "is not an annotator of project" in response.text
    body = {"item_ids": [ids[0], 987654], "assignee": None}
    response = teams.manager.post(f"/api/projects/{pid}/assign", json=body)
    assert response.status_code == 404 and "item 987654 is not an item of project" in response.text


def test_review_round_trip_with_keypoint_comment(teams: Teams) -> None:
    pid, annotator, reviewer = teams.pid, teams.annotator, teams.reviewer
    response = annotator.post(f"/api/projects/{pid}/queue/annotator/next")
    assert response.status_code == 200, response.text
    item = response.json()
    assert item["assignee"] == teams.name(annotator) and item["stage"] == "annotation"
    iid = item["id"]
    created = annotator.post(f"/api/items/{iid}/instances", json=instance())
    assert created.status_code == 201, created.text
    inst = created.json()
    # Not in review yet: nothing to decide, and the reviewer's queue is empty.
    assert (
        reviewer.post(f"/api/items/{iid}/decision", json={"decision": "accept"}).status_code == 409
    )
    assert reviewer.post(f"/api/projects/{pid}/queue/reviewer/next").status_code == 204
    submitted = annotator.post(f"/api/items/{iid}/submit")
    assert submitted.status_code == 200 and submitted.json()["stage"] == "review"
    # Submitted work is the reviewer's: the annotator can neither submit it again nor
    # edit it until it comes back.
    again = annotator.post(f"/api/items/{iid}/submit")
    assert again.status_code == 403 and f"item {iid} is in stage review" in again.text
    edit = annotator.put(
        f"/api/instances/{inst['id']}", json={**instance(), "version": inst["version"]}
    )
    assert edit.status_code == 403 and "annotators edit items in stage annotation" in edit.text

    taken = reviewer.post(f"/api/projects/{pid}/queue/reviewer/next").json()
    assert taken["id"] == iid and taken["reviewer"] == teams.name(reviewer)
    response = reviewer.post(f"/api/items/{iid}/decision", json={"decision": "reject"})
    assert response.status_code == 422 and "needs a comment" in response.text
    bad = {"decision": "reject", "comment": "x", "instance_id": inst["id"], "keypoint": 17}
    response = reviewer.post(f"/api/items/{iid}/decision", json=bad)
    assert response.status_code == 422 and "keypoint: 17 is not a keypoint index" in response.text
    reject = {
        "decision": "reject",
        "comment": "left wrist is off",
        "instance_id": inst["id"],
        "keypoint": 9,
    }
    response = reviewer.post(f"/api/items/{iid}/decision", json=reject)
    assert response.status_code == 200, response.text
    assert response.json()["stage"] == "annotation" and response.json()["open_comments"] == 1

    # The annotator sees it first (to fix), with the comment on the keypoint.
    counts = annotator.get(f"/api/projects/{pid}/workflow").json()
    assert (counts["mine"], counts["to_fix"], counts["review"]) == (1, 1, 0)
    assert annotator.post(f"/api/projects/{pid}/queue/annotator/next").json()["id"] == iid
    (thread,) = annotator.get(f"/api/items/{iid}/comments").json()
    assert (thread["body"], thread["keypoint"], thread["instance_id"], thread["author"]) == (
        "left wrist is off",
        9,
        inst["id"],
        teams.name(reviewer),
    )
    assert thread["resolved"] is False
    reply = annotator.post(
        f"/api/items/{iid}/comments", json={"body": "moved it", "parent_id": thread["id"]}
    )
    assert reply.status_code == 201 and reply.json()["replies"][0]["author"] == teams.name(
        annotator
    )
    resolved = annotator.patch(f"/api/comments/{thread['id']}", json={"resolved": True})
    assert resolved.status_code == 200 and resolved.json()["resolved"] is True
    listed = teams.viewer.get(f"/api/projects/{pid}/items", params={"open_comments": True}).json()
    assert listed["total"] == 0
    annotator.post(f"/api/items/{iid}/submit").raise_for_status()
    done = reviewer.post(f"/api/items/{iid}/decision", json={"decision": "accept"})
    assert done.status_code == 200 and done.json()["stage"] == "done"
    page = teams.viewer.get(f"/api/projects/{pid}/items", params={"stage": "done"}).json()
    assert [i["id"] for i in page["items"]] == [iid]


def test_roles_of_queue_submit_decision_and_comments(teams: Teams) -> None:
    pid, ids = teams.pid, teams.ids
    assert teams.viewer.post(f"/api/projects/{pid}/queue/annotator/next").status_code == 403
    assert teams.reviewer.post(f"/api/projects/{pid}/queue/annotator/next").status_code == 403
    assert teams.annotator.post(f"/api/projects/{pid}/queue/reviewer/next").status_code == 403
    mine = teams.annotator.post(f"/api/projects/{pid}/queue/annotator/next").json()["id"]
    # Someone else's item: the annotator may not submit it; a manager may.
    assert teams.annotator2.post(f"/api/items/{mine}/submit").status_code == 403
    assert teams.manager.post(f"/api/items/{ids[-1]}/submit").status_code == 200
    decision = {"decision": "accept"}
    assert teams.annotator.post(f"/api/items/{ids[-1]}/decision", json=decision).status_code == 403
    assert teams.viewer.post(f"/api/items/{ids[-1]}/decision", json=decision).status_code == 403
    assert teams.viewer.get(f"/api/items/{mine}/comments").json() == []
    comment = {"body": "hello"}
    assert teams.viewer.post(f"/api/items/{mine}/comments", json=comment).status_code == 403
    posted = teams.reviewer.post(f"/api/items/{mine}/comments", json=comment)
    assert posted.status_code == 201
    cid = posted.json()["id"]
    assert teams.viewer.patch(f"/api/comments/{cid}", json={"resolved": True}).status_code == 403
    assert (
        teams.annotator2.patch(f"/api/comments/{cid}", json={"resolved": True}).status_code == 200
    )
    assert teams.reviewer.patch("/api/comments/999999", json={"resolved": True}).status_code == 404
    bad = teams.reviewer.post(f"/api/items/{mine}/comments", json={"body": "k", "keypoint": 3})
    assert bad.status_code == 422 and "needs the instance_id" in bad.text


def test_two_annotators_never_get_the_same_item(teams: Teams) -> None:
    pid = teams.pid
    seen: dict[str, list[int]] = {"a": [], "b": []}
    for _ in range(2):
        for key, client in (("a", teams.annotator), ("b", teams.annotator2)):
            response = client.post(f"/api/projects/{pid}/queue/annotator/next")
            assert response.status_code == 200, response.text
            iid = response.json()["id"]
            seen[key].append(iid)
            client.post(f"/api/items/{iid}/submit").raise_for_status()
    assert not set(seen["a"]) & set(seen["b"])
    assert len(set(seen["a"] + seen["b"])) == 4
    response = teams.annotator.post(f"/api/projects/{pid}/queue/annotator/next")
    assert response.status_code == 200  # the fifth
    assert teams.annotator2.post(f"/api/projects/{pid}/queue/annotator/next").status_code == 204
