"""Save latency with 20 concurrent annotators, through the HTTP API, on SQLite and on
PostgreSQL.

A real server (uvicorn on 127.0.0.1, a subprocess) serves a workspace of
``--annotators x --items`` items with one person each; every annotator is a user
with the ``annotator`` role in the project and its own items assigned. Each
annotator (a thread with its own HTTP connection) saves its own instances in a
loop (``PUT /api/instances/{id}`` with the version it holds, new keypoints),
``--saves`` times, without pause (or ``--think-ms`` between saves), all at once.
The first ``--warmup`` saves of each are not counted. Prints p50/p95/p99 save
latency, throughput, the server process's CPU time per save (``cpu ms``: user +
system of all its threads, from ``/proc``; unlike the throughput it hardly moves with
other load on the machine) and errors per backend. ``--py-spy FILE`` records the
server with py-spy during the measured saves (folded stacks; ``--py-spy-option=--gil``
for only the samples holding the GIL, ``--idle`` for waits too).

Before/after on one machine: the same script serves an older tree with
``PYTHONPATH=<tree>/src`` (a tree without logins with ``--auth none``).

Login (``--auth``):

* ``none``: no credential is sent; the app is given each request's user directly
  (``benchmarks/_save_latency_app.py``): every authorization check runs, but no
  session lookup. This is the figure without login (the baseline).
* ``login`` (also ``--login``): each annotator logs in with its password
  (``POST /api/auth/login``) and sends the session cookie, as the browser does.
* ``token``: each annotator sends a personal access token (``Authorization: Bearer``).

PostgreSQL: ``--postgres-url`` (or ``$POSEKIT_TEST_POSTGRES_URL``), a server on which
a fresh database is created and dropped; without one a throwaway cluster is started
from ``/usr/lib/postgresql/*/bin`` (as ``.ci/run`` does). Run:
``python benchmarks/save_latency.py [--backend sqlite|postgresql|both] [--login]``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _server import free_port, serving  # noqa: E402


@dataclass
class Annotator:
    username: str
    password: str
    instances: dict[int, int]  # instance id -> version
    token: str | None = None
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def _images(folder: Path, count: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    for index in range(count):
        Image.new("RGB", (96, 64), (index % 250, 80, 160)).save(folder / f"img{index:05d}.png")
    return folder


def prepare(root: Path, database_url: str | None, args: argparse.Namespace) -> list[Annotator]:
    """The workspace: a project, items with one person each, annotators with their items."""
    from posekit import Instance, get_preset
    from posekit.store import Workspace, import_images

    count = args.annotators * args.items
    options = {"database_url": database_url} if database_url else {}
    with Workspace(root / "ws", **options) as ws:
        project = ws.create_project("bench", get_preset("coco17"))
        import_images(ws, project, "all", [_images(root / "images", count)])
        items = ws.list_items(project)
        rng = np.random.default_rng(0)
        instance_of = {}
        for item in items:
            xy = rng.uniform(0, 60, (17, 2)).astype(np.float32)
            instance_of[item.id] = ws.add_instance(item, Instance(xy, np.full(17, 2, np.uint8))).id
        annotators = []
        has_users = hasattr(ws, "create_user")
        for k in range(args.annotators):
            mine = items[k * args.items : (k + 1) * args.items]
            annotator = Annotator(
                f"annotator{k:02d}", secrets.token_urlsafe(12), {instance_of[i.id]: 1 for i in mine}
            )
            if has_users:
                user = ws.create_user(annotator.username, annotator.password)
                ws.set_member(project, user, "annotator")
                ws.assign_items(project, [i.id for i in mine], user.id, by=None)
                if args.auth == "token":
                    annotator.token, _ = ws.create_access_token(user.id, "save-latency")
            annotators.append(annotator)
    return annotators


@contextmanager
def serve(root: Path, database_url: str | None, auth: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH", "")]),
        POSEKIT_WORKSPACE=str(root / "ws"),
        POSEKIT_RATE_LIMIT_PER_SECOND="0",
        SAVE_BENCH_AUTH=auth,
    )
    env.pop("POSEKIT_DATABASE_URL", None)
    if database_url:
        env["POSEKIT_DATABASE_URL"] = database_url
    command = [sys.executable, "-m", "uvicorn", "_save_latency_app:create", "--factory",
               "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, env=env)
    with serving(process, f"http://127.0.0.1:{port}") as url:
        yield url, process.pid


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def profiled(pid: int, output: str | None, options: list[str]) -> Iterator[None]:
    """``py-spy record`` (raw folded stacks) of the server process ``pid`` while the
    block runs (the measured saves); nothing without ``output``."""
    if not output:
        yield
        return
    import signal

    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--py-spy: the py-spy command is not installed (pip install py-spy)")
    # --nonblocking (the process runs on while sampled) unless --native asks otherwise.
    blocking = [] if "--native" in options else ["--nonblocking"]
    command = [spy, "record", "--pid", str(pid), "-o", output, "-f", "raw", "--rate", "250",
               *blocking, *options]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    time.sleep(1.0)  # py-spy attaches
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        recorder.wait(60)


def _client(url: str, annotator: Annotator, auth: str) -> httpx.Client:
    headers = {"Origin": url, "X-Posekit-Client": "ui"}  # as the browser UI sends them
    if auth == "none":
        headers["X-Bench-User"] = annotator.username
    elif auth == "token":
        headers["Authorization"] = f"Bearer {annotator.token}"
    client = httpx.Client(base_url=url, headers=headers, timeout=60)
    if auth == "login":
        response = client.post(
            "/api/auth/login", json={"username": annotator.username, "password": annotator.password}
        )
        response.raise_for_status()  # the session cookie stays in the client
    return client


def run(
    annotators: list[Annotator], clients: list[httpx.Client], args: argparse.Namespace
) -> float:
    """All annotators save at once (each with its logged-in client); returns the wall
    time of the measured part."""
    barrier = threading.Barrier(len(annotators))
    spans: list[tuple[float, float]] = []

    def annotate(k: int) -> None:
        annotator, client = annotators[k], clients[k]
        rng = np.random.default_rng(k)
        ids = list(annotator.instances)
        barrier.wait()
        start = time.perf_counter()
        for n in range(args.warmup + args.saves):
            if n == args.warmup:
                start = time.perf_counter()
            instance_id = ids[n % len(ids)]
            body = {
                "version": annotator.instances[instance_id],
                "keypoints": rng.uniform(0, 60, (17, 2)).round(2).tolist(),
            }
            began = time.perf_counter()
            response = client.put(f"/api/instances/{instance_id}", json=body)
            took = time.perf_counter() - began
            if response.status_code == 200:
                annotator.instances[instance_id] = response.json()["version"]
                if n >= args.warmup:
                    annotator.latencies.append(took)
            else:
                annotator.errors[f"{response.status_code} {response.text[:80]}"] += 1
            if args.think_ms:
                time.sleep(args.think_ms / 1000)
        spans.append((start, time.perf_counter()))

    threads = [threading.Thread(target=annotate, args=(k,)) for k in range(len(annotators))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return max(end for _, end in spans) - min(begin for begin, _ in spans)


def measure(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="posekit-save-latency-") as scratch,
        _database(backend, args) as database_url,
    ):
        root = Path(scratch)
        annotators = prepare(root, database_url, args)
        with serve(root, database_url, args.auth) as (url, pid):
            clients = [_client(url, a, args.auth) for a in annotators]
            try:
                with profiled(pid, args.py_spy, args.py_spy_option):
                    cpu_before = _cpu_seconds(pid)
                    wall = run(annotators, clients, args)
                    cpu_after = _cpu_seconds(pid)
            finally:
                for client in clients:
                    client.close()
    latencies = sorted(t for a in annotators for t in a.latencies)
    warmups = args.warmup * len(annotators)
    errors = sum((a.errors for a in annotators), Counter())
    if not latencies:
        raise RuntimeError(f"{backend}: no save succeeded: {dict(errors)}")

    def pct(p: float) -> float:
        return 1000 * latencies[min(len(latencies) - 1, round(p / 100 * (len(latencies) - 1)))]

    return {
        "backend": backend,
        "auth": args.auth,
        "saves": len(latencies),
        "p50_ms": round(pct(50), 1),
        "p95_ms": round(pct(95), 1),
        "p99_ms": round(pct(99), 1),
        "mean_ms": round(1000 * statistics.fmean(latencies), 1),
        "saves_per_s": round(len(latencies) / wall, 1),
        # CPU time of the server process (all its threads) per save, warm-up included:
        # unlike the throughput, hardly changed by other load on the machine.
        "server_cpu_ms": (
            None
            if cpu_before is None or cpu_after is None
            else round(1000 * (cpu_after - cpu_before) / (len(latencies) + warmups), 2)
        ),
        "errors": dict(errors),
    }


@contextmanager
def _database(backend: str, args: argparse.Namespace) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    import db_backends

    url = args.postgres_url or os.environ.get(db_backends.SERVER_ENV)
    server = db_backends.PostgresServer(url or db_backends._start_cluster())
    database = server.create_database(migrated=False)
    try:
        yield database
    finally:
        server.drop_database(database)
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--auth", choices=("none", "login", "token"), default="none")
    parser.add_argument("--login", action="store_const", const="login", dest="auth",
                        help="same as --auth login")  # fmt: skip
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--items", type=int, default=5, help="items (instances) per annotator")
    parser.add_argument("--saves", type=int, default=50, help="measured saves per annotator")
    parser.add_argument("--warmup", type=int, default=3, help="uncounted saves per annotator")
    parser.add_argument("--think-ms", type=float, default=0, help="pause between saves")
    parser.add_argument("--postgres-url", default=None, help="PostgreSQL server (admin URL)")
    parser.add_argument("--json", action="store_true", help="print JSON lines only")
    parser.add_argument("--py-spy", metavar="FILE", default=None,
                        help="record the server with py-spy during the measured saves "
                        "(folded stacks, one backend)")  # fmt: skip
    parser.add_argument("--py-spy-option", action="append", default=[],
                        help="extra py-spy record flag, e.g. --py-spy-option=--idle")  # fmt: skip
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    if not args.json:
        print(f"{args.annotators} annotators x {args.saves} saves (+{args.warmup} warm-up), "
              f"{args.items} instances each, auth={args.auth}, think={args.think_ms} ms, "
              f"{os.cpu_count()} CPUs")  # fmt: skip
        print(f"{'backend':<11} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
              f"{'saves/s':>8} {'cpu ms':>7}  errors")  # fmt: skip
    for backend in backends:
        result = measure(backend, args)
        if args.json:
            print(json.dumps(result))
        else:
            print(f"{backend:<11} {result['p50_ms']:>8} {result['p95_ms']:>8} "
                  f"{result['p99_ms']:>8} {result['mean_ms']:>8} {result['saves_per_s']:>8} "
                  f"{result['server_cpu_ms'] or '-':>7}  "
                  f"{sum(result['errors'].values())} {result['errors'] or ''}")  # fmt: skip


if __name__ == "__main__":
    main()
