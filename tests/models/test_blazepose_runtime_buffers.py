"""TfliteModel's in-place input conversion and direct output reads give the model
exactly the inputs, and the caller exactly the outputs, of the per-call float
conversion and ``get_tensor`` they replace (bit-for-bit, on real crops of a shared
sample); the estimator reads only the heatmap windows it needs, with the results of
the whole-heatmap code."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.media.image import load_image
from posekit.models import ModelError
from posekit.models.blazepose import BlazePoseEstimator, find_model_dir
from posekit.models.blazepose.runtime import LANDMARK_SIZE
from posekit.models.geometry import crop_rois

pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
try:
    find_model_dir()
except ModelError as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"BlazePose models unavailable: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def crops(shared_data):
    image = load_image(shared_data / "coco-val2017-sample" / "images" / "000000000785.jpg")
    rois = np.array([[390.0, 218.0, 430.0, 0.0], [390.0, 218.0, 300.0, 0.4], [60, 60, 200, 3.0]])
    return crop_rois(image, rois, LANDMARK_SIZE)


def test_pixels_fed_through_the_buffer_are_the_float_conversion(crops):
    with BlazePoseEstimator(box_align="box") as model:
        interpreter = model._require_open()
        outputs = [d["index"] for d in interpreter.get_output_details()]
        for crop in crops:
            model._invoke(interpreter, crop[None].astype(np.float32) * (1.0 / 255.0))
            want = [interpreter.get_tensor(i) for i in outputs]
            model._invoke_pixels(interpreter, crop, 1.0 / 255.0)
            fed = interpreter.get_tensor(model._input)
            assert np.array_equal(fed, crop[None].astype(np.float32) * (1.0 / 255.0))
            # a flipped (negative-stride) crop, as the flip test feeds it
            model._invoke_pixels(interpreter, crop[:, ::-1], 1.0 / 255.0)
            fed = interpreter.get_tensor(model._input)
            assert np.array_equal(fed, crop[None, :, ::-1].astype(np.float32) * (1.0 / 255.0))
            model._invoke_pixels(interpreter, crop, 1.0 / 255.0)
            for index, expected in zip(outputs, want):
                got = np.empty(expected.shape[1:], expected.dtype)
                model._copy_output(interpreter, index, got)
                assert np.array_equal(got, expected[0])
            interpreter.invoke()  # no view of the interpreter's memory is left alive


# ------------------------------------------ the estimator end to end, old vs new code
def _infer_reference(self, crops):
    """``BlazePoseEstimator._infer`` before the reused buffers (the reference)."""
    from posekit.models.blazepose.runtime import NUM_LANDMARKS

    interpreter = self._require_open()
    n = crops.shape[0]
    landmarks = np.empty((n, NUM_LANDMARKS, 5), np.float32)
    flags = np.empty((n,), np.float32)
    heatmaps = np.empty((n, *self._heatmap_shape), np.float32)
    tensor = crops.astype(np.float32) * (1.0 / 255.0)
    for i in range(n):
        self._invoke(interpreter, tensor[i : i + 1])
        landmarks[i] = interpreter.get_tensor(self._out_landmarks).reshape(NUM_LANDMARKS, 5)
        flags[i] = interpreter.get_tensor(self._out_flag).reshape(-1)[0]
        heatmaps[i] = interpreter.get_tensor(self._out_heatmap)[0]
    return landmarks, flags, heatmaps


def _decode_crop_reference(self, crops):
    """``BlazePoseEstimator._decode_crop`` on whole heatmaps (the reference)."""
    from posekit.models.blazepose.landmarks import refine_with_heatmap_peaks

    landmarks, flags, heatmaps = _infer_reference(self, crops)
    points = landmarks[..., 0:2].copy()
    refined, peaks = refine_with_heatmap_peaks(points, heatmaps)
    if self.heatmap_refine:
        points = refined
    return points, landmarks[..., 2:5], flags, peaks


def _face_run_reference(self, image, rois):
    """``FaceRefiner._run`` before the reused buffer (the reference)."""
    from posekit.models.blazepose.face import FACE_SIZE, NUM_FACE_LANDMARKS
    from posekit.models.blazepose.runtime import sigmoid
    from posekit.models.geometry import crop_to_image

    interpreter = self._require_open()
    crops = crop_rois(image, rois, FACE_SIZE).astype(np.float32) * (1.0 / 255.0)
    mesh = np.empty((len(rois), NUM_FACE_LANDMARKS, 2), np.float32)
    flags = np.empty(len(rois), np.float32)
    for i in range(len(rois)):
        self._invoke(interpreter, crops[i : i + 1])
        mesh[i] = interpreter.get_tensor(self._out_mesh).reshape(-1, 3)[:, :2]
        flags[i] = interpreter.get_tensor(self._out_flag).reshape(-1)[0]
    return crop_to_image(mesh, rois, FACE_SIZE), sigmoid(flags)


def test_estimator_instances_are_those_of_the_reference_code(shared_data):
    """Own detections and ground-truth boxes (the AI-assist path, face refinement
    included) on the COCO sample: every instance array bit-for-bit."""
    import json
    import types

    from posekit.core import Detections
    from posekit.models.blazepose import BlazePoseDetector
    from posekit.skeleton import get_preset

    folder = shared_data / "coco-val2017-sample"
    gt = json.loads((folder / "person_keypoints.json").read_text())
    template = get_preset("coco17")
    with (
        BlazePoseDetector() as detector,
        BlazePoseEstimator() as estimator,
        BlazePoseEstimator() as reference,
    ):
        reference._decode_crop = types.MethodType(_decode_crop_reference, reference)
        if reference._face is not None:
            reference._face._run = types.MethodType(_face_run_reference, reference._face)
        people = 0
        for info in gt["images"]:
            image = load_image(folder / "images" / info["file_name"])
            boxes = [
                [
                    a["bbox"][0],
                    a["bbox"][1],
                    a["bbox"][0] + a["bbox"][2],
                    a["bbox"][1] + a["bbox"][3],
                ]
                for a in gt["annotations"]
                if a["image_id"] == info["id"] and not a["iscrowd"] and a["bbox"][2] > 0
            ]
            given = Detections(np.asarray(boxes, np.float32), np.ones(len(boxes), np.float32))
            for dets in (detector.detect([image])[0], given):
                got = estimator.estimate([image], [dets], template)[0]
                want = reference.estimate([image], [dets], template)[0]
                assert len(got) == len(want)
                for a, b in zip(got, want):
                    assert np.array_equal(a.keypoints, b.keypoints)
                    assert np.array_equal(a.visibility, b.visibility)
                    assert np.array_equal(a.keypoint_scores, b.keypoint_scores)
                    assert a.score == b.score
                people += len(got)
        assert people >= 20


def test_wrong_input_shape_is_an_error_and_leaves_the_model_usable(crops):
    with BlazePoseEstimator(box_align="box") as model:
        interpreter = model._require_open()
        with pytest.raises(ValueError, match=r"input of shape \(128, 128, 3\), the model takes"):
            model._invoke_pixels(interpreter, crops[0][:128, :128], 1.0 / 255.0)
        model._invoke_pixels(interpreter, crops[0], 1.0 / 255.0)  # no view left alive


# ------------------------------- heatmap windows vs the whole-heatmap refinement
def _refine_reference(points, heatmaps, kernel, min_confidence):
    """``refine_with_heatmap_peaks`` as it was before the windows were split out."""
    from posekit.models.blazepose.runtime import sigmoid

    n, height, width, k = heatmaps.shape
    scale = LANDMARK_SIZE / width
    col = np.floor(points[..., 0] / scale).astype(np.int64)
    row = np.floor(points[..., 1] / scale).astype(np.int64)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    offsets = np.arange(kernel) - (kernel - 1) // 2
    cols, rows = col[..., None] + offsets, row[..., None] + offsets
    col_ok, row_ok = (cols >= 0) & (cols < width), (rows >= 0) & (rows < height)
    cols_c, rows_c = np.clip(cols, 0, width - 1), np.clip(rows, 0, height - 1)
    batch = np.arange(n)[:, None, None, None]
    chan = np.arange(k)[None, :, None, None]
    window = heatmaps[batch, rows_c[:, :, :, None], cols_c[:, :, None, :], chan]
    weights = sigmoid(window) * (row_ok[:, :, :, None] & col_ok[:, :, None, :])
    total = weights.sum(axis=(2, 3))
    peak = weights.max(axis=(2, 3))
    safe = np.maximum(total, 1e-9)
    mean_col = (weights.sum(axis=2) * cols_c).sum(axis=2) / safe
    mean_row = (weights.sum(axis=3) * rows_c).sum(axis=2) / safe
    refine = inside & (peak >= min_confidence) & (total > 0)
    out = points.copy()
    out[..., 0] = np.where(refine, mean_col * scale, points[..., 0])
    out[..., 1] = np.where(refine, mean_row * scale, points[..., 1])
    return out, np.where(inside, peak, 0.0).astype(np.float32)


@pytest.mark.parametrize("kernel", [7, 5, 1])
def test_heatmap_windows_refine_as_the_whole_heatmap(kernel):
    """Points inside, on the edge and outside the heatmap (and NaN-free logits of
    both signs): the per-crop windows give the whole-heatmap results bit for bit."""
    from posekit.models.blazepose.landmarks import (
        heatmap_windows,
        refine_with_heatmap_peaks,
        refine_with_heatmap_windows,
    )

    rng = np.random.default_rng(kernel)
    heatmaps = rng.normal(0, 3, (5, 64, 64, 39)).astype(np.float32)
    points = rng.uniform(-20, 276, (5, 39, 2)).astype(np.float32)
    points[0, :4] = [[0, 0], [255.9, 255.9], [256, 10], [-0.01, 100]]
    want = _refine_reference(points, heatmaps, kernel, 0.5)
    windows = np.stack([heatmap_windows(h, p, kernel) for h, p in zip(heatmaps, points)])
    got = refine_with_heatmap_windows(points, windows, (64, 64), 0.5)
    whole = refine_with_heatmap_peaks(points, heatmaps, kernel, 0.5)
    for result in (got, whole):
        assert np.array_equal(result[0], want[0]) and np.array_equal(result[1], want[1])
    none = refine_with_heatmap_windows(points[:0], windows[:0], (64, 64))
    assert none[0].shape == (0, 39, 2) and none[1].shape == (0, 39)
