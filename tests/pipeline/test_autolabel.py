"""Tests for posekit.pipeline.autolabel: resumable, interruptible auto-labeling."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from posekit import Instance, get_preset
from posekit.models import Detections, Detector, PoseEstimator
from posekit.pipeline.autolabel import autolabel
from posekit.skeleton import Skeleton
from posekit.store import Workspace, import_images

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SAMPLE_FOLDERS = [
    DATA / "coco-val2017-sample" / "images",
    DATA / "crowdpose-sample" / "images",
    DATA / "aic-sample",
]


class BrightnessDetector:
    """Deterministic detector: one box per image quadrant brighter than the image mean
    (so different real images give different numbers of people)."""

    name = "brightness"
    device = "cpu"

    def __init__(self, on_batch=None) -> None:
        self.calls = 0
        self.closed = False
        self._on_batch = on_batch

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        if self._on_batch is not None:
            self._on_batch(self.calls)
        out = []
        for image in images:
            h, w = image.shape[:2]
            gray = image.mean(axis=2)
            boxes, scores = [], []
            for qy in range(2):
                for qx in range(2):
                    quad = gray[qy * h // 2 : (qy + 1) * h // 2, qx * w // 2 : (qx + 1) * w // 2]
                    if quad.mean() >= gray.mean():
                        boxes.append([qx * w / 2, qy * h / 2, (qx + 1) * w / 2, (qy + 1) * h / 2])
                        scores.append(float(quad.mean() / 255.0))
            out.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), scores))
        return out

    def close(self) -> None:
        self.closed = True


class GridPose:
    """Deterministic top-down estimator: keypoints on a grid inside each box."""

    name = "gridpose"
    device = "cpu"

    def __init__(self, fail_on_call: int | None = None, interrupt_on_call: int | None = None):
        self.calls = 0
        self.fail_on_call = fail_on_call
        self.interrupt_on_call = interrupt_on_call

    def estimate(
        self,
        images: Sequence[np.ndarray],
        detections: Sequence[Detections],
        skeleton: Skeleton,
    ) -> list[list[Instance]]:
        self.calls += 1
        if self.calls == self.interrupt_on_call:
            raise KeyboardInterrupt
        k = skeleton.num_keypoints
        out = []
        for image, dets in zip(images, detections):
            if self.fail_on_call is not None and image.shape[0] == self.fail_on_call:
                raise RuntimeError(f"cannot handle an image of height {image.shape[0]}")
            people = []
            for box, score in zip(dets.boxes, dets.scores):
                t = np.linspace(0.1, 0.9, k)
                kps = np.stack([box[0] + t * (box[2] - box[0]), box[1] + t * (box[3] - box[1])], 1)
                people.append(
                    Instance(
                        kps,
                        np.full(k, 2),
                        keypoint_scores=np.full(k, 0.5),
                        box=box,
                        score=float(score),
                        source=f"model:{self.name}",
                        status="predicted",
                    )
                )
            out.append(people)
        return out

    def close(self) -> None:
        pass


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
        ws, "people", detector=detector, pose=GridPose(), batch_size=4, progress=False
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
    again = autolabel(ws, "people", detector=BrightnessDetector(), pose=GridPose(), progress=False)
    assert again.processed == 0 and again.skipped == 9 and again.instances == 0


def test_cancel_mid_run_leaves_items_whole_and_resume_finishes(ws: Workspace) -> None:
    cancel = threading.Event()

    def cancel_during_second_batch(call: int) -> None:
        if call == 2:
            cancel.set()

    first = autolabel(
        ws,
        "people",
        detector=BrightnessDetector(on_batch=cancel_during_second_batch),
        pose=GridPose(),
        batch_size=2,
        progress=False,
        cancel=cancel,
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
        ws, "people", detector=BrightnessDetector(), pose=GridPose(), batch_size=2, progress=False
    )
    assert second.processed == 5 and second.skipped == 4 and not second.cancelled
    assert {n: len(i) for n, i in labels(ws).items()} == expected


def test_keyboard_interrupt_keeps_committed_batches_only(ws: Workspace) -> None:
    with pytest.raises(KeyboardInterrupt):
        autolabel(
            ws,
            "people",
            detector=BrightnessDetector(),
            pose=GridPose(interrupt_on_call=2),
            batch_size=3,
            progress=False,
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
        detector=BrightnessDetector(),
        pose=GridPose(fail_on_call=odd.height),
        batch_size=4,
        progress=False,
    )
    failed = dict(report.failures)
    assert broken.file_name in failed
    assert "truncated" in failed[broken.file_name].lower()
    same_height = [i for i in items if i.height == odd.height and i.id != broken.id]
    assert set(failed) == {broken.file_name} | {i.file_name for i in same_height}
    assert report.processed == 9 - len(failed)
    assert all(not labels(ws)[name] for name in failed)


def test_overwrite_replaces_only_predictions(ws: Workspace) -> None:
    autolabel(ws, "people", detector=BrightnessDetector(), pose=GridPose(), progress=False)
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
        detector=BrightnessDetector(),
        pose=GridPose(),
        overwrite=True,
        progress=False,
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
    report = autolabel(
        other, "people", detector=BrightnessDetector(), pose=GridPose(), progress=False
    )
    assert report.processed == 9
    assert all(i.path.is_relative_to(moved.resolve()) for i in other.list_items("people"))
    other.close()


class NobodyDetector(BrightnessDetector):
    """Finds no one: items it saw must still count as labeled."""

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        return [Detections(np.zeros((0, 4), np.float32), np.zeros(0)) for _ in images]


def test_items_where_nobody_was_found_are_not_redone(ws: Workspace) -> None:
    first = autolabel(ws, "people", detector=NobodyDetector(), pose=GridPose(), progress=False)
    assert first.processed == 9 and first.instances == 0
    detector = NobodyDetector()
    again = autolabel(ws, "people", detector=detector, pose=GridPose(), progress=False)
    assert again.processed == 0 and again.skipped == 9 and detector.calls == 0
    redo = autolabel(
        ws,
        "people",
        detector=BrightnessDetector(),
        pose=GridPose(),
        overwrite=True,
        progress=False,
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
    report = autolabel(workspace, "coco", progress=False)
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
