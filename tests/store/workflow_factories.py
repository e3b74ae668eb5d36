"""Factories of the team workflow tests: a project with tiny images and its members."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from posekit import get_preset
from posekit.store import Item, Workspace, import_images
from posekit.store.records import User


@dataclass
class Team:
    """A workspace with project ``people`` (coco17), its items and one user per role."""

    ws: Workspace
    items: list[Item]
    manager: User
    annotator: User
    annotator2: User
    reviewer: User
    viewer: User

    @property
    def ids(self) -> list[int]:
        return [item.id for item in self.items]


def make_team(tmp_path: Path, num_items: int = 6) -> Team:
    """A fresh workspace with ``num_items`` 8x8 images and five members."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(num_items):
        Image.new("RGB", (8, 8), (index % 256, index // 256, 7)).save(folder / f"i{index:04d}.png")
    ws = Workspace(tmp_path / "ws")
    ws.create_project("people", get_preset("coco17"))
    import_images(ws, "people", "train", [folder])
    users = {}
    for name, role in [
        ("manager", "manager"),
        ("annotator", "annotator"),
        ("annotator2", "annotator"),
        ("reviewer", "reviewer"),
        ("viewer", "viewer"),
    ]:
        users[name] = ws.create_user(name)
        ws.set_member("people", users[name].id, role)
    return Team(ws, ws.list_items("people"), **users)
