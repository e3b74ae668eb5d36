"""Tracked auto-labeling of video: tracks, throughput vs the image path, jitter, memory.

Prints, for each sample video (``../shared/data``): frames, tracks (the dancer of
``dance.mp4`` must stay one track), ms per frame of tracked prediction
(``predict_video``: decode + detect + pose + track) against the image path on the same
frames written as JPEG files (``predict_files``: JPEG decode + detect + pose), and the
jitter (``video_jitter``: mean frame-to-frame keypoint acceleration per person size)
of the raw tracks and after One Euro and Savitzky-Golay smoothing.

Memory: generates low-motion 1080p H.264 clips of ``--minutes`` (a person photo
drifting slowly over a static background), auto-labels each in a fresh workspace in a
fresh process (store path, ``--every`` sampling) and prints that process's peak RSS,
so the trend with length can be read (it should stay flat).

Run: ``python benchmarks/video_autolabel.py [--frames 100] [--minutes 1 3] [--every 30]``.
Prints figures; asserts nothing.
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


def _tracked(path: Path, frames: int | None, detector, pose, skeleton) -> None:
    from PIL import Image

    from posekit.media.video import open_video
    from posekit.pipeline.options import AutolabelOptions
    from posekit.pipeline.predict_files import predict_files
    from posekit.pipeline.video import predict_video
    from posekit.tracking import smooth_video, video_jitter

    with open_video(path) as video:
        n = video.frame_count if frames is None else min(frames, video.frame_count)
        options = AutolabelOptions()
        started = time.perf_counter()
        result = predict_video(video, detector, pose, skeleton, options)
        tracked_s = time.perf_counter() - started
        by_frame = {li.image.frame_index: li.instances for li in result.dataset.images}
        with tempfile.TemporaryDirectory() as tmp:
            for i, frame in enumerate(video.frames(0, n)):
                Image.fromarray(frame).save(Path(tmp) / f"{i:06d}.jpg", quality=95)
            started = time.perf_counter()
            predict_files([tmp], skeleton, pose, detector)
            image_s = time.perf_counter() - started
        # Tracked throughput on the same first n frames (re-run on them only).
        from posekit.pipeline.run import run_pipeline
        from posekit.pipeline.video import TrackingSink, VideoFrameSource, make_tracker

        sink = TrackingSink(
            make_tracker(skeleton, options), frame_count=n, on_frame=lambda f, i: None
        )
        started = time.perf_counter()
        run_pipeline(VideoFrameSource(video, stop=n), sink, detector, pose, skeleton, options)
        tracked_n_s = time.perf_counter() - started
        fps = video.fps
        # What the video path adds to the models, measured on its own (load-independent):
        # decoding the frames and tracking the predictions again.
        started = time.perf_counter()
        for _ in video.frames():
            pass
        decode_ms = 1000 * (time.perf_counter() - started) / video.frame_count
        replay = TrackingSink(
            make_tracker(skeleton, options),
            frame_count=video.frame_count,
            on_frame=lambda f, i: None,
        )
        started = time.perf_counter()
        for f in sorted(by_frame):
            replay.put(f, None, [i.copy(track_id=None) for i in by_frame[f]])
        replay.flush()
        track_ms = 1000 * (time.perf_counter() - started) / max(len(by_frame), 1)
    raw = video_jitter(by_frame)
    euro = video_jitter(smooth_video(by_frame, method="one_euro", fps=fps))
    savgol = video_jitter(smooth_video(by_frame, method="savgol"))
    lengths = {}
    for labeled in result.dataset.images:
        for inst in labeled.instances:
            lengths[inst.track_id] = lengths.get(inst.track_id, 0) + 1
    print(
        f"{path.name}: {len(by_frame)} frames, {result.tracks} tracks "
        f"(frames per track: {sorted(lengths.values(), reverse=True)[:8]}), "
        f"whole video {1000 * tracked_s / max(len(by_frame), 1):.1f} ms/frame"
    )
    print(
        f"  first {n} frames: tracked video path {1000 * tracked_n_s / n:.1f} ms/frame, "
        f"image path (JPEG files) {1000 * image_s / n:.1f} ms/frame, "
        f"ratio {tracked_n_s / image_s:.2f}"
    )
    print(f"  jitter: raw {raw:.4f}, one-euro {euro:.4f}, savgol {savgol:.4f} (per person size)")
    print(
        f"  video-path overhead: decode {decode_ms:.2f} ms/frame, tracking {track_ms:.2f} ms/frame"
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
    parser.add_argument("--frames", type=int, default=100, help="frames for the path comparison")
    parser.add_argument("--minutes", type=float, nargs="*", default=[1.0, 3.0])
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
    if not args.skip_tracked:
        from posekit import get_preset
        from posekit.models.registry import create_detector, create_pose_estimator

        detector, pose = create_detector("blazepose"), create_pose_estimator("blazepose")
        try:
            for path in VIDEOS:
                if path.is_file():
                    _tracked(path, args.frames, detector, pose, get_preset("coco17"))
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
