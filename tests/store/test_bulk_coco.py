"""The streaming COCO import (store/bulk_coco.py) against the general import path.

The general path (``import_dataset`` building a PoseDataset, then inserting) is the
reference: the same file imported both ways must give the same rows (every column
but the timestamps), the same listing counts, the same dataset metadata and
byte-identical COCO exports; a bad annotation in any chunk must raise the error
:func:`from_coco` raises and write nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from posekit import get_preset
from posekit.formats.coco import CocoFormatError, from_coco
from posekit.statuses import INSTANCE_STATUSES
from posekit.store import Workspace, bulk_coco, export_coco, import_coco, import_images
from posekit.store import imports as imports_module
from posekit.store.import_report import MissingMediaError
from posekit.store.tables import DatasetCountRow, DatasetRow, InstanceRow, ItemRow

from .store_factories import COCO_JSON, make_person, need_data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers_coco import make_coco

_TIMES = {"created_at", "updated_at", "stage_changed_at"}


def _rows(ws: Workspace, table: Any) -> list[tuple[Any, ...]]:
    columns = [c for c in table.__table__.columns if c.name not in _TIMES]
    with ws.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(table.id)).all()]


def _state(ws: Workspace) -> dict[str, Any]:
    with ws.engine.connect() as conn:
        counts = conn.execute(
            select(DatasetCountRow.dataset_id, DatasetCountRow.num_items,
                   DatasetCountRow.num_instances).order_by(DatasetCountRow.dataset_id)
        ).all()  # fmt: skip
        extras = conn.execute(select(DatasetRow.extra).order_by(DatasetRow.id)).scalars().all()
    return {
        "items": _rows(ws, ItemRow),
        "instances": _rows(ws, InstanceRow),
        "counts": [tuple(c) for c in counts],
        "extra": extras,
    }


def _varied_coco(seed: int, shuffle: bool) -> dict[str, Any]:
    """A generated COCO-17 file with every kind of annotation the reader treats apart."""
    data = make_coco(80, 600, seed=seed, crowd_fraction=0.05)
    anns = data["annotations"]
    for a, ann in enumerate(anns):
        if a % 11 == 0:  # a prediction with keypoint scores and a score
            ann["posekit"] = {
                "status": "predicted", "source": "model:rtm",
                "keypoint_scores": [round(0.05 * (i % 20), 2) for i in range(17)],
            }  # fmt: skip
            ann["score"] = 0.75
        if a % 13 == 1:  # float coordinates with more digits than float32 holds
            ann["keypoints"][0] = ann["keypoints"][0] + 0.123456789
        if a % 17 == 2:
            ann["num_keypoints"] += 1  # disagrees with the flags: stashed
        if a % 19 == 3:
            del ann["keypoints"]  # box only
            del ann["num_keypoints"]
        if a % 23 == 4:
            ann["attributes"] = {"occluded": True, "note": f"n{a}"}  # unknown field
        if a % 29 == 5:
            ann["iscrowd"] = False
        if a % 31 == 6:
            ann["area"] = int(ann["area"])
        if a % 37 == 7:
            ann["track_id"] = a
        if a % 41 == 8:
            ann["posekit"] = {"status": "rejected", "source": "model:rtm"}
    data["images"][3]["flickr_url"] = "http://example.org/x.jpg"
    data["extra_top"] = {"kept": [1, 2, 3]}
    if shuffle:
        anns.reverse()
        anns[:] = anns[1::2] + anns[::2]
    return data


def _import_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: Path, **options: Any):
    """The file imported by the bulk path and by the general path (two workspaces)."""
    out = {}
    calls: list[int] = []
    real = imports_module.import_coco_rows

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    for name in ("bulk", "general"):
        ws = Workspace(tmp_path / f"ws-{name}")
        ws.create_project("p", get_preset("coco17"))
        with monkeypatch.context() as patch:
            if name == "general":
                patch.setattr(imports_module, "streamable", lambda *args: False)
            else:
                patch.setattr(bulk_coco, "CHUNK_ROWS", 64)  # many chunks, a short last one
                patch.setattr(imports_module, "import_coco_rows", counted)
            report = import_coco(ws, "p", "all", path, **options)
            if name == "bulk":
                assert calls == [1]  # the bulk path was taken
        out[name] = (ws, report)
    return out


def _assert_same(tmp_path: Path, both: dict[str, Any]) -> None:
    (ws_bulk, rep_bulk), (ws_general, rep_general) = both["bulk"], both["general"]
    for key in ("added", "instances", "box_only", "attached", "skipped", "missing_media"):
        assert getattr(rep_bulk, key) == getattr(rep_general, key), key
    assert _state(ws_bulk) == _state(ws_general)
    for statuses in (None, INSTANCE_STATUSES):
        a, b = tmp_path / "a.json", tmp_path / "b.json"
        export_coco(ws_bulk, "p", a, statuses=statuses)
        export_coco(ws_general, "p", b, statuses=statuses)
        assert a.read_bytes() == b.read_bytes()
    counts = ws_bulk.row_counts()
    assert _state(ws_bulk)["counts"] == [(1, counts["items"], counts["instances"])]
    for ws, _ in both.values():
        ws.close()


@pytest.mark.parametrize("shuffle", [False, True], ids=["image-order", "shuffled"])
def test_bulk_import_equals_general_path_on_generated_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shuffle: bool
) -> None:
    path = tmp_path / "gen.json"
    path.write_text(json.dumps(_varied_coco(5, shuffle)))
    both = _import_both(tmp_path, monkeypatch, path, copy_media=False)
    assert both["bulk"][1].instances == 600
    _assert_same(tmp_path, both)


def test_bulk_import_equals_general_path_on_coco_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coco_folder: Path
) -> None:
    need_data()
    both = _import_both(tmp_path, monkeypatch, coco_folder / "keypoints.json")
    assert both["bulk"][1].added == 4
    _assert_same(tmp_path, both)
    # Register-only, from the original file.
    both = _import_both(tmp_path / "reg", monkeypatch, COCO_JSON, copy_media=False)
    _assert_same(tmp_path, both)


def test_counts_and_triggers_after_bulk_import(tmp_path: Path) -> None:
    path = tmp_path / "gen.json"
    path.write_text(json.dumps(_varied_coco(2, False)))
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    import_coco(ws, "p", "all", path, copy_media=False)
    assert ws.row_counts()["instances"] == 600
    assert _state(ws)["counts"] == [(1, 80, 600)]
    # The count triggers are back: later writes still update the counts.
    item = ws.list_items("p")[0]
    ws.delete_instance(ws.get_instances(item)[0].id)
    ws.add_instance(item, make_person(1))
    ws.add_instance(item, make_person(2))
    assert _state(ws)["counts"] == [(1, 80, 601)]
    # A second import, into another dataset (also empty: the bulk path again).
    import_coco(ws, "p", "more", path, copy_media=False)
    assert _state(ws)["counts"] == [(1, 80, 601), (2, 80, 600)]
    if ws.engine.dialect.name == "sqlite":
        with ws.engine.connect() as conn:
            names = set(
                conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='trigger'")
                .scalars()
                .all()
            )
        assert {"trg_counts_item_insert", "trg_counts_instance_insert"} <= names
    ws.close()


@pytest.mark.parametrize("shuffle", [False, True], ids=["image-order", "shuffled"])
def test_bad_annotation_in_a_late_chunk_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shuffle: bool
) -> None:
    data = _varied_coco(3, shuffle)
    anns = data["annotations"]
    anns[500]["score"] = "high"  # found by the per-annotation checks, chunk 7 of 10
    anns[120]["iscrowd"] = 3  # ... and an earlier one in file order
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CocoFormatError) as expected:
        from_coco(data, get_preset("coco17"), source=str(path))
    assert "annotations[120]" in str(expected.value)
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    before = _state(ws)
    monkeypatch.setattr(bulk_coco, "CHUNK_ROWS", 64)
    with pytest.raises(CocoFormatError) as raised:
        import_coco(ws, "p", "all", path, copy_media=False)
    assert str(raised.value) == str(expected.value)
    assert _state(ws) == before  # no dataset, no items, no counts
    assert ws.row_counts()["items"] == 0
    # Fixed, the same file imports (the failed attempt left nothing in the way).
    anns[500]["score"], anns[120]["iscrowd"] = 0.5, 1
    path.write_text(json.dumps(data))
    assert import_coco(ws, "p", "all", path, copy_media=False).instances == 600
    ws.close()


def test_missing_image_and_bad_annotation_reports_the_annotation(
    tmp_path: Path, coco_folder: Path
) -> None:
    """The general path checks all annotations before the images: so does the bulk path."""
    need_data()
    path = coco_folder / "keypoints.json"
    data = json.loads(path.read_text())
    data["images"][1]["file_name"] = "images/absent.jpg"
    data["annotations"][-1]["num_keypoints"] = "many"
    path.write_text(json.dumps(data))
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    with pytest.raises(CocoFormatError, match="num_keypoints"):
        import_coco(ws, "p", "all", path)
    data["annotations"][-1]["num_keypoints"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(MissingMediaError, match=r"absent\.jpg"):
        import_coco(ws, "p", "all", path)
    assert ws.row_counts()["items"] == 0
    ws.close()


def test_general_path_bad_annotation_leaves_no_new_dataset(tmp_path: Path) -> None:
    """A file the bulk path does not take (video frames): its per-annotation checks
    run after the dataset is created, which a failure removes again."""
    data = _varied_coco(4, False)
    for image in data["images"]:
        image["vid_id"] = "000001"
    data["annotations"][300]["score"] = "high"
    path = tmp_path / "video.json"
    path.write_text(json.dumps(data))
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    with pytest.raises(CocoFormatError, match=r"annotations\[300\].*'score'"):
        import_coco(ws, "p", "frames", path, copy_media=False)
    assert ws.list_datasets("p") == []
    ws.close()


@pytest.mark.parametrize("existing", ["attach", "skip"])
def test_existing_images_attach_or_skip(tmp_path: Path, coco_folder: Path, existing: str) -> None:
    """``existing="skip"`` leaves images already in the dataset as they are; the
    default attaches the file's annotations to them (the general path: not empty)."""
    need_data()
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    assert import_images(ws, "p", "all", [coco_folder]).added == 4
    report = import_coco(ws, "p", "all", coco_folder / "keypoints.json", existing=existing)
    if existing == "skip":
        assert (report.attached, report.added, report.instances) == (0, 0, 0)
        assert len(report.skipped) == 4
        assert all("kept as it is" in reason for _, reason in report.skipped)
        assert ws.row_counts()["instances"] == 0
    else:
        assert (report.attached, report.skipped) == (4, [])
        assert ws.row_counts()["instances"] == report.instances == 14
    ws.close()


def test_existing_must_be_attach_or_skip(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.create_project("p", get_preset("coco17"))
    with pytest.raises(ValueError, match="existing must be 'attach' or 'skip'"):
        import_coco(ws, "p", "all", tmp_path / "none.json", existing="merge")  # type: ignore[arg-type]
    ws.close()
