"""run_pipeline with a detector that prepares its inputs in the decoding thread
(:class:`posekit.pipeline.run.PreparingDetector`): each frame is detected as soon as
it is decoded, and the results are exactly those of detecting and estimating each
frame on its own (``posekit.pipeline.predict``) with the same models."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Sequence
from pathlib import Path

import cv2
import numpy as np

from fakes import BrightnessDetector, GridPose
from posekit import Instance, get_preset
from posekit.core import Detections
from posekit.media.image import load_image
from posekit.pipeline import AutolabelOptions, FrameError
from posekit.pipeline.postprocess import postprocess_instances
from posekit.pipeline.predict import predict
from posekit.pipeline.run import PreparingDetector, WorkUnit, run_pipeline

COCO = get_preset("coco17")


class Sink:
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


class PreparingBrightness(BrightnessDetector):
    """The fake detector, its input check and grey conversion done in ``prepare``."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared_in: list[str] = []

    def prepare(self, image: np.ndarray) -> np.ndarray:
        if image.ndim != 3:
            raise ValueError(f"brightness: image must be (H, W, 3), got {image.shape}")
        self.prepared_in.append(threading.current_thread().name)
        return image

    def detect_prepared(self, prepared: Sequence[np.ndarray]) -> list[Detections]:
        return self.detect(list(prepared))


def _assert_same_instances(got: list[Instance], want: list[Instance], key: Hashable) -> None:
    assert len(got) == len(want), key
    for a, b in zip(got, want):
        assert np.array_equal(a.keypoints, b.keypoints), key
        assert np.array_equal(a.visibility, b.visibility), key
        assert np.array_equal(a.keypoint_scores, b.keypoint_scores), key
        assert np.array_equal(a.box, b.box), key
        assert a.score == b.score, key


def test_a_preparing_detector_is_recognised():
    assert isinstance(PreparingBrightness(), PreparingDetector)
    assert not isinstance(BrightnessDetector(), PreparingDetector)


def test_prepared_frames_give_the_results_of_the_plain_detector():
    frames = [np.random.default_rng(i).integers(0, 255, (40, 60, 3), np.uint8) for i in range(7)]
    units = [WorkUnit.of_frame(f"f{i}", f) for i, f in enumerate(frames)]
    plain, prepared = Sink(), Sink()
    options = AutolabelOptions(batch_size=3, min_instance_score=0)
    run_pipeline(units, plain, BrightnessDetector(), GridPose(), COCO, options)
    detector = PreparingBrightness()
    run_pipeline(units, prepared, detector, GridPose(), COCO, options)
    assert prepared.events == plain.events  # same order, same commits
    for key, instances in plain.instances.items():
        _assert_same_instances(prepared.instances[key], instances, key)
    assert detector.prepared_in and set(detector.prepared_in) != {threading.current_thread().name}
    assert detector.batch_sizes == [1] * 7  # each frame detected as soon as it is ready


def test_a_frame_that_cannot_be_prepared_fails_alone():
    good = np.full((40, 60, 3), 200, np.uint8)

    def unreadable() -> np.ndarray:
        raise FrameError("not an image")

    units = [
        WorkUnit.of_frame("a", good),
        WorkUnit.of_frame("grey", np.zeros((40, 60), np.uint8)),
        WorkUnit("gone", unreadable),
        WorkUnit.of_frame("c", good),
    ]
    sink = Sink()
    summary = run_pipeline(
        units, sink, PreparingBrightness(), GridPose(), COCO, AutolabelOptions(batch_size=8)
    )
    reasons = dict(summary.failures)
    assert reasons["grey"] == "ValueError: brightness: image must be (H, W, 3), got (40, 60)"
    assert reasons["gone"] == "not an image"
    assert summary.processed == len(units) - 2
    assert [e[1] for e in sink.events if e[0] in ("put", "fail")] == [u.key for u in units]


# ----------------------------------------------------------- with the real BlazePose
def _frames(shared_data: Path) -> list[tuple[str, np.ndarray]]:
    found = [
        (path.name, load_image(path))
        for path in sorted((shared_data / "coco-val2017-sample" / "images").glob("*.jpg"))
    ]
    capture = cv2.VideoCapture(str(shared_data / "videos" / "street_pedestrians_5f.mp4"))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            found.append((f"street#{len(found)}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
    finally:
        capture.release()
    return found


def test_blazepose_run_equals_predicting_each_frame_alone(shared_data, blazepose):
    from posekit.models.blazepose import BlazePoseDetector, BlazePoseEstimator

    frames = _frames(shared_data)
    assert len(frames) == 9
    options = AutolabelOptions(batch_size=4)  # batches of 4, 4 and 1
    with BlazePoseDetector() as detector, BlazePoseEstimator() as estimator:
        assert isinstance(detector, PreparingDetector)
        sink = Sink()
        summary = run_pipeline(
            [WorkUnit.of_frame(k, f) for k, f in frames],
            sink,
            detector,
            estimator,
            COCO,
            options,
        )
        assert summary.processed == len(frames) and not summary.failures
        assert sum(1 for e in sink.events if e[0] == "commit") == 3
        people = 0
        for key, image in frames:
            alone = predict([image], COCO, detector, estimator)[0]
            want = postprocess_instances(
                alone,
                COCO,
                oks_threshold=options.oks_nms_threshold,
                min_score=options.min_instance_score,
            )
            _assert_same_instances(sink.instances[key], want, key)
            people += len(want)
        assert people >= 15  # the samples hold people: the comparison is not vacuous


class _Filled:
    """Prepared inputs finished by ``fill()`` (or by the detector when it needs them)."""

    def __init__(self, image: np.ndarray, log: list[str]) -> None:
        self.image, self.grey, self.log = image, None, log
        self.lock = threading.Lock()

    def fill(self) -> None:
        with self.lock:
            if self.grey is None:
                self.log.append(threading.current_thread().name)
                self.grey = self.image.mean(axis=2)


class FillingBrightness(BrightnessDetector):
    """The fake detector whose prepared inputs are completed in a second step."""

    def __init__(self) -> None:
        super().__init__()
        self.filled_in: list[str] = []

    def prepare(self, image: np.ndarray) -> _Filled:
        return _Filled(image, self.filled_in)

    def detect_prepared(self, prepared: Sequence[_Filled]) -> list[Detections]:
        for item in prepared:
            item.fill()  # whatever the worker has not done yet
        return self.detect([item.image for item in prepared])


def test_the_worker_fills_prepared_inputs_after_loading_them():
    frames = [np.random.default_rng(i).integers(0, 255, (40, 60, 3), np.uint8) for i in range(9)]
    units = [WorkUnit.of_frame(f"f{i}", f) for i, f in enumerate(frames)]
    plain, filled = Sink(), Sink()
    options = AutolabelOptions(batch_size=4, min_instance_score=0)
    run_pipeline(units, plain, BrightnessDetector(), GridPose(), COCO, options)
    detector = FillingBrightness()
    run_pipeline(units, filled, detector, GridPose(), COCO, options)
    assert filled.events == plain.events
    for key, instances in plain.instances.items():
        _assert_same_instances(filled.instances[key], instances, key)
    assert len(detector.filled_in) == len(frames)  # each filled once, by someone
    assert any(name.startswith("posekit-decode") for name in detector.filled_in)
