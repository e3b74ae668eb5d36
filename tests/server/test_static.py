"""Checks on the browser UI's modules (posekit/server/static) that need no browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

from posekit.server.app import STATIC_DIR
from posekit.statuses import ITEM_STATUSES

MAX_MODULE_LINES = 600


def test_no_javascript_module_over_the_size_limit():
    sizes = {p.name: len(p.read_text().splitlines()) for p in STATIC_DIR.glob("*.js")}
    assert "annotate.js" in sizes
    assert {name: n for name, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_every_imported_module_exists():
    for module in STATIC_DIR.glob("*.js"):
        for target in re.findall(r'from "\./([\w.-]+)"', module.read_text()):
            assert (STATIC_DIR / target).is_file(), f"{module.name} imports missing {target}"


def test_ui_filters_are_the_item_statuses():
    source = (STATIC_DIR / "projects.js").read_text()
    match = re.search(r"export const FILTERS = (\[.*?\]);", source)
    assert match, "projects.js defines FILTERS"
    assert json.loads(match.group(1)) == ["all", *ITEM_STATUSES]


def test_export_menu_names_no_format():
    # The export links are built from GET /api/formats, so a new format needs no UI edit.
    source = (STATIC_DIR / "projects.js").read_text()
    assert "export-coco" not in source and "export-yolo" not in source
    assert isinstance(STATIC_DIR, Path)
