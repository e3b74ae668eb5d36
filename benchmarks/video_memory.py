"""Peak memory of stored tracked auto-labeling against video length (1080p H.264).

Generates a 30-s 1080p30 H.264 base clip (a COCO person photo drifting over a grey
background, so the detector finds a person on every frame), builds clips of
``--minutes`` by remuxing the base clip end to end (packets copied with shifted
timestamps: no re-encoding, so a 10-minute clip takes seconds), then, for each
length in a fresh process: imports the clip into a fresh workspace and auto-labels
it through the store (``posekit.engines.local.autolabel`` with ``--every``),
printing the process's peak RSS, its RSS after import, and the RSS sampled while
the frames go through (so growth within one run is visible, not only the peak).
``--tracemalloc`` also prints the Python allocations that grew between 25% and 100%
of the run (top lines by size).

Run: ``python benchmarks/video_memory.py --minutes 1 2 4 10 --every 30``.
``POSEKIT_MALLOC_DEFAULTS=1`` in the environment runs the "before" (glibc's dynamic mmap
threshold, see ``posekit.pipeline.allocator``). Prints figures; asserts nothing.
The target (issue 10): peak under 1 GB, flat in length.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
PERSON = DATA / "coco-val2017-sample" / "images" / "000000196141.jpg"


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _base_clip(path: Path, seconds: float) -> None:
    from PIL import Image

    from posekit.render.video import write_video

    person = Image.open(PERSON).convert("RGB")
    person = np.asarray(person.resize((person.width * 1080 // person.height // 2, 540)))
    background = np.full((1080, 1920, 3), 90, np.uint8)
    span = 1920 - 200 - person.shape[1]

    def frames():
        for i in range(int(seconds * 30)):
            frame = background.copy()
            # Out and back, so the end of one copy meets the start of the next.
            step = i // 3
            x = 100 + (step if (step // span) % 2 == 0 else span - step % span) % span
            frame[300 : 300 + person.shape[0], x : x + person.shape[1]] = person
            yield frame

    write_video(path, frames(), 30, preset="ultrafast", crf=28, gop=60)


def _loop_clip(base: Path, out: Path, minutes: float) -> int:
    """``base`` repeated (remuxed) to ``minutes``; returns the frames written."""
    import av

    with av.open(str(base)) as src:
        stream = src.streams.video[0]
        packets = [p for p in src.demux(stream) if p.size]
        rate = stream.average_rate or Fraction(30)
        tb = stream.time_base
        per_copy = len(packets)
        step = round(per_copy / rate / tb)
        first = min(p.pts for p in packets)
        copies = max(1, round(minutes * 60 * float(rate) / per_copy))
        with av.open(str(out), "w") as dst:
            ostream = dst.add_stream_from_template(stream)
            for c in range(copies):
                for p in packets:
                    q = av.Packet(bytes(p))
                    q.pts = p.pts - first + c * step
                    q.dts = (p.dts if p.dts is not None else p.pts) - first + c * step
                    q.duration = p.duration
                    q.is_keyframe = p.is_keyframe
                    q.time_base = tb
                    q.stream = ostream
                    dst.mux(q)
    return copies * per_copy


def _child(clip: str, every: int, trace: bool, sqlite_cache_kib: int | None) -> None:
    import tracemalloc

    from posekit import get_preset
    from posekit.engines.local import autolabel
    from posekit.pipeline.options import AutolabelOptions
    from posekit.store import Workspace
    from posekit.store.video_imports import import_video

    samples: list[tuple[int, float]] = []
    snaps: dict[str, object] = {}

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        if sqlite_cache_kib is not None:  # after the store's own pragmas, on new connections
            from sqlalchemy import event

            def smaller_cache(dbapi_connection, _record) -> None:
                dbapi_connection.execute(f"PRAGMA cache_size=-{int(sqlite_cache_kib)}")

            event.listen(ws.engine, "connect", smaller_cache)
            ws.engine.dispose()
        ws.create_project("p", get_preset("coco17"))
        import_video(ws, "p", "clips", clip)
        after_import = _rss_mb()
        peak_import = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        def progress(done: int, total: int | None) -> None:
            if not total:
                return
            if not samples or done - samples[-1][0] >= max(1, total // 10):
                samples.append((done, _rss_mb()))
            if trace and "a" not in snaps and done >= total // 4:
                snaps["a"] = tracemalloc.take_snapshot()

        if trace:
            tracemalloc.start(8)
        started = time.perf_counter()
        report = autolabel(ws, "p", AutolabelOptions(every=every), progress=progress)
        elapsed = time.perf_counter() - started
        if trace:
            snaps["b"] = tracemalloc.take_snapshot()
        ws.close()
        db_mb = sum(f.stat().st_size for f in (Path(tmp) / "ws").rglob("*.db*")) / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  {Path(clip).name}: {report.processed} frames labeled, {report.instances} instances, "
        f"{len(report.failures)} failures, {elapsed:.0f} s; RSS after import {after_import:.0f} MB "
        f"(peak {peak_import:.0f}), peak RSS {peak_mb:.0f} MB; database {db_mb:.0f} MB",
        flush=True,
    )
    print("    RSS while labeling (sampled frames done: MB): "
          + ", ".join(f"{d}: {mb:.0f}" for d, mb in samples), flush=True)  # fmt: skip
    if trace and "a" in snaps:
        stats = snaps["b"].compare_to(snaps["a"], "traceback")  # type: ignore[attr-defined]
        print("    tracemalloc growth from 25% to the end (top 8):")
        for stat in stats[:8]:
            frame = stat.traceback[0]
            print(f"      {stat.size_diff / 1024:+.0f} KiB ({stat.count_diff:+d}) "
                  f"{frame.filename}:{frame.lineno}")  # fmt: skip
            for line in stat.traceback.format()[-6:]:
                print(f"        {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 2.0, 4.0, 10.0])
    parser.add_argument("--every", type=int, default=30, help="sampling step (frames)")
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument(
        "--sqlite-cache-kib", type=int, help="override the store's SQLite page cache (KiB)"
    )
    parser.add_argument(
        "--before", action="store_true",
        help="also run each length with glibc's defaults (POSEKIT_MALLOC_DEFAULTS=1)",
    )  # fmt: skip
    parser.add_argument("--keep", type=Path, help="folder to keep (and reuse) the clips in")
    parser.add_argument("--child", nargs=2, metavar=("CLIP", "EVERY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], int(args.child[1]), args.tracemalloc, args.sqlite_cache_kib)
        return
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} CPUs; "
          f"load {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / "base_30s.mp4"
        if not base.is_file():
            started = time.perf_counter()
            _base_clip(base, 30)
            print(f"  base clip in {time.perf_counter() - started:.0f} s", flush=True)
        for minutes in args.minutes:
            clip = folder / f"clip_{minutes:g}min.mp4"
            if not clip.is_file():
                n = _loop_clip(base, clip, minutes)
                print(f"  {clip.name}: {n} frames, {clip.stat().st_size / 1e6:.0f} MB", flush=True)
            cmd = [sys.executable, __file__, "--child", str(clip), str(args.every)]
            if args.tracemalloc:
                cmd.append("--tracemalloc")
            if args.sqlite_cache_kib is not None:
                cmd += ["--sqlite-cache-kib", str(args.sqlite_cache_kib)]
            modes = [("after", "0")] + ([("before", "1")] if args.before else [])
            for mode, defaults in modes:
                print(f"  {mode}:", flush=True)
                env = {**os.environ, "POSEKIT_MALLOC_DEFAULTS": defaults}
                subprocess.run(cmd, check=True, env=env)
            print(f"  load {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}", flush=True)


if __name__ == "__main__":
    main()
