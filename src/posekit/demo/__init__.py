"""Sample images bundled for ``posekit demo`` and the README quickstart (see ATTRIBUTION.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["demo_images"]


def demo_images() -> list[Path]:
    """Paths of the bundled demo images (COCO val2017 photos, see ATTRIBUTION.md)."""
    root = resources.files("posekit.demo")
    return sorted(Path(str(p)) for p in root.iterdir() if p.name.endswith(".jpg"))
