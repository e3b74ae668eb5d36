"""Videos in a workspace: video rows, frames as items, opening a stored video.

A video belongs to a dataset. Its frames are addressed by index and decoded from the
stored file on demand (:meth:`VideoOperations.open_video`); only a frame that holds
instances has an item row (kind ``frame``, ``video_id``, ``frame_index``), created by
:meth:`VideoOperations.frame_item` or by the writes in :mod:`posekit.store.tracks`.
A frame item's ``file_name`` is ``<video file name>/<frame:06d>.jpg`` (one folder per
video, as in PoseTrack), so an export names every frame like an image.

Tracks, keyframes, outside frames, interpolation and propagation writes are in
:class:`posekit.store.tracks.TrackOperations`; importing a video file or a frame
folder in :mod:`posekit.store.video_imports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, and_, delete, insert, select, update

from posekit.store.database import starts_with
from posekit.store.errors import NotFoundError, StoreError
from posekit.store.history import save_replaced_versions
from posekit.store.instances import settle_item_statuses
from posekit.store.tables import (
    DatasetRow,
    InstanceRow,
    InstanceVersionRow,
    ItemRow,
    TrackRow,
    VideoRow,
    utcnow,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from posekit.media.video import Video
    from posekit.store.records import Dataset, Item, Project

__all__ = [
    "FRAME_ITEM_KIND",
    "VIDEO_STATUSES",
    "StoredVideo",
    "VideoOperations",
    "frame_file_name",
]

#: ``items.kind`` of a video frame.
FRAME_ITEM_KIND = "frame"
#: ``videos.status``: ``new`` until a model (``predicted``) or a person (``reviewed``)
#: labeled it; auto-labeling skips videos that are not ``new`` unless it overwrites.
VIDEO_STATUSES = ("new", "predicted", "reviewed")


def frame_file_name(video_file_name: str, frame_index: int) -> str:
    """The ``file_name`` of a frame item: ``clip.mp4``, 7 -> ``clip.mp4/000007.jpg``
    (the full video name: ``clip.mp4`` and ``clip.mov`` never share frame names)."""
    return f"{PurePosixPath(video_file_name).as_posix()}/{int(frame_index):06d}.jpg"


@dataclass(frozen=True)
class StoredVideo:
    """A video of a dataset, as stored.

    Attributes:
        file_name: Name of the video in the dataset (the imported file's name, or the
            frame folder's), unique among the dataset's videos.
        kind: ``"file"`` (a video file, decoded with PyAV) or ``"frames"`` (a folder
            of numbered images).
        path: The stored file or frame folder (absolute), None if not stored.
        fps, frame_count, duration: Average frame rate, number of frames, seconds.
        width, height: Frame size after rotation; ``rotation`` in degrees clockwise.
        status: One of :data:`VIDEO_STATUSES`.
        decode_index: The stored :class:`~posekit.media.video.VideoIndex` dict.
        extra: Import metadata (e.g. PoseTrack ``vid_id``).
    """

    id: int
    dataset_id: int
    file_name: str
    kind: str
    media_path: str | None
    path: Path | None
    sha256: str | None
    fps: float
    frame_count: int
    duration: float
    width: int
    height: int
    rotation: int
    status: str
    created_at: datetime
    decode_index: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def timestamps(self) -> np.ndarray:
        """``(frame_count,) float64`` presentation time of each frame in seconds."""
        if self.decode_index is not None:
            from posekit.media.video import VideoIndex

            return VideoIndex.from_dict(self.decode_index).timestamps
        fps = self.fps if self.fps > 0 else 1.0
        return np.arange(self.frame_count, dtype=np.float64) / fps

    def check_frame(self, frame_index: int) -> int:
        """``frame_index`` as an int, or :class:`StoreError` when out of range."""
        if isinstance(frame_index, bool) or not isinstance(frame_index, int | np.integer):
            raise StoreError(f"frame index must be an int, got {frame_index!r}")
        if not 0 <= int(frame_index) < self.frame_count:
            raise StoreError(
                f"video {self.id} ({self.file_name!r}): frame {frame_index} out of range "
                f"(0..{self.frame_count - 1})"
            )
        return int(frame_index)


class VideoOperations:
    """The video part of :class:`posekit.store.Workspace` (mixed into it)."""

    if TYPE_CHECKING:
        root: Path
        media_root: Path

        def transaction(self) -> Iterator[Connection]: ...
        def _read(self) -> Iterator[Connection]: ...
        def _resolve_project(self, project: Project | str) -> Project: ...
        def _resolve_dataset(self, project: Project | str, dataset: Dataset | str) -> Dataset: ...
        def _item(self, row: Any, extra: Any = ...) -> Item: ...
        def media_file(self, media_path: str) -> Path | None: ...

    # ---------------------------------------------------------- rows
    def _video(self, row: Any) -> StoredVideo:
        return StoredVideo(
            id=row.id,
            dataset_id=row.dataset_id,
            file_name=row.file_name,
            kind=row.kind,
            media_path=row.media_path,
            path=None if row.media_path is None else self.media_file(row.media_path),
            sha256=row.sha256,
            fps=float(row.fps),
            frame_count=int(row.frame_count),
            duration=float(row.duration),
            width=int(row.width),
            height=int(row.height),
            rotation=int(row.rotation),
            status=row.status,
            created_at=row.created_at,
            decode_index=row.decode_index,
            extra=dict(row.extra or {}),
        )

    @staticmethod
    def _video_id(video: StoredVideo | int) -> int:
        return video.id if isinstance(video, StoredVideo) else int(video)

    def add_video(
        self,
        dataset: Dataset,
        file_name: str,
        *,
        fps: float,
        frame_count: int,
        duration: float,
        width: int,
        height: int,
        rotation: int = 0,
        kind: str = "file",
        media_path: str | None = None,
        sha256: str | None = None,
        decode_index: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Insert a video row (imports call this); returns its id.

        Args:
            conn: Run inside this transaction instead of a new one.

        Raises:
            StoreError: ``kind`` is unknown, or the dataset already has a video of
                that name.
        """
        if kind not in ("file", "frames"):
            raise StoreError(f"video kind must be 'file' or 'frames', got {kind!r}")
        if int(frame_count) < 1:
            raise StoreError(f"video {file_name!r}: has no frames")
        values = dict(
            dataset_id=dataset.id, kind=kind, file_name=file_name, media_path=media_path,
            sha256=sha256, fps=float(fps), frame_count=int(frame_count),
            duration=float(duration), width=int(width), height=int(height),
            rotation=int(rotation), status="new", decode_index=decode_index,
            extra=extra or None, created_at=utcnow(),
        )  # fmt: skip

        def run(c: Connection) -> int:
            taken = c.execute(
                select(VideoRow.id).where(
                    VideoRow.dataset_id == dataset.id, VideoRow.file_name == file_name
                )
            ).first()
            if taken is not None:
                raise StoreError(f"dataset {dataset.name!r} already has a video {file_name!r}")
            return int(c.execute(insert(VideoRow).values(**values)).inserted_primary_key[0])

        if conn is not None:
            return run(conn)
        with self.transaction() as c:
            return run(c)

    def get_video(self, video: StoredVideo | int) -> StoredVideo:
        """The video with database id ``video``."""
        video_id = self._video_id(video)
        with self._read() as conn:
            row = conn.execute(select(VideoRow).where(VideoRow.id == video_id)).first()
        if row is None:
            raise NotFoundError(f"video {video_id} does not exist")
        return self._video(row)

    def list_videos(
        self,
        project: Project | str,
        *,
        dataset: Dataset | str | None = None,
        status: str | Sequence[str] | None = None,
    ) -> list[StoredVideo]:
        """Videos of a project (or one dataset), by id; ``status`` filters."""
        project = self._resolve_project(project)
        query = (
            select(VideoRow)
            .join(DatasetRow, DatasetRow.id == VideoRow.dataset_id)
            .where(DatasetRow.project_id == project.id)
        )
        if dataset is not None:
            query = query.where(VideoRow.dataset_id == self._resolve_dataset(project, dataset).id)
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            unknown = sorted(set(wanted) - set(VIDEO_STATUSES))
            if unknown:
                raise StoreError(
                    f"unknown video status {', '.join(unknown)}; known: {', '.join(VIDEO_STATUSES)}"
                )
            query = query.where(VideoRow.status.in_(wanted))
        with self._read() as conn:
            rows = conn.execute(query.order_by(VideoRow.id)).all()
        return [self._video(r) for r in rows]

    def project_id_of_video(self, video: StoredVideo | int) -> int:
        """The id of the project a video belongs to."""
        video_id = self._video_id(video)
        with self._read() as conn:
            project_id = conn.execute(
                select(DatasetRow.project_id)
                .join(VideoRow, VideoRow.dataset_id == DatasetRow.id)
                .where(VideoRow.id == video_id)
            ).scalar_one_or_none()
        if project_id is None:
            raise NotFoundError(f"video {video_id} does not exist")
        return int(project_id)

    def set_video_status(self, video: StoredVideo | int, status: str) -> None:
        """Set a video's status (one of :data:`VIDEO_STATUSES`)."""
        if status not in VIDEO_STATUSES:
            raise StoreError(f"video status {status!r} is not one of {', '.join(VIDEO_STATUSES)}")
        video_id = self._video_id(video)
        with self.transaction() as conn:
            done = conn.execute(
                update(VideoRow).where(VideoRow.id == video_id).values(status=status)
            )
            if done.rowcount == 0:
                raise NotFoundError(f"video {video_id} does not exist")

    def delete_video(self, video: StoredVideo | int) -> None:
        """Delete a video with its frame items, their instances and its tracks, and its
        seek proxies unless another video has the same content (the stored file stays
        until its project is deleted: other rows may share it)."""
        video_id = self._video_id(video)
        with self.transaction() as conn:
            sha256 = conn.execute(
                select(VideoRow.sha256).where(VideoRow.id == video_id)
            ).scalar_one_or_none()
            item_ids = select(ItemRow.id).where(ItemRow.video_id == video_id)
            conn.execute(delete(InstanceRow).where(InstanceRow.item_id.in_(item_ids)))
            conn.execute(delete(InstanceVersionRow).where(InstanceVersionRow.item_id.in_(item_ids)))
            conn.execute(delete(ItemRow).where(ItemRow.video_id == video_id))
            conn.execute(delete(TrackRow).where(TrackRow.video_id == video_id))
            if conn.execute(delete(VideoRow).where(VideoRow.id == video_id)).rowcount == 0:
                raise NotFoundError(f"video {video_id} does not exist")
            shared = sha256 is not None and (
                conn.execute(select(VideoRow.id).where(VideoRow.sha256 == sha256).limit(1)).first()
                is not None
            )
        if not shared:
            from posekit.store.video_proxies import remove_video_proxies

            remove_video_proxies(self.root, sha256 or f"video-{video_id}")

    def clear_video_predictions(
        self, video: StoredVideo | int, *, author_id: int | None = None
    ) -> int:
        """Delete every ``predicted`` model instance (not keyframes) on a video's frames
        (kept in their history, deleted by ``author_id``); returns how many."""

        video_id = self._video_id(video)
        with self.transaction() as conn:
            item_ids = list(
                conn.execute(select(ItemRow.id).where(ItemRow.video_id == video_id)).scalars()
            )
            removed = 0
            for start in range(0, len(item_ids), 500):
                predicted = and_(
                    InstanceRow.item_id.in_(item_ids[start : start + 500]),
                    InstanceRow.status == "predicted",
                    starts_with(InstanceRow.source, "model:"),
                    InstanceRow.keyframe.is_(False),
                )
                save_replaced_versions(conn, predicted, action="delete", by=author_id)
                removed += conn.execute(delete(InstanceRow).where(predicted)).rowcount
            settle_item_statuses(conn, item_ids, by_person=False)
        return removed

    def count_frame_items(
        self, project: Project | str, *, dataset: Dataset | str | None = None
    ) -> int:
        """Number of items of a project (or dataset) that are frames of stored videos
        (labeled through their video, not as images)."""
        from sqlalchemy import func

        project = self._resolve_project(project)
        query = (
            select(func.count())
            .select_from(ItemRow)
            .join(DatasetRow, DatasetRow.id == ItemRow.dataset_id)
            .where(
                DatasetRow.project_id == project.id,
                ItemRow.kind == FRAME_ITEM_KIND,
                ItemRow.media_path.is_(None),
            )
        )
        if dataset is not None:
            query = query.where(ItemRow.dataset_id == self._resolve_dataset(project, dataset).id)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    # ---------------------------------------------------------- decoding
    def open_video(self, video: StoredVideo | int, *, cache_frames: int = 8) -> Video:
        """The stored video opened for frame access (the stored index is reused, so
        the file is not scanned again). Close it after use.

        Raises:
            StoreError: The video has no stored media.
            VideoError: The file cannot be read.
        """
        from posekit.media.video import open_frame_folder, open_video

        if not isinstance(video, StoredVideo):
            video = self.get_video(video)
        if video.media_path is None:
            raise StoreError(f"video {video.id} ({video.file_name!r}) has no stored media")
        if video.path is None:  # the decoder seeks in a file
            raise StoreError(
                f"video {video.id} ({video.file_name!r}): decoding needs a media storage with "
                "local files"
            )
        if video.kind == "frames":
            return open_frame_folder(video.path, video.fps, cache_frames=cache_frames)
        return open_video(video.path, index=video.decode_index, cache_frames=cache_frames)

    # ---------------------------------------------------------- frames
    def _frame_item_ids(
        self, conn: Connection, video: StoredVideo, frames: Sequence[int], *, create: bool
    ) -> dict[int, int]:
        """``frame_index -> item id`` of the frames' items, creating missing ones."""
        wanted = sorted({video.check_frame(f) for f in frames})
        found: dict[int, int] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found.update(
                conn.execute(
                    select(ItemRow.frame_index, ItemRow.id).where(
                        ItemRow.video_id == video.id, ItemRow.frame_index.in_(chunk)
                    )
                ).all()
            )
        missing = [f for f in wanted if f not in found]
        if create and missing:
            now = utcnow()
            timestamps = video.timestamps()
            conn.execute(
                insert(ItemRow),
                [
                    {
                        "dataset_id": video.dataset_id,
                        "kind": FRAME_ITEM_KIND,
                        "file_name": frame_file_name(video.file_name, f),
                        "media_path": None,
                        "width": video.width,
                        "height": video.height,
                        "status": "new",
                        "video_id": video.id,
                        "frame_index": f,
                        "extra": {"timestamp": float(timestamps[f])},
                        "created_at": now,
                    }
                    for f in missing
                ],
            )
            for start in range(0, len(missing), 500):
                chunk = missing[start : start + 500]
                found.update(
                    conn.execute(
                        select(ItemRow.frame_index, ItemRow.id).where(
                            ItemRow.video_id == video.id, ItemRow.frame_index.in_(chunk)
                        )
                    ).all()
                )
        return {int(f): int(i) for f, i in found.items()}

    def frame_item(
        self, video: StoredVideo | int, frame_index: int, *, create: bool = True
    ) -> Item:
        """The item of one frame (created when missing, unless ``create=False``).

        Raises:
            NotFoundError: ``create=False`` and the frame has no item.
            StoreError: ``frame_index`` is out of range.
        """
        if not isinstance(video, StoredVideo):
            video = self.get_video(video)
        frame_index = video.check_frame(frame_index)
        if create:
            with self.transaction() as conn:
                item_id = self._frame_item_ids(conn, video, [frame_index], create=True)[frame_index]
        else:
            with self._read() as conn:
                ids = self._frame_item_ids(conn, video, [frame_index], create=False)
            if frame_index not in ids:
                raise NotFoundError(f"video {video.id}: frame {frame_index} has no item")
            item_id = ids[frame_index]
        with self._read() as conn:
            row = conn.execute(select(ItemRow).where(ItemRow.id == item_id)).one()
        return self._item(row)

    def frame_items(self, video: StoredVideo | int) -> dict[int, Item]:
        """``frame_index -> Item`` of the video's frames that have items."""
        video_id = self._video_id(video)
        with self._read() as conn:
            rows = conn.execute(
                select(ItemRow).where(ItemRow.video_id == video_id).order_by(ItemRow.frame_index)
            ).all()
        return {int(r.frame_index): self._item(r) for r in rows}
