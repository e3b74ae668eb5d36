"""AI-assist round trip through HTTP: p50/p95 latency per box with the default model.

Starts a real uvicorn server (subprocess, 127.0.0.1) on a fresh workspace holding
the COCO sample images, loads the model with one warm-up request per image (the
first load is excluded, as is each image's first decode), then sends
``--requests`` assist requests over one keep-alive connection, cycling over the
images' ground-truth person boxes, and prints p50/p95/max of the client-side
round trip.

Run: ``python benchmarks/assist_http.py [--data DIR] [--requests 300]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import auth_headers, running_server

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument(
        "--refine-passes",
        type=int,
        default=None,
        help="BlazePose refinement passes for assist (default: the server's setting)",
    )
    args = parser.parse_args()
    if args.refine_passes is not None:
        os.environ["POSEKIT_ASSIST_OPTIONS"] = json.dumps(
            {"blazepose": {"refine_passes": args.refine_passes}}
        )
    sample = args.data / "coco-val2017-sample"
    gt = json.loads((sample / "person_keypoints.json").read_text())
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "ws") as url:
        client = httpx.Client(base_url=url, timeout=60, headers=auth_headers(Path(tmp) / "ws"))
        pid = client.post("/api/projects", json={"name": "bench", "template": "coco17"}).json()[
            "id"
        ]
        paths = sorted((sample / "images").glob("*.jpg"))
        files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
        client.post(f"/api/projects/{pid}/upload", files=files).raise_for_status()
        items = client.get(f"/api/projects/{pid}/items").json()["items"]
        by_name = {i["file_name"]: i["id"] for i in items}
        image_names = {i["id"]: i["file_name"] for i in gt["images"]}
        jobs = []
        for ann in gt["annotations"]:
            x, y, w, h = ann["bbox"]
            if w * h > 0 and not ann.get("iscrowd"):
                jobs.append((by_name[image_names[ann["image_id"]]], [x, y, x + w, y + h]))
        start = time.perf_counter()
        for item_id in by_name.values():  # model load + first decode of each image
            box = (
                next(b for i, b in jobs if i == item_id)
                if any(i == item_id for i, _ in jobs)
                else [0, 0, 100, 100]
            )
            client.post(f"/api/items/{item_id}/assist", json={"box": box}).raise_for_status()
        warmup = time.perf_counter() - start
        times = []
        for n in range(args.requests):
            item_id, box = jobs[n % len(jobs)]
            t0 = time.perf_counter()
            response = client.post(f"/api/items/{item_id}/assist", json={"box": box})
            times.append(time.perf_counter() - t0)
            response.raise_for_status()
        ms = np.asarray(times) * 1000
        passes = "server default" if args.refine_passes is None else args.refine_passes
        print(
            f"assist over HTTP (refine passes {passes}; "
            f"{args.requests} requests, {len(jobs)} boxes on {len(paths)} "
            f"images; warm-up incl. model load {warmup:.2f} s): "
            f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, "
            f"max {ms.max():.1f} ms"
        )


if __name__ == "__main__":
    main()
