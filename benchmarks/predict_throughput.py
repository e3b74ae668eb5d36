"""Throughput of the full BlazePose predict path and its overhead over bare inference.

For the COCO sample images (loaded from disk each time) and the frames of
``videos/street_pedestrians_5f.mp4`` (read with cv2.VideoCapture), times
load/decode -> detect -> crops -> landmarks -> instances, and the time spent inside
``interpreter.invoke`` in the same run. Overhead = (total - inference) / inference.

Run: ``python benchmarks/predict_throughput.py [--data DIR] [--repeats N]``
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from posekit.media.image import load_image
from posekit.models.blazepose import BlazePoseDetector, BlazePoseEstimator
from posekit.pipeline import predict
from posekit.skeleton import get_preset

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
#: Extra BlazePoseDetector options (``--detector-option``), e.g. the tile grids.
DETECTOR_OPTIONS: dict = {}


def coco_images(folder: Path) -> Callable[[], Iterator[np.ndarray]]:
    paths = sorted((folder / "coco-val2017-sample" / "images").glob("*.jpg"))

    def frames() -> Iterator[np.ndarray]:
        for path in paths:
            yield load_image(path)

    return frames


def video_frames(path: Path) -> Callable[[], Iterator[np.ndarray]]:
    def frames() -> Iterator[np.ndarray]:
        capture = cv2.VideoCapture(str(path))
        try:
            while True:
                ok, frame = capture.read()
                if not ok:
                    break
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    return frames


def run_files(name: str, inputs: list[Path], repeats: int) -> None:
    """The exact path of ``posekit predict``: files in, a PoseDataset out
    (decoding one batch ahead in a thread, detection, crops, landmarks, instances)."""
    from posekit.pipeline.predict_files import predict_files

    skeleton = get_preset("coco17")
    with BlazePoseDetector(**DETECTOR_OPTIONS) as detector, BlazePoseEstimator() as estimator:
        predict_files(inputs, skeleton, estimator, detector)  # warm-up
        detector.inference_seconds = estimator.inference_seconds = 0.0
        count = people = 0
        start = time.perf_counter()
        for _ in range(repeats):
            result = predict_files(inputs, skeleton, estimator, detector)
            count += len(result.dataset.images)
            people += result.dataset.num_instances
        total = time.perf_counter() - start
        inference = detector.inference_seconds + estimator.inference_seconds
    overhead = (total - inference) / inference
    print(
        f"{name:34s} {count / total:6.2f} images/s  {1000 * total / count:7.1f} ms/image  "
        f"inference {1000 * inference / count:7.1f} ms/image  "
        f"overhead {100 * overhead:5.1f}%  {people / count:.1f} people/image"
    )


def run(name: str, frames: Callable[[], Iterator[np.ndarray]], repeats: int) -> None:
    skeleton = get_preset("coco17")
    with BlazePoseDetector(**DETECTOR_OPTIONS) as detector, BlazePoseEstimator() as estimator:
        for image in frames():  # warm-up: first invokes allocate and tune XNNPACK
            predict([image], skeleton, detector, estimator)
        detector.inference_seconds = estimator.inference_seconds = 0.0
        count = people = 0
        start = time.perf_counter()
        for _ in range(repeats):
            for image in frames():
                people += len(predict([image], skeleton, detector, estimator)[0])
                count += 1
        total = time.perf_counter() - start
        inference = detector.inference_seconds + estimator.inference_seconds
    overhead = (total - inference) / inference
    print(
        f"{name:34s} {count / total:6.2f} images/s  {1000 * total / count:7.1f} ms/image  "
        f"inference {1000 * inference / count:7.1f} ms/image "
        f"(detector {1000 * detector.inference_seconds / count:5.1f}, "
        f"landmarks {1000 * estimator.inference_seconds / count:6.1f})  "
        f"overhead {100 * overhead:5.1f}%  {people / count:.1f} people/image"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--detector-option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="BlazePoseDetector option, e.g. tile_grids=[[2,0.6]] (the grid before issue 9)",
    )
    args = parser.parse_args()
    for pair in args.detector_option:
        key, value = pair.split("=", 1)
        DETECTOR_OPTIONS[key] = json.loads(value)
    logging.basicConfig(level=logging.WARNING)
    print("posekit predict path (predict_files: files -> COCO dataset):")
    run_files(
        "COCO sample (4 images)",
        [args.data / "coco-val2017-sample" / "images"],
        args.repeats,
    )
    with tempfile.TemporaryDirectory() as tmp:
        for index, frame in enumerate(
            video_frames(args.data / "videos" / "street_pedestrians_5f.mp4")()
        ):
            cv2.imwrite(
                f"{tmp}/{index:04d}.jpg",
                cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95],
            )
        run_files("street_pedestrians_5f frames (JPEG)", [Path(tmp)], args.repeats)
    print("\nin-memory pipeline (posekit.pipeline.predict, one image per call):")
    run("COCO sample (4 images, from disk)", coco_images(args.data), args.repeats)
    run(
        "street_pedestrians_5f.mp4 (960x540)",
        video_frames(args.data / "videos" / "street_pedestrians_5f.mp4"),
        args.repeats,
    )


if __name__ == "__main__":
    main()
