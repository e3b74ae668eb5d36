"""Tests for Workspace.change_template: rename, add, delete, reorder and flip pairs on a
project with instances; versions incremented; one transaction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posekit import Instance
from posekit.skeleton import Skeleton
from posekit.store import (
    TemplateChangeError,
    TemplateVersionError,
    Workspace,
    export_coco,
    import_images,
)
from posekit.store import template_change as module

NAMES = ["head", "left_hand", "right_hand", "left_foot", "right_foot"]


def five_points(names=NAMES, **extra) -> Skeleton:
    data = {
        "name": "five",
        "keypoints": list(names),
        "edges": [[names[0], names[1]], [names[0], names[2]]],
        "flip_pairs": [[names[1], names[2]]],
        "default_sigma": 0.05,
        **extra,
    }
    return Skeleton.from_dict(data)


@pytest.fixture
def ws(tmp_path: Path):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(2):
        Image.new("RGB", (64, 48), (40 * index, 90, 10)).save(folder / f"img{index}.png")
    workspace = Workspace(tmp_path / "ws")
    workspace.create_project("p", five_points())
    import_images(workspace, "p", "train", [folder])
    items = workspace.list_items("p")
    # Instance a: every point labeled; b: right_foot not labeled, with scores.
    xy = np.array([[10, 5], [4, 20], [16, 20], [6, 40], [14, 40]], np.float32)
    workspace.add_instance(items[0].id, Instance(xy, np.array([2, 2, 1, 2, 2], np.uint8)))
    workspace.add_instance(
        items[1].id,
        Instance(
            xy + 1,
            np.array([2, 1, 2, 2, 0], np.uint8),
            keypoint_scores=np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32),
            status="predicted",
            source="model:test",
            score=0.7,
        ),
    )
    yield workspace
    workspace.close()


def records(ws: Workspace):
    return [r for item in ws.list_items("p") for r in ws.get_instance_records(item.id)]


def test_rename_keeps_positions_and_bumps_versions(ws: Workspace) -> None:
    before = records(ws)
    names = ["nose", *NAMES[1:]]
    change = ws.change_template(
        "p", five_points(names), renames={"head": "nose"}, expected_template_version=1
    )
    assert change.renamed == (("head", "nose"),) and not change.added and not change.removed
    assert change.instances == 2 and change.template_version == 2 and change.backup is None
    after = records(ws)
    for old, new in zip(before, after):
        assert new.version == old.version + 1
        np.testing.assert_array_equal(new.instance.keypoints, old.instance.keypoints)
        np.testing.assert_array_equal(new.instance.visibility, old.instance.visibility)
    project = ws.get_project("p")
    assert project.template.keypoints == tuple(names) and project.template_version == 2
    # Exports use the new names.
    out = ws.root / "out.json"
    export_coco(ws, "p", out, statuses=("accepted", "predicted"))
    coco = json.loads(out.read_text())
    assert coco["categories"][0]["keypoints"] == names
    assert len(coco["annotations"]) == 2


def test_add_marks_the_new_point_not_labeled(ws: Workspace) -> None:
    names = [*NAMES[:3], "neck", *NAMES[3:]]
    change = ws.change_template("p", five_points(names))
    assert change.added == ("neck",) and not change.reordered
    first, second = records(ws)
    assert first.instance.visibility.tolist() == [2, 2, 1, 0, 2, 2]
    assert first.instance.keypoints[3].tolist() == [0.0, 0.0]
    assert first.instance.keypoints[4].tolist() == [6.0, 40.0]
    assert second.instance.keypoint_scores.tolist() == pytest.approx([0.9, 0.8, 0.7, 0, 0.6, 0.5])
    assert second.instance.status == "predicted" and second.instance.score == pytest.approx(0.7)


def test_delete_needs_confirmation_and_keeps_the_points_recoverable(ws: Workspace) -> None:
    names = NAMES[:4]
    new = five_points(names)
    preview = ws.change_template("p", new, dry_run=True)
    assert preview.removed == ("right_foot",) and preview.dry_run
    # Instance a has it labeled; b has it not labeled.
    assert preview.labeled_points_dropped == 1 and preview.instances_losing_points == 1
    assert [r.version for r in records(ws)] == [1, 1]
    with pytest.raises(TemplateChangeError, match="drops 1 labeled point"):
        ws.change_template("p", new)
    assert ws.get_project("p").template.num_keypoints == 5
    change = ws.change_template("p", new, drop_labeled=True)
    first, second = records(ws)
    assert first.instance.visibility.tolist() == [2, 2, 1, 2]
    assert first.version == 2 and second.version == 2
    saved = json.loads(change.backup.read_text())
    assert change.backup.is_relative_to(ws.root / module.BACKUP_DIR)
    assert saved["template"]["keypoints"] == NAMES
    assert saved["instances"] == [
        {"instance_id": first.id, "item_id": first.item_id, "file_name": "img0.png",
         "version": 1, "points": {"right_foot": [14.0, 40.0, 2]}}
    ]  # fmt: skip


def test_reorder_changes_only_the_order(ws: Workspace) -> None:
    names = [NAMES[0], NAMES[2], NAMES[1], NAMES[4], NAMES[3]]
    change = ws.change_template("p", five_points(names))
    assert change.reordered and not change.added and not change.removed
    first, _ = records(ws)
    assert first.instance.visibility.tolist() == [2, 1, 2, 2, 2]
    assert first.instance.keypoints.tolist() == [[10, 5], [16, 20], [4, 20], [14, 40], [6, 40]]


def test_flip_pairs_and_edges_change_no_instance_data(ws: Workspace) -> None:
    before = records(ws)
    new = Skeleton.from_dict(
        {**five_points().to_dict(), "flip_pairs": [["left_hand", "right_hand"],
                                                   ["left_foot", "right_foot"]],
         "edges": [["head", "left_foot"]], "edge_colors": [[1, 2, 3]]}
    )  # fmt: skip
    ws.change_template("p", new)
    assert ws.get_project("p").template.flip_pairs[1] == ("left_foot", "right_foot")
    for old, now in zip(before, records(ws)):
        assert now.version == old.version + 1
        np.testing.assert_array_equal(now.instance.keypoints, old.instance.keypoints)


def test_rename_add_delete_together(ws: Workspace) -> None:
    names = ["nose", "left_hand", "right_hand", "left_foot", "tail"]
    ws.change_template("p", five_points(names), renames={"head": "nose"}, drop_labeled=True)
    first, _ = records(ws)
    assert first.instance.visibility.tolist() == [2, 2, 1, 2, 0]
    assert first.instance.keypoints[0].tolist() == [10, 5]


def test_stale_template_version_and_bad_renames(ws: Workspace) -> None:
    ws.change_template("p", five_points(), expected_template_version=1)
    with pytest.raises(TemplateVersionError, match="version 1 is stale"):
        ws.change_template("p", five_points(), expected_template_version=1)
    with pytest.raises(TemplateChangeError, match="'nope' is not a keypoint"):
        ws.change_template("p", five_points(), renames={"nope": "head"})
    with pytest.raises(TemplateChangeError, match="both become"):
        ws.change_template(
            "p", five_points(["x", *NAMES[1:]]), renames={"head": "x", "left_hand": "x"}
        )


def test_a_failure_half_way_changes_nothing(ws: Workspace, monkeypatch) -> None:
    before = records(ws)
    calls = []
    real = module._migrated

    def failing(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args)

    monkeypatch.setattr(module, "_migrated", failing)
    monkeypatch.setattr(module, "_CHUNK", 1)  # the first instance is written before
    with pytest.raises(RuntimeError, match="disk on fire"):
        ws.change_template("p", five_points(["nose", *NAMES[1:]]), renames={"head": "nose"})
    assert records(ws) == before
    project = ws.get_project("p")
    assert project.template.keypoints == tuple(NAMES) and project.template_version == 1
