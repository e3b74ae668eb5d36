"""Tracked auto-labeling of a project's videos and track propagation, in this process.

:func:`autolabel_videos` runs :func:`posekit.pipeline.video.run_tracked` on each video
of a project and writes the per-frame predictions (with ``track_id``) to its frame
items, a chunk of frames per transaction, then the tracks' outside marks; the video's
status becomes ``predicted``. Videos that are not ``new`` are skipped unless
``options.overwrite`` (which replaces only ``predicted`` model instances: keyframes
a person set are never written over). :func:`propagate` is the store glue of
:func:`posekit.pipeline.video.propagate_track`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from posekit.core import Instance
from posekit.engines.report import AutolabelReport
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.run import ProgressCallback
from posekit.pipeline.video import propagate_track, run_tracked
from posekit.store import Project, StoreError, Workspace
from posekit.store.videos import StoredVideo

if TYPE_CHECKING:
    from posekit.models.base import Detector, PoseEstimator

__all__ = ["FRAMES_PER_WRITE", "FrameWriter", "autolabel_videos", "propagate", "videos_to_label"]

log = logging.getLogger(__name__)

#: Frames of predictions written per transaction.
FRAMES_PER_WRITE = 64


def videos_to_label(
    ws: Workspace, project: Project, options: AutolabelOptions
) -> tuple[list[StoredVideo], int]:
    """The videos to process and how many are skipped (already labeled)."""
    videos = ws.list_videos(project, dataset=options.dataset)
    videos = [v for v in videos if v.path is not None]
    if options.overwrite:
        return videos, 0
    todo = [v for v in videos if v.status == "new"]
    return todo, len(videos) - len(todo)


def autolabel_videos(
    ws: Workspace,
    project: Project,
    videos: list[StoredVideo],
    detector: Detector,
    pose: PoseEstimator,
    options: AutolabelOptions,
    report: AutolabelReport,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Tracked predictions on every frame of ``videos`` (or every ``options.every``-th,
    interpolated), written to the store; counts go into ``report`` (``processed``:
    frames written)."""
    total = sum(-(-v.frame_count // options.every) for v in videos)
    done_before = 0
    for video in videos:
        writer = FrameWriter(ws, video, pose.name, options.overwrite, report)
        on_frame = writer.put

        def video_progress(done: int, _total: int | None, base: int = done_before) -> None:
            if progress is not None:
                progress(base + done, total)

        try:
            opened = ws.open_video(video)
        except Exception as exc:  # one unreadable video must not stop the others
            report.failures.append((video.file_name, str(exc)))
            continue
        try:
            summary, sink = run_tracked(
                opened, detector, pose, project.template, options, on_frame,
                progress=video_progress, should_stop=should_stop,
            )  # fmt: skip
        finally:
            opened.close()
        writer.write()
        report.failures.extend(
            (f"{video.file_name} frame {key}", reason) for key, reason in summary.failures
        )
        if summary.cancelled:
            report.cancelled = True
            break
        outside = sink.close_tracks()
        ws.write_frame_predictions(video, {}, replace=False, outside=outside)
        ws.set_video_status(video, "predicted")
        done_before += summary.total
        log.info(
            "autolabel video %s: %d frames, %d tracks", video.file_name, summary.total,
            len(sink.tracks),
        )  # fmt: skip


class FrameWriter:
    """Buffers finished frames and writes them, :data:`FRAMES_PER_WRITE` at a time."""

    def __init__(
        self,
        ws: Workspace,
        video: StoredVideo,
        model_name: str,
        overwrite: bool,
        report: AutolabelReport,
    ) -> None:
        self.ws, self.video, self.model_name = ws, video, model_name
        self.overwrite, self.report = overwrite, report
        self.pending: dict[int, list[Instance]] = {}
        if overwrite:
            ws.clear_video_predictions(video)

    def put(self, frame_index: int, instances: list[Instance]) -> None:
        if instances:
            self.pending[frame_index] = instances
        self.report.processed += 1
        if len(self.pending) >= FRAMES_PER_WRITE:
            self.write()

    def write(self) -> None:
        frames = {
            f: [_as_prediction(i, self.model_name) for i in insts]
            for f, insts in self.pending.items()
        }
        self.pending = {}
        if frames:
            written = self.ws.write_frame_predictions(self.video, frames, replace=False)
            self.report.instances += sum(written.values())


def _as_prediction(instance: Instance, model_name: str) -> Instance:
    source = instance.source if instance.source.startswith("model:") else f"model:{model_name}"
    return instance.copy(status="predicted", source=source, id=None)


def propagate(
    ws: Workspace,
    video: StoredVideo | int,
    track_id: int,
    from_frame: int,
    count: int,
    pose: PoseEstimator,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> dict[int, Instance]:
    """ "Track forward N frames": from the track's instance on ``from_frame`` (stored or
    interpolated), run ``pose`` on each next frame in the box carried from the
    previous one and store the results as ``predicted`` instances of the same track.

    Stops before a frame where the track already has a stored instance (a keyframe or
    an earlier prediction is never written over) and at an outside mark.

    Returns:
        ``{frame_index: Instance}`` written.

    Raises:
        StoreError: The track has no instance on ``from_frame``.
    """
    if not isinstance(video, StoredVideo):
        video = ws.get_video(video)
    here = [fi for fi in ws.frame_view(video, from_frame) if fi.track_id == int(track_id)]
    if not here:
        raise StoreError(
            f"video {video.id}: track {track_id} has no instance on frame {from_frame}"
        )
    track = ws.get_track(video, track_id)
    taken = set(track.frames) | set(track.outside)
    limit = next((f for f in sorted(taken) if f > from_frame), None)
    if limit is not None:
        count = min(count, limit - from_frame - 1)
    if count <= 0:
        return {}
    project = ws.project_of_video(video)
    start = here[0].instance.copy(track_id=int(track_id))
    with ws.open_video(video) as opened:
        found = propagate_track(
            opened, from_frame, start, count, pose, project.template, should_stop=should_stop
        )
    if found:
        ws.write_frame_predictions(video, {f: [i] for f, i in found.items()}, replace=False)
    return found
