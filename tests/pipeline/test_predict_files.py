"""predict_files (the ``posekit predict`` path) with fake backends."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fakes import BrightnessDetector, GridPose
from posekit.core import Detections
from posekit.pipeline.predict_files import predict_files
from posekit.skeleton import get_preset


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png", "sub/c.png"):
        pixels = rng.integers(0, 255, (30 + len(name), 40, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / name)
    (root / "broken.png").write_bytes((root / "a.png").read_bytes()[:60])
    return root


def test_every_readable_file_is_predicted_and_failures_name_the_file(folder):
    calls = []
    detector = BrightnessDetector()
    result = predict_files(
        [folder],
        get_preset("coco17"),
        GridPose(),
        detector,
        batch_size=2,
        progress=lambda done, total: calls.append((done, total)),
    )
    names = [image.image.file_name for image in result.dataset.images]
    assert names == ["a.png", "b.png", "sub/c.png"]
    assert [image.image.id for image in result.dataset.images] == [1, 2, 3]
    assert [image.image.height for image in result.dataset.images] == [35, 35, 39]
    assert result.paths["sub/c.png"] == folder / "sub" / "c.png"
    [(path, reason)] = result.failures
    assert path == str(folder / "broken.png") and not reason.startswith(path)
    assert calls == [(0, 4), (2, 4), (4, 4)]
    assert sum(detector.batch_sizes) == 3


def test_given_boxes_are_matched_by_name_then_base_name(folder):
    box = Detections(np.array([[0, 0, 10, 10]], np.float32), [0.7])
    two = Detections(np.array([[0, 0, 10, 10], [5, 5, 20, 20]], np.float32), [0.7, 0.6])
    result = predict_files(
        [folder], get_preset("coco17"), GridPose(), boxes={"a.png": box, "other/c.png": two}
    )
    people = {image.image.file_name: len(image.instances) for image in result.dataset.images}
    assert people == {"a.png": 1, "b.png": 0, "sub/c.png": 2}


def test_predict_files_needs_a_detector_or_boxes(folder):
    with pytest.raises(ValueError, match="detector or boxes"):
        predict_files([folder], get_preset("coco17"), GridPose())
