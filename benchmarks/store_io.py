"""Store import/export speed: ``import_coco`` / ``export_coco`` vs pycocotools ``COCO``.

Generates a synthetic COCO-17 keypoints file (default 100k annotations on 20k
images), then measures in the same run, interleaved (best of N):

* ``pycocotools.coco.COCO(path)`` (json load + index), the reference;
* ``posekit.formats.coco.read_coco`` alone (parse + validate, no database);
* ``import_coco(..., copy_media=False)`` into an empty dataset of a fresh
  workspace (register-only: the benchmark has no image files; reading,
  validating and writing the annotations is what is measured; creating the
  workspace and its project is not timed);
* ``export_coco`` of that project to a new file.

The exported file is checked to equal the generated one (exact round trip).
Wall and CPU seconds are printed with their ratios to pycocotools' (CPU time
counts both threads of the import; under load from other processes the CPU
ratios are the steadier figures).

Modes:

* default: every step in this process; also the peak Python memory of each step
  (tracemalloc, in an untimed run) and the process peak RSS;
* ``--fresh-process``: every timing in a fresh Python process, which also
  reports its own peak RSS (``ru_maxrss``) and its RSS before the step;
  ``--baseline-src DIR`` adds the same import/export steps run with another
  checkout's ``src`` (e.g. ``git archive HEAD``) on ``PYTHONPATH``, interleaved
  with the current code, for a before/after in the same run.

Run: ``python benchmarks/store_io.py [--annotations N] [--images N] [--repeats N]
[--fresh-process [--baseline-src DIR]]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

STEPS = ("coco", "read", "import", "export")
LABELS = {
    "coco": "pycocotools COCO(path)",
    "read": "  read_coco alone (no database)",
    "import": "import_coco (register-only)",
    "export": "export_coco",
}


def _pycocotools_load(path: Path) -> Any:
    from pycocotools.coco import COCO  # imported (untimed) by _step first

    with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints progress lines
        return COCO(str(path))


def _fresh_workspace(root: Path) -> Any:
    from posekit.skeleton import get_preset
    from posekit.store import Workspace

    ws = Workspace(root)
    ws.create_project("bench", get_preset("coco17"))
    return ws


def _step(name: str, src: Path, ws_dir: Path, out: Path) -> Callable[[], Any]:
    """The timed function of a step (set-up such as creating the workspace done here)."""
    if name == "coco":
        import pycocotools.coco  # noqa: F401  (the import is not timed)

        return lambda: _pycocotools_load(src)
    if name == "read":
        from posekit.formats.coco import read_coco
        from posekit.skeleton import get_preset

        template = get_preset("coco17")
        return lambda: read_coco(src, template)
    from posekit.formats.registry import get_format
    from posekit.store import Workspace, export_coco, import_coco

    get_format("coco")  # the format table imports every format module: not timed
    if name == "import":
        ws = _fresh_workspace(ws_dir)
        return lambda: import_coco(ws, "bench", "all", src, copy_media=False)
    ws = Workspace(ws_dir)
    return lambda: export_coco(ws, "bench", out)


def _measure(func: Callable[[], Any]) -> tuple[float, float]:
    """``(wall s, CPU s)`` of one call (the result is dropped inside the timing)."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    func()
    return time.perf_counter() - wall, time.process_time() - cpu


def _status_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, from /proc (Linux).

    Not ``ru_maxrss``: Linux carries it over from the parent through fork and exec,
    so a child of a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _child(args: argparse.Namespace) -> None:
    func = _step(args.child, Path(args.src), Path(args.ws), Path(args.out))
    before = _status_mib("VmRSS")
    wall, cpu = _measure(func)
    peak = _status_mib("VmHWM")
    print(json.dumps({"wall": wall, "cpu": cpu, "rss_before": before, "rss_peak": peak}))


def _run_child(step: str, src: Path, ws_dir: Path, out: Path, pythonpath: Path | None) -> dict:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    command = [sys.executable, __file__, "--child", step, "--src", str(src), "--ws", str(ws_dir)]
    result = subprocess.run(
        [*command, "--out", str(out)], env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _check_round_trip(path: Path, source: Path) -> None:
    if json.loads(path.read_bytes()) != json.loads(source.read_bytes()):
        raise SystemExit(f"{path}: export differs from the imported file (round trip not exact)")


def _print_table(rows: list[tuple[str, dict[str, float]]], t_coco: float, c_coco: float) -> None:
    print(
        f"{'step':<40}{'wall s':>8}{'x pyc':>7}{'CPU s':>8}{'x pyc':>7}{'RSS MiB':>9}{'(start)':>9}"
    )
    for name, r in rows:
        rss = f"{r['rss_peak']:>9.0f}{r['rss_before']:>9.0f}" if "rss_peak" in r else ""
        print(
            f"{name:<40}{r['wall']:>8.2f}{r['wall'] / t_coco:>7.2f}{r['cpu']:>8.2f}"
            f"{r['cpu'] / c_coco:>7.2f}{rss}"
        )


def _best(results: list[dict[str, float]]) -> dict[str, float]:
    best = min(results, key=lambda r: r["wall"])
    out = dict(best)
    out["cpu"] = min(r["cpu"] for r in results)
    if "rss_peak" in best:
        out["rss_peak"] = max(r["rss_peak"] for r in results)
        out["rss_before"] = min(r["rss_before"] for r in results)
    return out


def _fresh_process(args: argparse.Namespace, tmp: Path, src: Path) -> None:
    variants: list[tuple[str, Path | None]] = [("", None)]
    if args.baseline_src:
        variants.append((" [baseline]", Path(args.baseline_src).resolve()))
    # One imported workspace per variant to export from (same schema).
    export_ws = {}
    for label, path in variants:
        export_ws[label] = tmp / f"export-ws{len(export_ws)}"
        _run_child("import", src, export_ws[label], tmp / "unused.json", path)
    results: dict[str, list[dict[str, float]]] = {}
    counter = 0
    for _ in range(args.repeats):
        for step in STEPS:
            for label, path in variants if step in ("import", "export") else variants[:1]:
                counter += 1
                out = tmp / f"export{counter}.json"
                ws_dir = export_ws[label] if step == "export" else tmp / f"ws{counter}"
                result = _run_child(step, src, ws_dir, out, path)
                if step == "export":
                    _check_round_trip(out, src)
                    out.unlink()
                results.setdefault(step + label, []).append(result)
    best = {key: _best(values) for key, values in results.items()}
    rows = [(LABELS[key.split(" ")[0]] + key[len(key.split(" ")[0]) :], best[key]) for key in best]
    print(f"fresh process per timing, best of {args.repeats} (RSS: peak of the process)")
    _print_table(rows, best["coco"]["wall"], best["coco"]["cpu"])


def _in_process(args: argparse.Namespace, tmp: Path, src: Path) -> None:
    from posekit.store import export_coco, import_coco

    counter = [0]

    def prepared(step: str) -> Callable[[], Any]:
        counter[0] += 1
        return _step(step, src, tmp / f"ws{counter[0]}", tmp / "export.json")

    exported_ws = _fresh_workspace(tmp / "export-ws")
    import_coco(exported_ws, "bench", "all", src, copy_media=False)
    times: dict[str, list[dict[str, float]]] = {step: [] for step in STEPS}
    for _ in range(args.repeats):  # interleaved: a burst of load hits all steps alike
        for step in STEPS:
            func = (
                (lambda: export_coco(exported_ws, "bench", tmp / "export.json"))
                if step == "export"
                else prepared(step)
            )
            wall, cpu = _measure(func)
            times[step].append({"wall": wall, "cpu": cpu})
    _check_round_trip(tmp / "export.json", src)
    peaks = {}
    for step in STEPS:
        func = (
            (lambda: export_coco(exported_ws, "bench", tmp / "export.json"))
            if step == "export"
            else prepared(step)
        )
        gc.collect()
        tracemalloc.start()
        try:
            func()
            peaks[step] = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
    rows = exported_ws.row_counts()
    best = {step: _best(times[step]) for step in STEPS}
    print(f"database after import: {rows['items']} items, {rows['instances']} instances")
    _print_table([(LABELS[s], best[s]) for s in STEPS], best["coco"]["wall"], best["coco"]["cpu"])
    print(
        "peak Python memory (tracemalloc, MiB): " + ", ".join(f"{s} {peaks[s]:.0f}" for s in STEPS)
    )
    rss = _status_mib("VmHWM")
    print(f"process peak RSS: {rss:.0f} MiB (all steps in one process; see --fresh-process)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fresh-process", action="store_true", help="each timing in a new process")
    parser.add_argument("--baseline-src", help="with --fresh-process: another checkout's src/")
    parser.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--ws", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    from helpers_coco import make_coco

    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "synthetic_keypoints.json"
        # Written and dropped: a big live dict would slow pycocotools' json.load down
        # (the cyclic GC walks it), which posekit (GC paused) does not feel.
        src.write_text(json.dumps(make_coco(args.images, args.annotations, args.seed)))
        gc.collect()
        print(
            f"COCO file: {args.images} images, {args.annotations} annotations, "
            f"{src.stat().st_size / 1e6:.1f} MB"
        )
        if args.fresh_process:
            _fresh_process(args, tmp, src)
        else:
            _in_process(args, tmp, src)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
