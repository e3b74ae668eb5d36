"""The SLEAP dancer (``../shared/data/formats/sleap/dance.mp4``, 450 frames, one person)
stays one track through the whole video.

The tracker runs on the live BlazePose output of every frame, recorded once in
``data/dance_blazepose.npz`` by ``record_dance_detections.py`` (805 poses on 450
frames: the pipeline's untracked output, false positives and all), through the same
:class:`~posekit.pipeline.video.TrackingSink` and tracker ``posekit predict`` uses. A
live run of the first frames checks that the recording is still what the models
and the pipeline give (rerun the recorder when it is not).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from posekit import Instance, get_preset
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.video import TrackingSink, make_tracker

RECORDED = Path(__file__).resolve().parent / "data" / "dance_blazepose.npz"
LIVE_FRAMES = 6


def _recorded() -> tuple[dict[int, list[Instance]], int]:
    data = np.load(RECORDED)
    frames: dict[int, list[Instance]] = {f: [] for f in range(int(data["frame_count"]))}
    for n, f in enumerate(data["frame"]):
        box = data["box"][n]
        frames[int(f)].append(
            Instance(
                data["keypoints"][n],
                data["visibility"][n],
                keypoint_scores=data["keypoint_scores"][n],
                box=None if np.isnan(box).any() else box,
                score=None if np.isnan(data["score"][n]) else float(data["score"][n]),
                source="model:blazepose",
                status="predicted",
            )
        )
    return frames, int(data["frame_count"])


def _track(frames: dict[int, list[Instance]], count: int, every: int = 1) -> dict[int, list]:
    out: dict[int, list[Instance]] = {}
    template = get_preset("coco17")
    sink = TrackingSink(
        make_tracker(template, AutolabelOptions(every=every)),
        frame_count=count,
        every=every,
        on_frame=lambda f, instances: out.__setitem__(f, instances),
    )
    for f in range(0, count, every):
        sink.put(f, None, frames[f])
    sink.flush()
    return out


def test_the_dancer_is_one_track_through_the_whole_video() -> None:
    frames, count = _recorded()
    assert count == 450 and sum(map(len, frames.values())) > count  # extra poses to reject
    out = _track(frames, count)
    per_track = Counter(i.track_id for instances in out.values() for i in instances)
    assert len(per_track) == 1, f"tracks and their frame counts: {dict(per_track)}"
    (track,) = per_track
    # On every frame, exactly once.
    assert sorted(out) == list(range(count))
    assert all([i.track_id for i in out[f]] == [track] for f in range(count))


def test_the_dancer_is_one_track_when_sampling_every_fifth_frame() -> None:
    frames, count = _recorded()
    out = _track(frames, count, every=5)
    per_track = Counter(i.track_id for instances in out.values() for i in instances)
    assert len(per_track) == 1, f"tracks and their frame counts: {dict(per_track)}"
    # Interpolated in between: every frame up to the last sampled one holds the dancer.
    assert all(len(out.get(f, [])) == 1 for f in range(0, 446))


def test_the_recording_is_what_the_live_pipeline_gives(shared_data: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="needs posekit[mediapipe]")
    from posekit.media.video import open_video
    from posekit.models import ModelError
    from posekit.models.blazepose import find_model_dir
    from posekit.models.registry import create_detector, create_pose_estimator
    from posekit.pipeline.run import run_pipeline
    from posekit.pipeline.video import VideoFrameSource

    try:
        find_model_dir()
    except ModelError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"BlazePose models unavailable: {exc}")
    frames, _ = _recorded()
    live: dict[int, list[Instance]] = {}

    class Collect:
        def put(self, key, frame, instances):
            live[int(key)] = list(instances)

        def fail(self, key, reason):
            raise AssertionError(f"frame {key}: {reason}")

        def commit(self):
            pass

        def flush(self):
            pass

    detector, pose = create_detector("blazepose"), create_pose_estimator("blazepose")
    try:
        with open_video(shared_data / "formats" / "sleap" / "dance.mp4") as video:
            source = VideoFrameSource(video, stop=LIVE_FRAMES)
            run_pipeline(
                source, Collect(), detector, pose, get_preset("coco17"), AutolabelOptions()
            )
    finally:
        detector.close()
        pose.close()
    # The same poses (count, scores, where they are); the keypoints themselves may move
    # a little with changes to the estimator's post-processing (visibility rules).
    for f in range(LIVE_FRAMES):
        assert len(live[f]) == len(frames[f]), f"frame {f}"
        for got, recorded in zip(live[f], frames[f], strict=True):
            assert got.score == pytest.approx(recorded.score, abs=0.01), f"frame {f}"
            assert _iou(got.box, recorded.box) >= 0.9, f"frame {f}: {got.box} vs {recorded.box}"
    # ... and tracked live, the first frames already hold the one dancer.
    out = _track(live, LIVE_FRAMES)
    assert len({i.track_id for instances in out.values() for i in instances}) == 1
    assert all(len(out[f]) == 1 for f in range(LIVE_FRAMES))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return float(w * h / union) if union > 0 else 0.0
