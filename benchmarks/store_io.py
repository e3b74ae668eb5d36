"""Store import/export speed: ``import_coco`` / ``export_coco`` vs pycocotools ``COCO``.

Generates a synthetic COCO-17 keypoints file (default 100k annotations on 20k
images), then measures in the same run:

* ``pycocotools.coco.COCO(path)`` (json load + index), the reference;
* ``import_coco(..., copy_media=False)`` into a fresh workspace (register-only:
  the benchmark has no image files; reading, validating and writing the
  annotations is what is measured);
* ``export_coco`` of that project to a new file;
* for context, ``posekit.formats.coco.read_coco`` alone (parse + validate, the
  part of the import that does not touch the database).

The exported file is checked to equal the generated one (exact round trip).

Prints wall times (best of N), their ratios to the pycocotools time and the
peak Python memory of each step (tracemalloc, in a separate untimed run since
tracing slows Python down). Run:
``python benchmarks/store_io.py [--annotations N] [--images N] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers_coco import make_coco
from posekit.formats.coco import read_coco
from posekit.skeleton import get_preset
from posekit.store import Workspace, export_coco, import_coco


def _pycocotools_load(path: Path) -> Any:
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress lines
        return COCO(str(path))


def _fresh_workspace(root: Path, counter: list[int]) -> Workspace:
    counter[0] += 1
    ws = Workspace(root / f"ws{counter[0]}")
    ws.create_project("bench", get_preset("coco17"))
    return ws


def _timed(func: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _peak_mib(func: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per timing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "synthetic_keypoints.json"
        source = make_coco(args.images, args.annotations, args.seed)
        src.write_text(json.dumps(source))
        size_mb = src.stat().st_size / 1e6
        counter = [0]

        def do_import() -> Workspace:
            ws = _fresh_workspace(tmp, counter)
            import_coco(ws, "bench", "all", src, copy_media=False)
            return ws

        exported_ws = do_import()

        def do_export() -> None:
            export_coco(exported_ws, "bench", tmp / "export.json")

        template = get_preset("coco17")
        # Interleaved, so that a burst of load from other processes hits all steps alike.
        times: dict[str, list[float]] = {"coco": [], "read": [], "import": [], "export": []}
        for _ in range(args.repeats):
            times["coco"].append(_timed(lambda: _pycocotools_load(src)))
            times["read"].append(_timed(lambda: read_coco(src, template)))
            times["import"].append(_timed(do_import))
            times["export"].append(_timed(do_export))
        t_coco, t_read, t_import, t_export = (
            min(times[k]) for k in ("coco", "read", "import", "export")
        )
        peak_coco = _peak_mib(lambda: _pycocotools_load(src))
        peak_read = _peak_mib(lambda: read_coco(src, template))
        peak_import = _peak_mib(do_import)
        peak_export = _peak_mib(do_export)
        rows = exported_ws.row_counts()
        db_mb = exported_ws.db_path.stat().st_size / 1e6 if exported_ws.db_path else float("nan")
        written = json.loads((tmp / "export.json").read_text())
        if written != source:
            raise SystemExit("export differs from the imported file (round trip not exact)")

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"COCO file: {args.images} images, {args.annotations} annotations, {size_mb:.1f} MB; "
        f"database after import: {rows['items']} items, {rows['instances']} instances, "
        f"{db_mb:.1f} MB"
    )
    print(f"{'step':<34}{'time (s)':>10}{'x pycocotools':>15}{'peak py MiB':>13}")
    for name, seconds, peak in (
        ("pycocotools COCO(path)", t_coco, peak_coco),
        ("  read_coco alone (no database)", t_read, peak_read),
        ("import_coco (register-only)", t_import, peak_import),
        ("export_coco", t_export, peak_export),
    ):
        print(f"{name:<34}{seconds:>10.2f}{seconds / t_coco:>15.2f}{peak:>13.0f}")
    print(f"process peak RSS: {rss:.0f} MiB (best of {args.repeats} runs per timing)")


if __name__ == "__main__":
    main()
