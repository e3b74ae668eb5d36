"""Deterministic fake model backends for tests that must not need a real model.

Import them as ``from fakes import BrightnessDetector, GridPose`` (``tests/`` is on
``sys.path`` through its ``conftest.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from posekit import Instance
from posekit.core import Detections
from posekit.skeleton import Skeleton


class BrightnessDetector:
    """One box per image quadrant brighter than the image mean (so different real
    images give different numbers of people)."""

    name = "brightness"
    device = "cpu"

    def __init__(self, on_batch: Callable[[int], None] | None = None) -> None:
        self.calls = 0
        self.batch_sizes: list[int] = []
        self.closed = False
        self._on_batch = on_batch

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        self.batch_sizes.append(len(images))
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


class NobodyDetector(BrightnessDetector):
    """Finds no one."""

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        self.batch_sizes.append(len(images))
        return [Detections(np.zeros((0, 4), np.float32), np.zeros(0)) for _ in images]


class GridPose:
    """Top-down estimator: keypoints on a diagonal grid inside each box, scored by
    the box score.

    Args:
        fail_on_call: Raise on images of this height (a model error on one image).
        interrupt_on_call: Raise ``KeyboardInterrupt`` on this call number.
    """

    name = "gridpose"
    device = "cpu"

    def __init__(self, fail_on_call: int | None = None, interrupt_on_call: int | None = None):
        self.calls = 0
        self.closed = False
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
        self.closed = True
