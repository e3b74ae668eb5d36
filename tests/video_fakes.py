"""Synthetic videos of bright squares on black and fake models that find them exactly.

Import as ``from video_fakes import ...`` (``tests/`` is on ``sys.path``). Frames are
written as PNG frame folders (lossless), so every position in a test is exact.

* :func:`square_frames`: one square per person, person ``p`` at ``positions[p](f)``.
* :class:`SquareDetector`: one box per bright blob, exactly around it (blobs are
  told apart by column bands of width ``band``).
* :class:`SquarePose`: inside each given box, finds the bright pixels and puts
  keypoint ``j`` at ``(x0 + 4 * (j % 4), y0 + 4 * (j // 4))`` where ``(x0, y0)`` is the
  blob's top-left pixel: a pose that follows the square exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from posekit import Instance
from posekit.core import Detections
from posekit.skeleton import Skeleton

SIZE = 16


def square_frames(
    count: int,
    positions: Sequence[Callable[[int], tuple[int, int]]],
    *,
    width: int = 160,
    height: int = 96,
) -> list[np.ndarray]:
    frames = []
    for f in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        for where in positions:
            x, y = where(f)
            frame[y : y + SIZE, x : x + SIZE] = 255
        frames.append(frame)
    return frames


def write_frame_folder(folder: Path, frames: Sequence[np.ndarray]) -> Path:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        Image.fromarray(frame).save(folder / f"{i:05d}.png")
    return folder


def square_pose_keypoints(x0: float, y0: float, k: int = 17) -> np.ndarray:
    j = np.arange(k)
    return np.stack([x0 + 4.0 * (j % 4), y0 + 4.0 * (j // 4)], axis=1).astype(np.float32)


class SquareDetector:
    name = "squares"
    device = "cpu"

    def __init__(self, band: int = 80) -> None:
        self.band = band
        self.calls = 0

    def detect(self, images: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        out = []
        for image in images:
            boxes = []
            bright = image[..., 0] > 128
            for start in range(0, image.shape[1], self.band):
                ys, xs = np.nonzero(bright[:, start : start + self.band])
                if len(xs):
                    boxes.append([start + xs.min(), ys.min(), start + xs.max(), ys.max()])
            out.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), [0.9] * len(boxes)))
        return out

    def close(self) -> None:
        pass


class SquarePose:
    name = "squarepose"
    device = "cpu"

    def __init__(self) -> None:
        self.calls = 0
        self.boxes: list[np.ndarray] = []

    def estimate(
        self, images: Sequence[np.ndarray], detections: Sequence[Detections], skeleton: Skeleton
    ) -> list[list[Instance]]:
        self.calls += 1
        out = []
        for image, dets in zip(images, detections):
            people = []
            for box, score in zip(dets.boxes, dets.scores):
                self.boxes.append(box.copy())
                x1, y1 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
                x2, y2 = int(np.ceil(box[2])) + 1, int(np.ceil(box[3])) + 1
                ys, xs = np.nonzero(image[y1:y2, x1:x2, 0] > 128)
                if not len(xs):
                    continue
                kps = square_pose_keypoints(x1 + xs.min(), y1 + ys.min(), skeleton.num_keypoints)
                k = skeleton.num_keypoints
                people.append(
                    Instance(
                        kps, np.full(k, 2), keypoint_scores=np.full(k, 0.9), box=box,
                        score=float(score), source="model:squarepose", status="predicted",
                    )
                )  # fmt: skip
            out.append(people)
        return out

    def close(self) -> None:
        pass
