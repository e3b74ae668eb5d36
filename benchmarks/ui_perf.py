"""Annotation-view speed in headless Chromium with many people on one image.

Starts the real server (``posekit.server.create_app`` under uvicorn on a free
loopback port) on a temporary workspace holding two 1920x1280 images made from
a shared COCO sample, each with ``--people`` people of the ``--template``
preset created through the HTTP API (a default pose per person, jittered, on a
grid covering the image; half of them predictions with keypoint scores).
Debian's ``/usr/bin/chromium`` (driven by Playwright) then measures, at a
1280x720 viewport:

* **open**: time from the route change (``location.hash``) to the first painted
  frame of the annotation view, with the image already cached by the page
  (alternating between the two items, so each open fetches the item's
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
* **zoom / pan**: wheel-zoom gestures and middle-button pan gestures with real
  input events; every frame they cause counts, including the precise redraw
  once the view stops moving (also shown on its own);
* **full redraw**: one complete redraw of image + people from empty caches (as
  when the view opens).

The CPU may be shared: the load average is printed before and after.
Targets (issue 15): open <= 300 ms, every drag frame < 16 ms, zoom/pan frames
p95 < 16 ms, 0 pixels differ in the repair check. Run:
``python benchmarks/ui_perf.py --people 100 --template coco_wholebody133``
(``--static DIR`` serves the UI from another folder, e.g. an older copy of
``src/posekit/server/static``, for before/after figures in the same run
conditions).
"""

from __future__ import annotations

import argparse
import itertools
import math
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
BODY_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
BODY_POSE = (
    (0.5, 0.08), (0.54, 0.055), (0.46, 0.055), (0.585, 0.075), (0.415, 0.075),
    (0.66, 0.2), (0.34, 0.2), (0.75, 0.36), (0.25, 0.36), (0.8, 0.5), (0.2, 0.5),
    (0.6, 0.52), (0.4, 0.52), (0.61, 0.74), (0.39, 0.74), (0.62, 0.94), (0.38, 0.94),
)  # fmt: skip
BODY = dict(zip(BODY_NAMES, BODY_POSE, strict=True))
FEET = {"big_toe": (0.03, 0.045), "small_toe": (0.05, 0.035), "heel": (-0.01, 0.025)}
FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
# Frames of one gesture: the frames hook, after the input, once the view is still.
FRAMES_AFTER_JS = """async (wait) => {
  await new Promise((resolve) => setTimeout(resolve, wait));
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  return window.posekit.frames();
}"""
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
  view.renderNow = (...args) => {
    render(...args);
    view.renderer.ctx.getImageData(0, 0, 1, 1);
  };
}"""
REDRAW_JS = """(n) => {
  const view = window.posekit.view;
  const full = [];
  for (let i = 0; i < n; i++) {
    view.renderer.reset();
    const t0 = performance.now();
    view.renderNow();
    view.renderer.ctx.getImageData(0, 0, 1, 1);
    full.push(performance.now() - t0);
  }
  return full;
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


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def summary(values: list[float]) -> str:
    if not values:
        return "n=0"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"n={len(values)} p50={statistics.median(ordered):.2f} p95={p95:.2f} "
        f"max={ordered[-1]:.2f} ms"
    )


def unit_pose(names: tuple[str, ...]) -> list[tuple[float, float]]:
    """A default upright pose in a unit box for a template, placed by keypoint name.

    COCO body names go to the COCO-17 pose; feet, face and hand points (COCO-WholeBody
    names) around the ankles, the nose and the wrists; any other name on a circle.
    """
    pose = []
    for n, name in enumerate(names):
        side, _, part = name.partition("_")
        if name in BODY:
            pose.append(BODY[name])
        elif part in FEET and side in ("left", "right"):
            ax, ay = BODY[f"{side}_ankle"]
            dx, dy = FEET[part]
            pose.append((ax + (dx if side == "left" else -dx), ay + dy))
        elif side == "face" and part.isdigit():
            angle = 2 * math.pi * int(part) / 68
            pose.append((0.5 + 0.06 * math.cos(angle), 0.075 + 0.05 * math.sin(angle)))
        elif side in ("left", "right") and part.startswith(("hand_root", *FINGERS)):
            wx, wy = BODY[f"{side}_wrist"]
            if part == "hand_root":
                pose.append((wx, wy))
                continue
            finger = next(i for i, f in enumerate(FINGERS) if part.startswith(f))
            joint = int(part[-1])
            angle = math.pi / 2 + (finger - 2) * 0.35 * (1 if side == "left" else -1)
            reach = 0.018 * joint
            pose.append((wx + reach * math.cos(angle), wy + reach * math.sin(angle)))
        else:
            angle = 2 * math.pi * n / len(names)
            pose.append((0.5 + 0.3 * math.cos(angle), 0.5 + 0.3 * math.sin(angle)))
    return pose


def people(width: int, height: int, count: int, pose, rng: random.Random) -> list[dict]:
    """`count` jittered default poses on a grid covering the image (50: 10 x 5)."""
    cols = min(count, math.ceil(math.sqrt(2 * count)))
    rows = math.ceil(count / cols)
    cell_w, cell_h = width / cols, height / rows
    out = []
    for n in range(count):
        x1 = (n % cols) * cell_w + 0.1 * cell_w
        y1 = (n // cols) * cell_h + 0.05 * cell_h
        w, h = 0.8 * cell_w, 0.9 * cell_h
        keypoints = [
            [x1 + (u + rng.uniform(-0.01, 0.01)) * w, y1 + (v + rng.uniform(-0.005, 0.005)) * h]
            for u, v in pose
        ]
        visibility = [rng.choice((2, 2, 2, 1)) for _ in pose]
        scores = [round(rng.uniform(0.2, 1.0), 3) for _ in pose]
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
    parser.add_argument("--people", type=int, default=50, help="people per image")
    parser.add_argument("--template", default="coco17", help="skeleton preset name")
    parser.add_argument("--opens", type=int, default=12, help="timed opens of the view")
    parser.add_argument("--drags", type=int, default=8, help="drag gestures, each on a person")
    parser.add_argument("--drag-steps", type=int, default=60, help="mouse moves per gesture")
    parser.add_argument("--zooms", type=int, default=4, help="zoom gestures (and as many pans)")
    parser.add_argument("--static", type=Path, help="serve the UI from this folder instead")
    args = parser.parse_args()

    import httpx
    import uvicorn
    from PIL import Image
    from playwright.sync_api import sync_playwright

    import posekit.server.app as server_app
    from posekit.server import create_app
    from posekit.server.settings import Settings
    from posekit.skeleton import get_preset
    from posekit.store import Workspace, import_images

    if not SAMPLE.is_dir():
        sys.exit(f"shared sample data not found at {SAMPLE.resolve()}")
    if args.static:
        server_app.STATIC_DIR = args.static.resolve()
    template = get_preset(args.template)
    pose = unit_pose(template.keypoints)
    tmp = Path(tempfile.mkdtemp(prefix="posekit-ui-perf-"))
    source = Image.open(SAMPLE / "images" / "000000000785.jpg").convert("RGB")
    big = source.resize((1920, 1280), Image.Resampling.BILINEAR)
    (tmp / "img").mkdir()
    big.save(tmp / "img" / "crowd-a.jpg", quality=90)
    big.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(tmp / "img" / "crowd-b.jpg", quality=90)
    with Workspace(tmp / "ws") as ws:
        ws.create_project("perf", template)
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
    print(f"load average before: {load()}")
    # Logged in as an admin: a token for the setup calls, a one-time link for Chromium.
    admin = app.state.posekit.ws.create_user("ui-perf", None, admin=True)
    token, _ = app.state.posekit.ws.create_access_token(admin.id, "ui_perf")
    login_link = app.state.posekit.ws.create_login_link(admin.id, ttl_s=600)
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, timeout=60, headers=auth) as http:
        pid = http.get("/api/projects").json()[0]["id"]
        items = http.get(f"/api/projects/{pid}/items").json()["items"]
        for item in items:
            for body in people(item["width"], item["height"], args.people, pose, rng):
                http.post(f"/api/items/{item['id']}/instances", json=body).raise_for_status()
    ids = [item["id"] for item in items]
    hashes = [f"#/projects/{pid}/items/{iid}?filter=all&order=name" for iid in ids]
    size = f"{args.people} people x {len(template.keypoints)} keypoints ({args.template})"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        print(f"chromium {browser.version}, headless, viewport 1280x720, {size}")
        page.goto(f"{url}/login/link?token={login_link}")  # sets the cookie, then /
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
        names = template.keypoints
        wanted = [names.index(n) for n in ("left_wrist", "right_wrist", "nose", "left_ankle")]
        targets = [
            (inst, k)
            for n, inst in enumerate(state["instances"][1::3])
            for k in [wanted[n % 4]]
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
            frames = page.evaluate(FRAMES_AFTER_JS, 100)
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

        # Zoom in at a point, back out, then pan with the middle button; every frame
        # counts, the last one of each gesture being the redraw once it stopped.
        box = page.evaluate("document.getElementById('canvas').getBoundingClientRect().toJSON()")
        cx, cy = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.45
        moving, settled = [], []
        for n in range(2 * args.zooms):
            page.mouse.move(cx, cy)
            page.evaluate("window.posekit.view.perf.frames.length = 0")
            if n % 2 == 0:
                for _ in range(12):
                    page.mouse.wheel(0, -60 if (n // 2) % 2 == 0 else 60)
                    page.wait_for_timeout(16)
            else:
                page.mouse.down(button="middle")
                for step in range(1, 41):
                    page.mouse.move(cx + step * 6, cy + step * 3)
                page.mouse.up(button="middle")
            frames = [f["drawMs"] for f in page.evaluate(FRAMES_AFTER_JS, 600)]
            moving += frames[:-1]
            settled.append(frames[-1])
        print(f"zoom/pan, every frame of the gestures:           {summary(moving + settled)}")
        print(f"zoom/pan, frames while moving:                   {summary(moving)}")
        print(f"zoom/pan, last frame (view still: precise):      {summary(settled)}")
        page.keyboard.press("0")
        page.wait_for_timeout(600)
        full = page.evaluate(REDRAW_JS, 20)
        print(f"full redraw from empty caches incl. raster:     {summary(full)}")
        browser.close()
    server.should_exit = True
    thread.join(timeout=10)
    print(f"load average after:  {load()}")


if __name__ == "__main__":
    main()
