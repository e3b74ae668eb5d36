"""Streaming bulk import of a COCO file into an empty dataset (the 100k-annotation path).

:func:`posekit.store.imports.import_dataset` takes this path for a COCO file whose
target dataset holds no items yet and that carries no video frames or tracks (the
usual first import of a big file); anything else takes the general path. The
result in the database is the same as the general path's (a test compares every
row), only faster:

* the file is parsed once (:func:`posekit.formats.coco_read.prepare_coco_file`:
  msgspec with the keypoints turned into one integer matrix where it applies,
  else orjson) and checked as whole arrays; no
  :class:`~posekit.core.Instance` is built: the keypoint, visibility and box
  blobs are cut from the validated arrays, the scalar fields come from
  :meth:`~posekit.formats.coco_rows.CocoRows.fields`;
* annotations are checked and written in chunks, and each chunk is inserted
  by a second thread while the next one is built: SQLite and the PostgreSQL
  driver release the GIL while they execute, so on two cores the inserts
  mostly disappear behind the Python work. The statements and their
  parameters are prepared on the building thread
  (:func:`~posekit.store.bulk.prepare_insert_columns`), the writer only runs
  the driver calls: it is the longer of the two. On SQLite, values shared by a
  whole chunk (the timestamps, NULL scores, the source) are SQL literals;
* on SQLite the two per-row ``AFTER INSERT`` count triggers of migration
  ``0004`` are dropped inside the import transaction and the counts are
  incremented once at the end by the numbers inserted, which is what the
  triggers would have added (every row of the import belongs to the one
  dataset); the triggers are created again from their stored SQL before the
  commit. DDL is transactional in SQLite: a failed import rolls it back with
  the rows, and other connections never see the database without them
  (one writer at a time; readers see the last commit).

It stays one transaction: a bad annotation anywhere raises the same
:class:`~posekit.formats.coco.CocoFormatError` as :func:`~posekit.formats.coco.from_coco`
would (the first bad element in file order) and nothing is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import Connection, select, text, update

from posekit.formats.coco_rows import CocoRows
from posekit.formats.coco_schema import POSEKIT_FIELD
from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.store.bulk import bulk_insert_columns, execute_prepared, prepare_insert_columns
from posekit.store.errors import StoreError
from posekit.store.import_report import ImportReport, MissingMediaError
from posekit.store.media_names import check_declared_size, claim_stored_name
from posekit.store.media_staging import MediaStager
from posekit.store.records import Dataset
from posekit.store.tables import DatasetRow, InstanceRow, ItemRow
from posekit.store.video_exports import INTERPOLATED_KEY, TRACKS_KEY
from posekit.store.workspace import Workspace

__all__ = ["CHUNK_ROWS", "deferred_insert_triggers", "import_coco_rows", "streamable"]

log = logging.getLogger(__name__)

#: Annotations per chunk: large enough that each insert is one long driver call,
#: small enough that the first insert starts early.
CHUNK_ROWS = 8192

#: The per-row insert triggers of the listing counts (migration 0004) and the
#: column of ``dataset_counts`` each one increments.
_COUNT_TRIGGERS = {
    "trg_counts_item_insert": "num_items",
    "trg_counts_instance_insert": "num_instances",
}


def streamable(rows: CocoRows, dataset_has_items: bool) -> bool:
    """Whether a prepared COCO file can take this path (see the module docstring)."""
    if dataset_has_items or TRACKS_KEY in rows.extra:
        return False
    if any("vid_id" in record.extra for record in rows.records):
        return False  # PoseTrack-style video frames (restore_track_meta)
    anns = rows.anns
    return not any(INTERPOLATED_KEY in anns[a] for a in rows.rows)


@contextmanager
def deferred_insert_triggers(conn: Connection, dataset_id: int) -> Iterator[list[int]]:
    """Inside a SQLite import transaction: without the per-row count triggers.

    Yields ``[items, instances]``: the caller sets how many rows it inserted into
    ``dataset_id``; on leaving, ``dataset_counts`` is incremented by those numbers
    (for each trigger that existed) and the triggers are created again from their
    stored SQL. On another database (or without the triggers) nothing changes.
    If the block raises, nothing is restored here: the rollback undoes the drop.
    """
    inserted = [0, 0]
    dropped: list[tuple[str, str]] = []
    if conn.dialect.name == "sqlite":
        names = ", ".join(f"'{name}'" for name in _COUNT_TRIGGERS)
        dropped = [
            (name, sql)
            for name, sql in conn.exec_driver_sql(
                f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({names})"
            ).all()
        ]
        for name, _ in dropped:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    yield inserted
    if not dropped:
        return
    added = dict(zip(_COUNT_TRIGGERS.values(), inserted))
    sets = ", ".join(
        f"{_COUNT_TRIGGERS[name]} = {_COUNT_TRIGGERS[name]} + :{_COUNT_TRIGGERS[name]}"
        for name, _ in dropped
    )
    conn.execute(
        text(f"UPDATE dataset_counts SET {sets} WHERE dataset_id = :dataset_id"),
        {"dataset_id": dataset_id, **added},
    )
    for _, sql in dropped:
        conn.exec_driver_sql(sql)


def _predicted_images(rows: CocoRows) -> set[int]:
    """Positions of the images that get a ``predicted`` instance (statuses as
    :meth:`CocoRows.fields` reads them, if the file is valid)."""
    anns = rows.anns
    out = set()
    for row, a in enumerate(rows.rows):
        review = anns[a].get(POSEKIT_FIELD)
        if type(review) is dict and review.get("status") == "predicted":
            out.add(rows.row_image[row])
    return out


def _item_columns(
    rows: CocoRows,
    coco_path: Path,
    root: Path,
    stager: MediaStager,
    copy_media: bool,
    missing_media: str,
    report: ImportReport,
) -> dict[str, list[Any]]:
    """Item columns of every image (the general path's checks, for an empty dataset)."""
    predicted = _predicted_images(rows)
    columns: dict[str, list[Any]] = {
        key: []
        for key in (
            "file_name", "media_path", "sha256", "width", "height", "status", "external_id",
            "extra",
        )
    }  # fmt: skip
    seen: set[str] = set()
    missing: list[str] = []
    for index, record in enumerate(rows.records):
        try:
            name = safe_relative_name(record.file_name)
        except UnsafePathError as exc:
            raise StoreError(f"{coco_path}: image {exc}") from None
        if name in seen:
            raise StoreError(f"{coco_path}: image file_name {name!r} is listed twice")
        seen.add(name)
        where = f"images[{index}] ({name!r})"
        declared = (int(record.width), int(record.height))
        source = root / name if copy_media else None
        present = source is not None and source.is_file()
        if source is not None and present:
            check_declared_size(coco_path, where, source, declared)
        stored_name = claim_stored_name(coco_path, where, name, seen)
        sha = media_path = None
        if copy_media:
            if source is not None and present:
                sha, media_path = stager.stage(source)
            elif missing_media == "error":
                missing.append(name)
                continue
            else:
                report.missing_media.append(name)
        columns["file_name"].append(stored_name)
        columns["media_path"].append(media_path)
        columns["sha256"].append(sha)
        columns["width"].append(declared[0])
        columns["height"].append(declared[1])
        columns["status"].append("predicted" if index in predicted else "reviewed")
        columns["external_id"].append(record.id)
        columns["extra"].append(dict(record.extra) or None)
    if missing:
        raise MissingMediaError(coco_path, root, missing)
    return columns


def _cut(raw: bytes, size: int) -> list[bytes]:
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def _instance_chunk(
    rows: CocoRows,
    order: Sequence[int] | None,
    start: int,
    stop: int,
    box_blobs: list[bytes | None],
) -> dict[str, list[Any]]:
    """Instance columns of rows ``start..stop`` (of ``order`` if given), all but
    ``item_id`` (added by the caller once the items are written)."""
    fields = rows.fields(start, stop, order)
    picked: Any = slice(start, stop) if order is None else list(order[start:stop])
    indices = range(start, stop) if order is None else order[start:stop]
    k = rows.vis.shape[1]
    return {
        "keypoints": _cut(rows.xy[picked].astype("<f4", copy=False).tobytes(), 8 * k),
        "visibility": _cut(rows.vis[picked].tobytes(), k),
        "keypoint_scores": [
            None if s is None else s.astype("<f4", copy=False).tobytes()
            for s in fields.keypoint_scores
        ],
        "box": [box_blobs[r] for r in indices],
        "score": fields.score,
        "source": fields.source,
        "status": fields.status,
        "track_id": fields.track_id,
        "iscrowd": fields.iscrowd,
        "area": fields.area,
        "segmentation": fields.segmentation,
        "extra": [e or None for e in fields.extra],
        "external_id": fields.ids,
    }


def import_coco_rows(
    ws: Workspace,
    rows: CocoRows,
    dataset: Dataset,
    coco_path: Path,
    root: Path,
    stager: MediaStager,
    *,
    copy_media: bool,
    missing_media: Literal["error", "register"],
    author_id: int | None,
    now: Any,
    file_meta: dict[str, Any],
    start: float,
    chunk_rows: int | None = None,
) -> ImportReport:
    """Write a prepared COCO file into an empty dataset in one transaction (see the
    module docstring). The caller removes ``stager``'s files if this raises.

    Args:
        start: ``time.perf_counter()`` when the import started (for the report).
        chunk_rows: Annotations per chunk (default :data:`CHUNK_ROWS`).
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    report = ImportReport(dataset=dataset.name)
    try:
        items = _item_columns(rows, coco_path, root, stager, copy_media, missing_media, report)
    except StoreError:
        rows.fields()  # a bad annotation is reported first, as on the general path
        raise
    n = len(rows)
    starts = np.asarray(rows.row_image, dtype=np.int64)
    # Instances in image order (file order within an image), as the general path.
    order = (
        None
        if n == 0 or bool((np.diff(starts) >= 0).all())
        else np.argsort(starts, kind="stable").tolist()
    )
    raw_boxes = rows.boxes.astype("<f4", copy=False).tobytes()
    box_blobs = [None if b < 0 else raw_boxes[16 * b : 16 * b + 16] for b in rows.box_index]
    constants = {"version": 1, "created_at": now, "updated_at": now, "author_id": author_id}
    with ws.transaction() as conn, deferred_insert_triggers(conn, dataset.id) as inserted:

        def insert_items() -> list[int]:
            """Insert the items; their ids, image by image."""
            inserted[0] = bulk_insert_columns(
                conn, ItemRow, items, {"dataset_id": dataset.id, "kind": "image", "created_at": now}
            )
            ids = dict(
                conn.execute(
                    select(ItemRow.file_name, ItemRow.id).where(ItemRow.dataset_id == dataset.id)
                ).all()
            )
            return list(map(ids.__getitem__, items["file_name"]))

        # One writer thread, in order: the items, then chunk k of the instances while
        # chunk k+1 is built here. Everything but the driver calls is done on this
        # thread (prepare_insert_columns): the writer is the longer of the two.
        with ThreadPoolExecutor(1, thread_name_prefix="posekit-import") as writer:
            items_done = writer.submit(insert_items)
            pending: list[Future[int]] = []
            item_of_row: np.ndarray | None = None
            try:
                for first in range(0, n, chunk_rows):
                    stop = min(n, first + chunk_rows)
                    chunk = _instance_chunk(rows, order, first, stop, box_blobs)
                    if item_of_row is None:  # the item id of each row, in writing order
                        item_ids = np.asarray(items_done.result(), dtype=np.int64)
                        item_of_row = item_ids[starts if order is None else starts[order]]
                    chunk["item_id"] = item_of_row[first:stop].tolist()
                    prepared = prepare_insert_columns(conn.dialect, InstanceRow, chunk, constants)
                    pending.append(writer.submit(execute_prepared, conn, prepared))
                    if pending[0].done():
                        inserted[1] += pending.pop(0).result()
            except BaseException:
                writer.shutdown(wait=True, cancel_futures=True)
                if order is not None:
                    rows.fields()  # the first bad annotation in file order
                raise
            items_done.result()
            for future in pending:
                inserted[1] += future.result()
        if not dataset.extra:
            conn.execute(
                update(DatasetRow).where(DatasetRow.id == dataset.id).values(extra=file_meta)
            )
        stager.publish()
    report.added = len(items["file_name"])
    report.instances = n
    report.box_only = int(np.count_nonzero(~rows.vis.any(axis=1))) if n else 0
    report.elapsed = time.perf_counter() - start
    log.info(
        "imported %s: %d images, %d instances into %s (bulk path)",
        coco_path, report.added, report.instances, dataset.name,
    )  # fmt: skip
    return report
