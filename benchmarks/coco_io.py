"""COCO keypoints I/O speed: posekit ``read_coco`` / ``write_coco`` vs pycocotools ``COCO``.

Generates a synthetic COCO-17 file (default 100k annotations on 20k images) in
a temporary folder and prints wall times, the ratios to pycocotools' load time
and peak memory (VmHWM of a fresh process per step).
Run: ``python benchmarks/coco_io.py [--annotations N] [--images N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers_coco import make_coco
from posekit.formats.coco import read_coco, write_coco


def _best_of(repeats: int, func, *args):
    times, result = [], None
    for _ in range(repeats):
        result = None
        gc.collect()
        start = time.perf_counter()
        result = func(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def _pycocotools_load(path: Path) -> object:
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress lines
        return COCO(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per timing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "synthetic_keypoints.json"
        out = Path(tmp) / "written.json"
        data = make_coco(args.images, args.annotations, args.seed)
        src.write_text(json.dumps(data), encoding="utf-8")
        del data
        size_mb = src.stat().st_size / 1e6
        print(f"file: {args.annotations} annotations, {args.images} images, {size_mb:.1f} MB")

        t_json, _ = _best_of(args.repeats, lambda p: json.loads(p.read_bytes()), src)
        t_coco, _ = _best_of(args.repeats, _pycocotools_load, src)
        t_read, dataset = _best_of(args.repeats, read_coco, src)
        t_write, _ = _best_of(args.repeats, write_coco, dataset, out)
        same = json.loads(src.read_bytes()) == json.loads(out.read_bytes())

        print(f"json.load alone            {t_json:7.2f} s")
        print(f"pycocotools COCO(path)     {t_coco:7.2f} s")
        print(f"posekit read_coco          {t_read:7.2f} s   ratio {t_read / t_coco:.2f}")
        print(f"posekit write_coco         {t_write:7.2f} s   ratio {t_write / t_coco:.2f}")
        print(f"written file equals input: {same}")

        del dataset
        for step in ("pycocotools", "read", "write"):
            before, after = _peak_rss_mb(step, src, out)
            print(f"peak RSS {step:12s} {after:6.0f} MB ({after - before:+.0f} MB over the "
                  "process before the step; fresh process)")  # fmt: skip


def _peak_rss_mb(step: str, src: Path, out: Path) -> tuple[float, float]:
    """Run one step in a fresh interpreter; its peak RSS (VmHWM) before/after, in MB.

    VmHWM, unlike ru_maxrss, is not inherited from this (large) parent process.
    """
    code = (
        "import contextlib, io, re\n"
        "def hwm():\n"
        "    text = open('/proc/self/status').read()\n"
        "    return int(re.search(r'VmHWM:\\s+(\\d+)', text).group(1))\n"
        "from posekit.formats.coco import read_coco, write_coco\n"
        "from pycocotools.coco import COCO\n"
        "before = hwm()\n"
        f"step, src, out = {step!r}, {str(src)!r}, {str(out)!r}\n"
        "if step == 'pycocotools':\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        COCO(src)\n"
        "elif step == 'read':\n"
        "    read_coco(src)\n"
        "else:\n"
        "    dataset = read_coco(src)\n"
        "    before = hwm()\n"
        "    write_coco(dataset, out)\n"
        "print(before, hwm())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    )
    before, after = (int(v) / 1024 for v in result.stdout.split()[-2:])
    return before, after


if __name__ == "__main__":
    main()
