"""AI-assist round trip through HTTP: p50/p95 latency per box with the default model.

Starts a real uvicorn server (subprocess, 127.0.0.1) on a fresh workspace holding
the COCO sample images, loads the model with one warm-up request per image (the
first load is excluded, as is each image's first decode), then sends
``--requests`` assist requests over one keep-alive connection, cycling over the
images' ground-truth person boxes, and prints p50/p95/max of the client-side
round trip. Between requests the same box is also run through
:func:`posekit.pipeline.assist` in this process with the server's assist settings
(the model's own time, what HTTP and the route add to it is the difference).

``--compare-with REV`` also starts a second server whose AI-assist files
(:data:`ASSIST_FILES`) are those of git revision ``REV`` (the rest of the tree as
it is now) and alternates the requests between the two, so both see the same load;
it checks that both answer with the same instances.

Run: ``python benchmarks/assist_http.py [--data DIR] [--requests 300] [--compare-with HEAD]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import auth_headers, running_server
from _trees import overlay_tree

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
#: What ``--compare-with`` takes from the other revision.
ASSIST_FILES = (
    "src/posekit/models/blazepose/estimator.py",
    "src/posekit/models/blazepose/face.py",
    "src/posekit/server/routes/items.py",
    "src/posekit/pipeline/assist.py",
    "src/posekit/models/blazepose/detector.py",
    "src/posekit/models/blazepose/runtime.py",
    "src/posekit/models/geometry.py",
    "src/posekit/models/boxes.py",
)


def old_tree(rev: str, into: Path) -> Path:
    """A copy of the current ``src`` with :data:`ASSIST_FILES` as of ``rev``."""
    return overlay_tree(rev, ASSIST_FILES, into)


def start_server(stack: ExitStack, workspace: Path, src: Path | None) -> str:
    """A server on ``workspace`` running the package in ``src`` (None: this tree)."""
    saved = os.environ.get("PYTHONPATH")
    if src is not None:
        os.environ["PYTHONPATH"] = str(src)
    try:
        return stack.enter_context(running_server(workspace))  # the child copies the env
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved


def prepare_project(url: str, workspace: Path, sample: Path) -> tuple[httpx.Client, list]:
    """A project with the sample images; the client and ``(item id, box)`` jobs."""
    client = httpx.Client(base_url=url, timeout=60, headers=auth_headers(workspace))
    pid = client.post("/api/projects", json={"name": "bench", "template": "coco17"}).json()["id"]
    paths = sorted((sample / "images").glob("*.jpg"))
    files = [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]
    client.post(f"/api/projects/{pid}/upload", files=files).raise_for_status()
    items = client.get(f"/api/projects/{pid}/items").json()["items"]
    by_name = {i["file_name"]: i["id"] for i in items}
    gt = json.loads((sample / "person_keypoints.json").read_text())
    image_names = {i["id"]: i["file_name"] for i in gt["images"]}
    jobs = []
    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        if w * h > 0 and not ann.get("iscrowd"):
            name = image_names[ann["image_id"]]
            jobs.append((by_name[name], name, [x, y, x + w, y + h]))
    for item_id in by_name.values():  # model load + first decode of each image
        box = next((b for i, _, b in jobs if i == item_id), [0, 0, 100, 100])
        client.post(f"/api/items/{item_id}/assist", json={"box": box}).raise_for_status()
    return client, jobs


def _figures(ms: list[float]) -> str:
    a = np.asarray(ms)
    return (
        f"p50 {np.percentile(a, 50):.1f} ms, p95 {np.percentile(a, 95):.1f} ms, "
        f"max {a.max():.1f} ms"
    )


def _answer(body: dict) -> dict:
    """The instance without what legitimately differs between calls and servers (the
    latency, the item id)."""
    out = {k: v for k, v in body.items() if k != "item_id"}
    out["produced_by"] = {
        k: v for k, v in (out.get("produced_by") or {}).items() if k != "latency_ms"
    }
    return out


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
    parser.add_argument("--compare-with", metavar="REV", help="also run REV's assist files")
    args = parser.parse_args()
    if args.refine_passes is not None:
        os.environ["POSEKIT_ASSIST_OPTIONS"] = json.dumps(
            {"blazepose": {"refine_passes": args.refine_passes}}
        )
    from posekit.media.image import load_image
    from posekit.models import create_pose_estimator
    from posekit.pipeline.assist import assist
    from posekit.server.settings import Settings
    from posekit.skeleton import get_preset

    sample = args.data / "coco-val2017-sample"
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        servers = {"now": start_server(stack, Path(tmp) / "ws-now", None)}
        if args.compare_with:
            src = old_tree(args.compare_with, Path(tmp) / "old")
            servers[f"{args.compare_with} (before)"] = start_server(
                stack, Path(tmp) / "ws-old", src
            )
        clients = {}
        start = time.perf_counter()
        for label, url in servers.items():
            ws = Path(tmp) / ("ws-now" if label == "now" else "ws-old")
            clients[label] = prepare_project(url, ws, sample)
        warmup = time.perf_counter() - start
        jobs = clients["now"][1]
        options = Settings().assist_options.get("blazepose", {})
        estimator = stack.enter_context(create_pose_estimator("blazepose", **options))
        template = get_preset("coco17")
        images = {name: load_image(sample / "images" / name) for _, name, _ in jobs}
        times: dict[str, list[float]] = {label: [] for label in servers}
        times["in-process assist()"] = []
        answers: dict[str, dict[int, dict]] = {label: {} for label in servers}
        for n in range(args.requests):
            index = n % len(jobs)
            labels = list(servers) if n % 2 == 0 else list(reversed(servers))
            for label in labels:
                client, own_jobs = clients[label]
                item_id, _, box = own_jobs[index]
                t0 = time.perf_counter()
                response = client.post(f"/api/items/{item_id}/assist", json={"box": box})
                times[label].append(1000 * (time.perf_counter() - t0))
                response.raise_for_status()
                answers[label].setdefault(index, _answer(response.json()))
            _, name, box = jobs[index]
            t0 = time.perf_counter()
            assist(images[name], np.asarray(box, np.float32), template, estimator)
            times["in-process assist()"].append(1000 * (time.perf_counter() - t0))
        passes = "server default" if args.refine_passes is None else args.refine_passes
        load = os.getloadavg()
        print(
            f"assist over HTTP (refine passes {passes}; {args.requests} requests per server, "
            f"{len(jobs)} boxes on {len(images)} images; warm-up incl. model load "
            f"{warmup:.2f} s; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}):"
        )
        reference = np.asarray(times["in-process assist()"])
        for label, ms in times.items():
            extra = ""
            if label in servers:  # paired with the same box's in-process run
                added = np.median(np.asarray(ms) - reference)
                extra = f"; HTTP and route add (median of pairs) {added:.1f} ms"
            print(f"  {label:22s} {_figures(ms)}{extra}")
        if len(servers) > 1:
            now_ms, old_ms = (np.asarray(times[label]) for label in servers)
            print(
                f"  now - before, median of the {len(now_ms)} pairs of requests on the same "
                f"box: {np.median(now_ms - old_ms):+.1f} ms"
            )
        if len(servers) > 1:
            now, old = (answers[label] for label in servers)
            differ = sorted({key for i in now for key in now[i] if now[i][key] != old[i][key]})
            print(
                "  the two servers' instances are "
                + ("identical" if not differ else f"DIFFERENT in {', '.join(differ)}")
            )


if __name__ == "__main__":
    main()
