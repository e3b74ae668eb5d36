"""Tracked auto-labeling of video: tracks, throughput vs the image path, jitter.

Prints, for each sample video (``../shared/data``): frames and tracks of a whole-video
``predict_video`` (the dancer of ``dance.mp4`` must stay one track), the jitter
(``video_jitter``: mean frame-to-frame keypoint acceleration per person size) of the
raw tracks and after One Euro and Savitzky-Golay smoothing, what the video path adds
measured on its own (H.264 decode vs JPEG decode, tracking), then the throughput of the
video path (``run_pipeline`` over ``VideoFrameSource`` into a ``TrackingSink``: decode
+ detect + pose + track) against the image path (``predict_files`` on the same frames
written as JPEG files: JPEG decode + detect + pose), in ``--rounds`` alternating rounds
in one process, best of each, and their ratio (target: at most 1.10).

Memory (``--minutes``, kept for the old figures): store auto-label of generated 1080p
clips; ``benchmarks/video_memory.py`` is the full memory benchmark.

Run: ``python benchmarks/video_autolabel.py [--frames 60] [--rounds 3] [--videos dance.mp4]
[--no-whole] [--smoothing none one-euro]``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
VIDEOS = [
    DATA / "videos" / "street_pedestrians_5f.mp4",
    DATA / "posetrack18-sample" / "videos" / "000001_mpiinew_test" / "000001_mpiinew_test.mp4",
    DATA / "formats" / "sleap" / "dance.mp4",
]


def _paths(path: Path, frames: int, rounds: int, smoothing: str, detector, pose, skeleton):
    """Video path vs image path on the same first ``frames`` frames, in alternating
    rounds (image, video, image, video...); returns per-round seconds of each."""
    from PIL import Image

    from posekit.media.video import open_video
    from posekit.pipeline.options import AutolabelOptions
    from posekit.pipeline.predict_files import predict_files
    from posekit.pipeline.run import run_pipeline
    from posekit.pipeline.video import TrackingSink, VideoFrameSource, make_tracker

    options = AutolabelOptions(smoothing=smoothing)
    times: dict[str, list[float]] = {"image": [], "video": [], "image_cpu": [], "video_cpu": []}
    with open_video(path) as video, tempfile.TemporaryDirectory() as tmp:
        n = min(frames, video.frame_count)
        for i, frame in enumerate(video.frames(0, n)):
            Image.fromarray(frame).save(Path(tmp) / f"{i:06d}.jpg", quality=95)
        for _ in range(rounds):
            started, cpu = time.perf_counter(), time.process_time()
            predict_files([tmp], skeleton, pose, detector, options=options)
            times["image"].append(time.perf_counter() - started)
            times["image_cpu"].append(time.process_time() - cpu)
            sink = TrackingSink(
                make_tracker(skeleton, options), frame_count=n, on_frame=lambda f, i: None,
                smoothing=smoothing, fps=video.fps, timestamps=video.timestamps,
            )  # fmt: skip
            started, cpu = time.perf_counter(), time.process_time()
            run_pipeline(VideoFrameSource(video, stop=n), sink, detector, pose, skeleton, options)
            sink.flush()
            times["video"].append(time.perf_counter() - started)
            times["video_cpu"].append(time.process_time() - cpu)
    return n, times


def _overheads(path: Path, by_frame: dict, skeleton) -> tuple[float, float, float]:
    """What the video path adds to the models, measured on its own: H.264 decode vs
    JPEG decode of the same frames (ms/frame), and tracking + One Euro (ms/frame)."""
    from PIL import Image

    from posekit.media.image import load_image
    from posekit.media.video import open_video
    from posekit.pipeline.options import AutolabelOptions
    from posekit.pipeline.video import TrackingSink, make_tracker

    with open_video(path) as video, tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        for _ in video.frames():
            pass
        decode_ms = 1000 * (time.perf_counter() - started) / video.frame_count
        files = []
        for i, frame in enumerate(video.frames(0, min(60, video.frame_count))):
            files.append(Path(tmp) / f"{i:06d}.jpg")
            Image.fromarray(frame).save(files[-1], quality=95)
        started = time.perf_counter()
        for file in files:
            load_image(file)
        jpeg_ms = 1000 * (time.perf_counter() - started) / len(files)
        fps, stamps = video.fps, video.timestamps
    options = AutolabelOptions(smoothing="one-euro")
    replay = TrackingSink(
        make_tracker(skeleton, options), frame_count=max(by_frame) + 1,
        on_frame=lambda f, i: None, smoothing="one-euro", fps=fps, timestamps=stamps,
    )  # fmt: skip
    started = time.perf_counter()
    for f in sorted(by_frame):
        replay.put(f, None, [i.copy(track_id=None) for i in by_frame[f]])
    replay.flush()
    track_ms = 1000 * (time.perf_counter() - started) / max(len(by_frame), 1)
    return decode_ms, jpeg_ms, track_ms


def _tracked(path: Path, args, detector, pose, skeleton) -> None:
    from posekit.pipeline.options import AutolabelOptions
    from posekit.pipeline.video import predict_video
    from posekit.tracking import smooth_video, video_jitter

    if not args.no_whole:
        started = time.perf_counter()
        result = predict_video(path, detector, pose, skeleton, AutolabelOptions())
        tracked_s = time.perf_counter() - started
        by_frame = {li.image.frame_index: li.instances for li in result.dataset.images}
        lengths: dict = {}
        for labeled in result.dataset.images:
            for inst in labeled.instances:
                lengths[inst.track_id] = lengths.get(inst.track_id, 0) + 1
        print(
            f"{path.name}: {len(by_frame)} frames, {result.tracks} tracks "
            f"(frames per track: {sorted(lengths.values(), reverse=True)[:8]}), "
            f"whole video {1000 * tracked_s / max(len(by_frame), 1):.1f} ms/frame "
            f"(load {os.getloadavg()[0]:.1f})"
        )
        fps = result.dataset.videos[0].fps
        raw = video_jitter(by_frame)
        euro = video_jitter(smooth_video(by_frame, method="one_euro", fps=fps))
        savgol = video_jitter(smooth_video(by_frame, method="savgol"))
        print(
            f"  jitter: raw {raw:.4f}, one-euro {euro:.4f}, savgol {savgol:.4f} (per person size)"
        )
        decode_ms, jpeg_ms, track_ms = _overheads(path, by_frame, skeleton)
        print(
            f"  on its own: H.264 decode {decode_ms:.2f} ms/frame (JPEG decode {jpeg_ms:.2f}), "
            f"tracking + One Euro {track_ms:.2f} ms/frame"
        )
    else:
        print(f"{path.name}:")
    for smoothing in args.smoothing:
        n, times = _paths(path, args.frames, args.rounds, smoothing, detector, pose, skeleton)
        image, video = min(times["image"]), min(times["video"])
        image_cpu, video_cpu = min(times["image_cpu"]), min(times["video_cpu"])
        rounds = ", ".join(
            f"{1000 * i / n:.0f}/{1000 * v / n:.0f}"
            for i, v in zip(times["image"], times["video"], strict=True)
        )
        print(
            f"  first {n} frames, smoothing {smoothing}: image path {1000 * image / n:.1f}, "
            f"video path {1000 * video / n:.1f} ms/frame (best of {args.rounds}); "
            f"ratio video/image {video / image:.3f}; CPU time {1000 * image_cpu / n:.1f} vs "
            f"{1000 * video_cpu / n:.1f} ms/frame, ratio {video_cpu / image_cpu:.3f} "
            f"(rounds image/video wall ms: {rounds}; "
            f"load {os.getloadavg()[0]:.1f})",
            flush=True,
        )


def _make_clip(path: Path, seconds: float) -> None:
    from PIL import Image

    from posekit.render.video import write_video

    person = Image.open(DATA / "coco-val2017-sample" / "images" / "000000196141.jpg").convert("RGB")
    person = np.asarray(person.resize((person.width * 1080 // person.height // 2, 540)))
    background = np.full((1080, 1920, 3), 90, np.uint8)

    def frames():
        for i in range(int(seconds * 30)):
            frame = background.copy()
            x = 100 + (i // 3) % (1920 - 200 - person.shape[1])
            frame[300 : 300 + person.shape[0], x : x + person.shape[1]] = person
            yield frame

    write_video(path, frames(), 30, preset="ultrafast", crf=28, gop=250)


def _memory_child(clip: str, every: int) -> None:
    from posekit import get_preset
    from posekit.engines.local import autolabel
    from posekit.pipeline.options import AutolabelOptions
    from posekit.store import Workspace
    from posekit.store.video_imports import import_video

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        ws.create_project("p", get_preset("coco17"))
        import_video(ws, "p", "clips", clip)
        started = time.perf_counter()
        report = autolabel(ws, "p", AutolabelOptions(every=every))
        elapsed = time.perf_counter() - started
        ws.close()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"  {Path(clip).name}: {report.processed} frames labeled, {report.instances} instances, "
        f"{elapsed:.0f} s, peak RSS {peak_mb:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60, help="frames for the path comparison")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per path")
    parser.add_argument(
        "--smoothing", nargs="+", default=["none"], help="smoothing of the video path runs"
    )
    parser.add_argument(
        "--no-whole", action="store_true", help="skip the whole-video tracks/jitter runs"
    )
    parser.add_argument("--videos", nargs="*", help="only the sample videos with these names")
    parser.add_argument("--minutes", type=float, nargs="*", default=[])
    parser.add_argument("--every", type=int, default=30, help="sampling of the memory runs")
    parser.add_argument("--skip-tracked", action="store_true")
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("CLIP", "EVERY"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.memory_child:
        _memory_child(args.memory_child[0], int(args.memory_child[1]))
        return
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}"
    )
    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; models: blazepose + blazepose"
    )
    from posekit.pipeline.allocator import limit_heap_growth

    # What the video path sets (process-wide, so the image path runs with it too; its
    # own cost is in posekit/pipeline/allocator.py's docstring).
    print(f"glibc mmap threshold fixed: {limit_heap_growth()}")
    if not args.skip_tracked:
        from posekit import get_preset
        from posekit.models.registry import create_detector, create_pose_estimator

        detector, pose = create_detector("blazepose"), create_pose_estimator("blazepose")
        try:
            for path in VIDEOS:
                if args.videos and path.name not in args.videos:
                    continue
                if path.is_file():
                    _tracked(path, args, detector, pose, get_preset("coco17"))
                else:
                    print(f"{path}: missing, skipped")
        finally:
            detector.close()
            pose.close()
    if args.minutes:
        print(f"memory: 1080p30 clips, store auto-label with --every {args.every}")
        with tempfile.TemporaryDirectory() as tmp:
            for minutes in args.minutes:
                clip = Path(tmp) / f"clip_{minutes:g}min.mp4"
                started = time.perf_counter()
                _make_clip(clip, minutes * 60)
                print(f"  generated {clip.name} in {time.perf_counter() - started:.0f} s")
                subprocess.run(
                    [sys.executable, __file__, "--memory-child", str(clip), str(args.every)],
                    check=True,
                )


if __name__ == "__main__":
    main()
