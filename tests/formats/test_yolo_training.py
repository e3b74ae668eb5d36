"""posekit's YOLO-pose exports, checked by the real trainer (Ultralytics).

Ultralytics' dataset checker and a one-epoch CPU training run (a YOLOv8n-pose
model built from its YAML config, random weights, 64 px) on the export of:
the COCO sample (COCO-17), a COCO-WholeBody-133 project and a custom 5-point
template, from the CLI and from the server's zip download. Marked ``ultralytics``:
``.ci/run`` runs them in its second environment (torch 2.14.1).
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import yaml

from posekit.cli import main

pytestmark = [
    pytest.mark.ultralytics,
    pytest.mark.skipif(
        importlib.util.find_spec("ultralytics") is None,
        reason="ultralytics not installed here: .ci/run runs these tests in its second "
        "environment (torch 2.14.1 + the [ultralytics] extra)",
    ),
]

FIVE_POINTS = """\
name: five
keypoints: [nose, left_shoulder, right_shoulder, left_hip, right_hip]
edges: [[left_shoulder, right_shoulder], [left_hip, right_hip]]
flip_pairs: [[left_shoulder, right_shoulder], [left_hip, right_hip]]
sigmas: [0.026, 0.079, 0.079, 0.107, 0.107]
"""


@pytest.fixture(autouse=True)
def _offline(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "ultralytics-config"))


def _five_point_coco(source: Path, out: Path) -> Path:
    """The COCO sample reduced to the five-point layout (a custom template's own file)."""
    data = json.loads(source.read_text())
    names = yaml.safe_load(FIVE_POINTS)["keypoints"]
    category = data["categories"][0]
    index = [category["keypoints"].index(n) for n in names]
    data["categories"] = [{**category, "keypoints": names, "skeleton": [[2, 3], [4, 5]]}]
    for ann in data["annotations"]:
        kps = ann["keypoints"]
        ann["keypoints"] = [v for i in index for v in kps[3 * i : 3 * i + 3]]
        ann["num_keypoints"] = sum(1 for v in ann["keypoints"][2::3] if v > 0)
    out.write_text(json.dumps(data))
    return out


def _project(tmp_path: Path, shared_data: Path, template: str) -> Path:
    sample = shared_data / "coco-val2017-sample"
    ws = tmp_path / "ws"
    base = ["-q", "--workspace", str(ws)]
    assert main([*base, "init", "p", "--template", template]) == 0
    annotations = sample / "person_keypoints.json"
    if Path(template).stem == "five":
        annotations = _five_point_coco(annotations, tmp_path / "five.json")
    coco = ["--coco", str(annotations), "--image-root", str(sample / "images")]
    assert main([*base, "import", "p", *coco]) == 0
    return ws


def _export_cli(ws: Path, out: Path) -> Path:
    assert (
        main(["-q", "--workspace", str(ws), "export", "p", "--format", "yolo", "-o", str(out)]) == 0
    )
    return out / "data.yaml"


def _train(data_yaml: Path, tmp_path: Path) -> None:
    from ultralytics import YOLO
    from ultralytics.data.utils import check_det_dataset

    info = check_det_dataset(str(data_yaml))
    assert info["nc"] == 1 and info["names"][0] == "person"
    model = YOLO("yolov8n-pose.yaml")
    model.train(
        data=str(data_yaml),
        epochs=1,
        imgsz=64,
        batch=4,
        device="cpu",
        workers=0,
        plots=False,
        amp=False,
        val=True,
        project=str(tmp_path / "runs"),
        name="train",
        exist_ok=True,
        verbose=False,
    )
    assert (tmp_path / "runs" / "train" / "weights" / "last.pt").is_file()


@pytest.mark.parametrize("template", ["coco17", "coco_wholebody133", "five"])
def test_cli_export_trains_one_epoch(template, shared_data, tmp_path):
    if template == "five":
        (tmp_path / "five.yaml").write_text(FIVE_POINTS)
        template = str(tmp_path / "five.yaml")
    ws = _project(tmp_path, shared_data, template)
    data_yaml = _export_cli(ws, tmp_path / "yolo")
    meta = yaml.safe_load(data_yaml.read_text())
    expected_k = {"coco17": 17, "coco_wholebody133": 133}.get(Path(template).stem, 5)
    assert meta["kpt_shape"] == [expected_k, 3]
    assert len(meta["flip_idx"]) == expected_k
    assert len(meta.get("kpt_names", {0: []})[0]) == expected_k
    _train(data_yaml, tmp_path)


def test_server_zip_export_trains_anywhere(shared_data, tmp_path):
    from fastapi.testclient import TestClient

    from posekit.server.app import create_app
    from posekit.server.settings import Settings
    from server.auth_helpers import login_admin  # tests/server

    ws = _project(tmp_path, shared_data, "coco17")
    app = create_app(Settings(workspace=ws))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        login_admin(client)
        listing = client.get("/api/projects")
        assert listing.status_code == 200, listing.text
        url = f"/api/projects/{listing.json()[0]['id']}/export"
        response = client.get(url, params={"format": "yolo"})
        assert response.status_code == 200, response.text
    unzipped = tmp_path / "somewhere" / "else"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        archive.extractall(unzipped)
    (data_yaml,) = list(unzipped.rglob("data.yaml"))
    meta = yaml.safe_load(data_yaml.read_text())
    assert not os.path.isabs(str(meta.get("path", "."))), meta  # loads as-is after unzipping
    cwd = Path.cwd()
    try:
        os.chdir(data_yaml.parent)  # a relative path is relative to where training starts
        _train(data_yaml, tmp_path)
    finally:
        os.chdir(cwd)
