"""Seeking in the video editor, in real Chromium: time until a random frame is shown.

Generates a 1080p H.264 clip with PyAV (x264 at a steady ``--mbps``, default 16 Mbit/s
like a phone's 1080p30 recording, ``--seconds`` at 30 fps, a keyframe every ``--gop``
frames and no B-frames by default, ``--bframes 2`` for an encoder that uses them),
imports it into a temporary workspace, starts the real server (uvicorn, a separate
process) and opens the video view in Debian's ``/usr/bin/chromium`` through
Playwright (1280x720 viewport, where the view draws frames 900 px wide).

Then, in three passes over disjoint sets of ``--seeks`` random frames (no frame twice,
so no pass finds another's frames in the server's or the page's caches), each seek
goes through the view's own ``seek()`` (the frame picture and the frame's instances,
in parallel) and is timed from the call until the frame is painted (the
``requestAnimationFrame`` after the draw):

* **cold, prefetch off**: every frame comes from the server: a seek to the keyframe
  before it and decoding forward, scaling, JPEG, transfer, decode in the page;
* **right after opening, prefetch on**: the page's prefetcher fills its frame cache
  from the current frame on while the seeks run;
* **after the prefetch**: once the prefetcher is idle (every frame cached, or its
  byte budget spent); its time to get there is printed.

For frames that came from the network it also prints the request's Resource Timing
(request to first byte: the server; first byte to last: the transfer) and the
server's ``Server-Timing`` (``decode``: reaching the frame from the keyframe before
it; ``encode``: scaling and the JPEG), so a miss can be placed in server decode,
transfer or paint.

The machine is shared: the load average is printed before and after.
Target (issue 10): p95 <= 150 ms. Run:
``python benchmarks/video_seek_browser.py [--seconds 10] [--gop 30] [--seeks 60]``.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import free_port, running_server, serving
from video_decode import FPS, HEIGHT, WIDTH, synthetic_frames

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# One seek: the view's own seek(), then the paint; the frame request's timings.
SEEK_JS = """async (i) => {
  const view = window.posekit.view;
  performance.clearResourceTimings();
  const t0 = performance.now();
  await view.seek(i);
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));
  const shown = performance.now() - t0;
  const ok = view.frame === i;
  const own = new RegExp(`/frames/${i}(\\\\?|$)`);
  const entry = performance.getEntriesByType("resource").filter((e) => own.test(e.name)).pop();
  const server = {};
  if (entry) for (const s of entry.serverTiming || []) server[s.name] = s.duration;
  return {
    shown, ok,
    request: entry ? entry.responseStart - entry.requestStart : null,
    transfer: entry ? entry.responseEnd - entry.responseStart : null,
    bytes: entry ? entry.encodedBodySize : null,
    afterResponse: entry ? t0 + shown - entry.responseEnd : null,
    server,
  };
}"""


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def make_clip(path: Path, seconds: float, gop: int, bframes: int, mbps: float) -> float:
    """A phone-like recording: x264 at a steady ``mbps`` (phones record 1080p30 at about
    16 Mbit/s), a keyframe every ``gop`` frames."""
    from posekit.render.video import write_video

    kbps = round(mbps * 1000)
    vbv = kbps * 5 // 4
    start = time.perf_counter()
    write_video(
        path,
        synthetic_frames(round(seconds * FPS)),
        FPS,
        preset="veryfast",
        gop=gop,
        options={
            "bf": str(bframes),
            "x264-params": f"bitrate={kbps}:vbv-maxrate={vbv}:vbv-bufsize={vbv}",
        },
    )
    return time.perf_counter() - start


def summary(name: str, values: list[float]) -> str:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    if not len(a):
        return f"{name}: -"
    p50, p95 = np.percentile(a, [50, 95])
    return f"{name}: p50 {p50:.1f} / p95 {p95:.1f} / max {a.max():.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--gop", type=int, default=30, help="keyframe interval in frames")
    parser.add_argument("--bframes", type=int, default=0)
    parser.add_argument("--mbps", type=float, default=16.0, help="bit rate of the clip")
    parser.add_argument("--seeks", type=int, default=60, help="per pass")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passes", default="cold,open,prefetched", help="of: " + ",".join(PASSES))
    parser.add_argument(
        "--static", type=Path, help="serve the UI from this folder (an older copy: before/after)"
    )
    parser.add_argument("--clip", type=Path, help="the clip: reused if it exists, else made there")
    args = parser.parse_args()

    import av
    from playwright.sync_api import sync_playwright

    from posekit.skeleton import get_preset
    from posekit.store import Workspace
    from posekit.store.video_imports import import_video

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, PyAV {av.__version__}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print(f"load average before: {loadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = args.clip or tmp / "phone_1080p.mp4"
        if not clip.exists():
            made = make_clip(clip, args.seconds, args.gop, args.bframes, args.mbps)
            print(f"clip encoded in {made:.1f} s")
        with av.open(str(clip)) as container:
            stream = container.streams.video[0]
            frames = stream.frames
            rate = float(stream.average_rate)
        size = clip.stat().st_size
        print(
            f"clip: {WIDTH}x{HEIGHT} H.264, {frames} frames at {rate:g} fps, gop {args.gop}, "
            f"B-frames {args.bframes}, {size / 1e6:.1f} MB "
            f"({size * 8 / max(frames / rate, 1e-9) / 1e6:.1f} Mbit/s)"
        )
        with Workspace(tmp / "ws") as ws:
            project = ws.create_project("seek", get_preset("coco17"))
            video = import_video(ws, project, "clips", clip).video
        rng = np.random.default_rng(args.seed)
        # Distinct frames across the passes: no pass finds another's frames cached.
        order = rng.permutation(np.arange(1, video.frame_count)).tolist()
        passes = [PASSES[name] for name in args.passes.split(",")]
        n = min(args.seeks, len(order) // len(passes))
        sets = [order[k * n : (k + 1) * n] for k in range(len(passes))]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            hash_ = f"#/projects/{project.id}/videos/{video.id}?frame=0"
            for (name, prefetch, wait), targets in zip(passes, sets, strict=True):
                # A fresh server per pass: its decoder and JPEG caches start empty.
                with serve(tmp / "ws", args.static) as url:
                    results, note = run_pass(browser, url, hash_, prefetch, wait, targets, tmp)
                report(name + note, targets, results)
            browser.close()
    print(f"load average after: {loadavg()}")


def run_pass(
    browser: Any, url: str, hash_: str, prefetch: bool, wait: bool, targets: list[int], tmp: Path
) -> tuple[list[dict], str]:
    # bypass_csp: wait_for_function evaluates a string, which the CSP forbids.
    page = browser.new_page(viewport={"width": 1280, "height": 720}, bypass_csp=True)
    page.set_default_timeout(120_000)
    login = login_url(tmp / "ws", url)  # one per page: a link works once
    page.goto(login or url)
    page.evaluate(
        "(on) => localStorage.setItem('posekit.videoPrefetch', on ? 'on' : 'off')", prefetch
    )
    started = time.perf_counter()
    page.goto(f"{url}/{hash_}")
    page.wait_for_selector("body[data-page=video]")
    note = ""
    if wait:
        page.wait_for_function(
            "() => window.posekit.state().frames.idle", polling=100, timeout=600_000
        )
        cached = page.evaluate("window.posekit.state().frames")
        note = (
            f" (prefetch done {time.perf_counter() - started:.1f} s after opening: "
            f"{cached['cached']} frames, {cached['bytes'] / 2**20:.1f} MiB)"
        )
    results = [page.evaluate(SEEK_JS, int(i)) for i in targets]
    page.close()
    return results, note


def login_url(workspace: Path, url: str) -> str | None:
    """A one-time login link of a fresh admin, where the server has logins."""
    from posekit.store import Workspace

    with Workspace(workspace) as ws:
        if not hasattr(ws, "create_login_link"):
            return None
        user = ws.create_user(f"bench-{os.getpid()}-{time.time_ns()}", None, admin=True)
        token = ws.create_login_link(user.id, ttl_s=3600)
    return f"{url}/login/link?token={token}"


def report(name: str, targets: list[int], results: list[dict]) -> None:
    bad = [t for t, r in zip(targets, results, strict=True) if not r["ok"]]
    print(f"\n{name}: {len(results)} distinct random frames{f', WRONG {bad}' if bad else ''}")
    print(summary("shown (call -> painted)", [r["shown"] for r in results]))
    fetched = [r for r in results if r["request"] is not None]
    print(f"  from the network: {len(fetched)} of {len(results)} (the rest: prefetched)")
    print(summary("  request -> first byte", [r["request"] for r in fetched]))
    print(summary("    server decode", [r["server"].get("decode") for r in fetched]))
    print(summary("    server encode", [r["server"].get("encode") for r in fetched]))
    print(summary("  transfer", [r["transfer"] for r in fetched]))
    print(
        summary("  after response (decode + draw + paint)", [r["afterResponse"] for r in fetched])
    )
    kb = [r["bytes"] / 1024 for r in fetched if r["bytes"]]
    if kb:
        print(f"  frame JPEG: mean {np.mean(kb):.0f} KiB")
    shown = np.asarray([r["shown"] for r in results])
    print(f"  p95 <= 150 ms: {'yes' if np.percentile(shown, 95) <= 150 else 'NO'}")


# name: (title, prefetch on, wait until the prefetcher is idle before seeking)
PASSES = {
    "cold": ("cold, prefetch off", False, False),
    "open": ("right after opening, prefetch on", True, False),
    "prefetched": ("after the prefetch", True, True),
}


@contextmanager
def serve(workspace: Path, static: Path | None) -> Iterator[str]:
    """The real server in its own process; ``static``: the UI from another folder."""
    if static is None:
        with running_server(workspace) as url:
            yield url
        return
    port = free_port()
    code = (
        "import sys, uvicorn\n"
        "from pathlib import Path\n"
        "import posekit.server.app as app\n"
        "app.STATIC_DIR = Path(sys.argv[1])\n"
        "uvicorn.run(app.create_app(), host='127.0.0.1', port=int(sys.argv[2]),"
        " log_level='warning')\n"
    )
    env = dict(os.environ, POSEKIT_WORKSPACE=str(workspace))
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(static.resolve()), str(port)], env=env
    )
    with serving(process, f"http://127.0.0.1:{port}") as url:
        yield url


if __name__ == "__main__":
    main()
