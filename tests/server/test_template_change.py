"""API tests of project setup: template validation, template changes on a project with
instances (rename, add, delete, reorder, flip pairs), the model list, project
settings, and auto-label jobs with a chosen model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient

from posekit.server import Settings, create_app

from .auth_helpers import login_admin

NAMES = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]
XY = [[100, 50], [60, 120], [140, 120], [80, 200], [120, 200]]


def five(names=NAMES, **extra):
    return {
        "name": "five",
        "keypoints": list(names),
        "edges": [[names[0], names[1]], [names[0], names[2]]],
        "flip_pairs": [[names[1], names[2]]],
        "default_sigma": 0.05,
        **extra,
    }


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    return folder


@pytest.fixture
def client(tmp_path: Path, model_dir: Path) -> Iterator[TestClient]:
    app = create_app(Settings(workspace=tmp_path / "ws", model_dirs=[model_dir]))
    with TestClient(app, base_url="http://127.0.0.1:8000") as test_client:
        login_admin(test_client)
        yield test_client


@pytest.fixture
def project(client: TestClient, shared_data: Path) -> dict:
    """A five-point project with two images, each with one instance."""
    created = client.post("/api/projects", json={"name": "p", "template_definition": five()})
    assert created.status_code == 201, created.text
    pid = created.json()["id"]
    images = sorted((shared_data / "coco-val2017-sample" / "images").glob("*.jpg"))[:2]
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in images]
    assert client.post(f"/api/projects/{pid}/upload", files=files).status_code == 200
    items = client.get(f"/api/projects/{pid}/items").json()["items"]
    instances = []
    for item, visibility in zip(items, ([2, 2, 1, 2, 2], [2, 1, 2, 2, 0])):
        body = {"keypoints": XY, "visibility": visibility}
        response = client.post(f"/api/items/{item['id']}/instances", json=body)
        assert response.status_code == 201, response.text
        instances.append(response.json())
    return {"id": pid, "items": [i["id"] for i in items], "instances": instances}


def instances(client: TestClient, project: dict) -> list[dict]:
    return [
        i for iid in project["items"] for i in client.get(f"/api/items/{iid}").json()["instances"]
    ]


def change(client, project, names, *, renames=None, version=1, drop=False, preview=False, **kw):
    body = {"template": five(names, **kw), "renames": renames or {}, "template_version": version,
            "drop_labeled": drop}  # fmt: skip
    url = f"/api/projects/{project['id']}/template"
    return client.post(f"{url}/preview", json=body) if preview else client.put(url, json=body)


def test_validate_names_the_element(client: TestClient) -> None:
    ok = client.post("/api/templates/validate", json={"template": five()}).json()
    assert ok["valid"] and ok["definition"]["sigmas"] == [0.05] * 5
    bad = five(["head", "left_hand", "head", "a", "b"])
    answer = client.post("/api/templates/validate", json={"template": bad}).json()
    assert not answer["valid"] and "duplicate keypoint name 'head'" in answer["error"]
    assert answer["problem"] == {"kind": "keypoint", "index": None, "keypoint": "head"}
    edge = {**five(), "edges": [["head", "nope"]]}
    answer = client.post("/api/templates/validate", json={"template": edge}).json()
    assert "names unknown keypoint 'nope'" in answer["error"]
    assert answer["problem"]["kind"] == "edge" and answer["problem"]["index"] == 0
    flips = {**five(), "flip_pairs": [["left_hand", "right_hand"], ["left_hand", "head"]]}
    answer = client.post("/api/templates/validate", json={"template": flips}).json()
    assert answer["problem"]["kind"] == "flip_pair" and "not symmetric" in answer["error"]
    preset = client.get("/api/templates/coco17/definition").json()
    assert preset["definition"]["keypoints"][0] == "nose" and "sigmas_source" in preset["yaml"]


def test_rename_add_delete_migrates_every_instance(client, project) -> None:
    names = ["nose", "left_hand", "right_hand", "left_foot", "neck"]
    renames = {"head": "nose"}
    preview = change(client, project, names, renames=renames, preview=True).json()
    assert preview["dry_run"] and preview["renamed"] == [["head", "nose"]]
    assert preview["added"] == ["neck"] and preview["removed"] == ["right_foot"]
    assert preview["labeled_points_dropped"] == 1 and preview["instances"] == 2
    refused = change(client, project, names, renames=renames)
    assert refused.status_code == 422 and "drops 1 labeled point" in refused.json()["detail"]
    done = change(client, project, names, renames=renames, drop=True)
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["template_version"] == 2 and Path(answer["backup"]).is_file()
    assert answer["project_detail"]["template"]["keypoints"] == names
    first, second = instances(client, project)
    assert first["visibility"] == [2, 2, 1, 2, 0] and second["visibility"] == [2, 1, 2, 2, 0]
    assert first["keypoints"][:4] == XY[:4] and first["version"] == 2 and second["version"] == 2
    # An editor holding version 1 (the old layout) gets 409 with the new layout.
    old = project["instances"][0]
    stale = client.put(f"/api/instances/{old['id']}", json={"version": 1, "keypoints": XY})
    assert stale.status_code == 409 and stale.json()["current"]["visibility"][4] == 0
    # ... also after taking the current version, when it says its template version.
    body = {"version": 2, "template_version": 1, "keypoints": XY}
    stale = client.put(f"/api/instances/{old['id']}", json=body)
    assert stale.status_code == 409 and "template version" in stale.json()["detail"]
    new = {"keypoints": XY, "visibility": [2] * 5, "template_version": 1}
    response = client.post(f"/api/items/{project['items'][0]}/instances", json=new)
    assert response.status_code == 409
    new["template_version"] = 2
    assert client.post(f"/api/items/{project['items'][0]}/instances", json=new).status_code == 201
    # Exports use the new template.
    export = client.get(f"/api/projects/{project['id']}/export", params={"format": "coco"})
    assert export.json()["categories"][0]["keypoints"] == names
    # A stale template version changes nothing.
    again = change(client, project, NAMES, version=1)
    assert again.status_code == 409
    assert client.get(f"/api/projects/{project['id']}").json()["template_version"] == 2


def test_reorder_and_flip_pairs(client, project) -> None:
    names = ["head", "right_hand", "left_hand", "left_foot", "right_foot"]
    response = change(client, project, names)
    assert response.status_code == 200 and response.json()["reordered"]
    first, _ = instances(client, project)
    assert first["keypoints"][1] == XY[2] and first["visibility"] == [2, 1, 2, 2, 2]
    flips = [["left_hand", "right_hand"], ["left_foot", "right_foot"]]
    response = change(client, project, names, version=2, flip_pairs=flips)
    assert response.status_code == 200
    detail = response.json()["project_detail"]
    assert detail["template"]["flip_index"] == [0, 2, 1, 4, 3]
    first, _ = instances(client, project)
    assert first["version"] == 3 and first["keypoints"][1] == XY[2]


def test_settings_and_models(client, project, model_dir: Path) -> None:
    pid = project["id"]
    assert client.get(f"/api/projects/{pid}/settings").json()["assist_model"] == "blazepose"
    patched = client.patch(f"/api/projects/{pid}/settings", json={"assist_model": "vitpose:x"})
    assert patched.json()["assist_model"] == "vitpose:x"
    assert client.get(f"/api/projects/{pid}").json()["assist_model"] == "vitpose:x"
    unknown = client.patch(f"/api/projects/{pid}/settings", json={"colour": 1})
    assert unknown.status_code == 422
    models = client.get("/api/models").json()
    default = [m for m in models if m["default"]]
    assert {m["task"] for m in default} == {"detector", "pose"}
    assert all(m["reason"] for m in models if not m["available"])


def tiny_vitpose(folder: Path) -> Path:
    """tests/models/tiny_checkpoints.py's random ViTPose, saved into ``folder``."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "models" / "tiny_checkpoints.py"
    spec = importlib.util.spec_from_file_location("tiny_checkpoints", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.save_tiny_vitpose(folder)


def wait_job(client: TestClient, job_id: int) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture
def coco_project(client: TestClient, shared_data: Path) -> dict:
    pid = client.post("/api/projects", json={"name": "people", "template": "coco17"}).json()["id"]
    images = sorted((shared_data / "coco-val2017-sample" / "images").glob("*.jpg"))[:2]
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in images]
    assert client.post(f"/api/projects/{pid}/upload", files=files).status_code == 200
    items = client.get(f"/api/projects/{pid}/items").json()["items"]
    return {"id": pid, "items": [i["id"] for i in items]}


def test_autolabel_with_a_tiny_vitpose_from_a_model_folder(client, coco_project, model_dir):
    pytest.importorskip("transformers")
    pytest.importorskip("ai_edge_litert", reason="the BlazePose detector needs [mediapipe]")
    project = coco_project
    tiny_vitpose(model_dir / "tiny-vitpose")
    pose = [m for m in client.get("/api/models", params={"task": "pose"}).json()
            if m["location"] == "folder"]  # fmt: skip
    assert len(pose) == 1 and pose[0]["available"] and pose[0]["backend"] == "vitpose"
    spec = pose[0]["spec"]
    body = {"pose": spec, "batch_size": 2, "min_instance_score": 0.0, "oks_nms_threshold": 0.0,
            "item_ids": [project["items"][0]]}  # fmt: skip
    started = client.post(f"/api/projects/{project['id']}/jobs", json=body)
    assert started.status_code == 202, started.text
    job = wait_job(client, started.json()["id"])
    assert job["status"] == "done", job
    assert job["options"]["pose"] == spec and job["options"]["item_ids"] == [project["items"][0]]
    assert job["processed"] == 1
    predicted = [i for i in instances(client, project) if i["status"] == "predicted"]
    assert predicted, job
    for inst in predicted:
        assert inst["source"].startswith("model:") and inst["item_id"] == project["items"][0]
        assert inst["produced_by"]["pose"] == spec
        assert inst["produced_by"]["min_instance_score"] == 0.0
    listed = client.get(f"/api/projects/{project['id']}/jobs").json()
    assert listed[0]["options"]["pose"] == spec


def test_a_model_that_cannot_load_fails_the_job_readably(client, coco_project, model_dir):
    project = coco_project
    broken = model_dir / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "vitpose"}')
    body = {"detector": "blazepose", "pose": f"vitpose:{broken}"}
    job = wait_job(
        client, client.post(f"/api/projects/{project['id']}/jobs", json=body).json()["id"]
    )
    assert job["status"] == "failed"
    assert job["error"].startswith("the model could not be loaded:")
    assert "Traceback" not in job["error"] and str(broken) in job["error"]
