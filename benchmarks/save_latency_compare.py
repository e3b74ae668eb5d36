"""Save latency of several posekit trees in alternate rounds of one run
(:mod:`benchmarks.save_latency` against each, one after the other, ``--rounds`` times),
with the load average before each round, and the best and median of each tree.

A tree is ``NAME=PATH[:AUTH]``: PATH is a source tree's ``src`` folder (a ``git
archive`` unpacked, e.g. ``git archive 736360d | tar -x -C /tmp/before``), or ``.``
for this checkout; AUTH is the ``--auth`` of that tree (``none`` for a tree without
logins; default ``login``). Other arguments go to ``save_latency.py``. Example, the
figures of issue 12 (the tree before teams against this one, SQLite)::

    python benchmarks/save_latency_compare.py before=/tmp/before/src:none now=. \\
        --rounds 3 -- --backend sqlite
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = ("saves_per_s", "p50_ms", "p95_ms", "p99_ms", "server_cpu_ms")


def _tree(spec: str) -> tuple[str, str, str]:
    name, sep, rest = spec.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected NAME=PATH[:AUTH]")
    path, _, auth = rest.partition(":")
    if auth not in ("", "none", "login", "token"):
        raise argparse.ArgumentTypeError(f"{spec!r}: AUTH must be none, login or token")
    if path != "." and not (Path(path) / "posekit").is_dir():
        raise argparse.ArgumentTypeError(f"{spec!r}: {path}/posekit does not exist")
    return name, path, auth or "login"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], epilog="then -- and save_latency.py's options"
    )
    parser.add_argument("trees", nargs="+", type=_tree, help="NAME=PATH[:AUTH]")
    parser.add_argument("--rounds", type=int, default=3)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    extra = argv[cut + 1 :]  # options of save_latency.py, after --
    results: dict[str, list[dict]] = {name: [] for name, _, _ in args.trees}
    for round_number in range(1, args.rounds + 1):
        print(f"round {round_number}, load average {_load()}", flush=True)
        for name, path, auth in args.trees:
            env = dict(os.environ)
            if path != ".":
                env["PYTHONPATH"] = os.pathsep.join([path, env.get("PYTHONPATH", "")])
            command = [sys.executable, str(HERE / "save_latency.py"), "--json", "--auth", auth]
            out = subprocess.run([*command, *extra], env=env, check=True, capture_output=True,
                                 text=True).stdout  # fmt: skip
            for line in out.splitlines():
                result = json.loads(line)
                results[name].append(result)
                shown = " ".join(f"{f}={result.get(f)}" for f in FIELDS)
                print(f"  {name:<10} {result['backend']:<10} {shown} errors={result['errors']}")
    print(f"end, load average {_load()}")
    print(f"\n{'tree':<10} {'backend':<10} " + " ".join(f"{f:>22}" for f in FIELDS))
    for name, rows in results.items():
        for backend in sorted({r["backend"] for r in rows}):
            mine = [r for r in rows if r["backend"] == backend]
            cells = []
            for f in FIELDS:
                values = [r[f] for r in mine if r.get(f) is not None]
                if not values:
                    cells.append(f"{'-':>22}")
                    continue
                best = max(values) if f == "saves_per_s" else min(values)
                cells.append(f"{f'{best} (med {statistics.median(values):g})':>22}")
            print(f"{name:<10} {backend:<10} " + " ".join(cells))


if __name__ == "__main__":
    main()
