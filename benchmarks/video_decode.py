"""Video decoding speed and memory: index build, sequential decode, exact random access.

Generates 1080p H.264 clips (x264 with B-frames, a keyframe every ``--gop`` frames,
moving textured content) in a temporary folder, then prints:

* index build time (one demux pass, ``build_video_index``);
* sequential decode speed (``Video.frames()``, RGB arrays out);
* random access latency p50/p95 per frame (``Video.frame(i)`` at random indices in
  random order, cache off: every read seeks to a keyframe and decodes forward), at
  full size and decoded straight to 960x540 (``size=``), and from the seek proxy
  (:mod:`posekit.store.video_proxies`, its build time and size printed);
* peak RSS (VmHWM) of a fresh process streaming the whole clip, for two clip lengths:
  it should stay flat as the clip gets longer.

Run: ``python benchmarks/video_decode.py [--seconds 10] [--long-seconds 30] [--gop 30]``.
Needs the ``video`` extra (PyAV). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from posekit.media.video import build_video_index, open_video
from posekit.render.video import write_video

WIDTH, HEIGHT, FPS = 1920, 1080, 30


def synthetic_frames(count: int, seed: int = 0):
    """Moving, textured 1080p frames (blurred noise over a gradient, panning)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, (HEIGHT, WIDTH * 2, 3), dtype=np.uint8)
    texture = cv2.GaussianBlur(texture, (0, 0), 6)
    texture = cv2.normalize(texture, None, 0, 255, cv2.NORM_MINMAX)
    ramp = np.linspace(0, 80, WIDTH * 2, dtype=np.float32)[None, :, None]
    base = np.clip(texture.astype(np.float32) * 0.7 + ramp, 0, 255).astype(np.uint8)
    for i in range(count):
        shift = (i * 6) % WIDTH
        frame = np.ascontiguousarray(base[:, shift : shift + WIDTH])
        cv2.putText(
            frame,
            f"{i:05d}",
            (60, 200),
            cv2.FONT_HERSHEY_SIMPLEX,
            6,
            (255, 255, 255),
            12,
            cv2.LINE_AA,
        )
        yield frame


def make_clip(path: Path, seconds: float, gop: int) -> float:
    start = time.perf_counter()
    write_video(
        path, synthetic_frames(round(seconds * FPS)), FPS, crf=23, preset="veryfast", gop=gop
    )
    return time.perf_counter() - start


def peak_rss_streaming(path: Path) -> tuple[float, int]:
    """(VmHWM in MiB, frames) of a fresh process that streams ``path`` frame by frame."""
    code = (
        "import sys\n"
        "from posekit.media.video import open_video\n"
        "n = 0\n"
        "with open_video(sys.argv[1]) as video:\n"
        "    for frame in video.frames():\n"
        "        n += 1\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
        "print(int(hwm.split()[1]) / 1024, n)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def print_random_access(
    label: str, video: object, targets: list[int], size: tuple[int, int] | None
) -> None:
    video.frame(0, size=size)
    latencies = []
    for i in targets:
        start = time.perf_counter()
        video.frame(i, size=size)
        latencies.append((time.perf_counter() - start) * 1000)
    p50, p95 = np.percentile(latencies, [50, 95])
    print(
        f"{label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms "
        f"per frame ({len(targets)} reads, {video.seek_count} seeks)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--long-seconds",
        type=float,
        default=30.0,
        help="second, longer clip for the RSS comparison (0: skip)",
    )
    parser.add_argument("--gop", type=int, default=30, help="keyframe interval in frames")
    parser.add_argument("--random-reads", type=int, default=60)
    args = parser.parse_args()

    import av

    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, PyAV {av.__version__} "
        f"(libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}); "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip_1080p.mp4"
        made = make_clip(clip, args.seconds, args.gop)
        size = clip.stat().st_size / 1e6
        print(
            f"clip: {WIDTH}x{HEIGHT} H.264 (x264 veryfast, B-frames, gop {args.gop}), "
            f"{args.seconds:g} s at {FPS} fps, {size:.1f} MB; encoded in {made:.1f} s"
        )

        times = []
        for _ in range(3):
            start = time.perf_counter()
            index = build_video_index(clip)
            times.append(time.perf_counter() - start)
        print(
            f"index build: {min(times) * 1000:.1f} ms for {index.frame_count} frames, "
            f"{len(index.keyframes)} keyframes"
        )

        with open_video(clip, index=index) as video:
            start = time.perf_counter()
            count = sum(1 for _ in video.frames())
            elapsed = time.perf_counter() - start
        print(f"sequential decode: {count / elapsed:.1f} frames/s ({count} frames, RGB out)")

        rng = np.random.default_rng(0)
        targets = [int(i) for i in rng.integers(0, index.frame_count, args.random_reads)]
        for label, size in (("full-size RGB", None), ("960x540, decoded to size", (960, 540))):
            with open_video(clip, index=index, cache_frames=0) as video:
                print_random_access(f"random access, {label}", video, targets, size)

        from posekit.skeleton import get_preset
        from posekit.store import Workspace
        from posekit.store.video_imports import import_video
        from posekit.store.video_proxies import build_video_proxy, open_video_proxy

        with Workspace(Path(tmp) / "ws") as ws:
            project = ws.create_project("decode", get_preset("coco17"))
            stored = import_video(ws, project, "clips", clip).video
            start = time.perf_counter()
            info = build_video_proxy(ws, stored)
            built = time.perf_counter() - start
            print(
                f"seek proxy {info.width}x{info.height}: built in {built:.1f} s, "
                f"{info.bytes / 1e6:.1f} MB ({info.bytes / clip.stat().st_size:.2f} of the clip, "
                f"bound {info.bound_bytes / 1e6:.1f} MB)"
            )
            with open_video_proxy(ws, stored) as proxy:
                print_random_access("random access, seek proxy", proxy, targets, None)

        with open_video(clip, index=index, cache_frames=0) as video:
            start = time.perf_counter()
            for i in range(index.frame_count // 2, index.frame_count // 2 + 60):
                video.frame(i)
            step = (time.perf_counter() - start) / 60 * 1000
        print(f"stepping frame(i+1): {step:.1f} ms per frame (decoder position reused)")

        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        rss, frames = peak_rss_streaming(clip)
        print(f"peak RSS streaming {args.seconds:g} s ({frames} frames): {rss:.0f} MiB")
        if args.long_seconds > 0:
            long_clip = Path(tmp) / "clip_long.mp4"
            make_clip(long_clip, args.long_seconds, args.gop)
            rss_long, frames_long = peak_rss_streaming(long_clip)
            print(
                f"peak RSS streaming {args.long_seconds:g} s ({frames_long} frames): "
                f"{rss_long:.0f} MiB"
            )


if __name__ == "__main__":
    main()
