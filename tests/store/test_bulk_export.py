"""The COCO export from rows (store/bulk_export.py) against the general export path.

The general path (a PoseDataset of Instance objects, then ``to_coco``) is the
reference: for every option the two must write byte-identical files and the same
report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from posekit import get_preset
from posekit.statuses import INSTANCE_STATUSES
from posekit.store import Workspace, bulk_export, export, import_coco
from posekit.store import exports as exports_module

from .store_factories import COCO_JSON, make_person, make_prediction, need_data
from .test_bulk_coco import _varied_coco


def _both(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **options: Any):
    fast_path, general_path = tmp_path / "fast.json", tmp_path / "general.json"
    calls: list[Any] = []
    real = exports_module.export_coco_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(exports_module, "export_coco_rows", counted)
        patch.setattr(bulk_export, "CHUNK_ROWS", 7)  # many chunks, a short last one
        fast = export(ws, "p", fast_path, format="coco", **options)
    assert calls == [1]
    with monkeypatch.context() as patch:
        patch.setattr(exports_module, "_export_coco_fast", lambda *args: None)
        general = export(ws, "p", general_path, format="coco", **options)
    assert fast_path.read_bytes() == general_path.read_bytes()
    assert (fast.images, fast.instances, fast.left_out) == (
        general.images, general.instances, general.left_out,
    )  # fmt: skip
    return fast


@pytest.fixture
def edited(tmp_path: Path) -> Workspace:
    """Two imported datasets, then edits: moved points (stale stash), new predictions
    (scores around the threshold), a rejected-only image, an image without instances."""
    path = tmp_path / "gen.json"
    path.write_text(json.dumps(_varied_coco(7, True)))
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    import_coco(ws, "p", "a", path, copy_media=False)
    import_coco(ws, "p", "b", COCO_JSON if COCO_JSON.is_file() else path, copy_media=False)
    items = ws.list_items("p", dataset="a")
    for n, item in enumerate(items[:12]):
        instances = ws.get_instances(item)
        if instances and n % 2 == 0:  # geometry changed: the stash no longer applies
            inst = instances[0]
            inst.keypoints = inst.keypoints + np.float32(1.25)
            inst.keypoints[inst.visibility == 0] = 0
            ws.update_instance(inst.id, inst, 1)
        ws.add_instance(item, make_prediction(n, score=0.1 + 0.08 * n))
    ws.add_instance(items[13], make_person(3, status="rejected"))
    # A prediction, then a person labeled by hand on the same image: the index on
    # (item, status) returns them in the other order than their ids.
    ws.add_instance(items[15], make_prediction(20, score=0.9))
    ws.add_instance(items[15], make_person(21))
    for inst in ws.get_instances(items[14]):
        ws.delete_instance(inst.id)
    yield ws
    ws.close()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"statuses": INSTANCE_STATUSES},
        {"statuses": INSTANCE_STATUSES, "images": "all"},
        {"statuses": ("predicted",), "min_score": 0.5},
        {"statuses": ("accepted", "predicted"), "min_score": 0.0},
        {"dataset": "a", "statuses": INSTANCE_STATUSES},
        {"dataset": "b", "images": "all"},
    ],
    ids=["default", "all-statuses", "all-images", "min-score", "min-score-0", "one", "other"],
)
def test_fast_export_equals_general_path(
    edited: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    report = _both(edited, tmp_path, monkeypatch, **options)
    assert report.images > 0


def test_fast_export_round_trips_the_coco_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_data()
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    import_coco(ws, "p", "all", COCO_JSON, copy_media=False)
    _both(ws, tmp_path, monkeypatch, statuses=INSTANCE_STATUSES)
    ws.close()


def test_fast_export_of_an_empty_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    report = _both(ws, tmp_path, monkeypatch, images="all")
    assert (report.images, report.instances) == (0, 0)
    ws.close()


def test_integers_beyond_64_bits_take_the_general_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """orjson cannot write them: the general path writes the file with the json module."""
    data = _varied_coco(1, False)
    data["annotations"][5]["huge"] = 2**70
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(data))
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    import_coco(ws, "p", "all", path, copy_media=False)
    out = tmp_path / "out.json"
    export(ws, "p", out, format="coco", statuses=INSTANCE_STATUSES)
    assert json.loads(out.read_text())["annotations"][5]["huge"] == 2**70
    assert not list(tmp_path.glob(".out.json.*"))  # the streamed attempt left nothing
    general = tmp_path / "general.json"
    monkeypatch.setattr(exports_module, "_export_coco_fast", lambda *args: None)
    export(ws, "p", general, format="coco", statuses=INSTANCE_STATUSES)
    assert out.read_bytes() == general.read_bytes()
    ws.close()


def test_rows_are_ordered_by_item_then_instance_id_with_each_items_run() -> None:
    rows = [(2, 5, "a"), (1, 9, "b"), (2, 3, "c"), (1, 4, "d"), (7, 1, "e")]
    assert bulk_export._by_item(rows) == (
        [(1, 4, "d"), (1, 9, "b"), (2, 3, "c"), (2, 5, "a"), (7, 1, "e")],
        {1: (0, 2), 2: (2, 4), 7: (4, 5)},
    )
    ordered = [(1, 1), (1, 2), (3, 1), (5, 1), (5, 2), (5, 3)]
    same, runs = bulk_export._by_item(ordered)
    assert same is ordered
    assert runs == {1: (0, 2), 3: (2, 3), 5: (3, 6)}
    assert bulk_export._by_item([]) == ([], {})
