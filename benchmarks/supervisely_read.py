"""Supervisely project import time against posekit's own COCO import, in one run
(issue 11: within 3x of COCO), optionally against another source tree's reader.

The dataset is :func:`formats_io.still_images` (``--instances`` COCO-17 people, 4 per
image: 100k instances are 25k ``ann/<image>.json`` files), written once as a COCO
file and a Supervisely project. Each read runs in a fresh process (imports not
timed), round after round, alternating the readers (COCO, this tree's Supervisely,
``--baseline`` tree's Supervisely), so that on a shared machine every reader's best
comes from the same spells of load. Rows print the best wall and CPU seconds (of
the reading process, all threads) and their ratios to COCO. With ``--baseline``,
both trees' datasets are also compared (a digest of every image, instance array
and field). There are no assertions on time: the figures depend on the machine.

Usage:
    python benchmarks/supervisely_read.py [--instances 100000] [--repeat 3]
        [--baseline /tmp/sly_old/src]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# run in a fresh interpreter: read one input, print {"wall", "cpu", "digest", "count"}
_CHILD = r"""
import hashlib, json, sys, time
from posekit.formats.registry import get_format
from posekit.skeleton import get_preset
kind, path = sys.argv[1], sys.argv[2]
skeleton = get_preset("coco17")
t0, c0 = time.perf_counter(), time.process_time()
ds = get_format(kind).read(path, skeleton)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
h = hashlib.sha256()
for item in ds.images:
    im = item.image
    h.update(repr((im.file_name, im.width, im.height, im.id, im.video, im.frame_index)).encode())
    for inst in item.instances:
        h.update(inst.keypoints.dtype.str.encode() + inst.keypoints.tobytes())
        h.update(inst.visibility.dtype.str.encode() + inst.visibility.tobytes())
        h.update(repr((inst.track_id, inst.status, inst.source, inst.score, inst.iscrowd,
                       inst.extra)).encode())
print(json.dumps({"wall": wall, "cpu": cpu, "digest": h.hexdigest(),
                  "count": ds.num_instances}))
"""


def _read(kind: str, path: Path, src: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(path)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{kind} read with {src} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another tree's src/ to compare")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from formats_io import still_images

    from posekit.formats.registry import get_format

    readers = [("coco", "coco", SRC), ("supervisely", "supervisely", SRC)]
    if args.baseline is not None:
        readers.append(("supervisely (baseline)", "supervisely", args.baseline))
    print(f"{args.instances} instances (4 per image, COCO-17), best of {args.repeat}, "
          f"fresh process per read; {_load()}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="posekit-sly-read-") as tmp:
        dataset = still_images(args.instances)
        paths = {
            "coco": Path(get_format("coco").write(dataset, Path(tmp) / "coco.json", media=None)),
            "supervisely": Path(tmp) / "sly",
        }
        get_format("supervisely").write(dataset, paths["supervisely"], media=None)
        del dataset
        best: dict[str, dict] = {}
        for round_number in range(args.repeat):
            for label, kind, src in readers:
                got = _read(kind, paths[kind], src)
                mine = best.setdefault(label, {"wall": float("inf"), "cpu": float("inf")})
                mine["wall"] = min(mine["wall"], got["wall"])
                mine["cpu"] = min(mine["cpu"], got["cpu"])
                mine["digest"], mine["count"] = got["digest"], got["count"]
            print(f"  round {round_number + 1} of {args.repeat} done; {_load()}", flush=True)
    coco = best["coco"]
    print(f"{'reader':<24} {'wall s':>7} {'CPU s':>7} {'wall/COCO':>10} {'CPU/COCO':>9} instances")
    for label, _, _ in readers:
        b = best[label]
        print(f"{label:<24} {b['wall']:7.2f} {b['cpu']:7.2f} {b['wall'] / coco['wall']:10.2f} "
              f"{b['cpu'] / coco['cpu']:9.2f} {b['count']}")  # fmt: skip
    if args.baseline is not None:
        new, old = best["supervisely"], best["supervisely (baseline)"]
        print(f"this tree / baseline: wall {new['wall'] / old['wall']:.2f}, "
              f"CPU {new['cpu'] / old['cpu']:.2f}; same dataset: "
              f"{'yes' if new['digest'] == old['digest'] else 'NO'}")  # fmt: skip
    print(_load())
    return 0


if __name__ == "__main__":
    sys.exit(main())
