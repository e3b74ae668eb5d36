"""Throughput of the full BlazePose predict path and its overhead over bare inference.

For the COCO sample images (loaded from disk each time) and the frames of
``videos/street_pedestrians_5f.mp4`` (read with cv2.VideoCapture), times
load/decode -> detect -> crops -> landmarks -> instances, and the time spent inside
``interpreter.invoke`` in the same run. Overhead = (total - inference) / inference.

Run: ``python benchmarks/predict_throughput.py [--data DIR] [--repeats N]``

``--compare-with REV --rounds N`` measures the files path (the overhead target)
for the current code and for the predict-path files of git revision ``REV``
(:data:`PREDICT_PATH_FILES`, the rest of the tree as it is now), alternating,
each in a fresh process, N rounds, and prints each one's best round and the
ratio: the comparison to trust on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _trees import overlay_tree

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
#: The files of the predict path (pipeline and detector side) that
#: ``--compare-with`` takes from the other revision.
PREDICT_PATH_FILES = (
    "src/posekit/models/blazepose/estimator.py",
    "src/posekit/models/blazepose/face.py",
    "src/posekit/models/blazepose/landmarks.py",
    "src/posekit/pipeline/run.py",
    "src/posekit/models/blazepose/detector.py",
    "src/posekit/models/blazepose/runtime.py",
    "src/posekit/models/geometry.py",
    "src/posekit/models/boxes.py",
    "src/posekit/media/image.py",
)
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


#: Wall and calling-thread CPU seconds inside every TFLite model's ``_invoke`` (the
#: detector, the landmark model and any model they run, e.g. a face model), see
#: :func:`count_invoke_cpu`.
INVOKE_WALL = [0.0]
INVOKE_CPU = [0.0]


def count_invoke_cpu() -> None:
    """Wrap ``TfliteModel._invoke`` to add up the wall time and the calling thread's
    CPU time inside it: the inference time of every TFLite model the pipeline runs,
    and the main thread's CPU time outside the models (the pipeline's own work on
    the critical path, which load inflates far less than wall time)."""
    from posekit.models.blazepose import runtime

    if getattr(runtime.TfliteModel._invoke, "counted", False):
        return
    original = runtime.TfliteModel._invoke

    def counted(self, interpreter, tensor):  # type: ignore[no-untyped-def]
        start, wall = time.thread_time(), time.perf_counter()
        try:
            return original(self, interpreter, tensor)
        finally:
            INVOKE_CPU[0] += time.thread_time() - start
            INVOKE_WALL[0] += time.perf_counter() - wall

    counted.counted = True  # type: ignore[attr-defined]
    runtime.TfliteModel._invoke = counted  # type: ignore[method-assign]


def run_files(name: str, inputs: list[Path], repeats: int, quiet: bool = False) -> dict:
    """The exact path of ``posekit predict``: files in, a PoseDataset out
    (decoding ahead in a thread, detection, crops, landmarks, instances)."""
    from posekit.pipeline.predict_files import predict_files

    count_invoke_cpu()
    skeleton = get_preset("coco17")
    with BlazePoseDetector(**DETECTOR_OPTIONS) as detector, BlazePoseEstimator() as estimator:
        predict_files(inputs, skeleton, estimator, detector)  # warm-up
        detector.inference_seconds = estimator.inference_seconds = 0.0
        count = people = 0
        INVOKE_CPU[0] = INVOKE_WALL[0] = 0.0
        start, cpu, main_cpu = time.perf_counter(), time.process_time(), time.thread_time()
        for _ in range(repeats):
            result = predict_files(inputs, skeleton, estimator, detector)
            count += len(result.dataset.images)
            people += result.dataset.num_instances
        total, cpu = time.perf_counter() - start, time.process_time() - cpu
        main_cpu = time.thread_time() - main_cpu - INVOKE_CPU[0]
        inference = INVOKE_WALL[0]
    overhead = (total - inference) / inference
    if not quiet:
        print(
            f"{name:34s} {count / total:6.2f} images/s  {1000 * total / count:7.1f} ms/image  "
            f"inference {1000 * inference / count:7.1f} ms/image  "
            f"overhead {100 * overhead:5.1f}%  {people / count:.1f} people/image  "
            f"(CPU {1000 * cpu / count:.1f} ms/image, main thread outside the models "
            f"{1000 * main_cpu / count:.1f})"
        )
    return {
        "ms_per_image": 1000 * total / count,
        "inference_ms": 1000 * inference / count,
        "cpu_ms": 1000 * cpu / count,
        "main_cpu_ms": 1000 * main_cpu / count,
        "overhead": overhead,
        "people": people / count,
    }


def run(name: str, frames: Callable[[], Iterator[np.ndarray]], repeats: int) -> None:
    count_invoke_cpu()
    skeleton = get_preset("coco17")
    with BlazePoseDetector(**DETECTOR_OPTIONS) as detector, BlazePoseEstimator() as estimator:
        for image in frames():  # warm-up: first invokes allocate and tune XNNPACK
            predict([image], skeleton, detector, estimator)
        detector.inference_seconds = estimator.inference_seconds = 0.0
        INVOKE_WALL[0] = 0.0
        count = people = 0
        start = time.perf_counter()
        for _ in range(repeats):
            for image in frames():
                people += len(predict([image], skeleton, detector, estimator)[0])
                count += 1
        total = time.perf_counter() - start
        inference = INVOKE_WALL[0]  # every model's, a face model's too
    overhead = (total - inference) / inference
    print(
        f"{name:34s} {count / total:6.2f} images/s  {1000 * total / count:7.1f} ms/image  "
        f"inference {1000 * inference / count:7.1f} ms/image "
        f"(detector {1000 * detector.inference_seconds / count:5.1f}, "
        f"landmarks {1000 * estimator.inference_seconds / count:6.1f})  "
        f"overhead {100 * overhead:5.1f}%  {people / count:.1f} people/image"
    )


def write_video_frames(data: Path, folder: Path) -> None:
    """The street video's frames as JPEG files (quality 95) in ``folder``."""
    for index, frame in enumerate(video_frames(data / "videos" / "street_pedestrians_5f.mp4")()):
        cv2.imwrite(
            str(folder / f"{index:04d}.jpg"),
            cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 95],
        )


def files_cases(data: Path, frames_dir: Path) -> list[tuple[str, list[Path]]]:
    return [
        ("COCO sample (4 images)", [data / "coco-val2017-sample" / "images"]),
        ("street_pedestrians_5f frames (JPEG)", [frames_dir]),
    ]


def measure_json(data: Path, frames_dir: Path, repeats: int) -> None:
    """One measurement of the files cases, printed as one JSON line."""
    out = {
        name: run_files(name, inputs, repeats, quiet=True)
        for name, inputs in files_cases(data, frames_dir)
    }
    print(json.dumps(out))


def baseline_tree(rev: str, into: Path) -> Path:
    """A copy of the current ``src`` with :data:`PREDICT_PATH_FILES` as of ``rev``."""
    return overlay_tree(rev, PREDICT_PATH_FILES, into)


def compare(rev: str, data: Path, repeats: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        frames_dir = Path(tmp) / "frames"
        frames_dir.mkdir()
        write_video_frames(data, frames_dir)
        trees = {f"{rev} (before)": baseline_tree(rev, Path(tmp)), "now": ROOT / "src"}
        best: dict[str, dict[str, dict]] = {label: {} for label in trees}
        for round_index in range(rounds):
            for label, src in trees.items():
                env = dict(os.environ, PYTHONPATH=str(src))
                line = (
                    subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--data",
                            str(data),
                            "--repeats",
                            str(repeats),
                            "--json-frames",
                            str(frames_dir),
                        ],
                        env=env,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    .stdout.strip()
                    .splitlines()[-1]
                )
                for case, figures in json.loads(line).items():
                    kept = best[label].get(case)
                    if kept is None or figures["ms_per_image"] < kept["ms_per_image"]:
                        best[label][case] = dict(figures, main_cpu_ms=figures["main_cpu_ms"])
                    if kept is not None:  # the least main-thread CPU of any round
                        best[label][case]["main_cpu_ms"] = min(
                            kept["main_cpu_ms"], figures["main_cpu_ms"]
                        )
                load = os.getloadavg()
                print(f"round {round_index + 1} {label}: done (load {load[0]:.1f})", flush=True)
    print(f"\nbest of {rounds} rounds (files path, {repeats} repeats a round):")
    for case in best["now"]:
        for label in trees:
            f = best[label][case]
            print(
                f"  {case:36s} {label:18s} {f['ms_per_image']:7.1f} ms/image  inference "
                f"{f['inference_ms']:7.1f}  overhead {100 * f['overhead']:5.1f}%  "
                f"CPU {f['cpu_ms']:6.1f} ms/image (main thread outside the models "
                f"{f['main_cpu_ms']:5.1f})  {f['people']:.2f} people/image"
            )
        old, new = best[f"{rev} (before)"][case], best["now"][case]
        print(
            f"  {'':36s} now / before: {new['ms_per_image'] / old['ms_per_image']:.3f} time, "
            f"{new['cpu_ms'] / old['cpu_ms']:.3f} CPU, "
            f"{new['main_cpu_ms'] / old['main_cpu_ms']:.3f} main-thread CPU outside the models, "
            f"overhead {100 * old['overhead']:.1f}% "
            f"-> {100 * new['overhead']:.1f}%"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-with", metavar="REV", help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of --compare-with")
    parser.add_argument("--json-frames", type=Path, help=argparse.SUPPRESS)
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
    if args.json_frames is not None:
        measure_json(args.data, args.json_frames, args.repeats)
        return
    if args.compare_with:
        compare(args.compare_with, args.data, args.repeats, args.rounds)
        return
    print("posekit predict path (predict_files: files -> COCO dataset):")
    with tempfile.TemporaryDirectory() as tmp:
        write_video_frames(args.data, Path(tmp))
        for name, inputs in files_cases(args.data, Path(tmp)):
            run_files(name, inputs, args.repeats)
    print("\nin-memory pipeline (posekit.pipeline.predict, one image per call):")
    run("COCO sample (4 images, from disk)", coco_images(args.data), args.repeats)
    run(
        "street_pedestrians_5f.mp4 (960x540)",
        video_frames(args.data / "videos" / "street_pedestrians_5f.mp4"),
        args.repeats,
    )


if __name__ == "__main__":
    main()
