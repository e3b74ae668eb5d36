"""Auto-label throughput: the Ray engine with 1 and 2 workers against the local engine.

Builds one set of ``--images`` images from the shared samples (COCO, CrowdPose, AIC
images cycled, each copy resized to a longest side of 480-640 px and marked with
one changed pixel so import keeps it), imports it into one workspace per run, and
times in the same process, in turn:

* ``local``: :func:`posekit.engines.local.autolabel` (models in this process);
* ``ray xN``: :func:`posekit.engines.ray.autolabel` with N workers on a local Ray
  instance started once beforehand (``ray.init(num_cpus=--cpus)``; its start-up
  time is printed apart).

Each run is timed end to end (model loading and Ray worker start included) and in
steady state (from the first written batch to the last, through the progress
callback). The runs are interleaved for ``--rounds`` rounds so that a busy machine
slows every engine alike; the ratios use each engine's best round. The driver's
write rate (decode worker results + one transaction per batch, no models) is
measured apart: it is the ceiling of a single-writer run however many workers.

Run: ``python benchmarks/ray_engine.py [--images 200] [--rounds 1] [--batch-size 8]
[--detector blazepose --pose blazepose] [--gpus-per-worker 0] [--worker-niceness 0]``

Ray runs its workers at nice 15 by default; the benchmark starts them at nice 0,
as the local engine runs, unless ``--worker-niceness 15``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from posekit import Instance
from posekit.engines.local import PredictionWriter
from posekit.engines.local import autolabel as local_autolabel
from posekit.engines.ray import autolabel as ray_autolabel
from posekit.engines.ray_worker import decode_instances, encode_instances
from posekit.engines.report import AutolabelReport
from posekit.pipeline.options import AutolabelOptions
from posekit.skeleton import get_preset
from posekit.store import Workspace, import_images

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FOLDERS = ("coco-val2017-sample/images", "crowdpose-sample/images", "aic-sample/images")


def make_images(data: Path, count: int, out: Path) -> Path:
    sources = sorted(p for folder in FOLDERS for p in (data / folder).glob("*.jpg"))
    if not sources:
        raise SystemExit(f"no sample images under {data}")
    out.mkdir(parents=True)
    for index, path in zip(range(count), itertools.cycle(sources)):
        image = Image.open(path).convert("RGB")
        longest = 480 + (index * 37) % 161
        scale = longest / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)))
        pixels = np.asarray(image).copy()
        pixels[0, 0] = (index % 256, index // 256, 7)
        Image.fromarray(pixels).save(out / f"{index:04d}_{path.stem}.jpg", quality=92)
    return out


def fresh_workspace(root: Path, images: Path) -> Workspace:
    ws = Workspace(root)
    ws.create_project("bench", get_preset("coco17"))
    import_images(ws, "bench", "default", [images])
    return ws


@dataclass
class Timing:
    engine: str
    items: int
    instances: int
    total_s: float
    steady_items: int
    steady_s: float

    @property
    def rate(self) -> float:
        return self.items / self.total_s

    @property
    def steady_rate(self) -> float:
        return self.steady_items / self.steady_s if self.steady_s > 0 else float("nan")


def _run(engine, ws: Workspace, options: AutolabelOptions, progress) -> AutolabelReport:
    return engine(ws, "bench", options, progress=progress)


def timed(engine: str, run) -> Timing:
    marks: list[tuple[float, int]] = []

    def progress(done: int, total: int | None) -> None:
        if done:
            marks.append((time.perf_counter(), done))

    start = time.perf_counter()
    report: AutolabelReport = run(progress)
    total = time.perf_counter() - start
    if report.failures:
        raise SystemExit(f"{engine}: {len(report.failures)} failures, e.g. {report.failures[0]}")
    (t0, d0), (t1, d1) = marks[0], marks[-1]
    return Timing(engine, report.processed, report.instances, total, d1 - d0, t1 - t0)


def driver_write_rate(root: Path, images: Path, batch_size: int) -> float:
    """Items/s the driver alone writes: decode the workers' bytes + one transaction
    per batch, with the instances a real run found."""
    ws = fresh_workspace(root, images)
    try:
        items = ws.list_items("bench")
        template = ws.get_project("bench").template
        rng = np.random.default_rng(0)
        blobs = {}
        for item in items:
            people = []
            for _ in range(3):  # about what the sample images hold
                k = template.num_keypoints
                kps = rng.uniform(0, 400, (k, 2)).astype(np.float32)
                people.append(
                    Instance(
                        kps,
                        np.full(k, 2),
                        keypoint_scores=np.full(k, 0.9, np.float32),
                        box=np.array([0, 0, 400, 400], np.float32),
                        score=0.9,
                        source="model:bench",
                        status="predicted",
                    )
                )
            blobs[item.id] = encode_instances(people)
        writer = PredictionWriter(ws, items, "bench", False, AutolabelReport())
        start = time.perf_counter()
        for first in range(0, len(items), batch_size):
            batch = items[first : first + batch_size]
            for item in batch:
                writer.put(item.id, None, decode_instances(blobs[item.id]))  # type: ignore[arg-type]
            writer.commit()
        return len(items) / (time.perf_counter() - start)
    finally:
        ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--detector", default=AutolabelOptions().detector)
    parser.add_argument("--pose", default=AutolabelOptions().pose)
    parser.add_argument("--device", default=None)
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--worker-niceness",
        type=int,
        default=0,
        help="nice value of the Ray workers (Ray's default is 15; the local engine runs at 0)",
    )
    args = parser.parse_args()

    import ray

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        images = make_images(args.data, args.images, tmp / "images")
        write_rate = driver_write_rate(tmp / "writer", images, args.batch_size)
        print(f"driver write rate (decode + one transaction per batch): {write_rate:.0f} items/s")

        # Ray starts its workers at nice 15 (raylet ``worker_niceness``): on a busy
        # shared machine they then get a fraction of the CPU the local engine gets.
        # Ray reads the setting from the environment when ray.init starts the raylet.
        os.environ["RAY_worker_niceness"] = str(args.worker_niceness)  # noqa: SIM112 (Ray spells it so)
        start = time.perf_counter()
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
        print(
            f"ray.init(num_cpus={args.cpus}), workers at nice {args.worker_niceness}: "
            f"{time.perf_counter() - start:.1f} s"
        )
        base = dict(
            detector=args.detector, pose=args.pose, batch_size=args.batch_size, device=args.device
        )
        timings: list[Timing] = []
        try:
            for round_index, engine in itertools.product(
                range(args.rounds), ["local", *[f"ray x{n}" for n in args.workers]]
            ):
                ws = fresh_workspace(tmp / f"ws-{round_index}-{engine.replace(' ', '')}", images)
                try:
                    if engine == "local":
                        options = AutolabelOptions(**base)
                        engine_fn = local_autolabel
                    else:
                        options = AutolabelOptions(
                            **base,
                            engine="ray",
                            workers=int(engine.split("x")[1]),
                            gpus_per_worker=args.gpus_per_worker,
                        )
                        engine_fn = ray_autolabel
                    run = functools.partial(_run, engine_fn, ws, options)
                    timing = timed(engine, run)
                finally:
                    ws.close()
                timings.append(timing)
                print(
                    f"round {round_index + 1} {engine:7s}: {timing.items} images "
                    f"({timing.instances} instances) in {timing.total_s:.1f} s = "
                    f"{timing.rate:.2f} images/s end to end, {timing.steady_rate:.2f} images/s "
                    f"steady"
                )
        finally:
            ray.shutdown()

    best = {}
    for timing in timings:
        if timing.engine not in best or timing.steady_rate > best[timing.engine].steady_rate:
            best[timing.engine] = timing
    local = best["local"]
    print(f"\n{args.detector} + {args.pose}, batch {args.batch_size}, {args.images} images")
    for engine, timing in best.items():
        if engine == "local":
            continue
        print(
            f"{engine} / local throughput: {timing.steady_rate / local.steady_rate:.3f} steady, "
            f"{timing.rate / local.rate:.3f} end to end "
            f"(overhead {1 - timing.steady_rate / local.steady_rate:+.1%} steady)"
        )


if __name__ == "__main__":
    main()
