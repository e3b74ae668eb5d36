"""Record the live per-frame poses (before tracking) of the SLEAP dance video.

Writes ``tests/tracking/data/dance_blazepose.npz``, the fixture of
``test_dance_one_track.py``: the output of ``posekit.pipeline.run.run_pipeline`` with the
BlazePose detector and estimator and the default :class:`AutolabelOptions` (the same
models, thresholds and OKS-NMS ``posekit predict`` uses) on each of the 450 frames of
``../shared/data/formats/sleap/dance.mp4``, untracked. Rerun after a model or pipeline
change (about 4 minutes on two busy cores):

    python tests/tracking/record_dance_detections.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
VIDEO = HERE.parents[1] / ".." / "shared" / "data" / "formats" / "sleap" / "dance.mp4"
OUT = HERE / "data" / "dance_blazepose.npz"


class _Recorder:
    def __init__(self) -> None:
        self.frames: dict[int, list] = {}
        self.failed: list[tuple[int, str]] = []

    def put(self, key, frame, instances) -> None:
        self.frames[int(key)] = list(instances)

    def fail(self, key, reason) -> None:
        self.failed.append((int(key), reason))

    def commit(self) -> None:
        pass

    def flush(self) -> None:
        pass


def main() -> None:
    from posekit import get_preset
    from posekit.media.video import open_video
    from posekit.models.registry import create_detector, create_pose_estimator
    from posekit.pipeline.options import AutolabelOptions
    from posekit.pipeline.run import run_pipeline
    from posekit.pipeline.video import VideoFrameSource

    video_path = Path(sys.argv[1]) if len(sys.argv) > 1 else VIDEO
    template = get_preset("coco17")
    detector, pose = create_detector("blazepose"), create_pose_estimator("blazepose")
    recorder = _Recorder()
    started = time.perf_counter()
    try:
        with open_video(video_path) as video:
            run_pipeline(
                VideoFrameSource(video), recorder, detector, pose, template, AutolabelOptions()
            )
            frame_count = video.frame_count
    finally:
        detector.close()
        pose.close()
    if recorder.failed:
        raise SystemExit(f"frames failed: {recorder.failed[:5]}")
    frame, kps, vis, kps_scores, boxes, scores = [], [], [], [], [], []
    for f in sorted(recorder.frames):
        for inst in recorder.frames[f]:
            frame.append(f)
            kps.append(inst.keypoints)
            vis.append(inst.visibility)
            kps_scores.append(inst.keypoint_scores)
            boxes.append(inst.box if inst.box is not None else np.full(4, np.nan, np.float32))
            scores.append(np.nan if inst.score is None else inst.score)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        OUT,
        frame=np.asarray(frame, np.int32),
        keypoints=np.asarray(kps, np.float32),
        visibility=np.asarray(vis, np.uint8),
        keypoint_scores=np.asarray(kps_scores, np.float32),
        box=np.asarray(boxes, np.float32),
        score=np.asarray(scores, np.float32),
        frame_count=np.int32(frame_count),
    )
    print(
        f"{OUT}: {len(frame)} poses on {len(set(frame))} of {frame_count} frames, "
        f"{time.perf_counter() - started:.0f} s, {OUT.stat().st_size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
