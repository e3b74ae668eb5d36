"""Auto-label throughput through the server's job queue vs ``autolabel`` called directly.

Builds two identical workspaces holding the COCO sample images copied ``--copies``
times (each copy re-encoded with one pixel changed, so that import does not skip
it as a duplicate), then times (a) ``posekit.engines.local.autolabel`` in this
process and (b) a job started with ``POST /api/projects/{id}/jobs`` on a real
uvicorn server (subprocess), from the POST until the job reports ``done``
(polled every 0.1 s). Both include model loading. Prints images/s and the ratio.

Run: ``python benchmarks/autolabel_job.py [--data DIR] [--copies 10]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import auth_headers, running_server

from posekit.engines.local import autolabel
from posekit.skeleton import get_preset
from posekit.store import Workspace, import_images

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def make_images(sample: Path, copies: int, out: Path) -> Path:
    out.mkdir(parents=True)
    for path in sorted((sample / "images").glob("*.jpg")):
        pixels = np.asarray(Image.open(path).convert("RGB")).copy()
        for copy in range(copies):
            pixels[0, 0] = (copy, copy, copy)
            Image.fromarray(pixels).save(out / f"{path.stem}_{copy:02d}.jpg", quality=95)
    return out


def prepared_workspace(root: Path, images: Path) -> int:
    with Workspace(root) as ws:
        ws.create_project("bench", get_preset("coco17"))
        return import_images(ws, "bench", "default", [images]).added


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        images = make_images(args.data / "coco-val2017-sample", args.copies, Path(tmp) / "img")
        n = prepared_workspace(Path(tmp) / "direct", images)
        prepared_workspace(Path(tmp) / "served", images)

        with Workspace(Path(tmp) / "direct") as ws:
            start = time.perf_counter()
            report = autolabel(ws, "bench")
            direct = time.perf_counter() - start
        print(
            f"direct autolabel: {n} images in {direct:.2f} s = {n / direct:.2f} images/s "
            f"({report.instances} instances)"
        )

        with (
            running_server(Path(tmp) / "served") as url,
            httpx.Client(base_url=url, headers=auth_headers(Path(tmp) / "served")) as client,
        ):
            pid = client.get("/api/projects").json()[0]["id"]
            start = time.perf_counter()
            job = client.post(f"/api/projects/{pid}/jobs", json={}).json()
            while job["status"] in ("queued", "running"):
                time.sleep(0.1)
                job = client.get(f"/api/jobs/{job['id']}").json()
            served = time.perf_counter() - start
        if job["status"] != "done":
            raise SystemExit(f"job ended {job['status']}: {job['error']}")
        print(
            f"server job:       {job['done']} images in {served:.2f} s = "
            f"{job['done'] / served:.2f} images/s ({job['instances']} instances)"
        )
        print(f"server / direct throughput: {direct / served:.3f}")


if __name__ == "__main__":
    main()
