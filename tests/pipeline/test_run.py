"""Tests for posekit.pipeline.run: the store-free source -> detect -> pose -> sink loop."""

from __future__ import annotations

import ast
import threading
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import pytest

from fakes import BrightnessDetector, GridPose
from posekit import Instance, get_preset
from posekit.core import Detections
from posekit.pipeline import AutolabelOptions, FrameError, FrameSource, PredictionSink
from posekit.pipeline.run import WorkUnit, run_pipeline

COCO = get_preset("coco17")


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.instances: dict[Hashable, list[Instance]] = {}

    def put(self, key: Hashable, frame: np.ndarray, instances: list[Instance]) -> None:
        self.events.append(("put", key))
        self.instances[key] = instances

    def fail(self, key: Hashable, reason: str) -> None:
        self.events.append(("fail", key, reason))

    def commit(self) -> None:
        self.events.append(("commit",))

    def flush(self) -> None:
        self.events.append(("flush",))

    def count(self, what: str) -> int:
        return sum(1 for event in self.events if event[0] == what)


def frame(height: int = 40, width: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (height, width, 3), dtype=np.uint8)


def units(n: int, **kwargs) -> list[WorkUnit]:
    return [WorkUnit.of_frame(f"f{i}", frame(seed=i, **kwargs)) for i in range(n)]


def test_sources_and_sinks_implement_the_protocols() -> None:
    assert isinstance(RecordingSink(), PredictionSink)
    assert isinstance(units(2), FrameSource)


def test_batches_and_commits_once_per_batch() -> None:
    detector, sink = BrightnessDetector(), RecordingSink()
    summary = run_pipeline(
        units(10), sink, detector, GridPose(), COCO, AutolabelOptions(batch_size=4)
    )
    assert detector.batch_sizes == [4, 4, 2]
    assert summary.processed == summary.total == 10 and not summary.failures
    assert summary.instances == sum(len(v) for v in sink.instances.values()) > 0
    assert [e[1] for e in sink.events if e[0] == "put"] == [f"f{i}" for i in range(10)]
    assert sink.count("commit") == 3 and sink.events[-1] == ("flush",)
    assert summary.device == "detector: cpu, pose: cpu" and not summary.cancelled
    # The instances are what the models give, on the template.
    assert all(i.num_keypoints == 17 for v in sink.instances.values() for i in v)


def test_failures_are_collected_per_unit_and_the_rest_goes_on() -> None:
    def unreadable() -> np.ndarray:
        raise FrameError("file is gone")

    def broken() -> np.ndarray:
        raise ValueError("bad bytes")

    source = [
        WorkUnit.of_frame("ok0", frame(seed=0)),
        WorkUnit("gone", unreadable),
        WorkUnit("broken", broken),
        WorkUnit.of_frame("odd", frame(height=33)),  # the model fails on this one
        WorkUnit.of_frame("ok1", frame(seed=1)),
    ]
    sink = RecordingSink()
    summary = run_pipeline(
        source,
        sink,
        BrightnessDetector(),
        GridPose(fail_on_call=33),
        COCO,
        AutolabelOptions(batch_size=8),
    )
    assert dict(summary.failures) == {
        "gone": "file is gone",
        "broken": "ValueError: bad bytes",
        "odd": "RuntimeError: cannot handle an image of height 33",
    }
    assert summary.processed == 2 and summary.total == 5
    # The batch failed as a whole; the good frames were retried one by one.
    assert set(sink.instances) == {"ok0", "ok1"}
    assert [e[1] for e in sink.events if e[0] in ("put", "fail")] == [
        "ok0",
        "gone",
        "broken",
        "odd",
        "ok1",
    ]


def test_progress_goes_to_the_callback_with_the_total_when_known() -> None:
    calls: list[tuple[int, int | None]] = []
    run_pipeline(
        units(5),
        RecordingSink(),
        BrightnessDetector(),
        GridPose(),
        COCO,
        AutolabelOptions(batch_size=2),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]

    calls.clear()
    run_pipeline(
        (unit for unit in units(3)),  # a stream does not know its length
        RecordingSink(),
        BrightnessDetector(),
        GridPose(),
        COCO,
        AutolabelOptions(batch_size=2),
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls == [(0, None), (2, None), (3, None)]


def test_should_stop_ends_the_run_between_batches_and_flushes() -> None:
    detector, sink = BrightnessDetector(), RecordingSink()
    summary = run_pipeline(
        units(9),
        sink,
        detector,
        GridPose(),
        COCO,
        AutolabelOptions(batch_size=2),
        should_stop=lambda: detector.calls >= 2,
    )
    assert summary.cancelled and summary.processed == summary.total == 4
    assert detector.calls == 2 and sink.count("commit") == 2
    assert sink.events[-1] == ("flush",)


def test_an_interrupt_propagates_without_committing_the_unfinished_batch() -> None:
    sink = RecordingSink()
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(
            units(6),
            sink,
            BrightnessDetector(),
            GridPose(interrupt_on_call=2),
            COCO,
            AutolabelOptions(batch_size=3),
        )
    assert sink.count("put") == 3 and sink.count("commit") == 1 and sink.count("flush") == 0


def test_given_detections_replace_the_detector_and_box_scores_filter() -> None:
    image = frame()
    boxes = Detections(np.array([[0, 0, 30, 20], [10, 10, 50, 40]], np.float32), [0.9, 0.2])
    sink = RecordingSink()
    summary = run_pipeline(
        [WorkUnit.of_frame("a", image, boxes), WorkUnit.of_frame("b", image, boxes)],
        sink,
        None,
        GridPose(),
        COCO,
        AutolabelOptions(min_box_score=0.5),
    )
    assert summary.processed == 2 and summary.device == "pose: cpu"
    assert [len(sink.instances[k]) for k in "ab"] == [1, 1]
    assert sink.instances["a"][0].score == pytest.approx(0.9)


def test_min_instance_score_drops_weak_instances() -> None:
    image = frame()
    boxes = Detections(np.array([[0, 0, 30, 20], [10, 10, 50, 40]], np.float32), [0.9, 0.2])
    sink = RecordingSink()
    summary = run_pipeline(
        [WorkUnit.of_frame("a", image, boxes)],
        sink,
        None,
        GridPose(),
        COCO,
        AutolabelOptions(min_instance_score=0.5),
    )
    assert summary.instances == 1 and len(sink.instances["a"]) == 1


def test_a_unit_without_detections_fails_when_there_is_no_detector() -> None:
    summary = run_pipeline(units(1), RecordingSink(), None, GridPose(), COCO)
    assert summary.processed == 0
    assert "no detector" in summary.failures[0][1]


def test_the_next_batch_is_decoded_while_the_models_run() -> None:
    second_batch_loading = threading.Event()
    loaded_in: set[str] = set()

    def loader(i: int):
        def load() -> np.ndarray:
            loaded_in.add(threading.current_thread().name)
            if i == 2:
                second_batch_loading.set()
            return frame(seed=i)

        return load

    seen_during_first_batch: list[bool] = []

    def on_batch(call: int) -> None:
        if call == 1:
            seen_during_first_batch.append(second_batch_loading.wait(timeout=10))

    run_pipeline(
        [WorkUnit(i, loader(i)) for i in range(4)],
        RecordingSink(),
        BrightnessDetector(on_batch=on_batch),
        GridPose(),
        COCO,
        AutolabelOptions(batch_size=2),
    )
    assert seen_during_first_batch == [True]
    assert all(name.startswith("posekit-decode") for name in loaded_in)


def test_an_empty_source_flushes_and_reports_nothing() -> None:
    sink = RecordingSink()
    summary = run_pipeline([], sink, BrightnessDetector(), GridPose(), COCO)
    assert summary.total == 0 and sink.events == [("flush",)]


def test_pipeline_imports_nothing_from_store_server_or_engines() -> None:
    package = Path(__file__).resolve().parents[2] / "src" / "posekit" / "pipeline"
    forbidden = ("posekit.store", "posekit.server", "posekit.engines", "posekit.cli")
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
