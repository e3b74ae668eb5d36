"""``posekit export --with-authors``: each COCO annotation names its author."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from posekit import Instance, get_preset
from posekit.cli import main
from posekit.store import Workspace, import_images


def test_export_with_authors(tmp_path: Path, capsys) -> None:
    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    folder = tmp_path / "ws"
    with Workspace(folder) as ws:
        ws.create_project("demo", get_preset("coco17"))
        import_images(ws, "demo", "train", [tmp_path / "a.png"])
        (item,) = ws.list_items("demo")
        person = Instance(np.full((17, 2), 5, np.float32), np.full(17, 2, np.uint8))
        ws.add_instance(item, person, author_id=ws.create_user("ann").id)
    common = ["-q", "--workspace", str(folder), "export", "demo"]
    out = tmp_path / "out.json"
    assert main([*common, "--format", "coco", "-o", str(out), "--with-authors"]) == 0
    assert [a["author"] for a in json.loads(out.read_text())["annotations"]] == ["ann"]
    assert main([*common, "--format", "coco", "-o", str(out)]) == 0
    assert "author" not in json.loads(out.read_text())["annotations"][0]
    capsys.readouterr()
    assert main([*common, "--format", "yolo", "-o", str(tmp_path / "y"), "--with-authors"]) == 2
    assert "--with-authors" in capsys.readouterr().err
