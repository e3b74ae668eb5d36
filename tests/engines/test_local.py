"""Tests for posekit.engines.local: resumable, interruptible auto-labeling of a project."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from fakes import BrightnessDetector, GridPose, NobodyDetector
from posekit import Instance, get_preset
from posekit.engines import ENGINES, get_engine
from posekit.engines.local import autolabel
from posekit.models.base import Detector, PoseEstimator
from posekit.pipeline.options import AutolabelOptions
from posekit.store import Workspace, import_images

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLE_FOLDERS = [
    DATA / "coco-val2017-sample" / "images",
    DATA / "crowdpose-sample" / "images",
    DATA / "aic-sample",
]


def test_backends_implement_the_protocols() -> None:
    assert isinstance(BrightnessDetector(), Detector)
    assert isinstance(GridPose(), PoseEstimator)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    for folder in SAMPLE_FOLDERS:
        if not folder.is_dir():
            pytest.skip(f"sample data not found at {folder}")
    workspace = Workspace(tmp_path / "ws")
    workspace.create_project("people", get_preset("coco17"))
    report = import_images(workspace, "people", "train", SAMPLE_FOLDERS)
    assert report.added == 9 and not report.failures
    yield workspace
    workspace.close()


def labels(ws: Workspace) -> dict[str, list[Instance]]:
    items = ws.list_items("people")
    by_item = ws.instances_by_item([i.id for i in items])
    return {i.file_name: by_item[i.id] for i in items}


def expected_people(ws: Workspace) -> dict[str, int]:
    """People the test backend finds on each image (run directly, without the store)."""
    from posekit.media import load_image

    detector = BrightnessDetector()
    return {
        item.file_name: len(detector.detect([load_image(item.path)])[0])
        for item in ws.list_items("people")
    }


def test_autolabel_labels_every_item(ws: Workspace) -> None:
    detector = BrightnessDetector()
    report = autolabel(
        ws, "people", AutolabelOptions(batch_size=4), detector=detector, pose=GridPose()
    )
    expected = expected_people(ws)
    assert report.processed == 9 and report.skipped == 0 and not report.failures
    assert report.instances == sum(expected.values())
    assert report.device == "detector: cpu, pose: cpu"
    assert not detector.closed  # a model passed in belongs to the caller
    got = labels(ws)
    for name, instances in got.items():
        assert len(instances) == expected[name]
        assert all(i.status == "predicted" and i.source == "model:gridpose" for i in instances)
    assert {i.status for i in ws.list_items("people")} == {"predicted"}
    # A second run has nothing to do.
    again = autolabel(ws, "people", detector=BrightnessDetector(), pose=GridPose())
    assert again.processed == 0 and again.skipped == 9 and again.instances == 0


def test_cancel_mid_run_leaves_items_whole_and_resume_finishes(ws: Workspace) -> None:
    cancel = threading.Event()

    def cancel_during_second_batch(call: int) -> None:
        if call == 2:
            cancel.set()

    first = autolabel(
        ws,
        "people",
        AutolabelOptions(batch_size=2),
        detector=BrightnessDetector(on_batch=cancel_during_second_batch),
        pose=GridPose(),
        should_stop=cancel.is_set,
    )
    assert first.cancelled and first.processed == 4
    expected = expected_people(ws)
    done = {name for name, inst in labels(ws).items() if inst}
    items = {i.file_name: i for i in ws.list_items("people")}
    labeled_items = {n for n, i in items.items() if i.status == "predicted"}
    assert len(labeled_items) == 4
    for name, instances in labels(ws).items():
        # Each item is fully labeled or untouched.
        assert len(instances) == (expected[name] if name in labeled_items else 0)
    assert done <= labeled_items

    second = autolabel(
        ws, "people", AutolabelOptions(batch_size=2), detector=BrightnessDetector(), pose=GridPose()
    )
    assert second.processed == 5 and second.skipped == 4 and not second.cancelled
    assert {n: len(i) for n, i in labels(ws).items()} == expected


def test_keyboard_interrupt_keeps_committed_batches_only(ws: Workspace) -> None:
    with pytest.raises(KeyboardInterrupt):
        autolabel(
            ws,
            "people",
            AutolabelOptions(batch_size=3),
            detector=BrightnessDetector(),
            pose=GridPose(interrupt_on_call=2),
        )
    expected = expected_people(ws)
    predicted = [i for i in ws.list_items("people") if i.status == "predicted"]
    assert len(predicted) == 3
    for name, instances in labels(ws).items():
        assert len(instances) in (0, expected[name])
    assert sum(len(v) for v in labels(ws).values()) == sum(expected[i.file_name] for i in predicted)


def test_unreadable_and_failing_items_are_reported(ws: Workspace) -> None:
    items = ws.list_items("people")
    broken = items[0]
    # Corrupt the stored copy (the workspace's own file, e.g. a disk error).
    broken.path.write_bytes(broken.path.read_bytes()[:200])
    odd = items[5]
    report = autolabel(
        ws,
        "people",
        AutolabelOptions(batch_size=4),
        detector=BrightnessDetector(),
        pose=GridPose(fail_on_call=odd.height),
    )
    failed = dict(report.failures)
    assert broken.file_name in failed
    assert "truncated" in failed[broken.file_name].lower()
    same_height = [i for i in items if i.height == odd.height and i.id != broken.id]
    assert set(failed) == {broken.file_name} | {i.file_name for i in same_height}
    assert report.processed == 9 - len(failed)
    assert all(not labels(ws)[name] for name in failed)


def test_overwrite_replaces_only_predictions(ws: Workspace) -> None:
    autolabel(ws, "people", detector=BrightnessDetector(), pose=GridPose())
    item = ws.list_items("people")[0]
    records = ws.get_instance_records(item)
    assert records
    accepted = records[0]
    ws.update_instance(
        accepted.id, accepted.instance.copy(status="accepted"), expected_version=accepted.version
    )
    manual = ws.add_instance(
        item, Instance(np.full((17, 2), 5.0), np.full(17, 1), source="manual", status="accepted")
    )
    old_predicted = {r.id for r in records[1:]}
    report = autolabel(
        ws,
        "people",
        AutolabelOptions(overwrite=True),
        detector=BrightnessDetector(),
        pose=GridPose(),
    )
    assert report.processed == 9 and report.skipped == 0
    after = ws.get_instance_records(item)
    ids = {r.id for r in after}
    assert accepted.id in ids and manual.id in ids
    assert not (old_predicted & ids)
    kept = next(r for r in after if r.id == accepted.id)
    assert kept.version == accepted.version + 1 and kept.instance.status == "accepted"
    predicted = [r for r in after if r.instance.status == "predicted"]
    assert len(predicted) == len(records)


def test_items_copied_from_elsewhere_still_resolve(ws: Workspace, tmp_path: Path) -> None:
    # The workspace folder can move: media paths are stored relative to it.
    ws.close()
    moved = tmp_path / "moved"
    shutil.copytree(ws.root, moved)
    other = Workspace(moved)
    report = autolabel(other, "people", detector=BrightnessDetector(), pose=GridPose())
    assert report.processed == 9
    assert all(i.path.is_relative_to(moved.resolve()) for i in other.list_items("people"))
    other.close()


def test_items_where_nobody_was_found_are_not_redone(ws: Workspace) -> None:
    first = autolabel(ws, "people", detector=NobodyDetector(), pose=GridPose())
    assert first.processed == 9 and first.instances == 0
    detector = NobodyDetector()
    again = autolabel(ws, "people", detector=detector, pose=GridPose())
    assert again.processed == 0 and again.skipped == 9 and detector.calls == 0
    redo = autolabel(
        ws,
        "people",
        AutolabelOptions(overwrite=True),
        detector=BrightnessDetector(),
        pose=GridPose(),
    )
    assert redo.processed == 9 and redo.instances == sum(expected_people(ws).values())


def test_autolabel_with_the_default_blazepose_models(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="needs the [mediapipe] extra")
    images = DATA / "coco-val2017-sample" / "images"
    if not images.is_dir():
        pytest.skip(f"sample data not found at {images}")
    workspace = Workspace(tmp_path / "ws")
    workspace.create_project("coco", get_preset("coco17"))
    import_images(workspace, "coco", "val", [images])
    report = autolabel(workspace, "coco")
    assert report.processed == 4 and not report.failures
    assert "tflite" in report.device
    items = workspace.list_items("coco")
    by_item = workspace.instances_by_item([i.id for i in items])
    # The sample has 1 to 7 annotated people per image; every image has someone.
    assert all(len(by_item[i.id]) >= 1 for i in items)
    for instance in (inst for insts in by_item.values() for inst in insts):
        assert instance.status == "predicted" and instance.source == "model:blazepose"
        assert instance.keypoints.shape == (17, 2) and 0 < instance.score <= 1
        assert instance.keypoint_scores is not None
    workspace.close()


def test_progress_reports_items_to_do_after_every_batch(ws: Workspace) -> None:
    calls: list[tuple[int, int | None]] = []
    report = autolabel(
        ws,
        "people",
        AutolabelOptions(batch_size=4),
        detector=BrightnessDetector(),
        pose=GridPose(),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert report.processed == 9
    assert calls == [(0, 9), (4, 9), (8, 9), (9, 9)]


def test_item_selection_by_dataset_and_ids(ws: Workspace) -> None:
    items = ws.list_items("people")
    chosen = (items[1].id, items[4].id)
    report = autolabel(
        ws,
        "people",
        AutolabelOptions(item_ids=chosen),
        detector=BrightnessDetector(),
        pose=GridPose(),
    )
    assert report.processed == 2 and report.skipped == 0
    labeled = {i.id for i in ws.list_items("people") if i.status == "predicted"}
    assert labeled == set(chosen)
    # The other seven items of the dataset remain to be done; the chosen ones are skipped.
    rest = autolabel(
        ws,
        "people",
        AutolabelOptions(dataset="train"),
        detector=BrightnessDetector(),
        pose=GridPose(),
    )
    assert rest.processed == 7 and rest.skipped == 2


def test_min_instance_score_drops_weak_people(ws: Workspace) -> None:
    report = autolabel(
        ws,
        "people",
        AutolabelOptions(min_instance_score=0.99),
        detector=BrightnessDetector(),
        pose=GridPose(),
    )
    assert report.processed == 9 and report.instances == 0


def test_models_named_in_the_options_are_created_and_closed(ws, monkeypatch) -> None:
    from posekit.models import registry

    created: list[BrightnessDetector | GridPose] = []

    def make(kind):
        def factory(arg, **options):
            assert options == {"device": "cpu"}
            model = BrightnessDetector() if kind == "detector" else GridPose()
            created.append(model)
            return model

        return factory

    monkeypatch.setitem(registry.DETECTORS, "fake", make("detector"))
    monkeypatch.setitem(registry.POSE_ESTIMATORS, "fake", make("pose"))
    options = AutolabelOptions(detector="fake", pose="fake", device="cpu")
    report = autolabel(ws, "people", options)
    assert report.processed == 9 and report.device == "detector: cpu, pose: cpu"
    assert len(created) == 2 and all(model.closed for model in created)


def test_engine_table_names_the_local_engine() -> None:
    assert get_engine("local") is autolabel
    assert "local" in ENGINES
    with pytest.raises(ValueError, match="available: local"):
        get_engine("nope")


def test_options_must_be_autolabel_options(ws: Workspace) -> None:
    with pytest.raises(TypeError, match="AutolabelOptions"):
        autolabel(ws, "people", {"batch_size": 2})  # type: ignore[arg-type]
