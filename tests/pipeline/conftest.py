"""Fixtures for the pipeline tests: the BlazePose models (skipped without the
[mediapipe] extra) and a real photo with one person."""

from __future__ import annotations

import pytest

from posekit.media.image import load_image
from posekit.models import ModelError
from posekit.models.registry import create_pose_estimator


@pytest.fixture(scope="module")
def blazepose():
    """Skip unless the BlazePose models can run here."""
    pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
    from posekit.models.blazepose import find_model_dir

    try:
        find_model_dir()
    except ModelError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"BlazePose models unavailable: {exc}")


@pytest.fixture(scope="module")
def image(shared_data):
    # one person, 17 labeled keypoints, box (280.8, 44.7) size 218.7 x 346.7
    return load_image(shared_data / "coco-val2017-sample" / "images" / "000000000785.jpg")


@pytest.fixture(scope="module")
def estimator(blazepose):
    est = create_pose_estimator("blazepose")
    yield est
    est.close()
