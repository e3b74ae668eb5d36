"""Tests for posekit.store.exports: COCO/YOLO exports through the format table, and the
one default-status policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from posekit import get_preset
from posekit.dataset import PoseDataset
from posekit.formats.registry import FORMATS, readable_formats, writable_formats
from posekit.statuses import DEFAULT_EXPORT_STATUSES, INSTANCE_STATUSES
from posekit.store import (
    StoreError,
    Workspace,
    export,
    export_coco,
    export_yolo,
    import_coco,
    import_dataset,
    project_to_dataset,
)

from .store_factories import COCO_JSON, make_prediction


def test_export_keeps_edits_scores_tracks_and_status(ws: Workspace, coco_folder: Path) -> None:
    import_coco(ws, "people", "val", coco_folder / "keypoints.json")
    item = ws.list_items("people")[0]
    record = ws.get_instance_records(item)[0]
    edited = record.instance.copy(
        keypoints=record.instance.keypoints + 1.5, status="rejected", track_id=3
    )
    ws.update_instance(record.id, edited, record.version)
    pred = edited.copy(
        source="model:blazepose",
        status="predicted",
        score=0.75,
        keypoint_scores=np.linspace(0.1, 0.9, 17),
        extra={},
        track_id=None,
    )
    ws.replace_predictions(item, [pred])
    out = ws.root.parent / "edited.json"
    export_coco(ws, "people", out, statuses=INSTANCE_STATUSES)  # default: accepted only
    from posekit.formats.coco import read_coco

    back = read_coco(out, get_preset("coco17"))
    by_name = {li.image.file_name: li for li in back.images}
    instances = by_name[item.file_name].instances
    statuses = sorted(i.status for i in instances)
    assert statuses.count("rejected") == 1 and statuses.count("predicted") == 1
    rejected = next(i for i in instances if i.status == "rejected")
    np.testing.assert_array_equal(rejected.keypoints, edited.keypoints)
    # The exported id is the one the instance had in the imported file.
    original = json.loads((coco_folder / "keypoints.json").read_text())
    image_id = next(i["id"] for i in original["images"] if i["file_name"] == item.file_name)
    first_ann = next(a for a in original["annotations"] if a["image_id"] == image_id)
    assert rejected.track_id == 3 and rejected.id == first_ann["id"]
    predicted = next(i for i in instances if i.status == "predicted")
    assert predicted.score == 0.75 and predicted.source == "model:blazepose"
    np.testing.assert_allclose(predicted.keypoint_scores, pred.keypoint_scores)
    all_ids = [i.id for li in back.images for i in li.instances]
    assert len(set(all_ids)) == len(all_ids) == 15
    # Only accepted instances when asked.
    only = ws.root.parent / "accepted.json"
    report = export_coco(ws, "people", only, statuses=["accepted"])
    assert report.instances == 13


def test_export_of_two_datasets_keeps_names_and_ids_unique(ws: Workspace, tmp_path: Path) -> None:
    for name in ("a", "b"):
        import_coco(ws, "people", name, COCO_JSON, copy_media=False)
    out = tmp_path / "both.json"
    report = export_coco(ws, "people", out)
    assert (report.images, report.instances) == (8, 28)
    exported = json.loads(out.read_text())
    names = [i["file_name"] for i in exported["images"]]
    assert len(set(names)) == 8 and all(n.startswith(("a/", "b/")) for n in names)
    ann_ids = [a["id"] for a in exported["annotations"]]
    image_ids = {i["id"] for i in exported["images"]}
    assert len(set(ann_ids)) == 28 and len(image_ids) == 8
    assert {a["image_id"] for a in exported["annotations"]} <= image_ids
    original = {a["id"] for a in json.loads(COCO_JSON.read_text())["annotations"]}
    assert original <= set(ann_ids)  # the first dataset keeps the file's ids


@pytest.fixture
def reviewed_and_not(people):
    """img0: one accepted, one rejected and one predicted instance; img1: new."""
    ws, items = people
    ids = ws.write_predictions(
        {items[0].id: [make_prediction(1), make_prediction(2), make_prediction(3)]},
        overwrite=False,
    )[items[0].id]
    ws.review(items[0].id, {ids[0]: "accept", ids[1]: "reject"})
    return ws


def test_every_format_exports_only_accepted_instances_by_default(
    reviewed_and_not, tmp_path: Path
) -> None:
    ws = reviewed_and_not
    assert DEFAULT_EXPORT_STATUSES == ("accepted",)
    coco = export_coco(ws, "people", tmp_path / "default.json")
    # img1 and img2 are new (nobody labeled them): left out, not written as empty images.
    assert (coco.images, coco.instances, coco.left_out) == (1, 1, 2)
    data = json.loads((tmp_path / "default.json").read_text())
    assert len(data["annotations"]) == 1
    yolo = export_yolo(ws, "people", tmp_path / "yolo", link=False)
    assert yolo.instances == 1 and yolo.path.name == "data.yaml"
    labels = sorted((tmp_path / "yolo" / "labels" / "train").glob("*.txt"))
    assert sum(len(p.read_text().splitlines()) for p in labels) == 1
    # Through the format table by name: the same policy.
    for name in writable_formats():
        report = export(ws, "people", tmp_path / f"by-name-{name}", format=name)
        assert report.instances == 1, name
    # Asked for explicitly: everything.
    everything = export_coco(ws, "people", tmp_path / "all.json", statuses=INSTANCE_STATUSES)
    assert everything.instances == 3


def test_export_and_import_errors_name_the_problem(reviewed_and_not, tmp_path: Path) -> None:
    ws = reviewed_and_not
    with pytest.raises(StoreError, match="'done' is not one of predicted, accepted, rejected"):
        export_coco(ws, "people", tmp_path / "x.json", statuses=["done"])
    with pytest.raises(ValueError, match="unknown format 'nope'; known formats: coco"):
        export(ws, "people", tmp_path / "x", format="nope")
    unreadable = [name for name in FORMATS if name not in readable_formats()]
    for name in unreadable:
        with pytest.raises(StoreError, match="cannot read"):
            import_dataset(ws, "people", "more", tmp_path, format=name)
    assert [d.name for d in ws.list_datasets("people")] == ["train"]


def test_project_to_dataset_is_format_neutral(reviewed_and_not) -> None:
    ws = reviewed_and_not
    dataset, media = project_to_dataset(ws, "people", statuses=INSTANCE_STATUSES)
    assert isinstance(dataset, PoseDataset) and dataset.skeleton.name == "coco17"
    assert sorted(media) == ["img0.png", "img1.png", "img2.png"]
    assert all(path.is_file() for path in media.values())
    counts = {li.image.file_name: len(li.instances) for li in dataset.images}
    assert counts == {"img0.png": 3, "img1.png": 0, "img2.png": 0}
