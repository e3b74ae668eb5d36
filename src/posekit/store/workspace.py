"""The project workspace: a folder with the database and the media files.

Layout::

    <workspace>/posekit.db          SQLite (WAL journal, foreign keys on)
    <workspace>/media/<project id>/<dataset id>/<sha[:2]>/<sha256>.<ext>

Media files are named by content hash inside their dataset folder, so two
imports of ``a/1.jpg`` and ``b/1.jpg`` never overwrite each other. Every media
path is resolved and checked to lie inside ``media/`` before it is written or
read.

Opening a workspace brings its database to the newest schema revision
(:func:`posekit.store.schema.upgrade_database`: a 0.1.0 database is backed up
and upgraded in place). Projects, datasets and items are handled here, instances
and reviews in :class:`posekit.store.instances.InstanceOperations`.

All objects crossing the API boundary are plain dataclasses
(:mod:`posekit.store.records`) or :class:`posekit.core.Instance`; ORM rows never
leave the store.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from posekit.core import Instance
from posekit.skeleton import Skeleton
from posekit.statuses import ITEM_STATUSES, check_item_statuses
from posekit.store.codec import decode_json_column
from posekit.store.comments import CommentOperations
from posekit.store.database import (
    check_connection,
    codepoint_order,
    create_store_engine,
    parse_database_url,
    retry_public_methods,
    shown_url,
    write_transaction,
)
from posekit.store.errors import AlreadyExistsError, NotFoundError, StoreError
from posekit.store.history import HistoryOperations
from posekit.store.instances import InstanceOperations
from posekit.store.records import Dataset, Item, Project, dataset_from_row
from posekit.store.schema import upgrade_database
from posekit.store.storage import LocalStorage, MediaStorage
from posekit.store.tables import (
    CommentRow,
    DatasetRow,
    InstanceRow,
    InstanceVersionRow,
    ItemRow,
    JobRow,
    ProjectRow,
    TrackRow,
    VideoRow,
    utcnow,
)
from posekit.store.template_change import TemplateChangeOperations
from posekit.store.tracks import TrackOperations
from posekit.store.users import UserOperations
from posekit.store.workflow import WorkflowOperations

__all__ = [
    "DB_FILE",
    "DEFAULT_WORKSPACE",
    "ITEM_STATUSES",
    "MEDIA_DIR",
    "WORKSPACE_ENV",
    "Workspace",
]

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE = "posekit-data"
WORKSPACE_ENV = "POSEKIT_WORKSPACE"
DB_FILE = "posekit.db"
MEDIA_DIR = "media"
_FROM_ROW: Any = object()  # sentinel: take a value from the row


@retry_public_methods
class Workspace(
    UserOperations,
    WorkflowOperations,
    CommentOperations,
    HistoryOperations,
    TrackOperations,
    InstanceOperations,
    TemplateChangeOperations,
):
    """A posekit workspace: the project database plus the media folder.

    Args:
        path: Workspace folder; default ``$POSEKIT_WORKSPACE`` or ``./posekit-data``.
            Created if missing.
        database_url: SQLAlchemy URL of the database, e.g.
            ``postgresql+psycopg://user:password@host:5432/dbname`` (the ``postgres``
            extra; ``postgresql://`` means psycopg 3 too); default SQLite
            ``<path>/posekit.db``. Media files stay under ``path`` either way.
            Isolation and retries: :mod:`posekit.store.database`.
        echo: Log SQL statements.
        storage: Where media files are kept (:class:`~posekit.store.storage.MediaStorage`);
            default :class:`~posekit.store.storage.LocalStorage` on ``<path>/media``.

    Opening brings the database to the newest schema revision: a new database
    is created at it, an older one (a 0.1.0 workspace too) is backed up next to
    the file (:attr:`schema_backup`, also logged) and upgraded in place
    (:func:`posekit.store.schema.upgrade_database`).

    Raises:
        SchemaVersionError: The database was written by a newer posekit.
        StoreError: ``path`` is not a folder, or the upgrade failed.
        DatabaseUnavailableError: ``database_url`` is invalid, its driver is not
            installed, or the database cannot be reached.

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
        storage: MediaStorage | None = None,
    ) -> None:
        if path is None:
            path = os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE
        self.root = Path(path).expanduser().resolve()
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"{self.root}: workspace path exists and is not a folder")
        self.media_root = self.root / MEDIA_DIR
        self.media_root.mkdir(parents=True, exist_ok=True)
        #: Where media files are read and written (:mod:`posekit.store.storage`).
        self.storage: MediaStorage = (
            storage if storage is not None else LocalStorage(self.media_root)
        )
        url = parse_database_url(database_url or f"sqlite:///{self.root / DB_FILE}")
        self.database_url = url.render_as_string(hide_password=False)
        self._is_sqlite = url.get_backend_name() == "sqlite"
        self._db_file = (
            Path(url.database).resolve()
            if self._is_sqlite and url.database not in (None, "", ":memory:")
            else None
        )
        self.engine: Engine = create_store_engine(url, echo=echo)
        if not self._is_sqlite:
            check_connection(self.engine)
        #: The backup of the database written before a schema upgrade, if any.
        self.schema_backup = upgrade_database(self.database_url, self.db_path)
        self._templates: dict[int, tuple[int, Skeleton]] = {}
        #: Serializes this process's SQLite write transactions (see :meth:`transaction`).
        self._writer = threading.RLock() if self._is_sqlite else None
        from posekit.store.media_staging import sweep_stale_staging

        sweep_stale_staging(self)  # files of imports killed half-way (never in the database)
        log.debug("opened workspace %s (%s)", self.root, shown_url(self.engine.url))

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
        return self._db_file

    # ---------------------------------------------------------- internals
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any exception.

        On SQLite the write lock is taken up front (``BEGIN IMMEDIATE``), so a
        check-then-write inside the transaction cannot be overtaken by another
        writer, and a busy database is waited for (busy timeout) rather than
        failing half-way. On PostgreSQL writers queue on row locks instead
        (``READ COMMITTED``, :mod:`posekit.store.database`); one aborted by a
        deadlock is run again as a whole by the public method around it
        (:func:`posekit.store.database.retrying`).
        """
        if self._writer is None:
            with write_transaction(self.engine) as conn:
                yield conn
            return
        # SQLite has one writer. Threads of this process queue on a lock rather than
        # on SQLite's busy handler, which polls with sleeps of up to 100 ms: under
        # many concurrent saves the sleeps, not the writes, set the latency. Other
        # processes on the same file still wait through the busy timeout.
        with self._writer, write_transaction(self.engine) as conn:
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

    def media_file(self, media_path: str) -> Path | None:
        """The local file of a stored ``media_path``
        (:meth:`~posekit.store.storage.MediaStorage.local_path`: checked to lie inside
        the storage, lexically, cheap enough for listing 100k items; writes also resolve
        symlinks), or None when the storage keeps no local files."""
        return self.storage.local_path(media_path)

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
            stage=getattr(row, "stage", None) or "annotation",
            assignee_id=getattr(row, "assignee_id", None),
            reviewer_id=getattr(row, "reviewer_id", None),
            stage_changed_at=getattr(row, "stage_changed_at", None),
        )
        return item

    def _project(self, row: Any) -> Project:
        # Keyed by the template version: a change made by another process is seen.
        version = int(getattr(row, "template_version", None) or 1)
        cached = self._templates.get(row.id)
        if cached is None or cached[0] != version:
            template = Skeleton.from_dict(row.template, source=f"project {row.name!r} template")
            cached = self._templates[row.id] = (version, template)
        return Project(
            id=row.id,
            name=row.name,
            template=cached[1],
            created_at=row.created_at,
            template_version=version,
            settings=dict(getattr(row, "settings", None) or {}),
        )

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
        # Every save asks: the project's id and template version first, the whole row
        # (the template's JSON) only when this version is not decoded yet.
        parameters = {"item_id": item_id}
        row = conn.execute(_TEMPLATE_VERSION_OF_ITEM, parameters).first()
        if row is None:
            raise NotFoundError(f"item {item_id} does not exist")
        cached = self._templates.get(row.id)
        if cached is not None and cached[0] == int(row.template_version or 1):
            return cached[1]
        row = conn.execute(_PROJECT_OF_ITEM, parameters).first()
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
            rows = conn.execute(select(ProjectRow).order_by(codepoint_order(ProjectRow.name))).all()
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
            conn.execute(delete(CommentRow).where(CommentRow.item_id.in_(item_ids)))
            conn.execute(delete(InstanceVersionRow).where(InstanceVersionRow.item_id.in_(item_ids)))
            conn.execute(delete(ItemRow).where(ItemRow.dataset_id.in_(dataset_ids)))
            conn.execute(delete(TrackRow).where(TrackRow.project_id == project.id))
            conn.execute(delete(JobRow).where(JobRow.project_id == project.id))
            conn.execute(delete(VideoRow).where(VideoRow.dataset_id.in_(dataset_ids)))
            conn.execute(delete(DatasetRow).where(DatasetRow.project_id == project.id))
            conn.execute(delete(ProjectRow).where(ProjectRow.id == project.id))
        self.storage.delete_prefix(str(project.id))
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
        return dataset_from_row(row)

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
                .order_by(codepoint_order(DatasetRow.name))
            ).all()
        return [dataset_from_row(r) for r in rows]

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
            query = query.where(ItemRow.status.in_(_item_statuses(status)))
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
        extras = decode_json_column([r.extra for r in rows])
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
        """Set an item's review status (one of :data:`ITEM_STATUSES`) by hand.

        Every instance write settles the status by itself (:mod:`posekit.statuses`);
        this overrides it until the next write.
        """
        (status,) = _item_statuses(status)
        item_id = self._item_id(item)
        with self.transaction() as conn:
            result = conn.execute(
                update(ItemRow).where(ItemRow.id == item_id).values(status=status)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"item {item_id} does not exist")

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


def _of_item(*columns: Any) -> Any:
    return (
        select(*columns)
        .join(DatasetRow, DatasetRow.project_id == ProjectRow.id)
        .join(ItemRow, ItemRow.dataset_id == DatasetRow.id)
        .where(ItemRow.id == bindparam("item_id"))
    )


# Built once (parameter ``item_id``): see Workspace._template_of_item.
_TEMPLATE_VERSION_OF_ITEM = _of_item(ProjectRow.id, ProjectRow.template_version)
_PROJECT_OF_ITEM = _of_item(ProjectRow)


def _item_statuses(status: str | Sequence[str]) -> list[str]:
    try:
        return check_item_statuses(status)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise StoreError(f"{what} name must be a non-empty string, got {name!r}")
    name = name.strip()
    if len(name) > 200:
        raise StoreError(f"{what} name is longer than 200 characters: {name[:40]!r}...")
    return name
