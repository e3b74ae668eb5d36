"""Annotation-view speed in headless Chromium with 50 people x 17 keypoints.

Starts the real server (``posekit.server.create_app`` under uvicorn on a free
loopback port) on a temporary workspace holding two 1920x1280 images made from
a shared COCO sample, each with 50 COCO-17 people created through the HTTP API
(a default pose per person, jittered, on a 10 x 5 grid). Debian's
``/usr/bin/chromium`` (driven by Playwright) then measures:

* **open**: time from the route change (``location.hash``) to the first painted
  frame of the annotation view, with the image already cached by the page
  (alternating between the two items, so each open fetches the item's 50
  instances anew and draws everything);
* **drag**: several drag gestures, each on another person's keypoint, with real
  mouse events (move onto the point, press, ``--drag-steps`` moves, release).
  Every frame the gesture causes counts: the frame of the press (which selects
  the person and lifts it out of the cached layer), the frames of the moves
  and the frame of the release. Per frame: the draw time inside
  ``requestAnimationFrame``, raster included (the ``window.posekit.frames()``
  hook, ``performance.now()``), and the interval between frame timestamps;
* **repair check**: the canvas after the gestures (drawn by repairing the cached
  layers) against a from-scratch redraw of the same scene, pixel by pixel;
* **full redraw**: one complete redraw of image + 50 people (as after a zoom or
  a pan step), and its two parts: the scaled image, and the people.

The CPU may be shared: the load average is printed before and after.
Target (issue 4): open <= 300 ms, frame times < 16 ms. Run:
``python benchmarks/ui_perf.py [--opens N] [--drags N] [--drag-steps N]``.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "coco-val2017-sample"
# Upright COCO-17 pose in a unit box (person's left on the image's right).
POSE = [
    (0.5, 0.08), (0.54, 0.055), (0.46, 0.055), (0.585, 0.075), (0.415, 0.075),
    (0.66, 0.2), (0.34, 0.2), (0.75, 0.36), (0.25, 0.36), (0.8, 0.5), (0.2, 0.5),
    (0.6, 0.52), (0.4, 0.52), (0.61, 0.74), (0.39, 0.74), (0.62, 0.94), (0.38, 0.94),
]  # fmt: skip
PEOPLE = 50
OPEN_JS = """async ([hash, itemId]) => {
  window.posekit.openMs = null;
  const t0 = performance.now();
  location.hash = hash;
  await new Promise((resolve) => {
    const check = () => {
      const state = window.posekit.state();
      const done = document.body.dataset.page === "annotate" && window.posekit.openMs !== null &&
        state && state.itemId === itemId;
      if (done) resolve();
      else requestAnimationFrame(check);
    };
    check();
  });
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  return [performance.now() - t0, window.posekit.openMs];
}"""
RASTER_IN_FRAME_JS = """() => {
  const view = window.posekit.view;
  const render = view.renderNow.bind(view);
  view.renderNow = () => {
    render();
    view.renderer.ctx.getImageData(0, 0, 1, 1);
  };
}"""
REDRAW_JS = """(n) => {
  const view = window.posekit.view;
  const renderer = view.renderer;
  const raster = () => view.renderer.ctx.getImageData(0, 0, 1, 1);
  const full = [], image = [], people = [];
  for (let i = 0; i < n; i++) {
    renderer.reset();
    let t0 = performance.now();
    view.renderNow();
    raster();
    full.push(performance.now() - t0);
    // The two parts of it, each rasterized on its own layer.
    t0 = performance.now();
    renderer.drawImageLayer(view.scene());
    renderer.imageCtx.getImageData(0, 0, 1, 1);
    image.push(performance.now() - t0);
    renderer.layerEntries = null;
    t0 = performance.now();
    renderer.updateLayer(view.scene());
    renderer.layerCtx.getImageData(0, 0, 1, 1);
    people.push(performance.now() - t0);
  }
  return [full, image, people];
}"""
# The frame drawn by repairing the cached layers against a redraw from scratch.
REPAIR_CHECK_JS = """() => {
  const view = window.posekit.view;
  const { width, height } = view.canvas;
  const ctx = view.renderer.ctx;
  view.renderNow();
  const repaired = ctx.getImageData(0, 0, width, height).data;
  view.renderer.reset();
  view.renderNow();
  const fresh = ctx.getImageData(0, 0, width, height).data;
  let differ = 0, maxDiff = 0;
  for (let i = 0; i < fresh.length; i += 4) {
    let d = 0;
    for (let c = 0; c < 3; c++) d = Math.max(d, Math.abs(fresh[i + c] - repaired[i + c]));
    if (d) differ++;
    maxDiff = Math.max(maxDiff, d);
  }
  return [differ, maxDiff, width * height];
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"n={len(values)} p50={statistics.median(ordered):.2f} p95={p95:.2f} "
        f"max={ordered[-1]:.2f} ms"
    )


def people(width: int, height: int, rng: random.Random) -> list[dict]:
    """50 jittered default poses on a 10 x 5 grid covering the image."""
    out = []
    cell_w, cell_h = width / 10, height / 5
    for n in range(PEOPLE):
        x1 = (n % 10) * cell_w + 0.1 * cell_w
        y1 = (n // 10) * cell_h + 0.05 * cell_h
        w, h = 0.8 * cell_w, 0.9 * cell_h
        keypoints = [
            [x1 + (u + rng.uniform(-0.04, 0.04)) * w, y1 + (v + rng.uniform(-0.02, 0.02)) * h]
            for u, v in POSE
        ]
        visibility = [rng.choice((2, 2, 2, 1)) for _ in POSE]
        scores = [round(rng.uniform(0.2, 1.0), 3) for _ in POSE]
        status = "predicted" if n % 2 else "accepted"
        out.append(
            {
                "keypoints": keypoints,
                "visibility": visibility,
                "keypoint_scores": scores,
                "box": [x1, y1, x1 + w, y1 + h],
                "score": round(rng.uniform(0.3, 1.0), 3),
                "source": "model:benchmark",
                "status": status,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opens", type=int, default=12, help="timed opens of the view")
    parser.add_argument("--drags", type=int, default=8, help="drag gestures, each on a person")
    parser.add_argument("--drag-steps", type=int, default=60, help="mouse moves per gesture")
    args = parser.parse_args()

    import httpx
    import uvicorn
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from posekit.server import create_app
    from posekit.server.settings import Settings
    from posekit.skeleton import get_preset
    from posekit.store import Workspace, import_images

    if not SAMPLE.is_dir():
        sys.exit(f"shared sample data not found at {SAMPLE.resolve()}")
    tmp = Path(tempfile.mkdtemp(prefix="posekit-ui-perf-"))
    source = Image.open(SAMPLE / "images" / "000000000785.jpg").convert("RGB")
    big = source.resize((1920, 1280), Image.Resampling.BILINEAR)
    (tmp / "img").mkdir()
    big.save(tmp / "img" / "crowd-a.jpg", quality=90)
    big.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp / "img" / "crowd-b.jpg", quality=90)
    with Workspace(tmp / "ws") as ws:
        ws.create_project("perf", get_preset("coco17"))
        import_images(ws, "perf", "default", [tmp / "img"])

    port = free_port()
    app = create_app(Settings(workspace=tmp / "ws", port=port))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    rng = random.Random(0)
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with httpx.Client(base_url=url, timeout=60) as http:
        pid = http.get("/api/projects").json()[0]["id"]
        items = http.get(f"/api/projects/{pid}/items").json()["items"]
        for item in items:
            for body in people(item["width"], item["height"], rng):
                http.post(f"/api/items/{item['id']}/instances", json=body).raise_for_status()
    ids = [item["id"] for item in items]
    hashes = [f"#/projects/{pid}/items/{iid}?filter=all&order=name" for iid in ids]

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        print(f"chromium {browser.version}, headless, viewport 1280x720, {PEOPLE} people x 17")
        page.goto(url + "/")
        page.wait_for_selector("body[data-page=projects]")
        for h, iid in zip(hashes, ids, strict=True):  # warm: images decoded and cached
            page.evaluate(OPEN_JS, [h, iid])
        opens, first_frames = [], []
        for n in range(args.opens):
            wall, first_frame = page.evaluate(OPEN_JS, [hashes[n % 2], ids[n % 2]])
            opens.append(wall)
            first_frames.append(first_frame)
        print(f"open view (route change -> first painted frame): {summary(opens)}")
        print(f"open view (route change -> first frame drawn):   {summary(first_frames)}")

        # Chromium records canvas commands and rasterizes them later; reading one
        # pixel after each frame forces the raster work into the timed section.
        page.evaluate(RASTER_IN_FRAME_JS)
        state = page.evaluate("window.posekit.state()")
        # Different people (and keypoints) per gesture, so that every press selects
        # a new person: the expensive case for the cached layers.
        targets = [
            (inst, k)
            for n, inst in enumerate(state["instances"][1::3])
            for k in [(9, 10, 0, 15)[n % 4]]
            if inst["visibility"][k] == 2
        ][: args.drags]
        draws, presses, releases, intervals, moved = [], [], [], [], []
        for person, k in targets:
            start = page.evaluate(f"window.posekit.clientPoint({person['key']}, {k})")
            page.mouse.move(start["x"], start["y"])
            page.wait_for_timeout(50)
            page.evaluate("window.posekit.view.perf.frames.length = 0")
            page.mouse.down()
            for step in range(1, args.drag_steps + 1):
                page.mouse.move(start["x"] + step * 0.8, start["y"] + step * 0.4)
            page.mouse.up()
            page.wait_for_timeout(100)
            frames = page.evaluate("window.posekit.frames()")
            gesture = [f["drawMs"] for f in frames]
            draws += gesture
            presses.append(gesture[0])
            releases.append(gesture[-1])
            intervals += [b["t"] - a["t"] for a, b in itertools.pairwise(frames)]
            after = page.evaluate("window.posekit.state()")["instances"]
            dragged = next(i for i in after if i["key"] == person["key"])
            moved.append(dragged["keypoints"][k][0] - person["keypoints"][k][0])
        print(
            f"drag: {len(targets)} gestures x {args.drag_steps} mouse moves, "
            f"{len(draws)} frames drawn; dragged points moved by "
            f"{min(moved):.1f}..{max(moved):.1f} image px in x"
        )
        print(f"drag, every frame of the gestures (incl. raster): {summary(draws)}")
        print(f"drag, frame of the press (select + lift):        {summary(presses)}")
        print(f"drag, frame of the release (put down):           {summary(releases)}")
        if intervals:
            # Only dirty frames are drawn: a gap also counts frames without mouse input.
            print(f"drag interval between drawn frames (rAF timestamps): {summary(intervals)}")
        differ, max_diff, total = page.evaluate(REPAIR_CHECK_JS)
        print(
            f"repaired layers vs redraw from scratch: {differ} of {total} pixels differ "
            f"(max channel difference {max_diff})"
        )
        full, image, people_ms = page.evaluate(REDRAW_JS, 30)
        print(f"full redraw incl. raster (image + {PEOPLE} people): {summary(full)}")
        print(f"  of which the scaled image layer: {summary(image)}")
        print(f"  of which the {PEOPLE} people:        {summary(people_ms)}")
        browser.close()
    server.should_exit = True
    thread.join(timeout=10)
    print("load average after:  {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
