"""Pose tracks of stored videos: keyframes, outside frames, interpolated views, edits.

A track is ``(video, track_id)``: the instances on the video's frame items whose
``track_id`` it is, plus a ``tracks`` row (label, outside frames). Each operation is
one transaction; edits take ``author_id`` (the acting user), and the versions they
replace or delete go to the instances' history (:mod:`posekit.store.history`).

Keyframes. A stored instance is a *keyframe* of its track when a person set it:
``instances.keyframe`` is true (:meth:`TrackOperations.set_keyframe`), or it is
``accepted``, or its source is ``manual``; never when it is ``rejected``. Model
predictions (``predicted``) are not keyframes until accepted.

What a frame shows (:meth:`TrackOperations.frame_view`): every stored instance of
the frame that is not rejected (keyframe or prediction), and for each track without
a stored instance there, the instance interpolated from its keyframes by
:func:`posekit.tracking.interpolation.instance_at` (linear where a keypoint is
labeled in both keyframes, held where only the previous one labels it, absent after
an outside frame; its docstring has the exact rules). Interpolated instances are
computed, never stored, until a person edits one (which stores it as a keyframe) or
an export writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from posekit.core import Instance
from posekit.store.codec import decode_instance, instance_columns
from posekit.store.database import starts_with
from posekit.store.errors import NotFoundError, StaleVersionError, StoreError
from posekit.store.history import (
    save_instance_version,
    save_replaced_versions,
    update_versioned,
)
from posekit.store.instances import settle_item_statuses
from posekit.store.records import record_from_row
from posekit.store.tables import DatasetRow, InstanceRow, ItemRow, TrackRow, VideoRow, utcnow
from posekit.store.track_records import (
    FrameInstance,
    TrackInfo,
    is_keyframe_clause,
    is_keyframe_row,
)
from posekit.store.videos import StoredVideo, VideoOperations

if TYPE_CHECKING:
    from posekit.skeleton import Skeleton
    from posekit.store.records import InstanceRecord

__all__ = ["FrameInstance", "TrackInfo", "TrackOperations", "is_keyframe_clause"]


class TrackOperations(VideoOperations):
    """Tracks, keyframes and their edits; mixed into :class:`posekit.store.Workspace`."""

    if TYPE_CHECKING:

        def _check_instance(self, instance: Instance, template: Skeleton, where: str) -> None: ...
        def _project(self, row: Any) -> Any: ...

    # ---------------------------------------------------------- reading
    def _video_and_template(self, conn: Connection, video_id: int) -> tuple[StoredVideo, Any]:
        from posekit.store.tables import ProjectRow

        row = conn.execute(select(VideoRow).where(VideoRow.id == video_id)).first()
        if row is None:
            raise NotFoundError(f"video {video_id} does not exist")
        project = conn.execute(
            select(ProjectRow)
            .join(DatasetRow, DatasetRow.project_id == ProjectRow.id)
            .where(DatasetRow.id == row.dataset_id)
        ).one()
        return self._video(row), self._project(project)

    def project_of_video(self, video: StoredVideo | int) -> Any:
        """The :class:`~posekit.store.Project` a video belongs to."""
        with self._read() as conn:
            return self._video_and_template(conn, self._video_id(video))[1]

    @staticmethod
    def _instance_rows(
        conn: Connection, video_id: int, *, track_id: int | None = None, frame: int | None = None
    ) -> list[Any]:
        query = (
            select(InstanceRow, ItemRow.frame_index)
            .join(ItemRow, ItemRow.id == InstanceRow.item_id)
            .where(ItemRow.video_id == video_id, InstanceRow.status != "rejected")
        )
        if track_id is not None:
            query = query.where(InstanceRow.track_id == track_id)
        if frame is not None:
            query = query.where(ItemRow.frame_index == frame)
        return list(conn.execute(query.order_by(ItemRow.frame_index, InstanceRow.id)).all())

    @staticmethod
    def _track_rows(conn: Connection, video_id: int) -> dict[int, Any]:
        rows = conn.execute(select(TrackRow).where(TrackRow.video_id == video_id)).all()
        return {int(r.track_id): r for r in rows}

    def list_tracks(self, video: StoredVideo | int) -> list[TrackInfo]:
        """Every track of a video (with a row or with instances), by track id."""
        video_id = self._video_id(video)
        with self._read() as conn:
            self._video_and_template(conn, video_id)
            rows = self._track_rows(conn, video_id)
            frames: dict[int, set[int]] = {}
            keys: dict[int, set[int]] = {}
            query = (
                select(
                    InstanceRow.track_id,
                    ItemRow.frame_index,
                    InstanceRow.keyframe,
                    InstanceRow.status,
                    InstanceRow.source,
                )
                .join(ItemRow, ItemRow.id == InstanceRow.item_id)
                .where(
                    ItemRow.video_id == video_id,
                    InstanceRow.track_id.is_not(None),
                    InstanceRow.status != "rejected",
                )
            )
            for row in conn.execute(query):
                frames.setdefault(int(row.track_id), set()).add(int(row.frame_index))
                if is_keyframe_row(row):
                    keys.setdefault(int(row.track_id), set()).add(int(row.frame_index))
        out = []
        for track_id in sorted(set(rows) | set(frames)):
            row = rows.get(track_id)
            out.append(
                TrackInfo(
                    video_id=video_id,
                    track_id=track_id,
                    label=None if row is None else row.label,
                    keyframes=tuple(sorted(keys.get(track_id, ()))),
                    frames=tuple(sorted(frames.get(track_id, ()))),
                    outside=tuple(sorted(int(f) for f in (row.outside if row else []))),
                )
            )
        return out

    def get_track(self, video: StoredVideo | int, track_id: int) -> TrackInfo:
        for track in self.list_tracks(video):
            if track.track_id == int(track_id):
                return track
        raise NotFoundError(f"video {self._video_id(video)} has no track {track_id}")

    def track_keyframes(self, video: StoredVideo | int, track_id: int) -> dict[int, Instance]:
        """``{frame_index: Instance}`` of a track's keyframes."""
        video_id = self._video_id(video)
        with self._read() as conn:
            rows = self._instance_rows(conn, video_id, track_id=int(track_id))
        return {int(r.frame_index): decode_instance(r) for r in rows if is_keyframe_row(r)}

    def frame_view(self, video: StoredVideo | int, frame_index: int) -> list[FrameInstance]:
        """What frame ``frame_index`` shows: its stored instances, then one interpolated
        instance per track that has none stored there (by track id)."""
        from posekit.tracking.interpolation import instance_at

        video_id = self._video_id(video)
        with self._read() as conn:
            stored_video, _ = self._video_and_template(conn, video_id)
            frame_index = stored_video.check_frame(frame_index)
            rows = self._instance_rows(conn, video_id)
            tracks = self._track_rows(conn, video_id)
        out: list[FrameInstance] = []
        keyframes: dict[int, dict[int, Instance]] = {}
        present: set[int] = set()
        for row in rows:
            inst_row = row
            if int(row.frame_index) == frame_index:
                out.append(
                    FrameInstance(
                        frame_index, decode_instance(inst_row), inst_row.track_id,
                        is_keyframe_row(inst_row), True, inst_row.id, inst_row.version,
                    )
                )  # fmt: skip
                if inst_row.track_id is not None:
                    present.add(int(inst_row.track_id))
            if inst_row.track_id is not None and is_keyframe_row(inst_row):
                track = keyframes.setdefault(int(inst_row.track_id), {})
                track.setdefault(int(row.frame_index), decode_instance(inst_row))
        for track_id in sorted(keyframes):
            if track_id in present:
                continue
            outside = tracks[track_id].outside if track_id in tracks else []
            outside = [f for f in outside if int(f) not in keyframes[track_id]]
            found = instance_at(
                keyframes[track_id],
                frame_index,
                frame_count=stored_video.frame_count,
                outside=outside,
            )
            if found is not None:
                out.append(
                    FrameInstance(
                        frame_index, found.instance.copy(track_id=track_id), track_id, False,
                        False, previous_keyframe=found.previous_keyframe,
                        next_keyframe=found.next_keyframe,
                    )
                )  # fmt: skip
        return out

    # ---------------------------------------------------------- writing
    def _ensure_tracks(
        self, conn: Connection, video: StoredVideo, project_id: int, track_ids: Sequence[int]
    ) -> None:
        have = set(self._track_rows(conn, video.id))
        missing = sorted({int(t) for t in track_ids} - have)
        if missing:
            now = utcnow()
            conn.execute(
                insert(TrackRow),
                [
                    {"project_id": project_id, "video_id": video.id, "track_id": t,
                     "outside": [], "created_at": now}
                    for t in missing
                ],
            )  # fmt: skip

    def _set_outside_list(
        self, conn: Connection, video_id: int, track_id: int, frames: Any
    ) -> None:
        conn.execute(
            update(TrackRow)
            .where(TrackRow.video_id == video_id, TrackRow.track_id == track_id)
            .values(outside=sorted({int(f) for f in frames}))
        )

    def _next_track_id(self, conn: Connection, video_id: int) -> int:
        from_rows = conn.execute(
            select(func.max(TrackRow.track_id)).where(TrackRow.video_id == video_id)
        ).scalar()
        from_instances = conn.execute(
            select(func.max(InstanceRow.track_id))
            .join(ItemRow, ItemRow.id == InstanceRow.item_id)
            .where(ItemRow.video_id == video_id)
        ).scalar()
        return max(int(from_rows or 0), int(from_instances or 0)) + 1

    def create_track(self, video: StoredVideo | int, *, label: str | None = None) -> TrackInfo:
        """A new empty track with the next free track id of the video."""
        video_id = self._video_id(video)
        with self.transaction() as conn:
            stored, project = self._video_and_template(conn, video_id)
            track_id = self._next_track_id(conn, video_id)
            self._ensure_tracks(conn, stored, project.id, [track_id])
            if label is not None:
                conn.execute(
                    update(TrackRow)
                    .where(TrackRow.video_id == video_id, TrackRow.track_id == track_id)
                    .values(label=str(label)[:200])
                )
        return self.get_track(video_id, track_id)

    def set_keyframe(
        self,
        video: StoredVideo | int,
        frame_index: int,
        track_id: int,
        instance: Instance,
        *,
        expected_version: int | None = None,
        author_id: int | None = None,
    ) -> InstanceRecord:
        """Store ``instance`` as the track's keyframe at a frame (a person's edit).

        Replaces the track's stored instance on that frame (a prediction, or an
        earlier keyframe: versioned when ``expected_version`` is given), or adds one
        (editing an interpolated frame). The instance is stored ``accepted`` with the
        keyframe flag, ``track_id`` set; an outside mark on that frame is removed.

        ``expected_version``: the stored instance's version as read; ``0`` says "the
        frame showed nothing stored for this track" (an interpolated frame), refused
        when an instance has been stored there since; None overwrites whatever is there.

        Raises:
            StaleVersionError: ``expected_version`` differs from the stored one (for
                ``0``: an instance is stored there).
            NotFoundError: A version was given, but nothing is stored there (deleted).
            StoreError: Out-of-range frame, or the instance does not fit the template.
        """
        video_id = self._video_id(video)
        track_id = int(track_id)
        with self.transaction() as conn:
            stored, project = self._video_and_template(conn, video_id)
            frame_index = stored.check_frame(frame_index)
            self._check_instance(
                instance, project.template, f"video {video_id} frame {frame_index}"
            )
            inst = instance.copy(track_id=track_id, status="accepted", id=None)
            item_id = self._frame_item_ids(conn, stored, [frame_index], create=True)[frame_index]
            self._ensure_tracks(conn, stored, project.id, [track_id])
            rows = self._instance_rows(conn, video_id, track_id=track_id, frame=frame_index)
            values = {**instance_columns(inst), "keyframe": True, "author_id": author_id}
            now = utcnow()
            if rows and expected_version is not None and int(expected_version) == 0:
                raise StaleVersionError(rows[0].id, 0, record_from_row(rows[0]))
            if not rows and expected_version:  # read once, deleted since
                raise NotFoundError(
                    f"video {video_id} frame {frame_index}: track {track_id} has no stored "
                    f"instance there any more (version {int(expected_version)} was read)"
                )
            if rows:
                current = rows[0]
                wanted = current.version if expected_version is None else int(expected_version)
                where = and_(InstanceRow.id == current.id, InstanceRow.version == wanted)
                saved = save_instance_version(
                    conn, current.id, wanted, action="update", by=author_id, now=now
                )
                result = conn.execute(
                    update(InstanceRow)
                    .where(where)
                    .values(version=InstanceRow.version + 1, updated_at=now, **values)
                )
                if saved != 1 or result.rowcount != 1:
                    raise StaleVersionError(current.id, wanted, record_from_row(current))
                instance_id = current.id
            else:
                instance_id = conn.execute(
                    insert(InstanceRow).values(
                        item_id=item_id, version=1, created_at=now, updated_at=now, **values
                    )
                ).inserted_primary_key[0]
            outside = self._track_rows(conn, video_id)[track_id].outside
            if frame_index in outside:
                self._set_outside_list(
                    conn, video_id, track_id, [f for f in outside if f != frame_index]
                )
            settle_item_statuses(conn, [item_id], by_person=True)
            row = conn.execute(select(InstanceRow).where(InstanceRow.id == instance_id)).one()
            return record_from_row(row)

    def set_outside(
        self, video: StoredVideo | int, track_id: int, frame_index: int, outside: bool = True,
        *, author_id: int | None = None,
    ) -> TrackInfo:  # fmt: skip
        """Mark (or unmark) the frame where a segment of the track ends.

        Marking removes the track's stored instance on that frame: a person said the
        person is not there. Returns the track as it is now.
        """
        video_id = self._video_id(video)
        track_id = int(track_id)
        with self.transaction() as conn:
            stored, project = self._video_and_template(conn, video_id)
            frame_index = stored.check_frame(frame_index)
            self._ensure_tracks(conn, stored, project.id, [track_id])
            current = set(self._track_rows(conn, video_id)[track_id].outside)
            if outside:
                rows = self._instance_rows(conn, video_id, track_id=track_id, frame=frame_index)
                ids = [r.id for r in rows]
                if ids:
                    gone = InstanceRow.id.in_(ids)
                    save_replaced_versions(conn, gone, action="delete", by=author_id)
                    conn.execute(delete(InstanceRow).where(gone))
                    settle_item_statuses(conn, [r.item_id for r in rows], by_person=True)
                current.add(frame_index)
            else:
                current.discard(frame_index)
            self._set_outside_list(conn, video_id, track_id, current)
        return self.get_track(video_id, track_id)

    def split_track(
        self,
        video: StoredVideo | int,
        track_id: int,
        frame_index: int,
        *,
        author_id: int | None = None,
    ) -> TrackInfo:
        """Split a track at a frame: its instances and outside marks from ``frame_index``
        on move to a new track (returned); the old track ends at ``frame_index``.

        If the old track was interpolated at ``frame_index`` (no stored instance
        there), that instance is stored as the new track's first keyframe, so the new
        track starts exactly where the split was made.
        """
        video_id = self._video_id(video)
        track_id = int(track_id)
        view = {
            fi.track_id: fi
            for fi in self.frame_view(video_id, frame_index)
            if fi.track_id is not None
        }
        with self.transaction() as conn:
            stored, project = self._video_and_template(conn, video_id)
            frame_index = stored.check_frame(frame_index)
            tracks = self._track_rows(conn, video_id)
            rows = self._instance_rows(conn, video_id, track_id=track_id)
            if track_id not in tracks and not rows:
                raise NotFoundError(f"video {video_id} has no track {track_id}")
            new_id = self._next_track_id(conn, video_id)
            self._ensure_tracks(conn, stored, project.id, [track_id, new_id])
            moving = [r.id for r in rows if int(r.frame_index) >= frame_index]
            update_versioned(conn, moving, {"track_id": new_id}, action="update", by=author_id)
            here = view.get(track_id)
            if here is not None and not here.stored:
                item_id = self._frame_item_ids(conn, stored, [frame_index], create=True)[
                    frame_index
                ]
                now = utcnow()
                conn.execute(
                    insert(InstanceRow).values(
                        item_id=item_id, version=1, created_at=now, updated_at=now, keyframe=True,
                        author_id=author_id,
                        **instance_columns(here.instance.copy(track_id=new_id, id=None)),
                    )
                )  # fmt: skip
                settle_item_statuses(conn, [item_id], by_person=True)
            old_outside = set(tracks[track_id].outside) if track_id in tracks else set()
            self._set_outside_list(
                conn, video_id, new_id, {f for f in old_outside if f > frame_index}
            )
            self._set_outside_list(
                conn,
                video_id,
                track_id,
                {f for f in old_outside if f < frame_index} | {frame_index},
            )
        return self.get_track(video_id, new_id)

    def merge_tracks(
        self, video: StoredVideo | int, track_id: int, other: int, *, author_id: int | None = None
    ) -> TrackInfo:
        """Move every instance and outside mark of track ``other`` into ``track_id`` and
        delete ``other``. Refused when both have a stored instance on the same frame
        (the error lists the frames)."""
        video_id = self._video_id(video)
        track_id, other = int(track_id), int(other)
        if track_id == other:
            raise StoreError(f"cannot merge track {track_id} with itself")
        with self.transaction() as conn:
            stored, project = self._video_and_template(conn, video_id)
            keep_rows = self._instance_rows(conn, video_id, track_id=track_id)
            other_rows = self._instance_rows(conn, video_id, track_id=other)
            tracks = self._track_rows(conn, video_id)
            for tid, rows in ((track_id, keep_rows), (other, other_rows)):
                if tid not in tracks and not rows:
                    raise NotFoundError(f"video {video_id} has no track {tid}")
            both = sorted(
                {int(r.frame_index) for r in keep_rows} & {int(r.frame_index) for r in other_rows}
            )
            if both:
                shown = ", ".join(map(str, both[:10])) + (" ..." if len(both) > 10 else "")
                raise StoreError(
                    f"tracks {track_id} and {other} both have an instance on frame(s) {shown}; "
                    "delete one of each pair first"
                )
            self._ensure_tracks(conn, stored, project.id, [track_id])
            ids = [r.id for r in other_rows]
            update_versioned(conn, ids, {"track_id": track_id}, action="update", by=author_id)
            frames = {int(r.frame_index) for r in keep_rows} | {
                int(r.frame_index) for r in other_rows
            }
            outside = set(tracks[track_id].outside) if track_id in tracks else set()
            if other in tracks:
                outside |= set(tracks[other].outside)
            self._set_outside_list(conn, video_id, track_id, outside - frames)
            conn.execute(
                delete(TrackRow).where(TrackRow.video_id == video_id, TrackRow.track_id == other)
            )
        return self.get_track(video_id, track_id)

    def write_frame_predictions(
        self,
        video: StoredVideo | int,
        frames: Mapping[int, Sequence[Instance]],
        *,
        replace: bool = True,
        outside: Mapping[int, Sequence[int]] | None = None,
        author_id: int | None = None,
    ) -> dict[int, int]:
        """Store model predictions on a video's frames in one transaction.

        Args:
            frames: ``{frame_index: [Instance, ...]}``, stored as ``predicted``
                non-keyframe instances (their ``track_id`` kept; track rows created).
            replace: Delete the frames' earlier ``predicted`` model instances first.
                A track's frame that already holds a keyframe is never written over:
                the prediction for that track on that frame is dropped.
            outside: ``{track_id: [frame, ...]}`` outside marks to add.
            author_id: Who ran the model (the new instances' author; the replaced
                predictions go to their history as deleted by them).

        Returns:
            ``{frame_index: number of instances written}`` (frames with none left out).
        """
        video_id = self._video_id(video)
        written: dict[int, int] = {}
        with self.transaction() as conn:
            stored, project = self._video_and_template(conn, video_id)
            item_ids = self._frame_item_ids(conn, stored, list(frames), create=True)
            ids = list(item_ids.values())
            if replace:
                for start in range(0, len(ids), 500):
                    replaced = and_(
                        InstanceRow.item_id.in_(ids[start : start + 500]),
                        InstanceRow.status == "predicted",
                        starts_with(InstanceRow.source, "model:"),
                        InstanceRow.keyframe.is_(False),
                    )
                    save_replaced_versions(conn, replaced, action="delete", by=author_id)
                    conn.execute(delete(InstanceRow).where(replaced))
            taken: set[tuple[int, int]] = set()
            for start in range(0, len(ids), 500):
                taken.update(
                    (int(r.item_id), int(r.track_id))
                    for r in conn.execute(
                        select(InstanceRow.item_id, InstanceRow.track_id).where(
                            InstanceRow.item_id.in_(ids[start : start + 500]),
                            InstanceRow.track_id.is_not(None),
                        )
                    )
                )
            now = utcnow()
            rows: list[dict[str, Any]] = []
            track_ids: set[int] = set()
            for frame, instances in frames.items():
                item_id = item_ids[int(frame)]
                for n, inst in enumerate(instances):
                    where = f"video {video_id} frame {frame} prediction #{n}"
                    self._check_instance(inst, project.template, where)
                    if inst.track_id is not None:
                        if (item_id, int(inst.track_id)) in taken:
                            continue
                        track_ids.add(int(inst.track_id))
                    pred = inst.copy(status="predicted", id=None)
                    rows.append(
                        {"item_id": item_id, "version": 1, "created_at": now, "updated_at": now,
                         "keyframe": False, "author_id": author_id, **instance_columns(pred)}
                    )  # fmt: skip
            track_ids |= {int(t) for t in (outside or {})}
            self._ensure_tracks(conn, stored, project.id, sorted(track_ids))
            for track_id, marks in (outside or {}).items():
                current = set(self._track_rows(conn, video_id)[int(track_id)].outside)
                self._set_outside_list(conn, video_id, int(track_id), current | set(marks))
            if rows:
                conn.execute(insert(InstanceRow), rows)
            settle_item_statuses(conn, ids, by_person=False)
            frame_of = {item_id: frame for frame, item_id in item_ids.items()}
            for row in rows:
                frame = frame_of[row["item_id"]]
                written[frame] = written.get(frame, 0) + 1
        return written
