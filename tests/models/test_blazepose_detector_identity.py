"""The BlazePose detector's faster input preparation gives exactly the detections of
the code it replaced (kept here, verbatim in substance, as the reference): the
letterboxed views resized straight into their canvases, the input tensor written
into one reused buffer, the views prepared ahead (:meth:`BlazePoseDetector.prepare`,
possibly in another thread) and the weighted NMS from one pairwise IoU matrix.

Bit-for-bit: every box, score and alignment point is compared with ``array_equal``
on every image of the shared sample sets and the street video's frames."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from posekit.media.image import load_image
from posekit.models import ModelError
from posekit.models.blazepose import BlazePoseDetector, find_model_dir
from posekit.models.blazepose.runtime import DETECTOR_SIZE, sigmoid
from posekit.models.boxes import box_iou, weighted_nms
from posekit.models.geometry import Letterbox, letterbox

pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
try:
    find_model_dir()
except ModelError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"BlazePose models unavailable: {exc}", allow_module_level=True)


# ------------------------------------------------- the reference (before the change)
def _letterbox_reference(image: np.ndarray, size: int) -> tuple[np.ndarray, Letterbox]:
    height, width = image.shape[:2]
    box = Letterbox(width, height, size)
    new_w = max(1, min(size, round(width * box.scale)))
    new_h = max(1, min(size, round(height * box.scale)))
    interp = cv2.INTER_AREA if box.scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    x0 = min(round(box.pad_x), size - new_w)
    y0 = min(round(box.pad_y), size - new_h)
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    box.pad_x, box.pad_y = float(x0), float(y0)
    box.scale = 1.0 / 2.0 * (new_w / width + new_h / height)
    return canvas, box


def _weighted_nms_reference(boxes, scores, points, iou_threshold):
    order = np.argsort(-scores, kind="stable")
    boxes, scores, points = boxes[order], scores[order], points[order]
    remaining = np.ones(len(scores), dtype=bool)
    out_boxes, out_scores, out_points = [], [], []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        candidates = np.flatnonzero(remaining)
        overlap = box_iou(boxes[i : i + 1], boxes[candidates])[0]
        cluster = np.union1d(candidates[overlap > iou_threshold], [i])
        weights = scores[cluster][:, None]
        total = float(weights.sum())
        out_boxes.append((boxes[cluster] * weights).sum(axis=0) / total)
        out_points.append((points[cluster] * weights[:, :, None]).sum(axis=0) / total)
        out_scores.append(scores[i])
        remaining[cluster] = False
    if not out_scores:
        return (
            np.zeros((0, 4), np.float32),
            np.zeros((0,), np.float32),
            np.zeros((0, *points.shape[1:]), np.float32),
        )
    return (
        np.asarray(out_boxes, np.float32),
        np.asarray(out_scores, np.float32),
        np.asarray(out_points, np.float32),
    )


def _detect_view_reference(det: BlazePoseDetector, image: np.ndarray):
    canvas, transform = _letterbox_reference(image, DETECTOR_SIZE)
    tensor = canvas.astype(np.float32)[None] * (2.0 / 255.0) - 1.0
    interpreter = det._require_open()
    det._invoke(interpreter, tensor)
    raw = interpreter.get_tensor(det._regressors)[0]
    logits = interpreter.get_tensor(det._logits)[0, :, 0]
    scores = sigmoid(np.clip(logits, -100.0, 100.0))
    keep = np.flatnonzero(scores >= det.score_threshold)
    raw, scores, anchors = raw[keep], scores[keep], det._anchors[keep]
    centre = raw[:, 0:2] + anchors
    half = raw[:, 2:4] / 2.0
    face = np.concatenate([centre - half, centre + half], axis=1)
    points = raw[:, 4:12].reshape(-1, 4, 2) + anchors[:, None, :]
    face, scores, points = _weighted_nms_reference(face, scores, points, det.iou_threshold)
    face_img = transform.to_image(face.reshape(-1, 2, 2)).reshape(-1, 4)
    return face_img, scores, transform.to_image(points)


def _detect_reference(det: BlazePoseDetector, image: np.ndarray):
    from posekit.models.blazepose.detector import _alignment_boxes

    face, scores, points = _detect_view_reference(det, image)
    if det.tile_min_side and max(image.shape[:2]) > det.tile_min_side:
        parts = [(face, scores, points)]
        for x0, y0, min_score, tile in det._tiles(image):
            f, s, p = _detect_view_reference(det, tile)
            keep = s >= min_score
            f, s, p = f[keep], s[keep], p[keep]
            offset = np.array([x0, y0], np.float32)
            parts.append((f + np.tile(offset, 2), s, p + offset))
        face = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        points = np.concatenate([p[2] for p in parts])
        face, scores, points = _weighted_nms_reference(face, scores, points, det.iou_threshold)
    order = np.argsort(-scores, kind="stable")[: det.max_people]
    scores, points = scores[order], points[order]
    return _alignment_boxes(points, image.shape), scores, points


# ----------------------------------------------------------------------- the images
def _sample_images(shared_data: Path) -> list[tuple[str, np.ndarray]]:
    found = []
    for folder in sorted(p for p in shared_data.iterdir() if p.is_dir()):
        for path in sorted(folder.rglob("*.jpg")) + sorted(folder.rglob("*.png")):
            found.append((str(path.relative_to(shared_data)), load_image(path)))
    capture = cv2.VideoCapture(str(shared_data / "videos" / "street_pedestrians_5f.mp4"))
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            found.append((f"street_pedestrians_5f.mp4#{index}", frame[:, :, ::-1].copy()))
            index += 1
    finally:
        capture.release()
    return found


@pytest.fixture(scope="module")
def images(shared_data):
    found = _sample_images(shared_data)
    assert len(found) >= 20, "expected the shared sample sets and the street video"
    rng = np.random.default_rng(7)
    coco = next(image for name, image in found if name.startswith("coco"))
    # Shapes the samples lack: small (no tiles, upscaled), portrait, a 1-pixel strip.
    found += [
        ("small", coco[::4, ::4].copy()),
        ("portrait", np.ascontiguousarray(coco.transpose(1, 0, 2))),
        ("strip", rng.integers(0, 256, (1, 300, 3), dtype=np.uint8)),
        ("noise", rng.integers(0, 256, (500, 700, 3), dtype=np.uint8)),
    ]
    return found


@pytest.fixture(scope="module")
def detector():
    det = BlazePoseDetector()
    yield det
    det.close()


def _assert_same(name, got, want):
    for what, a, b in zip(("boxes", "scores", "keypoints"), got, want):
        assert a.dtype == b.dtype and a.shape == b.shape, (name, what, a.shape, b.shape)
        assert np.array_equal(a, b), f"{name}: {what} differ"


def test_letterbox_is_the_reference_bit_for_bit(images):
    for name, image in images:
        for crop in (image, image[: max(1, image.shape[0] // 3), 1:]):
            canvas, box = letterbox(crop, DETECTOR_SIZE)
            ref_canvas, ref_box = _letterbox_reference(crop, DETECTOR_SIZE)
            assert np.array_equal(canvas, ref_canvas), name
            assert (box.scale, box.pad_x, box.pad_y) == (
                ref_box.scale,
                ref_box.pad_x,
                ref_box.pad_y,
            )


def test_weighted_nms_is_the_reference_bit_for_bit():
    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 7, 40, 600):  # 600: beyond the pairwise matrix, row by row
        centres = rng.uniform(0, 200, (n, 2)).astype(np.float32)
        sizes = rng.uniform(5, 60, (n, 2)).astype(np.float32)
        boxes = np.concatenate([centres - sizes, centres + sizes], axis=1)
        scores = rng.uniform(0, 1, n).astype(np.float32)
        scores[: n // 4] = 0.5  # ties
        points = rng.uniform(0, 200, (n, 4, 2)).astype(np.float32)
        for threshold in (0.3, 0.6):
            got = weighted_nms(boxes, scores, points, threshold)
            want = _weighted_nms_reference(boxes, scores, points, threshold)
            _assert_same(f"n={n}", got, want)


def test_detections_are_the_reference_bit_for_bit(detector, images):
    for name, image in images:
        want = _detect_reference(detector, image)
        got = detector.detect([image])[0]
        _assert_same(name, (got.boxes, got.scores, got.keypoints), want)


def test_views_prepared_in_another_thread_while_the_model_runs(detector, images):
    """prepare() does not touch the model, so the views of the next image can be made
    while the model runs on the current one; the detections do not change."""
    subset = [image for name, image in images if name.startswith(("coco", "street"))][:6]
    want = [detector.detect([image])[0] for image in subset]
    prepared: list = [None] * len(subset)

    def prepare_all() -> None:
        for i, image in enumerate(subset):
            prepared[i] = detector.prepare(image)

    worker = threading.Thread(target=prepare_all)
    worker.start()
    for image in subset:  # the model busy meanwhile
        detector.detect([image])
    worker.join()
    got = detector.detect_prepared(prepared)
    for a, b in zip(got, want):
        _assert_same("threaded", (a.boxes, a.scores, a.keypoints), (b.boxes, b.scores, b.keypoints))


def test_prepare_rejects_what_detect_rejects(detector):
    with pytest.raises(ValueError, match=r"BlazePoseDetector.detect: image #0 must be \(H, W, 3\)"):
        detector.prepare(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="must be uint8"):
        detector.prepare(np.zeros((10, 10, 3), np.float32))


@pytest.mark.parametrize("threshold", [0.0, 1e-40, 0.05, 0.3, 0.9, 0.9995, 1.0])
def test_views_score_only_the_anchors_near_the_threshold(detector, images, threshold):
    """Scores are computed only for anchors whose logit comes within one of the
    threshold's (none skipped where scores saturate): the same detections at any
    threshold, the extremes included."""
    subset = [(n, im) for n, im in images if n.startswith(("coco", "street", "noise"))][:5]
    kept = detector.score_threshold
    detector.score_threshold = threshold
    try:
        for name, image in subset:
            want = _detect_view_reference(detector, image)
            got = detector.detect_view(image)
            _assert_same(f"{name} at {threshold}", got, want)
    finally:
        detector.score_threshold = kept


def test_views_filled_in_another_thread_while_the_model_uses_them(detector, images):
    """fill() (the decoding thread) and detect_prepared (the model's thread) share the
    views of one image: each view is made once, by whichever gets there first, and the
    detections are those of detect()."""
    subset = [image for name, image in images if name.startswith(("coco", "street"))][:6]
    want = [detector.detect([image])[0] for image in subset]
    for filler_starts_late in (False, True):
        prepared = [detector.prepare(image) for image in subset]
        made: list[tuple[int, int, str]] = []
        for number, views in enumerate(prepared):

            def traced(index, make=views._make, number=number, made=made):
                made.append((number, index, threading.current_thread().name))
                make(index)

            views._make = traced
        go = threading.Event()

        def fill_all(go=go, prepared=prepared):
            go.wait()
            for views in prepared:
                views.fill()

        worker = threading.Thread(target=fill_all, name="filler")
        worker.start()
        if not filler_starts_late:
            go.set()
        got = detector.detect_prepared(prepared)
        go.set()
        worker.join()
        for a, b in zip(got, want):
            _assert_same(
                "filled", (a.boxes, a.scores, a.keypoints), (b.boxes, b.scores, b.keypoints)
            )
        assert all(len(v) == 14 and len(v.views) == 14 for v in prepared)  # tiled photos
        assert len(made) == len({(n, i) for n, i, _ in made}) == 14 * len(subset)  # once each
        if filler_starts_late:  # the model's thread made every view itself
            assert {name for _, _, name in made} == {threading.current_thread().name}


def test_a_view_that_cannot_be_made_fails_where_it_is_needed(detector, images, monkeypatch):
    from posekit.models.blazepose import detector as detector_module

    image = next(image for name, image in images if name.startswith("coco"))
    real = detector_module.letterbox_into
    calls = []

    def failing(crop, canvas):
        calls.append(crop.shape)
        if len(calls) == 3:
            raise MemoryError("no room for the third view")
        return real(crop, canvas)

    monkeypatch.setattr(detector_module, "letterbox_into", failing)
    for fill_first in (True, False):
        calls.clear()
        views = detector.prepare(image)
        if fill_first:
            views.fill()  # the worker: the failure is kept for the model's thread
        with pytest.raises(MemoryError, match="third view"):
            detector.detect_prepared([views])
