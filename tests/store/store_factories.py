"""Helpers of the store tests: sample data paths, media listing, instance factories
(sized for the tiny images of the ``people`` fixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posekit import Instance
from posekit.store import Workspace

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
COCO_DIR = DATA / "coco-val2017-sample"
COCO_JSON = COCO_DIR / "person_keypoints.json"


def need_data() -> None:
    """Skip the test when the shared sample data is not there."""
    if not COCO_JSON.is_file():
        pytest.skip(f"sample data not found at {COCO_DIR}")


def media_files(ws: Workspace) -> list[str]:
    """The files under a workspace's media folder, relative and sorted."""
    return sorted(
        p.relative_to(ws.media_root).as_posix() for p in ws.media_root.rglob("*") if p.is_file()
    )


def make_person(seed: int = 0, **fields) -> Instance:
    """A 17-keypoint person inside a 64x48 image."""
    rng = np.random.default_rng(seed)
    xy = np.stack([rng.uniform(0, 63, 17), rng.uniform(0, 47, 17)], axis=1)
    return Instance(xy.astype(np.float32), rng.integers(0, 3, 17).astype(np.uint8), **fields)


def make_prediction(seed: int = 0, score: float = 0.5, **fields) -> Instance:
    return make_person(
        seed,
        status="predicted",
        source="model:test",
        score=score,
        keypoint_scores=np.full(17, score, np.float32),
        **fields,
    )
