"""The YOLO zip of the project page loads wherever it is unzipped (issue 8)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

import yaml
from PIL import Image

from .test_api import make_client, manual_instance, new_project


def test_yolo_zip_has_no_server_path_and_a_real_val_split(tmp_path: Path) -> None:
    for client in make_client(tmp_path):
        pid = new_project(client)
        files = []
        for index in range(5):
            buffer = io.BytesIO()
            Image.new("RGB", (200, 150), (40 * index, 80, 120)).save(buffer, format="PNG")
            files.append(("files", (f"img{index}.png", buffer.getvalue(), "image/png")))
        assert client.post(f"/api/projects/{pid}/upload", files=files).status_code == 200
        for item in client.get(f"/api/projects/{pid}/items").json()["items"]:
            response = client.post(f"/api/items/{item['id']}/instances", json=manual_instance())
            assert response.status_code in (200, 201), response.text
        response = client.get(
            f"/api/projects/{pid}/export", params={"format": "yolo", "val_fraction": 0.2}
        )
        assert response.status_code == 200, response.text
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        config = yaml.safe_load(archive.read("data.yaml"))
        assert "path" not in config and "/tmp" not in archive.read("data.yaml").decode()
        assert config["train"] == "images/train" and config["val"] == "images/val"
        names = archive.namelist()
        assert sum(n.startswith("images/val/") and not n.endswith("/") for n in names) == 1
        assert sum(n.startswith("images/train/") and not n.endswith("/") for n in names) == 4
        bad = client.get(
            f"/api/projects/{pid}/export", params={"format": "yolo", "val_fraction": 1.5}
        )
        assert bad.status_code == 422
