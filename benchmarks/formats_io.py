"""Import and export time of every interchange format against posekit's own COCO
read/write, in one run (issue 11: each format within 3x of COCO).

A seeded synthetic dataset of ``--instances`` people (COCO-17 template, 4 per
image, a mix of visible, occluded and not-labeled points, coordinates with two
decimals, as annotation tools write them) is written and read back through the
format table (:data:`posekit.formats.registry.FORMATS`), each format with the
options of its row in :data:`CASES`. Every format in :data:`CASES` that the table
can read and write is timed; COCO is the reference. Rows print write and read
seconds (best of ``--repeat`` rounds, each round over every format, so that on a
shared machine every format's best comes from the same spells of load as COCO's),
the ratios to COCO (wall, and CPU time in brackets) and whether both wall ratios
are within the target; the instance count read back is checked. There are no assertions on time: the
figures depend on the machine and its load.

Adding a format is one row in :data:`CASES` (options for its writer, and a
dataset builder when it needs something else than still images, e.g. video
frames for a video-only format).

Usage:
    python benchmarks/formats_io.py [--instances 100000] [--repeat 3] [--formats cvat,...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, VideoRecord
from posekit.formats.registry import FORMATS, get_format
from posekit.skeleton import get_preset

TARGET_RATIO = 3.0
PER_IMAGE = 4


def still_images(count: int, seed: int = 0) -> PoseDataset:
    """``count`` people on ``count / 4`` still images (640x480), COCO-17."""
    skeleton = get_preset("coco17")
    rng = np.random.default_rng(seed)
    k = skeleton.num_keypoints
    xy = np.round(rng.uniform(0, 640, (count, k, 2)), 2).astype(np.float32)
    vis = rng.choice(np.array([0, 1, 2], np.uint8), size=(count, k), p=[0.2, 0.2, 0.6])
    images = []
    for start in range(0, count, PER_IMAGE):
        number = start // PER_IMAGE
        instances = [Instance(xy[i], vis[i]) for i in range(start, min(count, start + PER_IMAGE))]
        images.append(
            LabeledImage(ImageRecord(f"images/{number:06d}.jpg", 640, 480, id=number + 1),
                         instances)
        )  # fmt: skip
    return PoseDataset(skeleton, images)


def video_frames(count: int, seed: int = 0) -> PoseDataset:
    """:func:`still_images` as the frames of one video (formats whose images are video
    frames, e.g. SLEAP, where a still image is a one-frame video of its own)."""
    dataset = still_images(count, seed)
    dataset.videos = [VideoRecord("clip.mp4", 640, 480, frame_count=len(dataset.images))]
    for frame, item in enumerate(dataset.images):
        item.image.file_name = f"clip.mp4/frame_{frame:06d}.png"
        item.image.video, item.image.frame_index, item.image.id = "clip.mp4", frame, None
    return dataset


@dataclass
class Case:
    """One benchmark row: writer options and the dataset to use."""

    options: dict[str, Any] = field(default_factory=dict)
    dataset: Callable[[int], PoseDataset] = still_images


#: The rows, by format name (COCO is the reference and always runs first).
CASES: dict[str, Case] = {
    "coco": Case(),
    "cvat": Case(),
    "supervisely": Case(),
    "posetrack": Case(),
    "labelstudio": Case(),
    "sleap": Case(dataset=video_frames),
    "deeplabcut": Case(),
}


def _destination(root: Path, name: str) -> Path:
    spec = get_format(name)
    if spec.kind == "folder":
        return root / name
    return root / f"{name}{spec.extensions[0] if spec.extensions else '.dat'}"


@dataclass
class Timing:
    """Best of the repeats, per direction: wall seconds and this process's CPU seconds
    (all threads; on a shared machine CPU time moves less with other people's load)."""

    write: float = float("inf")
    read: float = float("inf")
    write_cpu: float = float("inf")
    read_cpu: float = float("inf")
    count: int = -1


def _time(name: str, dataset: PoseDataset, root: Path, best: Timing) -> None:
    """One write and read of ``name`` into a new place under ``root`` (as an export
    into a new folder: deleting the previous round's 25k files just before makes the
    file system's next creations several times slower), kept in ``best`` where faster."""
    spec = get_format(name)
    root.mkdir(parents=True, exist_ok=True)
    target = _destination(root, name)
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    t0, c0 = time.perf_counter(), time.process_time()
    written = spec.write(dataset, target, media=None, **CASES[name].options)
    t1, c1 = time.perf_counter(), time.process_time()
    again = spec.read(Path(written) if spec.kind == "file" else target, dataset.skeleton)
    t2, c2 = time.perf_counter(), time.process_time()
    best.write, best.read = min(best.write, t1 - t0), min(best.read, t2 - t1)
    best.write_cpu, best.read_cpu = min(best.write_cpu, c1 - c0), min(best.read_cpu, c2 - c1)
    best.count = again.num_instances


def _load() -> str:
    try:
        return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:  # pragma: no cover - not on this platform
        return "load average unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default="", help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    wanted = [n for n in args.formats.split(",") if n] or list(CASES)
    names = ["coco"] + [n for n in wanted if n != "coco"]
    datasets: dict[Callable[[int], PoseDataset], PoseDataset] = {}
    print(f"{args.instances} instances ({PER_IMAGE} per image, COCO-17), best of {args.repeat}; "
          f"{_load()}")  # fmt: skip
    runnable = []
    for name in names:
        spec = FORMATS.get(name)
        if spec is None or spec.read is None or spec.write is None:
            print(f"{name:<12} skipped: not a readable and writable format in the table")
        else:
            runnable.append(name)
    timings = {name: Timing() for name in runnable}
    with tempfile.TemporaryDirectory(prefix="posekit-formats-io-") as tmp:
        # Round after round over every format (not all repeats of one format, then the
        # next): on a shared machine each format's best then comes from the same spells
        # of load as COCO's.
        for round_number in range(args.repeat):
            for name in runnable:
                case = CASES.get(name, Case())
                dataset = datasets.get(case.dataset)
                if dataset is None:
                    dataset = datasets[case.dataset] = case.dataset(args.instances)
                _time(name, dataset, Path(tmp) / f"round{round_number + 1}", timings[name])
            print(f"  round {round_number + 1} of {args.repeat} done; {_load()}", flush=True)
    coco = timings["coco"]
    print("ratios: this format's time / COCO's, measured in this run (wall; CPU in brackets)")
    print(f"{'format':<12} {'write s':>8} {'read s':>8} {'write/COCO':>13} {'read/COCO':>13}  "
          f"{'within ' + str(TARGET_RATIO) + 'x':<10} instances", flush=True)  # fmt: skip
    for name in runnable:
        timing = timings[name]
        rw, rr = timing.write / coco.write, timing.read / coco.read
        cw, cr = timing.write_cpu / coco.write_cpu, timing.read_cpu / coco.read_cpu
        ok = "yes" if rw <= TARGET_RATIO and rr <= TARGET_RATIO else "NO"
        expected = datasets[CASES.get(name, Case()).dataset].num_instances
        count = timing.count
        check = "" if count == expected else f" (read back {count} of {expected}!)"
        print(f"{name:<12} {timing.write:8.2f} {timing.read:8.2f} {rw:6.2f} ({cw:4.2f}) "
              f"{rr:6.2f} ({cr:4.2f})  {ok:<10} {count}{check}", flush=True)  # fmt: skip
    print(_load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
