"""Seeking in the video editor, in real Chromium: time until a random frame is shown.

Generates a 1080p H.264 clip with PyAV (x264 at a steady ``--mbps``, default 16 Mbit/s
like a phone's 1080p30 recording, ``--seconds`` at 30 fps, a keyframe every ``--gop``
frames and no B-frames by default, ``--bframes 2`` for an encoder that uses them),
imports it into a temporary workspace, starts the real server (uvicorn, a separate
process) and opens the video view in Debian's ``/usr/bin/chromium`` through
Playwright (1280x720 viewport, where the view draws frames 900 px wide; ``--dpr 2``
for a high-DPI screen, whose canvas has 1800 px).

Passes (``--passes``), each on a fresh server process and a fresh browser context
(no HTTP cache), each seek through the view's own ``seek()`` (the frame picture and
the frame's instances, in parallel), timed from the call until the frame is painted
(the ``requestAnimationFrame`` after the draw):

* **before**: the ``--baseline`` revision (default ``HEAD``; ``git archive`` of
  ``src/``: server and UI), cold, prefetch off;
* **cold-original**: this tree with seek proxies off (``POSEKIT_VIDEO_PROXY_SIDE=0``):
  frames decoded from the original straight to the view's size;
* **cold-proxy**: this tree once the video's seek proxy is built (the build time and
  disk size are printed);
* **open**: proxy ready, prefetch on, seeking right after opening;
* **prefetched**: once the page's prefetcher is idle;
* **building**: the video's first opening: no proxy yet, the view's opening queues
  its build and the seeks run while the server builds it.

The three cold passes seek to the same random frames and run ``--rounds`` times,
interleaved (before, after, after, before, ...), so that the shared machine's load
hits them alike; a summary line per pass lists every round.

For frames that came from the network it also prints the request's Resource Timing
(request to first byte: the server; first byte to last: the transfer) and the
server's ``Server-Timing`` (``decode``: reaching the frame from the keyframe before
it, scaled to the view's size; ``encode``: the JPEG; ``proxy``: the seek proxy served
it; the baseline's ``encode`` also holds its scaling), so a miss can be placed in
server decode, transfer or paint.

The machine is shared: the load average is printed before and after.
Target (issue 10): p95 <= 150 ms. Run:
``python benchmarks/video_seek_browser.py [--seconds 10] [--gop 30] [--seeks 60] [--rounds 3]``.
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
from _server import free_port, serving
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
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the cold passes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passes", default=",".join(PASSES), help="of: " + ",".join(PASSES))
    parser.add_argument(
        "--baseline", default="HEAD", help="git revision of the 'before' code (server and UI)"
    )
    parser.add_argument("--clip", type=Path, help="the clip: reused if it exists, else made there")
    parser.add_argument(
        "--dpr", type=float, default=1.0, help="device pixel ratio (2: a high-DPI screen)"
    )
    args = parser.parse_args()

    import av
    from playwright.sync_api import sync_playwright

    from posekit.skeleton import get_preset
    from posekit.store import Workspace
    from posekit.store.video_imports import import_video
    from posekit.store.video_proxies import build_video_proxy

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
        baseline = checkout(args.baseline, tmp / "baseline")
        print(f"before: `git archive {args.baseline}` of src/ (server and UI) in {baseline}")
        with Workspace(tmp / "ws") as ws:
            project = ws.create_project("seek", get_preset("coco17"))
            video = import_video(ws, project, "clips", clip).video
        rng = np.random.default_rng(args.seed)
        # The cold passes seek to the same frames (each on a fresh server and a fresh
        # browser context: nothing cached); the others to frames of their own.
        order = rng.permutation(np.arange(1, video.frame_count)).tolist()
        n = min(args.seeks, len(order) // 2)
        cold_targets, other_targets = order[:n], order[n : 2 * n]
        names = args.passes.split(",")
        proxy_built = False
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            hash_ = f"#/projects/{project.id}/videos/{video.id}?frame=0"
            cold = [n for n in names if PASSES[n][1] is False and PASSES[n][4] != "building"]
            rest = [name for name in names if name not in cold]
            schedule = [name for _ in range(args.rounds) for name in cold] + rest
            results: dict[str, list[list[dict]]] = {}
            for name in schedule:
                title, prefetch, wait, code, proxy = PASSES[name]
                if proxy == "building":
                    # The first opening of a video: no proxy yet; the view's opening
                    # queues its build, and the seeks run while it is built.
                    from posekit.store.video_proxies import remove_video_proxies

                    remove_video_proxies(tmp / "ws", video.sha256 or f"video-{video.id}")
                elif proxy and not proxy_built:
                    proxy_built = True
                    started = time.perf_counter()
                    with Workspace(tmp / "ws") as ws:
                        info = build_video_proxy(ws, ws.get_video(video.id))
                    print(
                        f"\nseek proxy {info.width}x{info.height}: built in "
                        f"{time.perf_counter() - started:.1f} s (load {loadavg()}), "
                        f"{info.bytes / 1e6:.1f} MB = {info.bytes / size:.2f} of the clip "
                        f"(bound {info.bound_bytes / 1e6:.1f} MB)"
                    )
                targets = cold_targets if name in cold else other_targets
                src = baseline if code == "before" else None
                with serve(tmp / "ws", src, proxy) as url:
                    found, note = run_pass(
                        browser, url, hash_, prefetch, wait, targets, tmp, args.dpr
                    )
                results.setdefault(name, []).append(found)
                report(f"{title}{note} [load {loadavg()}]", targets, found)
            browser.close()
        print("\ncold passes, every round (shown p50 / p95 ms):")
        for name in cold:
            rounds = [np.percentile([r["shown"] for r in res], [50, 95]) for res in results[name]]
            text = ", ".join(f"{p50:.0f} / {p95:.0f}" for p50, p95 in rounds)
            best = min(p95 for _, p95 in rounds)
            print(f"  {PASSES[name][0]}: {text}; best p95 {best:.0f}")
    print(f"load average after: {loadavg()}")


def checkout(revision: str, folder: Path) -> Path:
    """``git archive`` of ``src/`` at ``revision`` into ``folder``; returns its src/."""
    root = Path(__file__).resolve().parents[1]
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", revision, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "src"


def run_pass(
    browser: Any,
    url: str,
    hash_: str,
    prefetch: bool,
    wait: bool,
    targets: list[int],
    tmp: Path,
    dpr: float = 1.0,
) -> tuple[list[dict], str]:
    # A fresh context: no HTTP cache from another pass. bypass_csp: wait_for_function
    # evaluates a string, which the CSP forbids.
    context = browser.new_context(
        viewport={"width": 1280, "height": 720}, device_scale_factor=dpr, bypass_csp=True
    )
    page = context.new_page()
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
    context.close()
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
    proxied = sum("proxy" in r["server"] for r in fetched)
    print(f"    served from the seek proxy: {proxied} of {len(fetched)}")
    print(summary("  transfer", [r["transfer"] for r in fetched]))
    print(
        summary("  after response (decode + draw + paint)", [r["afterResponse"] for r in fetched])
    )
    kb = [r["bytes"] / 1024 for r in fetched if r["bytes"]]
    if kb:
        print(f"  frame JPEG: mean {np.mean(kb):.0f} KiB")
    shown = np.asarray([r["shown"] for r in results])
    print(f"  p95 <= 150 ms: {'yes' if np.percentile(shown, 95) <= 150 else 'NO'}")


# name: (title, prefetch on, wait until the prefetcher is idle before seeking,
#        code: "before" (the baseline revision) or "after" (this tree), seek proxy on)
PASSES = {
    "before": ("before: cold, prefetch off", False, False, "before", False),
    "cold-original": ("after, no proxy: cold, prefetch off", False, False, "after", False),
    "cold-proxy": ("after, proxy ready: cold, prefetch off", False, False, "after", True),
    "open": ("after, proxy ready: right after opening, prefetch on", True, False, "after", True),
    "prefetched": ("after, proxy ready: after the prefetch", True, True, "after", True),
    "building": (
        "after, first opening (proxy built meanwhile): cold, prefetch off",
        False,
        False,
        "after",
        "building",
    ),
}


@contextmanager
def serve(workspace: Path, src: Path | None, proxy: bool) -> Iterator[str]:
    """The real server in its own process (uvicorn); ``src``: run the package (server
    and UI) from that folder instead; ``proxy``: seek proxies on (else
    ``POSEKIT_VIDEO_PROXY_SIDE=0``)."""
    port = free_port()
    env = dict(os.environ, POSEKIT_WORKSPACE=str(workspace))
    env["POSEKIT_VIDEO_PROXY_SIDE"] = "960" if proxy else "0"
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(src), env.get("PYTHONPATH")]))
    command = [
        sys.executable, "-m", "uvicorn", "posekit.server.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, env=env, cwd=workspace.parent)
    with serving(process, f"http://127.0.0.1:{port}") as url:
        yield url


if __name__ == "__main__":
    main()
