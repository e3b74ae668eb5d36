"""Fixtures of the store tests: fresh workspaces, the COCO sample laid out for import."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from posekit import get_preset
from posekit.store import Item, Workspace, import_images

from .store_factories import COCO_DIR, COCO_JSON, need_data


@pytest.fixture
def people(tmp_path: Path) -> Iterator[tuple[Workspace, list[Item]]]:
    """A workspace with project ``people`` (coco17): three new 64x48 images in ``train``."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        color = (40 * index, 100, 200 - 30 * index)
        Image.new("RGB", (64, 48), color).save(folder / f"img{index}.png")
    ws = Workspace(tmp_path / "ws")
    ws.create_project("people", get_preset("coco17"))
    import_images(ws, "people", "train", [folder])
    yield ws, ws.list_items("people")
    ws.close()


@pytest.fixture
def ws(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace with an empty project ``people`` (coco17); needs the sample data."""
    need_data()
    workspace = Workspace(tmp_path / "ws")
    workspace.create_project("people", get_preset("coco17"))
    yield workspace
    workspace.close()


@pytest.fixture
def coco_folder(tmp_path: Path) -> Path:
    """The COCO sample with json next to an ``images/`` folder, as file_names expect."""
    need_data()
    folder = tmp_path / "coco"
    shutil.copytree(COCO_DIR / "images", folder / "images")
    data = json.loads(COCO_JSON.read_text())
    for image in data["images"]:
        image["file_name"] = f"images/{image['file_name']}"
    (folder / "keypoints.json").write_text(json.dumps(data))
    return folder
