"""COCO export straight from the rows (the 100k-annotation path of :func:`export`).

:func:`posekit.store.exports.export` takes this path for a COCO file of a project
without video frames; it writes the same bytes as the general path (a test
compares them), which builds a :class:`~posekit.dataset.PoseDataset` of
:class:`~posekit.core.Instance` objects and then the COCO dict. Here the rows are
read as tuples, the kept instances' keypoint, visibility and box blobs are
joined and decoded as whole arrays, and the annotation dicts are made by the
same column-wise writer :func:`posekit.formats.coco_write.coco_annotations` that
:func:`~posekit.formats.coco.to_coco` uses: no per-instance objects in between.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Text, cast, select

from posekit.formats.coco import write_coco_chunks
from posekit.formats.coco_write import (
    AnnotationColumns,
    coco_annotations,
    coco_document,
    coco_images,
)
from posekit.store.codec import decode_json_column, optional_rows
from posekit.store.records import Dataset, Project
from posekit.store.tables import InstanceRow, ItemRow
from posekit.store.workspace import Workspace

__all__ = ["CHUNK_ROWS", "export_coco_rows"]

#: Annotations built and serialised at a time.
CHUNK_ROWS = 8192

_F4 = np.dtype("<f4")


def _threshold(min_score: float | None) -> float | None:
    if min_score is not None:
        return min_score
    from posekit.pipeline.options import AutolabelOptions

    return AutolabelOptions().min_instance_score


def _stack(blobs: list[bytes], dtype: np.dtype, width: int) -> np.ndarray | None:
    joined = b"".join(blobs)
    if len(joined) != len(blobs) * width * dtype.itemsize:
        return None
    return np.frombuffer(joined, dtype=dtype).astype(dtype.newbyteorder("="))


def _tuples(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """The rows of a query as plain tuples, fetched by the driver's cursor (no
    SQLAlchemy row objects for 100k rows); the query's values (ids, status names)
    are rendered as literals."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def _by_item(
    rows: list[tuple[Any, ...]],
) -> tuple[list[tuple[Any, ...]], dict[int, tuple[int, int]]]:
    """``rows`` whose first two values are (item id, instance id), ordered by them,
    and the ``(start, stop)`` of each item's run of consecutive rows in that order."""
    if not rows:
        return rows, {}
    items = np.fromiter(map(itemgetter(0), rows), dtype=np.int64, count=len(rows))
    ids = np.fromiter(map(itemgetter(1), rows), dtype=np.int64, count=len(rows))
    order = np.lexsort((ids, items))
    if not np.array_equal(order, np.arange(len(rows))):
        rows = list(map(rows.__getitem__, order.tolist()))
        items = items[order]
    starts = np.flatnonzero(np.concatenate(([True], items[1:] != items[:-1])))
    stops = np.append(starts[1:], len(rows))
    return rows, dict(zip(items[starts].tolist(), zip(starts.tolist(), stops.tolist())))


def export_coco_rows(
    ws: Workspace,
    project: Project,
    datasets: Sequence[Dataset],
    meta: Any,
    kept_statuses: Sequence[str],
    images: str,
    min_score: float | None,
    destination: Path,
    chunk_rows: int | None = None,
) -> tuple[Path, int, int, int] | None:
    """Write the COCO file of ``datasets`` (see :func:`posekit.store.exports.export`).

    Args:
        meta: :func:`posekit.store.exports.dataset_meta` of ``datasets``.
        chunk_rows: Annotations per chunk (default :data:`CHUNK_ROWS`).

    Returns:
        ``(path, images, instances, images left out)``, or None (nothing written)
        where the general path must write it: video frames, or keypoint arrays of
        another length than the template's.
    """
    chunk_rows = chunk_rows or CHUNK_ROWS
    prefix = len(datasets) > 1
    ids = [ds.id for ds in datasets]
    item_rows: list[tuple[Dataset, Any]] = []
    with ws.engine.connect() as conn:
        for ds in datasets:
            rows = _tuples(
                conn,
                select(
                    ItemRow.id, ItemRow.file_name, ItemRow.width, ItemRow.height,
                    ItemRow.status, ItemRow.external_id, ItemRow.video_id,
                    cast(ItemRow.extra, Text),
                )
                .where(ItemRow.dataset_id == ds.id)
                .order_by(ItemRow.id),
            )  # fmt: skip
            item_rows.extend((ds, row) for row in rows)
        if any(row[6] is not None for _, row in item_rows):
            return None  # video frames: tracks and interpolation (add_videos)
        wanted = list(kept_statuses) + ([] if "rejected" in kept_statuses else ["rejected"])
        instance_rows = _tuples(
            conn,
            select(
                InstanceRow.item_id, InstanceRow.id, InstanceRow.external_id, InstanceRow.status,
                InstanceRow.score, InstanceRow.keypoints, InstanceRow.visibility,
                InstanceRow.keypoint_scores, InstanceRow.box, InstanceRow.source,
                InstanceRow.track_id, InstanceRow.iscrowd, InstanceRow.area,
                cast(InstanceRow.segmentation, Text), cast(InstanceRow.extra, Text),
            )
            .join(ItemRow, ItemRow.id == InstanceRow.item_id)
            .where(ItemRow.dataset_id.in_(ids), InstanceRow.status.in_(wanted)),
        )  # fmt: skip
    # Ordered by (item, id) here, not by the query: SQLite would sort every row
    # with its blobs in a temporary B-tree (a fifth of the export's time).
    instance_rows, runs = _by_item(instance_rows)
    k = meta.skeleton.num_keypoints
    kept_set = frozenset(kept_statuses)
    threshold = _threshold(min_score)
    status_of = list(map(itemgetter(3), instance_rows))
    keep = [
        status in kept_set
        and (score is None or (min_score is None and status != "predicted") or score >= threshold)  # type: ignore[operator]
        for status, score in zip(status_of, map(itemgetter(4), instance_rows))
    ]
    kept_rows: list[int] = []
    kept_owner: list[int] = []  # position in ``written`` of each kept row
    written: list[tuple[Dataset, Any]] = []
    for ds, item in item_rows:
        first, stop = runs.get(item[0], (0, 0))
        kept = [r for r in range(first, stop) if keep[r]]
        if (
            images == "labeled"
            and not kept
            and (item[4] != "reviewed" or "rejected" in status_of[first:stop])
        ):
            continue
        kept_rows.extend(kept)
        kept_owner.extend([len(written)] * len(kept))
        written.append((ds, item))
    from posekit.store.exports import _unique_ids

    image_ids = _unique_ids([item[5] for _, item in written])
    n = len(kept_rows)
    ann_ids = _unique_ids([instance_rows[r][2] for r in kept_rows])
    ann_images = [image_ids[o] for o in kept_owner]
    if not (
        set(map(len, map(itemgetter(5), instance_rows))) <= {8 * k}
        and set(map(len, map(itemgetter(6), instance_rows))) <= {k}
    ):
        return None  # keypoint arrays of another length (never in one project)

    def chunks() -> Iterator[list[dict[str, Any]]]:
        # Annotations built and written chunk by chunk: their lists and dicts never
        # all exist at once.
        for start in range(0, n, chunk_rows):
            stop = min(n, start + chunk_rows)
            columns = list(zip(*map(instance_rows.__getitem__, kept_rows[start:stop])))
            m = stop - start
            xy = _stack(list(columns[5]), _F4, 2 * k)
            vis = _stack(list(columns[6]), np.dtype(np.uint8), k)
            assert xy is not None and vis is not None  # lengths checked above
            extras = decode_json_column(columns[14])
            yield coco_annotations(
                AnnotationColumns(
                    ids=ann_ids[start:stop],
                    image_ids=ann_images[start:stop],
                    xy=xy.reshape(m, k, 2),
                    vis=vis.reshape(m, k),
                    boxes=optional_rows(columns[8], 4),
                    iscrowd=[bool(c) for c in columns[11]],
                    area=list(columns[12]),
                    score=list(columns[4]),
                    track_id=list(columns[10]),
                    segmentation=decode_json_column(columns[13]),
                    extra=[dict(e) if e else {} for e in extras],
                    status=list(columns[3]),
                    source=list(columns[9]),
                    keypoint_scores=optional_rows(columns[7], k),
                ),
                meta.category_id,
            )
        yield meta.extra_annotations

    image_extras = decode_json_column([item[7] for _, item in written])
    entries = coco_images(
        (
            image_id,
            f"{ds.name}/{item[1]}" if prefix else item[1],
            item[2],
            item[3],
            dict(extra) if extra else {},
        )
        for (ds, item), image_id, extra in zip(written, image_ids, image_extras)
    )
    try:
        path = write_coco_chunks(coco_document(meta, entries, []), chunks(), destination)
    except TypeError:
        return None  # integers beyond 64 bits: the general path writes them with json
    return path, len(written), n, len(item_rows) - len(written)
