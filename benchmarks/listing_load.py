"""GET /api/projects under load: latency at 300k instances and a 32-client burst.

Builds a workspace with ``--instances`` instances (10 per item, two projects) by
direct inserts, starts the real server (uvicorn subprocess on 127.0.0.1 only), then

1. times ``GET /api/projects`` sequentially (median and p95 of ``--requests``);
2. runs a bounded burst: ``--clients`` threads on 127.0.0.1 for at most
   ``--seconds`` and ``--per-client`` requests each; four of them save instances
   (``PUT /api/instances/{id}``, what the editor does), the others list projects.
   It reports listings per second, 429 answers, and the saves' p50/p95.

``--src DIR`` runs the server (and builds the workspace) from another source tree,
e.g. the previous release unpacked with ``git archive HEAD | tar -x -C /tmp/old``,
for before/after figures. Loopback only; nothing is sent anywhere else.

Example:
    python benchmarks/listing_load.py --instances 300000
    python benchmarks/listing_load.py --src /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

SAVERS = 4


def fill(workspace: Path, instances: int) -> None:
    """Two projects; ``instances`` instances, 10 per item, by direct inserts."""
    import numpy as np
    from sqlalchemy import insert, select

    from posekit.skeleton import get_preset
    from posekit.store import Workspace
    from posekit.store.tables import InstanceRow, ItemRow

    keypoints = np.zeros((17, 2), np.float32).tobytes()
    visibility = np.full(17, 2, np.uint8).tobytes()
    with Workspace(workspace) as ws:
        for name in ("people", "other"):
            project = ws.create_project(name, get_preset("coco17"))
            dataset = ws.get_or_create_dataset(project, "default")
            n_items = max(1, instances // 2 // 10)
            with ws.transaction() as conn:
                conn.execute(
                    insert(ItemRow),
                    [
                        {
                            "dataset_id": dataset.id,
                            "file_name": f"{i:07d}.jpg",
                            "width": 640,
                            "height": 480,
                            "kind": "image",
                            "status": "new",
                        }
                        for i in range(n_items)
                    ],
                )
                ids = conn.execute(
                    select(ItemRow.id).where(ItemRow.dataset_id == dataset.id)
                ).scalars()
                rows = [
                    {
                        "item_id": item_id,
                        "keypoints": keypoints,
                        "visibility": visibility,
                        "source": "manual",
                        "status": "accepted",
                        "iscrowd": False,
                        "version": 1,
                    }
                    for item_id in ids
                    for _ in range(10)
                ]
                conn.execute(insert(InstanceRow), rows)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(src: Path | None, workspace: Path) -> dict[str, str]:
    env = dict(os.environ, POSEKIT_WORKSPACE=str(workspace))
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _burst(
    url: str, saves: list[tuple[int, int]], args: argparse.Namespace, auth: dict[str, str]
) -> dict:
    deadline = time.monotonic() + args.seconds
    lock = threading.Lock()
    listing: dict[int, int] = {}
    save_ms: list[float] = []
    save_status: dict[int, int] = {}
    headers = {"X-Posekit-Client": "benchmark", **auth}

    def lister() -> None:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            for _ in range(args.per_client):
                if time.monotonic() > deadline:
                    return
                status = client.get("/api/projects").status_code
                with lock:
                    listing[status] = listing.get(status, 0) + 1

    def saver(instance_id: int, version: int) -> None:
        with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
            for n in range(args.per_client):
                if time.monotonic() > deadline:
                    return
                start = time.perf_counter()
                response = client.put(
                    f"/api/instances/{instance_id}", json={"version": version, "score": n % 7 / 10}
                )
                elapsed = (time.perf_counter() - start) * 1000
                if response.status_code == 200:
                    version = response.json()["version"]
                with lock:
                    save_ms.append(elapsed)
                    save_status[response.status_code] = save_status.get(response.status_code, 0) + 1
                time.sleep(0.05)  # a person saves a few times a second at most

    threads = [threading.Thread(target=saver, args=s) for s in saves]
    threads += [threading.Thread(target=lister) for _ in range(args.clients - len(saves))]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - start
    return {
        "clients": args.clients,
        "wall_s": round(wall, 2),
        "listing_status": listing,
        "listing_ok_per_s": round(listing.get(200, 0) / wall, 1),
        "listing_429": listing.get(429, 0),
        "saves": len(save_ms),
        "save_status": save_status,
        "save_p50_ms": round(_percentile(save_ms, 0.5), 1),
        "save_p95_ms": round(_percentile(save_ms, 0.95), 1),
    }


def run(args: argparse.Namespace) -> dict:
    src = Path(args.src).resolve() if args.src else None
    with tempfile.TemporaryDirectory(prefix="posekit-listing-") as tmp:
        workspace = Path(tmp) / "ws"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--fill-only", str(workspace), "--instances",
             str(args.instances)],
            env=_env(src, workspace), check=True,
        )  # fmt: skip
        fill_s = time.perf_counter() - started
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "posekit.server.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=_env(src, workspace),
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start")
                time.sleep(0.1)
            # Logged in (a token of a fresh admin), except for another source tree
            # (--src), whose workspace this tree's store must not open (or migrate).
            from _server import auth_headers  # benchmarks/

            auth = {} if src else auth_headers(workspace)
            with httpx.Client(base_url=url, timeout=60, headers=auth) as client:
                projects = client.get("/api/projects").json()
                latencies = []
                for _ in range(args.requests):
                    start = time.perf_counter()
                    assert client.get("/api/projects").status_code == 200
                    latencies.append((time.perf_counter() - start) * 1000)
                    time.sleep(0.03)  # stay under the rate limit: this measures latency
                pid = projects[0]["id"]
                items = client.get(f"/api/projects/{pid}/items", params={"limit": SAVERS}).json()
                saves = []
                for item in items["items"]:
                    record = client.get(f"/api/items/{item['id']}").json()["instances"][0]
                    saves.append((record["id"], record["version"]))
            burst = _burst(url, saves, args, auth)
        finally:
            server.terminate()
            server.wait(30)
    return {
        "source": str(src or "this checkout"),
        "instances": sum(p["num_instances"] for p in projects),
        "fill_s": round(fill_s, 1),
        "list_projects_median_ms": round(statistics.median(latencies), 2),
        "list_projects_p95_ms": round(_percentile(latencies, 0.95), 2),
        "burst": burst,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=50, help="sequential listings timed")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0, help="burst time limit")
    parser.add_argument("--per-client", type=int, default=200, help="burst requests per client")
    parser.add_argument("--src", help="run the server from this source tree (its src/)")
    parser.add_argument("--fill-only", metavar="WORKSPACE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill_only:
        fill(Path(args.fill_only), args.instances)
        return
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
