"""The project workspace: a folder with the SQLite database and the media files.

Layout::

    <workspace>/posekit.db          SQLite (WAL journal, foreign keys on)
    <workspace>/media/<project id>/<dataset id>/<sha[:2]>/<sha256>.<ext>

Media files are named by content hash inside their dataset folder, so two
imports of ``a/1.jpg`` and ``b/1.jpg`` never overwrite each other. Every media
path is resolved and checked to lie inside ``media/`` before it is written or
read.

All objects crossing the API boundary are plain dataclasses
(:class:`Project`, :class:`Dataset`, :class:`Item`, :class:`InstanceRecord`)
or :class:`posekit.core.Instance`; ORM rows never leave this module.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from operator import attrgetter
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    LargeBinary,
    Text,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from posekit.core import Instance
from posekit.skeleton import Skeleton
from posekit.store.models import Base, DatasetRow, InstanceRow, ItemRow, ProjectRow, utcnow

__all__ = [
    "DEFAULT_WORKSPACE",
    "ITEM_STATUSES",
    "WORKSPACE_ENV",
    "AlreadyExistsError",
    "Dataset",
    "InstanceRecord",
    "Item",
    "NotFoundError",
    "Project",
    "StaleVersionError",
    "StoreError",
    "Workspace",
]

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = "posekit-data"
WORKSPACE_ENV = "POSEKIT_WORKSPACE"
DB_FILE = "posekit.db"
MEDIA_DIR = "media"
#: Item review states: ``new`` (nothing yet), ``predicted`` (model output waiting
#: for review), ``reviewed`` (a person or an imported ground-truth file labeled it).
ITEM_STATUSES = ("new", "predicted", "reviewed")
_BUSY_TIMEOUT_S = 30.0
#: Rows per multi-row INSERT statement in bulk inserts.
_ROWS_PER_STATEMENT = 200
_FROM_ROW: Any = object()  # sentinel: take a value from the row


class StoreError(RuntimeError):
    """Base class of store errors; the message names the element concerned."""


class NotFoundError(StoreError, LookupError):
    """A project, dataset, item or instance does not exist."""


class AlreadyExistsError(StoreError):
    """A project or dataset with that name exists already."""


class StaleVersionError(StoreError):
    """An instance was changed by someone else since the caller read it.

    Attributes:
        instance_id: The instance concerned.
        expected_version: The version the caller sent.
        current: The instance as it is now in the database.
    """

    def __init__(self, instance_id: int, expected_version: int, current: InstanceRecord) -> None:
        super().__init__(
            f"instance {instance_id}: stale version {expected_version}, the current version is "
            f"{current.version} (changed by someone else; reload and reapply your edit)"
        )
        self.instance_id = instance_id
        self.expected_version = expected_version
        self.current = current


@dataclass(frozen=True)
class Project:
    """A project and the keypoint template stored with it."""

    id: int
    name: str
    template: Skeleton
    created_at: datetime


@dataclass(frozen=True)
class Dataset:
    """A named set of items in a project (``extra``: file-level import metadata)."""

    id: int
    project_id: int
    name: str
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One image (or, later, one video frame) of a dataset.

    Attributes:
        file_name: Original relative name (POSIX), unique within the dataset.
        path: Absolute path of the stored media file, or None when the item was
            registered without media (``copy_media=False`` imports).
        media_path: ``path`` relative to the workspace ``media/`` folder.
        status: One of :data:`ITEM_STATUSES`.
        external_id: Image id in the file it was imported from (COCO), if any.
        extra: Unknown per-image fields of the imported file, kept for export.
    """

    id: int
    dataset_id: int
    file_name: str
    width: int
    height: int
    kind: str
    status: str
    media_path: str | None
    path: Path | None
    sha256: str | None
    video_id: int | None
    frame_index: int | None
    external_id: int | None
    created_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceRecord:
    """An instance with its storage metadata.

    ``instance.id`` is the database id; send ``version`` back to
    :meth:`Workspace.update_instance`.
    """

    instance: Instance
    item_id: int
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> int:
        return int(self.instance.id)  # type: ignore[arg-type]


# ---------------------------------------------------------------- encoding
def instance_columns(instance: Instance) -> dict[str, Any]:
    """Column values of an instance (arrays as raw little-endian bytes)."""
    return {
        "keypoints": instance.keypoints.astype("<f4", copy=False).tobytes(),
        "visibility": instance.visibility.astype(np.uint8, copy=False).tobytes(),
        "keypoint_scores": None
        if instance.keypoint_scores is None
        else instance.keypoint_scores.astype("<f4", copy=False).tobytes(),
        "box": None if instance.box is None else instance.box.astype("<f4", copy=False).tobytes(),
        "score": instance.score,
        "source": instance.source,
        "status": instance.status,
        "track_id": instance.track_id,
        "iscrowd": bool(instance.iscrowd),
        "area": None if instance.area is None else float(instance.area),
        "segmentation": instance.segmentation,
        "extra": instance.extra or None,
    }


_F4 = np.dtype("<f4")
_INSTANCE_FIELDS = (
    "keypoints",
    "visibility",
    "keypoint_scores",
    "box",
    "score",
    "source",
    "status",
    "track_id",
    "iscrowd",
    "area",
    "segmentation",
    "extra",
)


def decode_instance(row: Any, instance_id: int | None = None) -> Instance:
    """An :class:`Instance` from a row with the :func:`instance_columns` columns.

    Rows were validated by ``Instance.__post_init__`` when written, so this
    builds the dataclass without re-validating: decoding 100k instances would
    otherwise spend most of an export in checks that cannot fail.
    """
    inst = object.__new__(Instance)
    kps = np.frombuffer(row.keypoints, dtype=_F4).astype(np.float32).reshape(-1, 2)
    scores = row.keypoint_scores
    box = row.box
    inst.__dict__.update(
        keypoints=kps,
        visibility=np.frombuffer(row.visibility, dtype=np.uint8).copy(),
        keypoint_scores=None
        if scores is None
        else np.frombuffer(scores, dtype=_F4).astype(np.float32),
        box=None if box is None else np.frombuffer(box, dtype=_F4).astype(np.float32),
        score=row.score,
        source=row.source,
        status=row.status,
        track_id=row.track_id,
        iscrowd=bool(row.iscrowd),
        area=row.area,
        segmentation=row.segmentation,
        id=row.id if instance_id is None else instance_id,
        extra=dict(row.extra) if row.extra else {},
    )
    return inst


def _stack(blobs: Sequence[bytes], dtype: np.dtype, width: int) -> np.ndarray | None:
    """``(N, width)`` array from N equally long blobs, or None if lengths differ."""
    joined = b"".join(blobs)
    if len(joined) != len(blobs) * width * dtype.itemsize:
        return None
    return np.frombuffer(joined, dtype=dtype).astype(dtype.newbyteorder("="))  # copy


def decode_instances(rows: Sequence[Any]) -> list[Instance]:
    """:func:`decode_instance` for many rows, decoding the arrays in bulk.

    Each instance's arrays are views into one array per field (writable, not
    shared with the database), which makes exporting 100k instances ~5x faster
    than decoding row by row.
    """
    if not rows:
        return []
    names = ("id", *_INSTANCE_FIELDS)
    columns = dict(zip(names, zip(*map(attrgetter(*names), rows))))
    return decode_instance_columns(columns)


def decode_instance_columns(columns: Mapping[str, Sequence[Any]]) -> list[Instance]:
    """Instances from column lists: ``id`` and the :func:`instance_columns` columns.

    JSON columns (``segmentation``, ``extra``) must hold decoded values; arrays
    are raw little-endian blobs. Builds the dataclasses without re-validating
    (see :func:`decode_instance`).
    """
    ids = columns["id"]
    n = len(ids)
    if n == 0:
        return []
    vis_col, kps_col = columns["visibility"], columns["keypoints"]
    k = len(vis_col[0])
    vis = _stack(vis_col, np.dtype(np.uint8), k)
    kps = _stack(kps_col, _F4, 2 * k)
    box_col, scores_col = columns["box"], columns["keypoint_scores"]
    if vis is None or kps is None:  # mixed keypoint counts (never in one project)
        vis_rows = [np.frombuffer(v, dtype=np.uint8).copy() for v in vis_col]
        kps_rows = [np.frombuffer(b, dtype=_F4).astype(np.float32).reshape(-1, 2) for b in kps_col]
    else:
        vis_rows = list(vis.reshape(n, k))
        kps_rows = list(kps.reshape(n, k, 2))
    box_rows = _optional_rows(box_col, 4)
    score_rows = _optional_rows(scores_col, k)
    new = object.__new__
    out = []
    rows = zip(
        ids, kps_rows, vis_rows, score_rows, box_rows, columns["score"], columns["source"],
        columns["status"], columns["track_id"], columns["iscrowd"], columns["area"],
        columns["segmentation"], columns["extra"],
    )  # fmt: skip
    for iid, kp, v, kp_scores, box, score, source, status, track, crowd, area, seg, xtra in rows:
        inst = new(Instance)
        inst.__dict__ = {
            "keypoints": kp,
            "visibility": v,
            "keypoint_scores": kp_scores,
            "box": box,
            "score": score,
            "source": source,
            "status": status,
            "track_id": track,
            "iscrowd": bool(crowd),
            "area": area,
            "segmentation": seg,
            "id": iid,
            "extra": dict(xtra) if xtra else {},
        }
        out.append(inst)
    return out


def _optional_rows(blobs: Sequence[bytes | None], width: int) -> list[np.ndarray | None]:
    """float32 arrays of a nullable blob column (None where NULL), decoded in bulk."""
    out: list[np.ndarray | None] = [None] * len(blobs)
    present = [i for i, b in enumerate(blobs) if b is not None]
    if not present:
        return out
    stacked = _stack([blobs[i] for i in present], _F4, width)
    if stacked is None:  # unequal lengths: decode one by one
        for i in present:
            out[i] = np.frombuffer(blobs[i], dtype=_F4).astype(np.float32)  # type: ignore[arg-type]
        return out
    for i, row in zip(present, stacked.reshape(len(present), width)):
        out[i] = row
    return out


def _json_column(values: Sequence[str | None]) -> list[Any]:
    """Decode a column of JSON texts (None for NULL) with one parser call.

    The texts were written by this store, so each is one complete JSON value and
    ``[t1,t2,...]`` is a valid document: one parser call instead of 100k.
    """
    texts = [v for v in values if v is not None]
    if not texts:
        return list(values)
    document = "[" + ",".join(texts) + "]"
    try:
        import orjson

        parsed = orjson.loads(document)
    except ValueError:  # orjson refuses integers beyond 64 bits; json reads them
        parsed = json.loads(document)
    decoded = iter(parsed)
    return [None if v is None else next(decoded) for v in values]


def _json_texts(values: Sequence[Any]) -> list[str | None]:
    """Compact JSON texts of many values (None stays None, i.e. SQL NULL).

    orjson encodes a typical COCO polygon in about a microsecond, several times
    faster than the json module; integers beyond 64 bits, which orjson refuses,
    fall back to the json module.
    """
    import orjson

    def encode(value: Any) -> str:
        try:
            return orjson.dumps(value).decode("utf-8")
        except TypeError:
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    return [None if v is None else encode(v) for v in values]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        # NORMAL is safe against corruption in WAL mode; only the last commit
        # may be lost on power failure, which is acceptable for an annotation tool.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MiB page cache: index updates of 100k-row imports stay in memory.
        cursor.execute("PRAGMA cache_size=-65536")
    finally:
        cursor.close()


def _bind_processors(conn: Connection, table: Any, keys: Sequence[str]) -> dict[str, Any]:
    """``key -> bind processor`` of the columns that have one for the connection's dialect.

    The processors come from the dialect's implementation of each type (e.g.
    SQLite's ``DATETIME`` string formatting, ``JSON`` serialisation, or nothing
    where the driver adapts the value natively), exactly what a Core ``insert``
    would apply.
    """
    dialect = conn.dialect
    processors = {}
    for key in keys:
        column_type = table.c[key].type
        if isinstance(column_type, LargeBinary):
            continue  # bytes go to every DBAPI as they are; wrapping them is pure cost
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[key] = processor
    return processors


def bulk_insert_columns(
    conn: Connection,
    table: Any,
    columns: Mapping[str, Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> int:
    """Insert rows given column by column, with one ``executemany``, for any database.

    The statement is compiled once for the connection's dialect (its own
    paramstyle, so the same code runs on SQLite and PostgreSQL) and sent
    straight to the driver inside the caller's transaction: no per-row
    SQLAlchemy parameter bookkeeping. Each column's bind processor is applied
    to its non-NULL values in one pass; ``constants`` (such as the import
    timestamp) are processed once and repeated.

    Args:
        conn: Connection inside a transaction.
        table: Table or ORM class.
        columns: ``column name -> values`` (all the same length; None is NULL).
        constants: ``column name -> value`` shared by every row.

    Returns:
        The number of rows inserted.
    """
    constants = dict(constants or {})
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"bulk insert into {table}: columns of different lengths {lengths}")
    count = lengths.pop() if lengths else 0
    if count == 0:
        return 0
    table = getattr(table, "__table__", table)
    keys = [*columns, *constants]
    processors = _bind_processors(conn, table, keys)
    prepared: dict[str, Sequence[Any]] = {}
    # JSON that the dialect takes as text and serialises with the default
    # ``json.dumps`` (what a Workspace engine uses) is encoded in bulk.
    text_json = (
        getattr(conn.dialect, "_json_serializer", None) is None
        and not conn.dialect.supports_native_json_serialization
    )
    for key, values in columns.items():
        processor = processors.get(key)
        if processor is None:
            pass
        elif text_json and isinstance(table.c[key].type, JSON):
            values = _json_texts(values)
        else:
            values = [None if v is None else processor(v) for v in values]
        prepared[key] = values
    for key, value in constants.items():
        processor = processors.get(key)
        if processor is not None and value is not None:
            value = processor(value)
        prepared[key] = [value] * count
    compiled = insert(table).compile(dialect=conn.dialect, column_keys=keys)
    if not compiled.positional:
        names = {name: bind.key for name, bind in compiled.binds.items()}
        params = [
            dict(zip(names, values)) for values in zip(*(prepared[k] for k in names.values()))
        ]
        conn.exec_driver_sql(str(compiled), params)
        return count
    order = [compiled.binds[name].key for name in compiled.positiontup or ()]
    rows: list[Any] = list(zip(*(prepared[key] for key in order)))
    # Positional drivers (SQLite): several rows per statement (multi-row VALUES,
    # standard SQL) cut the per-statement cost of executemany by about a third.
    limit = getattr(conn.dialect, "insertmanyvalues_max_parameters", 32700)
    per_statement = max(1, min(_ROWS_PER_STATEMENT, limit // max(1, len(order))))
    full = len(rows) - len(rows) % per_statement
    if full and per_statement > 1:
        sql = str(compiled)
        head, _, placeholders = sql.rpartition("VALUES ")
        multi = head + "VALUES " + ", ".join([placeholders] * per_statement)
        batches = [
            tuple(chain.from_iterable(rows[start : start + per_statement]))
            for start in range(0, full, per_statement)
        ]
        conn.exec_driver_sql(multi, batches)
        rows = rows[full:]
    if rows:
        conn.exec_driver_sql(str(compiled), rows)
    return count


def bulk_insert(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (dicts with the same keys) with one ``executemany``.

    Equivalent to ``conn.execute(insert(table), rows)`` but several times faster
    for 100k rows; see :func:`bulk_insert_columns`. A value shared by every row
    (such as the import timestamp) is bind-processed once.
    """
    if not rows:
        return
    columns: dict[str, list[Any]] = {}
    constants: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        first = values[0]
        if all(v is first for v in values):
            constants[key] = first
        else:
            columns[key] = values
    if not columns:  # every value shared: still one row per input row
        key = next(iter(constants))
        columns[key] = [constants.pop(key)] * len(rows)
    bulk_insert_columns(conn, table, columns, constants)


def instance_column_lists(instances: Sequence[Instance]) -> dict[str, list[Any]]:
    """:func:`instance_columns` of many instances, column by column.

    Arrays of all instances are encoded with one ``tobytes`` per field and cut
    into per-row blobs, which is ~10x faster than encoding row by row for 100k
    instances. The instances must have the same number of keypoints.
    """
    n = len(instances)
    if n == 0:
        return {key: [] for key in _INSTANCE_FIELDS}
    k = len(instances[0].visibility)

    def blobs(arrays: list[Any], dtype: Any, width: int) -> list[bytes]:
        # One concatenate + tobytes for all rows, cut into equal slices; rows of
        # another size (never in one project) are encoded one by one.
        try:
            joined = np.concatenate(arrays).reshape(-1).astype(dtype, copy=False)
        except ValueError:  # arrays of different dimensions
            joined = np.zeros(0, dtype=dtype)
        if joined.size != len(arrays) * width:
            return [np.asarray(a).astype(dtype, copy=False).tobytes() for a in arrays]
        raw = joined.tobytes()
        size = width * np.dtype(dtype).itemsize
        return [raw[i : i + size] for i in range(0, len(raw), size)]

    def optional_blobs(arrays: list[Any], width: int) -> list[bytes | None]:
        present = [i for i, a in enumerate(arrays) if a is not None]
        out: list[bytes | None] = [None] * n
        if present:
            encoded = blobs([arrays[i] for i in present], "<f4", width)
            for i, blob in zip(present, encoded):
                out[i] = blob
        return out

    getter = attrgetter(
        "keypoints", "visibility", "keypoint_scores", "box", "score", "source", "status",
        "track_id", "iscrowd", "area", "segmentation", "extra",
    )  # fmt: skip
    (kps, vis, scores, boxes, score, source, status, track, crowd, area, seg, extra) = (
        list(column) for column in zip(*map(getter, instances))
    )
    return {
        "keypoints": blobs(kps, "<f4", 2 * k),
        "visibility": blobs(vis, np.uint8, k),
        "keypoint_scores": optional_blobs(scores, k),
        "box": optional_blobs(boxes, 4),
        "score": score,
        "source": source,
        "status": status,
        "track_id": track,
        "iscrowd": [bool(c) for c in crowd],
        "area": [None if a is None else float(a) for a in area],
        "segmentation": seg,
        "extra": [e or None for e in extra],
    }


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's contents."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _rmdir_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
    except OSError:  # not empty, or gone
        return not folder.exists()
    return True


class MediaStager:
    """Copies media files into the workspace so that a failed import leaves no trace.

    Files are first copied to temporary names (hashing while copying), moved
    to their final content-addressed names with :meth:`publish` just before the
    database commit, and removed again by :meth:`rollback` if anything fails.
    """

    def __init__(self, workspace: Workspace, project_id: int, dataset_id: int) -> None:
        self._ws = workspace
        self._dir = workspace.media_root.resolve() / str(project_id) / str(dataset_id)
        self._pending: list[tuple[Path, Path]] = []
        self._created: list[Path] = []

    def stage(self, source: Path) -> tuple[str, str]:
        """Copy ``source`` to a temporary file; return ``(sha256, media_path)``."""
        self._dir.mkdir(parents=True, exist_ok=True)
        temp = self._ws._checked_media_path(self._dir / f".incoming-{uuid.uuid4().hex}")
        digest = hashlib.sha256()
        try:
            with open(source, "rb") as src, open(temp, "xb") as dst:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    dst.write(chunk)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        sha = digest.hexdigest()
        suffix = source.suffix.lower() if source.suffix.lower().isascii() else ""
        final = self._ws._checked_media_path(self._dir / sha[:2] / f"{sha}{suffix}")
        self._pending.append((temp, final))
        return sha, final.relative_to(self._ws.media_root).as_posix()

    def discard_last(self) -> None:
        """Drop the most recently staged file (a duplicate that will not be used)."""
        temp, _ = self._pending.pop()
        temp.unlink(missing_ok=True)

    def publish(self) -> None:
        """Move staged files to their final names (call inside the DB transaction)."""
        for temp, final in self._pending:
            final.parent.mkdir(parents=True, exist_ok=True)
            existed = final.exists()
            os.replace(temp, final)
            if not existed:
                self._created.append(final)
        self._pending.clear()

    def rollback(self) -> None:
        """Remove temporary files and files this import created."""
        for temp, _ in self._pending:
            temp.unlink(missing_ok=True)
        for final in self._created:
            final.unlink(missing_ok=True)
        self._pending.clear()
        self._created.clear()
        # Remove folders left empty (never above the media root).
        media_root = self._ws.media_root.resolve()
        for folder in sorted(
            (p for p in self._dir.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            _rmdir_if_empty(folder)
        folder = self._dir
        while folder != media_root and folder.is_relative_to(media_root):
            if not _rmdir_if_empty(folder):
                break
            folder = folder.parent


class Workspace:
    """A posekit workspace: the project database plus the media folder.

    Args:
        path: Workspace folder; default ``$POSEKIT_WORKSPACE`` or ``./posekit-data``.
            Created if missing.
        database_url: SQLAlchemy URL of another database (e.g.
            ``postgresql+psycopg://...``); default SQLite ``<path>/posekit.db``.
        echo: Log SQL statements.

    Example:
        >>> from posekit.skeleton import get_preset
        >>> ws = Workspace(tmp_path)  # doctest: +SKIP
        >>> project = ws.create_project("people", get_preset("coco17"))  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        database_url: str | None = None,
        echo: bool = False,
    ) -> None:
        if path is None:
            path = os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE
        self.root = Path(path).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root}: workspace path exists and is not a folder")
        self.media_root = self.root / MEDIA_DIR
        self.media_root.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url or f"sqlite:///{self.root / DB_FILE}"
        self._is_sqlite = self.database_url.startswith("sqlite")
        connect_args: dict[str, Any] = {}
        if self._is_sqlite:
            # The store serializes its own transactions; the connection may be
            # used from the thread that got it from the pool, not only its creator.
            connect_args = {"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False}
        self.engine: Engine = create_engine(self.database_url, echo=echo, connect_args=connect_args)
        if self._is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)
        self._templates: dict[int, Skeleton] = {}
        log.debug("opened workspace %s (%s)", self.root, self.engine.url.render_as_string())

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, **options: Any) -> Workspace:
        """Same as ``Workspace(path, **options)``."""
        return cls(path, **options)

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    @property
    def db_path(self) -> Path | None:
        """The SQLite file, or None for another database."""
        return self.root / DB_FILE if self._is_sqlite else None

    # ---------------------------------------------------------- internals
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception.

        On SQLite the write lock is taken up front (``BEGIN IMMEDIATE``), so a
        check-then-write inside the transaction cannot be overtaken by another
        writer, and a busy database is waited for (busy timeout) rather than
        failing half-way.
        """
        with self.engine.begin() as conn:
            if self._is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def _checked_media_path(self, path: Path) -> Path:
        resolved = path.resolve()
        if not resolved.is_relative_to(self.media_root.resolve()):
            raise StoreError(f"{path}: refusing a media path outside {self.media_root}")
        return resolved

    def media_file(self, media_path: str) -> Path:
        """Absolute path of a stored ``media_path``, checked to be inside ``media/``.

        The check is lexical (relative, no ``..``), which is cheap enough for
        listing 100k items; writes additionally resolve symlinks.
        """
        relative = PurePosixPath(media_path)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise StoreError(f"{media_path!r}: refusing a media path outside {self.media_root}")
        return self.media_root.joinpath(*relative.parts)

    def _item(self, row: Any, extra: Any = _FROM_ROW) -> Item:
        """An :class:`Item` of a row; ``extra``: the decoded ``extra`` where the row
        holds its JSON text."""
        media_path = row.media_path
        if extra is _FROM_ROW:
            extra = row.extra
        # Filled directly: a frozen dataclass's __init__ goes through
        # object.__setattr__ per field, a third of listing 100k items.
        item = object.__new__(Item)
        item.__dict__.update(
            id=row.id,
            dataset_id=row.dataset_id,
            file_name=row.file_name,
            width=row.width,
            height=row.height,
            kind=row.kind,
            status=row.status,
            media_path=media_path,
            path=None if media_path is None else self.media_file(media_path),
            sha256=row.sha256,
            video_id=row.video_id,
            frame_index=row.frame_index,
            external_id=row.external_id,
            created_at=row.created_at,
            extra=dict(extra) if extra else {},
        )
        return item

    def _project(self, row: Any) -> Project:
        template = self._templates.get(row.id)
        if template is None:
            template = Skeleton.from_dict(row.template, source=f"project {row.name!r} template")
            self._templates[row.id] = template
        return Project(id=row.id, name=row.name, template=template, created_at=row.created_at)

    def _resolve_project(self, project: Project | str) -> Project:
        return project if isinstance(project, Project) else self.get_project(project)

    def _resolve_dataset(self, project: Project | str, dataset: Dataset | str) -> Dataset:
        if isinstance(dataset, Dataset):
            return dataset
        return self.get_dataset(project, dataset)

    @staticmethod
    def _item_id(item: Item | int) -> int:
        return item.id if isinstance(item, Item) else int(item)

    def _template_of_item(self, conn: Connection, item_id: int) -> Skeleton:
        row = conn.execute(
            select(ProjectRow)
            .join(DatasetRow, DatasetRow.project_id == ProjectRow.id)
            .join(ItemRow, ItemRow.dataset_id == DatasetRow.id)
            .where(ItemRow.id == item_id)
        ).first()
        if row is None:
            raise NotFoundError(f"item {item_id} does not exist")
        return self._project(row).template

    @staticmethod
    def _check_instance(instance: Instance, template: Skeleton, where: str) -> None:
        if not isinstance(instance, Instance):
            raise TypeError(f"{where}: expected an Instance, got {type(instance).__name__}")
        if instance.num_keypoints != template.num_keypoints:
            raise StoreError(
                f"{where}: instance has {instance.num_keypoints} keypoints but template "
                f"{template.name!r} has {template.num_keypoints}"
            )

    # ---------------------------------------------------------- projects
    def create_project(self, name: str, template: Skeleton) -> Project:
        """Create a project with a keypoint template (stored in full with the project).

        Raises:
            AlreadyExistsError: A project of that name exists.
        """
        name = _check_name(name, "project")
        if not isinstance(template, Skeleton):
            raise TypeError(f"template: expected a Skeleton, got {type(template).__name__}")
        try:
            with self.transaction() as conn:
                conn.execute(
                    insert(ProjectRow).values(
                        name=name, template=template.to_dict(), created_at=utcnow()
                    )
                )
        except IntegrityError:
            raise AlreadyExistsError(f"project {name!r} already exists") from None
        return self.get_project(name)

    def get_project(self, name: str) -> Project:
        """The project called ``name``; the error lists the existing names."""
        with self._read() as conn:
            row = conn.execute(select(ProjectRow).where(ProjectRow.name == name)).first()
        if row is None:
            names = [p.name for p in self.list_projects()]
            raise NotFoundError(
                f"no project named {name!r}; existing projects: {', '.join(names) or 'none'}"
            )
        return self._project(row)

    def list_projects(self) -> list[Project]:
        """All projects, by name."""
        with self._read() as conn:
            rows = conn.execute(select(ProjectRow).order_by(ProjectRow.name)).all()
        return [self._project(r) for r in rows]

    def delete_project(self, project: Project | str) -> None:
        """Delete a project with its datasets, items, instances and media files."""
        project = self._resolve_project(project)
        with self.transaction() as conn:
            # Delete bottom-up explicitly rather than relying on ON DELETE CASCADE,
            # so that it also works on a database created without foreign keys.
            dataset_ids = select(DatasetRow.id).where(DatasetRow.project_id == project.id)
            item_ids = select(ItemRow.id).where(ItemRow.dataset_id.in_(dataset_ids))
            conn.execute(delete(InstanceRow).where(InstanceRow.item_id.in_(item_ids)))
            conn.execute(delete(ItemRow).where(ItemRow.dataset_id.in_(dataset_ids)))
            conn.execute(delete(DatasetRow).where(DatasetRow.project_id == project.id))
            conn.execute(delete(ProjectRow).where(ProjectRow.id == project.id))
        shutil.rmtree(self._checked_media_path(self.media_root / str(project.id)), True)
        self._templates.pop(project.id, None)

    # ---------------------------------------------------------- datasets
    def create_dataset(self, project: Project | str, name: str) -> Dataset:
        """Create a dataset in ``project``.

        Raises:
            AlreadyExistsError: The project has a dataset of that name.
        """
        project = self._resolve_project(project)
        name = _check_name(name, "dataset")
        try:
            with self.transaction() as conn:
                conn.execute(
                    insert(DatasetRow).values(project_id=project.id, name=name, created_at=utcnow())
                )
        except IntegrityError:
            raise AlreadyExistsError(
                f"project {project.name!r} already has a dataset {name!r}"
            ) from None
        return self.get_dataset(project, name)

    def get_dataset(self, project: Project | str, name: str) -> Dataset:
        """The dataset ``name`` of ``project``; the error lists the existing names."""
        project = self._resolve_project(project)
        with self._read() as conn:
            row = conn.execute(
                select(DatasetRow).where(
                    DatasetRow.project_id == project.id, DatasetRow.name == name
                )
            ).first()
        if row is None:
            names = [d.name for d in self.list_datasets(project)]
            raise NotFoundError(
                f"project {project.name!r} has no dataset {name!r}; "
                f"existing datasets: {', '.join(names) or 'none'}"
            )
        return _dataset(row)

    def get_or_create_dataset(self, project: Project | str, name: str) -> Dataset:
        """The dataset ``name`` of ``project``, created if missing."""
        project = self._resolve_project(project)
        try:
            return self.get_dataset(project, name)
        except NotFoundError:
            try:
                return self.create_dataset(project, name)
            except AlreadyExistsError:  # created concurrently by another writer
                return self.get_dataset(project, name)

    def list_datasets(self, project: Project | str) -> list[Dataset]:
        """Datasets of ``project``, by name."""
        project = self._resolve_project(project)
        with self._read() as conn:
            rows = conn.execute(
                select(DatasetRow)
                .where(DatasetRow.project_id == project.id)
                .order_by(DatasetRow.name)
            ).all()
        return [_dataset(r) for r in rows]

    # ---------------------------------------------------------- items
    def _items_query(
        self,
        project: Project | str,
        dataset: Dataset | str | None,
        status: str | Sequence[str] | None,
        has_instances: bool | None = None,
    ) -> Any:
        project = self._resolve_project(project)
        # ``extra`` as its JSON text: list_items decodes the column in one call.
        columns = [
            cast(column, Text).label(column.key) if column.key == "extra" else column
            for column in ItemRow.__table__.columns
        ]
        query = select(*columns).join(DatasetRow, DatasetRow.id == ItemRow.dataset_id)
        query = query.where(DatasetRow.project_id == project.id)
        if dataset is not None:
            query = query.where(ItemRow.dataset_id == self._resolve_dataset(project, dataset).id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            for s in statuses:
                if s not in ITEM_STATUSES:
                    raise StoreError(f"item status {s!r} is not one of {', '.join(ITEM_STATUSES)}")
            query = query.where(ItemRow.status.in_(statuses))
        if has_instances is not None:
            exists = select(InstanceRow.id).where(InstanceRow.item_id == ItemRow.id).exists()
            query = query.where(exists if has_instances else ~exists)
        return query

    def list_items(
        self,
        project: Project | str,
        *,
        dataset: Dataset | str | None = None,
        status: str | Sequence[str] | None = None,
        has_instances: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Item]:
        """Items of a project, by id.

        Args:
            project: Project or name.
            dataset: Only this dataset (object or name).
            status: Only items with this status (or one of these).
            has_instances: True: only items with at least one instance; False:
                only items without any.
            offset: Skip this many items (paging).
            limit: At most this many items.
        """
        query = self._items_query(project, dataset, status, has_instances).order_by(ItemRow.id)
        query = query.offset(offset).limit(limit)
        with self._read() as conn:
            rows = conn.execute(query).all()
        extras = _json_column([r.extra for r in rows])
        return [self._item(r, extra) for r, extra in zip(rows, extras)]

    def count_items(
        self,
        project: Project | str,
        *,
        dataset: Dataset | str | None = None,
        status: str | Sequence[str] | None = None,
        has_instances: bool | None = None,
    ) -> int:
        """Number of items :meth:`list_items` would return without offset/limit."""
        query = self._items_query(project, dataset, status, has_instances).subquery()
        with self._read() as conn:
            return int(conn.execute(select(func.count()).select_from(query)).scalar_one())

    def get_item(self, item_id: int) -> Item:
        """The item with database id ``item_id``."""
        with self._read() as conn:
            row = conn.execute(select(ItemRow).where(ItemRow.id == item_id)).first()
        if row is None:
            raise NotFoundError(f"item {item_id} does not exist")
        return self._item(row)

    def set_item_status(self, item: Item | int, status: str) -> None:
        """Set an item's review status (one of :data:`ITEM_STATUSES`)."""
        if status not in ITEM_STATUSES:
            raise StoreError(f"item status {status!r} is not one of {', '.join(ITEM_STATUSES)}")
        item_id = self._item_id(item)
        with self.transaction() as conn:
            result = conn.execute(
                update(ItemRow).where(ItemRow.id == item_id).values(status=status)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"item {item_id} does not exist")

    # ---------------------------------------------------------- instances
    def get_instance_records(self, item: Item | int) -> list[InstanceRecord]:
        """Instances of an item with their versions, by id."""
        item_id = self._item_id(item)
        with self._read() as conn:
            rows = conn.execute(
                select(InstanceRow).where(InstanceRow.item_id == item_id).order_by(InstanceRow.id)
            ).all()
        return [_record(r) for r in rows]

    def get_instances(self, item: Item | int) -> list[Instance]:
        """Instances of an item (``Instance.id`` is the database id), by id."""
        return [r.instance for r in self.get_instance_records(item)]

    def get_instance(self, instance_id: int) -> InstanceRecord:
        """One instance with its version."""
        with self._read() as conn:
            return self._get_record(conn, instance_id)

    @staticmethod
    def _get_record(conn: Connection, instance_id: int) -> InstanceRecord:
        row = conn.execute(select(InstanceRow).where(InstanceRow.id == instance_id)).first()
        if row is None:
            raise NotFoundError(f"instance {instance_id} does not exist")
        return _record(row)

    def instances_by_item(self, item_ids: Sequence[int]) -> dict[int, list[Instance]]:
        """Instances of many items in few queries: ``item id -> instances`` (by id)."""
        out: dict[int, list[Instance]] = {int(i): [] for i in item_ids}
        ids = list(out)
        with self._read() as conn:
            # Chunked IN lists: SQLite limits bound parameters per statement.
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                rows = conn.execute(
                    select(InstanceRow)
                    .where(InstanceRow.item_id.in_(chunk))
                    .order_by(InstanceRow.item_id, InstanceRow.id)
                )
                for row in rows:
                    out[row.item_id].append(decode_instance(row))
        return out

    def instances_of_datasets(
        self, dataset_ids: Sequence[int], statuses: Sequence[str] | None = None
    ) -> dict[int, list[tuple[Instance, int | None]]]:
        """All instances of some datasets in one query, for exports.

        Returns:
            ``item id -> [(instance, external id), ...]`` (by instance id), for the
            items that have instances with one of ``statuses`` (default all).
        """
        json_fields = ("segmentation", "extra")
        # JSON columns are read as their text (CAST is portable; PostgreSQL
        # drivers would otherwise parse them one by one) and decoded in bulk.
        columns = [InstanceRow.item_id, InstanceRow.id, InstanceRow.external_id] + [
            cast(getattr(InstanceRow, name), Text) if name in json_fields
            else getattr(InstanceRow, name)
            for name in _INSTANCE_FIELDS
        ]  # fmt: skip
        query = (
            select(*columns)
            .join(ItemRow, ItemRow.id == InstanceRow.item_id)
            .where(ItemRow.dataset_id.in_(list(dataset_ids)))
            .order_by(InstanceRow.item_id, InstanceRow.id)
        )
        if statuses is not None:
            query = query.where(InstanceRow.status.in_(list(statuses)))
        with self._read() as conn:
            rows = conn.execute(query).all()
        if not rows:
            return {}
        names = ("item_id", "id", "external_id", *_INSTANCE_FIELDS)
        data: dict[str, Sequence[Any]] = dict(zip(names, zip(*rows)))
        for name in json_fields:
            data[name] = _json_column(data[name])
        instances = decode_instance_columns(data)
        out: dict[int, list[tuple[Instance, int | None]]] = {}
        for item_id, inst, external in zip(data["item_id"], instances, data["external_id"]):
            kept = out.get(item_id)
            if kept is None:
                out[item_id] = kept = []
            kept.append((inst, external))
        return out

    def add_instance(self, item: Item | int, instance: Instance) -> InstanceRecord:
        """Store a new instance on an item; returns it with its id and version 1.

        ``instance.id`` is ignored (the database assigns one).
        """
        item_id = self._item_id(item)
        now = utcnow()
        with self.transaction() as conn:
            template = self._template_of_item(conn, item_id)
            self._check_instance(instance, template, f"item {item_id}")
            result = conn.execute(
                insert(InstanceRow).values(
                    item_id=item_id,
                    version=1,
                    created_at=now,
                    updated_at=now,
                    **instance_columns(instance),
                )
            )
            new_id = int(result.inserted_primary_key[0])
            record = self._get_record(conn, new_id)
        return record

    def update_instance(self, instance_id: int, instance: Instance, expected_version: int) -> int:
        """Replace an instance's data if nobody changed it since ``expected_version``.

        Returns:
            The new version (``expected_version + 1``).

        Raises:
            StaleVersionError: The stored version differs; nothing was written and
                the error carries the current state.
            NotFoundError: The instance does not exist (any more).
        """
        with self.transaction() as conn:
            item_id = conn.execute(
                select(InstanceRow.item_id).where(InstanceRow.id == instance_id)
            ).scalar_one_or_none()
            if item_id is None:
                raise NotFoundError(f"instance {instance_id} does not exist")
            template = self._template_of_item(conn, item_id)
            self._check_instance(instance, template, f"instance {instance_id}")
            # The WHERE on version makes the check and the write one atomic
            # statement, also on databases where the lock above is not taken.
            result = conn.execute(
                update(InstanceRow)
                .where(InstanceRow.id == instance_id, InstanceRow.version == expected_version)
                .values(
                    version=InstanceRow.version + 1,
                    updated_at=utcnow(),
                    **instance_columns(instance),
                )
            )
            if result.rowcount != 1:
                current = self._get_record(conn, instance_id)
                raise StaleVersionError(instance_id, expected_version, current)
        return expected_version + 1

    def delete_instance(self, instance_id: int, expected_version: int | None = None) -> None:
        """Delete an instance; with ``expected_version`` only if it is unchanged.

        Raises:
            StaleVersionError: ``expected_version`` is given and stale.
            NotFoundError: The instance does not exist.
        """
        with self.transaction() as conn:
            query = delete(InstanceRow).where(InstanceRow.id == instance_id)
            if expected_version is not None:
                query = query.where(InstanceRow.version == expected_version)
            if conn.execute(query).rowcount != 1:
                current = self._get_record(conn, instance_id)  # raises NotFoundError
                raise StaleVersionError(instance_id, int(expected_version or 0), current)

    def replace_predictions(self, item: Item | int, instances: Sequence[Instance]) -> list[int]:
        """Replace an item's model predictions with ``instances``.

        Deletes the item's instances that have ``status='predicted'`` and a
        ``model:*`` source, and inserts ``instances``. Manual instances and
        accepted/rejected ones are never touched. Returns the new ids.
        """
        item_id = self._item_id(item)
        written = self.write_predictions({item_id: instances}, overwrite=True)
        return written[item_id]

    def write_predictions(
        self,
        predictions: Mapping[int, Sequence[Instance]],
        *,
        overwrite: bool,
    ) -> dict[int, list[int]]:
        """Store model predictions of several items in one transaction.

        Args:
            predictions: ``item id -> instances``.
            overwrite: If False, items that have any instance at the time of
                writing are skipped (another writer may have labeled them). If
                True, the items' ``predicted`` model instances are replaced;
                manual, accepted and rejected instances are kept.

        Returns:
            ``item id -> new instance ids`` for the items written (skipped items
            are absent). Written items with status ``new`` become ``predicted``.
        """
        now = utcnow()
        written: dict[int, list[int]] = {}
        with self.transaction() as conn:
            for item_id, instances in predictions.items():
                template = self._template_of_item(conn, item_id)
                for i, inst in enumerate(instances):
                    self._check_instance(inst, template, f"item {item_id} prediction #{i}")
                if overwrite:
                    conn.execute(
                        delete(InstanceRow).where(
                            InstanceRow.item_id == item_id,
                            InstanceRow.status == "predicted",
                            InstanceRow.source.like("model:%"),
                        )
                    )
                else:
                    has_any = conn.execute(
                        select(InstanceRow.id).where(InstanceRow.item_id == item_id).limit(1)
                    ).first()
                    if has_any is not None:
                        continue
                ids: list[int] = []
                for inst in instances:
                    result = conn.execute(
                        insert(InstanceRow).values(
                            item_id=item_id,
                            version=1,
                            created_at=now,
                            updated_at=now,
                            **instance_columns(inst),
                        )
                    )
                    ids.append(int(result.inserted_primary_key[0]))
                conn.execute(
                    update(ItemRow)
                    .where(ItemRow.id == item_id, ItemRow.status == "new")
                    .values(status="predicted")
                )
                written[item_id] = ids
        return written

    # ---------------------------------------------------------- stats
    def row_counts(self) -> dict[str, int]:
        """Number of rows per table (projects, datasets, items, instances)."""
        with self._read() as conn:
            return {
                table.__tablename__: int(
                    conn.execute(select(func.count()).select_from(table)).scalar_one()
                )
                for table in (ProjectRow, DatasetRow, ItemRow, InstanceRow)
            }


def _dataset(row: Any) -> Dataset:
    return Dataset(row.id, row.project_id, row.name, row.created_at, dict(row.extra or {}))


def _record(row: Any) -> InstanceRecord:
    return InstanceRecord(
        instance=decode_instance(row),
        item_id=row.item_id,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise StoreError(f"{what} name must be a non-empty string, got {name!r}")
    name = name.strip()
    if len(name) > 200:
        raise StoreError(f"{what} name is longer than 200 characters: {name[:40]!r}...")
    return name
