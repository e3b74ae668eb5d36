"""POST /api/items/{id}/assist: the instances the route returns are exactly those of
:func:`posekit.pipeline.assist` with the server's assist settings on the same
decoded image, for every ground-truth box of the COCO sample; the project's
``assist_model`` setting is read per request (a change applies at once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient

from posekit.server import Settings, create_app

from .auth_helpers import login_admin


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        login_admin(client)
        yield client


def _project(client: TestClient, sample: Path) -> tuple[int, dict[str, int]]:
    pid = client.post("/api/projects", json={"name": "people", "template": "coco17"}).json()["id"]
    paths = sorted((sample / "images").glob("*.jpg"))
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
    assert client.post(f"/api/projects/{pid}/upload", files=files).status_code == 200
    items = client.get(f"/api/projects/{pid}/items").json()["items"]
    return pid, {i["file_name"]: i["id"] for i in items}


def test_assist_returns_what_the_library_gives_for_every_sample_box(client, shared_data):
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    from posekit.media.image import load_image
    from posekit.models import create_pose_estimator
    from posekit.pipeline.assist import assist
    from posekit.skeleton import get_preset

    sample = shared_data / "coco-val2017-sample"
    _, items = _project(client, sample)
    gt = json.loads((sample / "person_keypoints.json").read_text())
    names = {i["id"]: i["file_name"] for i in gt["images"]}
    options = Settings().assist_options["blazepose"]
    template = get_preset("coco17")
    checked = 0
    with create_pose_estimator("blazepose", **options) as estimator:
        for ann in gt["annotations"]:
            x, y, w, h = ann["bbox"]
            if w * h <= 0 or ann.get("iscrowd"):
                continue
            name = names[ann["image_id"]]
            box = [x, y, x + w, y + h]
            response = client.post(f"/api/items/{items[name]}/assist", json={"box": box})
            assert response.status_code == 200, response.text
            got = response.json()
            want = assist(
                load_image(sample / "images" / name),
                np.asarray(box, np.float32),
                template,
                estimator,
            )[0]
            assert np.array_equal(np.asarray(got["keypoints"], np.float32), want.keypoints)
            assert got["visibility"] == want.visibility.tolist()
            assert np.array_equal(
                np.asarray(got["keypoint_scores"], np.float32), want.keypoint_scores
            )
            assert np.float32(got["score"]) == np.float32(want.score)
            assert got["produced_by"]["model"] == "blazepose"
            checked += 1
    assert checked >= 12


def test_a_changed_assist_model_setting_applies_to_the_next_request(client, shared_data):
    pid, items = _project(client, shared_data / "coco-val2017-sample")
    item = next(iter(items.values()))
    patched = client.patch(f"/api/projects/{pid}/settings", json={"assist_model": "nope:x"})
    assert patched.status_code == 200, patched.text
    refused = client.post(f"/api/items/{item}/assist", json={"box": [10, 10, 90, 190]})
    assert refused.status_code == 422 and "nope" in refused.json()["detail"]
