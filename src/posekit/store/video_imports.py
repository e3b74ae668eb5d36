"""Importing videos into a workspace: a video file, or a folder of numbered frames.

The video is opened once (frame index built, limits checked, a corrupt file refused
with its name), the file is copied into the workspace media folder under its content
hash (a frame folder is copied as a folder), and one ``videos`` row is written with
the frame rate, frame count, duration, size, rotation and the index, so that opening
it later never scans the file again. No frame is written as an image.

Datasets with video frames read from an annotation file (PoseTrack, COCO with
PoseTrack fields) are attached to videos by :func:`attach_dataset_videos`.

Example:
    >>> from posekit.store.video_imports import import_video
    >>> report = import_video(ws, "people", "clips", "walk.mp4")  # doctest: +SKIP
    >>> report.video.frame_count  # doctest: +SKIP
    450
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, insert, select, update

from posekit.store.database import retrying
from posekit.store.errors import StoreError
from posekit.store.media_staging import MediaStager, file_sha256
from posekit.store.tables import DatasetRow, InstanceRow, ItemRow, TrackRow, VideoRow, utcnow
from posekit.store.videos import FRAME_ITEM_KIND, StoredVideo

if TYPE_CHECKING:
    from posekit.dataset import PoseDataset
    from posekit.media.video import VideoLimits
    from posekit.store.records import Dataset, Project
    from posekit.store.workspace import Workspace

__all__ = ["VideoImportReport", "attach_dataset_videos", "import_video", "is_video_path"]

log = logging.getLogger(__name__)


@dataclass
class VideoImportReport:
    """What :func:`import_video` did: the video row, or why it was skipped."""

    dataset: str
    video: StoredVideo | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def added(self) -> int:
        return 0 if self.video is None else 1

    @property
    def failures(self) -> list[tuple[str, str]]:
        return []

    def summary(self) -> str:
        if self.video is None:
            reason = self.skipped[0][1] if self.skipped else "nothing imported"
            return f"video not added to dataset {self.dataset!r}: {reason}"
        v = self.video
        return (
            f"video {v.file_name!r} added to dataset {self.dataset!r}: {v.frame_count} frames, "
            f"{v.width}x{v.height}, {v.fps:.3f} fps, {v.duration:.1f} s ({self.elapsed:.1f} s)"
        )


def is_video_path(path: str | os.PathLike[str]) -> bool:
    """True for a file posekit reads as a video: a video extension, or an animated
    GIF/WebP (an explicit ``.gif`` is always a video: never only its first frame)."""
    from posekit.media.video import VIDEO_EXTENSIONS

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_EXTENSIONS or not path.is_file():
        return False
    if suffix != ".webp":
        return True
    from PIL import Image

    try:
        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1)) > 1
    except OSError:
        return False


def _folder_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()


@retrying
def import_video(
    ws: Workspace,
    project: Project | str,
    dataset: Dataset | str,
    path: str | os.PathLike[str],
    *,
    frames_folder: bool = False,
    fps: float | None = None,
    name: str | None = None,
    limits: VideoLimits | None = None,
) -> VideoImportReport:
    """Import one video file (or, with ``frames_folder``, a folder of numbered frames).

    Args:
        ws: The workspace.
        project: Project (or its name).
        dataset: Dataset (or the name of one to use or create).
        path: The video file, or the folder of frames.
        frames_folder: ``path`` is a folder of numbered images (needs ``fps``).
        fps: Frame rate of a frame folder.
        name: The video's name in the dataset (default: the file or folder name).
        limits: Duration / size / frame-count limits (default ``VideoLimits()``).

    Returns:
        A :class:`VideoImportReport`; a video whose name or content is already in the
        dataset is skipped (listed in ``skipped``).

    Raises:
        VideoError: The file is missing, corrupt or over a limit (names the file).
        StoreError: ``fps`` missing for a frame folder.
    """
    from posekit.media.video import open_frame_folder, open_video
    from posekit.store.imports import _resolve

    start = time.perf_counter()
    path = Path(path)
    if frames_folder:
        if fps is None:
            raise StoreError(f"{path}: a frame folder needs its frame rate (fps)")
        video = open_frame_folder(path, fps, limits=limits)
    else:
        video = open_video(path, limits=limits)
    try:
        project, dataset, _ = _resolve(ws, project, dataset)
        report = VideoImportReport(dataset=dataset.name)
        file_name = name or path.name
        with ws._read() as conn:
            existing = conn.execute(
                select(VideoRow.file_name, VideoRow.sha256).where(VideoRow.dataset_id == dataset.id)
            ).all()
        names = {r.file_name for r in existing}
        shas = {r.sha256: r.file_name for r in existing if r.sha256}
        if file_name in names:
            report.skipped.append((file_name, "a video of that name is already in the dataset"))
            return report
        stager = MediaStager(ws, project.id, dataset.id)
        copied: Path | None = None
        try:
            if frames_folder:
                files = list(video.files)  # type: ignore[attr-defined]
                sha = _folder_digest(files)
                if sha in shas:
                    report.skipped.append((file_name, f"same frames as {shas[sha]!r}"))
                    return report
                media_path = f"{project.id}/{dataset.id}/frames/{sha}"
                target = ws.storage.local_path(media_path)
                if target is None:
                    raise StoreError(
                        f"{file_name!r}: a video of frame files needs a media storage with "
                        "local files (this workspace's has none); import it as a video file"
                    )
                target = ws._checked_media_path(target)
                if not target.exists():
                    temp = target.with_name(f".incoming-{uuid.uuid4().hex}")
                    temp.mkdir(parents=True)
                    for frame in files:
                        shutil.copyfile(frame, temp / frame.name)
                    os.replace(temp, target)
                    copied = target
                kind, decode_index = "frames", None
            else:
                sha, media_path = stager.stage(path)
                if sha in shas:
                    stager.discard_last()
                    report.skipped.append((file_name, f"same content as {shas[sha]!r}"))
                    return report
                kind = "file"
                decode_index = None if video.index is None else video.index.to_dict()
            with ws.transaction() as conn:
                video_id = ws.add_video(
                    dataset, file_name, fps=video.fps, frame_count=video.frame_count,
                    duration=video.duration, width=video.width, height=video.height,
                    rotation=video.rotation, kind=kind, media_path=media_path, sha256=sha,
                    decode_index=decode_index, conn=conn,
                )  # fmt: skip
                stager.publish()
        except BaseException:
            stager.rollback()
            if copied is not None:
                shutil.rmtree(copied, ignore_errors=True)
            raise
    finally:
        video.close()
    report.video = ws.get_video(video_id)
    report.elapsed = time.perf_counter() - start
    log.info("imported video %s into %s/%s", path, project.name, dataset.name)
    return report


def attach_dataset_videos(
    conn: Connection,
    ws: Workspace,
    dataset: Dataset,
    parsed: PoseDataset,
    item_ids: Mapping[str, int] | None = None,
) -> None:
    """Inside an import's transaction: make the parsed dataset's video frames frames
    of ``videos`` rows (created per :class:`~posekit.dataset.VideoRecord`, without
    media), their items of kind ``frame``, and write the tracks' rows and outside
    frames and the instances' keyframe flags (:class:`~posekit.dataset.TrackRecord`).

    Args:
        item_ids: ``file_name -> item id`` of the items the import just wrote
            (default: every item of the dataset).
    """
    if not parsed.videos:
        return
    if item_ids is None:
        item_ids = dict(
            conn.execute(
                select(ItemRow.file_name, ItemRow.id).where(ItemRow.dataset_id == dataset.id)
            ).all()
        )
    project_id = conn.execute(
        select(DatasetRow.project_id).where(DatasetRow.id == dataset.id)
    ).scalar_one()
    frames_of: dict[str, list[tuple[int, Any]]] = {}
    for labeled in parsed.images:
        record = labeled.image
        if record.video is None or record.frame_index is None:
            continue
        frames_of.setdefault(record.video, []).append((int(record.frame_index), record))
    video_ids: dict[str, int] = {}
    taken = {
        r.file_name: r.id
        for r in conn.execute(
            select(VideoRow.file_name, VideoRow.id).where(VideoRow.dataset_id == dataset.id)
        )
    }
    for video in parsed.videos:
        frames = frames_of.get(video.name, [])
        count = video.frame_count or (max((f for f, _ in frames), default=-1) + 1)
        if count < 1:
            continue
        name = video.file_name or video.name
        if name in taken:
            video_ids[video.name] = taken[name]
            continue
        fps = float(video.fps or 0.0)
        extra: dict[str, Any] = dict(video.extra)
        extra.setdefault("vid_id", video.name)
        if video.id is not None:
            extra.setdefault("video_id", video.id)
        video_ids[video.name] = ws.add_video(
            dataset, name, fps=fps, frame_count=count,
            duration=count / fps if fps > 0 else 0.0, width=video.width, height=video.height,
            kind="frames", extra=extra, conn=conn,
        )  # fmt: skip
    for vid, frames in frames_of.items():
        video_id = video_ids.get(vid)
        if video_id is None:
            continue
        for frame, record in frames:
            item_id = item_ids.get(record.file_name)
            if item_id is None:
                continue
            conn.execute(
                update(ItemRow)
                .where(ItemRow.id == item_id)
                .values(video_id=video_id, frame_index=frame, kind=FRAME_ITEM_KIND)
            )
    now = utcnow()
    for track in parsed.tracks:
        video_id = video_ids.get(track.video)
        if video_id is None:
            continue
        conn.execute(
            insert(TrackRow).values(
                project_id=project_id, video_id=video_id, track_id=int(track.track_id),
                label=track.label, outside=sorted(int(f) for f in track.outside),
                extra=dict(track.extra) or None, created_at=now,
            )
        )  # fmt: skip
        if track.keyframes:
            frame_items = select(ItemRow.id).where(
                ItemRow.video_id == video_id,
                ItemRow.frame_index.in_(sorted(int(f) for f in track.keyframes)),
            )
            conn.execute(
                update(InstanceRow)
                .where(
                    InstanceRow.item_id.in_(frame_items),
                    InstanceRow.track_id == int(track.track_id),
                )
                .values(keyframe=True)
            )
