"""The video parts of the ``posekit`` subcommands: predict on a video, import videos,
tracking evaluation. Thin calls into :mod:`posekit.pipeline.video`,
:mod:`posekit.store.video_imports` and :mod:`posekit.evaluation.tracking`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "cmd_eval_tracking",
    "import_videos",
    "predict_videos",
    "video_inputs",
]


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def video_inputs(inputs: list[str], frames_folder: str | None) -> list[Path]:
    """The video inputs among ``inputs`` (and ``--frames-folder``); an explicit GIF
    or animated WebP is a video, never just its first frame."""
    from posekit.store.video_imports import is_video_path

    found = [Path(p) for p in inputs if is_video_path(p)]
    if frames_folder:
        found.append(Path(frames_folder))
    return found


def _open(path: Path, frames_folder: str | None, fps: float | None) -> Any:
    from posekit.cli.commands import CliError
    from posekit.media.video import VideoError, open_frame_folder, open_video

    try:
        if frames_folder and path == Path(frames_folder):
            if fps is None:
                raise CliError(f"--frames-folder {frames_folder}: give its frame rate with --fps")
            return open_frame_folder(path, fps)
        return open_video(path)
    except VideoError as exc:
        flag = "--frames-folder" if frames_folder and path == Path(frames_folder) else "INPUT"
        raise CliError(f"{flag} {path}: {exc}") from None


def predict_videos(args: argparse.Namespace, videos: list[Path]) -> int:
    """``posekit predict VIDEO -o out.json [--render out.mp4] [--every N] [--smooth M]``."""
    from posekit.cli.commands import CliError, _progress_bar, _template
    from posekit.dataset import PoseDataset
    from posekit.formats.posetrack import write_posetrack
    from posekit.models.registry import create_detector, create_pose_estimator
    from posekit.pipeline.options import AutolabelOptions
    from posekit.pipeline.video import predict_video

    others = [p for p in args.inputs if Path(p) not in videos]
    if others:
        raise CliError(
            f"INPUT {others[0]}: give either videos or images to one predict call, not both"
        )
    if args.boxes:
        raise CliError("--boxes works on images only, not on videos")
    if args.render and len(videos) > 1:
        raise CliError(f"--render {args.render}: renders one video; {len(videos)} were given")
    if args.every < 1:
        raise CliError(f"--every must be at least 1, got {args.every}")
    options = AutolabelOptions(
        detector=args.detector,
        pose=args.pose,
        batch_size=args.batch_size,
        every=args.every,
        smoothing=args.smooth,
        min_instance_score=args.min_score,
        oks_nms_threshold=args.oks_nms,
    )
    skeleton = _template(args.template)
    merged = PoseDataset(skeleton=skeleton, images=[])
    pose = create_pose_estimator(args.pose)
    detector = create_detector(args.detector)
    try:
        for path in videos:
            video = _open(path, args.frames_folder, args.fps)
            try:
                with _progress_bar(f"tracking {path.name}", args.quiet) as progress:
                    result = predict_video(
                        video, detector, pose, skeleton, options, progress=progress
                    )
                for failure in result.failures:
                    _say(f"skipped {failure[0]}: {failure[1]}")
                offset = len(merged.images)
                for labeled in result.dataset.images:
                    labeled.image.id = offset + labeled.image.id
                merged.images.extend(result.dataset.images)
                merged.videos.extend(result.dataset.videos)
                merged.tracks.extend(result.dataset.tracks)
                people = sum(len(li.instances) for li in result.dataset.images)
                _say(
                    f"{path}: {len(result.dataset.images)} frames, {result.tracks} tracks, "
                    f"{people} poses ({result.elapsed:.1f} s)"
                )
                if args.render:
                    _render(video, result.dataset, skeleton, Path(args.render))
            finally:
                video.close()
    finally:
        pose.close()
        detector.close()
    write_posetrack(merged, Path(args.output))
    _say(f"predictions -> {args.output}")
    return 0


def _render(video: Any, dataset: Any, skeleton: Any, out: Path) -> None:
    from posekit.render.video import render_video

    by_frame = {li.image.frame_index: li.instances for li in dataset.images}
    count = render_video(video, by_frame, skeleton, out)
    _say(f"rendered {count} frames -> {out}")


def import_videos(
    ws: Any, project: Any, dataset: Any, videos: list[Path], args: argparse.Namespace
) -> int:
    """Import each video (or the ``--frames-folder``); the exit status (1: all failed)."""
    from posekit.media.video import VideoError
    from posekit.store.video_imports import import_video

    side = 0 if args.no_proxy else _proxy_side()  # before anything is imported
    failed = 0
    for path in videos:
        folder = bool(args.frames_folder) and path == Path(args.frames_folder)
        if folder and args.fps is None:
            from posekit.cli.commands import CliError

            raise CliError(f"--frames-folder {args.frames_folder}: give its frame rate with --fps")
        try:
            report = import_video(ws, project, dataset, path, frames_folder=folder, fps=args.fps)
        except VideoError as exc:
            flag = "--frames-folder " if folder else ""
            _say(f"skipped {flag}{exc}")
            failed += 1
            continue
        _say(f"video import: {report.summary()}")
        if report.video is not None and side > 0:
            _build_proxy(ws, report.video, side)
    return 1 if failed and failed == len(videos) else 0


def _proxy_side() -> int:
    """The proxies' longer side as the server has it (``POSEKIT_VIDEO_PROXY_SIDE``); a
    bad value is a ``CliError`` naming the variable."""
    from pydantic import ValidationError

    from posekit.cli.commands import CliError
    from posekit.server.settings import Settings

    try:
        return Settings().video_proxy_side
    except ValidationError as exc:
        error = exc.errors()[0]
        name = "POSEKIT_" + "_".join(str(part) for part in error["loc"]).upper()
        raise CliError(f"{name}={error.get('input')!r}: {error['msg']}") from None


def _build_proxy(ws: Any, video: Any, side: int) -> None:
    """Build the video's seek proxy now, so that the editor seeks fast from its first
    opening (the server would otherwise build it in the background then). A failure
    is reported and leaves the import as it is: the server retries, or decodes the
    original."""
    import time

    from posekit.media.video import VideoError
    from posekit.store import StoreError
    from posekit.store.video_proxies import build_video_proxy, proxy_info

    info = proxy_info(ws, video, side)
    if info is None or info.ready:  # the video needs none, or it exists already
        return
    _say(
        f"building the seek proxy of {video.file_name} ({info.width}x{info.height}; "
        "--no-proxy skips this) ..."
    )
    start = time.perf_counter()
    try:
        built = build_video_proxy(ws, video, side)
    except (StoreError, VideoError, OSError) as exc:
        _say(f"seek proxy not built ({exc}); the server builds it when the video is opened")
        return
    if built is not None:
        seconds = time.perf_counter() - start
        _say(f"seek proxy: {built.bytes / 1e6:.1f} MB in {seconds:.1f} s")


def _frames_by_video(path: str, skeleton: Any) -> tuple[dict[str, dict[int, list]], Any]:
    from posekit.formats.posetrack import read_posetrack

    dataset = read_posetrack(path, skeleton)
    videos: dict[str, dict[int, list]] = {}
    for labeled in dataset.images:
        record = labeled.image
        if record.video is None:
            continue
        frames = videos.setdefault(record.video, {})
        frames.setdefault(int(record.frame_index or 0), []).extend(
            i for i in labeled.instances if not i.extra.get("posekit_interpolated")
        )
    return videos, dataset


def _labeled_frames(dataset: Any) -> dict[str, set[int]]:
    labeled: dict[str, set[int]] = {}
    for item in dataset.images:
        record = item.image
        if record.video is None:
            continue
        flag = record.extra.get("is_labeled")
        if flag or (flag is None and item.instances):
            labeled.setdefault(record.video, set()).add(int(record.frame_index or 0))
    return labeled


def _match_videos(gt: dict[str, Any], pred: dict[str, Any]) -> dict[str, str]:
    """Predicted video name -> ground-truth video name: equal names, equal stems, the
    PoseTrack sequence number (``000001_mpiinew_test.mp4`` -> ``000001``), or the only
    video of each side."""
    out: dict[str, str] = {}
    stems = {Path(name).stem: name for name in gt}
    for name in pred:
        if name in gt:
            out[name] = name
        elif Path(name).stem in stems:
            out[name] = stems[Path(name).stem]
        else:  # PoseTrack: vid_id 000001 names the sequence 000001_mpiinew_test
            prefix = Path(name).stem.split("_", 1)[0]
            if prefix in gt:
                out[name] = prefix
    if not out and len(gt) == 1 and len(pred) == 1:
        out[next(iter(pred))] = next(iter(gt))
    return out


def cmd_eval_tracking(args: argparse.Namespace) -> int:
    """``posekit eval GT.json PRED.json --tracking``: keypoint MOTA (PoseTrack) per joint."""
    from posekit.cli.commands import CliError, _template
    from posekit.evaluation.tracking import TrackingEvaluationError, evaluate_tracking

    skeleton = _template(args.template) if args.template else None
    gt_frames, gt = _frames_by_video(args.ground_truth, skeleton)
    if not gt_frames:
        raise CliError(
            f"GT {args.ground_truth}: has no video frames (PoseTrack vid_id / frame fields); "
            "--tracking scores videos"
        )
    pred_frames, _ = _frames_by_video(args.predictions, gt.skeleton)
    pairs = _match_videos(gt_frames, pred_frames)
    labeled = _labeled_frames(gt)
    ground_truth = {
        vid: {f: insts for f, insts in frames.items() if f in labeled.get(vid, set())}
        for vid, frames in gt_frames.items()
    }
    predictions: dict[str, dict[int, list]] = {}
    for name, vid in pairs.items():
        keep = labeled.get(vid, set())
        predictions[vid] = {f: i for f, i in pred_frames[name].items() if f in keep}
    try:
        result = evaluate_tracking(ground_truth, predictions, gt.skeleton)
    except TrackingEvaluationError as exc:
        raise CliError(f"--tracking: {exc}") from None
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(
        f"videos {result.num_videos}, labeled frames {result.num_frames} "
        f"(PoseTrack keypoint MOTA, PCKh@{result.distance_threshold:g})"
    )
    print(f"{'joint':16s} {'MOTA':>7s} {'MOTP':>7s} {'prec':>7s} {'rec':>7s} {'IDsw':>5s}")
    for stats in [*result.joints, result.total]:
        print(
            f"{stats.name:16s} {100 * stats.mota:7.1f} {100 * stats.motp:7.1f} "
            f"{100 * stats.precision:7.1f} {100 * stats.recall:7.1f} {stats.num_switches:5d}"
        )
    return 0
