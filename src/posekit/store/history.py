"""Instance history: the previous values replaced by writes, listing and restore (issue 12).

Every write of an instance (an edit, a review decision, a restore, a delete, a track
edit, a template change, predictions replaced by a new auto-label run) first copies
the row it replaces into ``instance_versions`` (:func:`save_replaced_versions`, in
the write's own transaction) with who wrote it and when (the row's ``author_id`` and
``updated_at``) and who replaced it, how and when. The current version is the
``instances`` row itself, whose ``author_id`` the write sets. Creating an instance
(a new one, an import, an auto-label prediction) replaces nothing and records nothing.

:meth:`HistoryOperations.instance_history` lists an instance's versions, oldest
first, the current one last; the history of a deleted instance stays listable (until
its item is deleted). :meth:`HistoryOperations.restore_instance_version` writes an old
version's values as a NEW version (the history is never rewritten), refusing a stale
``expected_version`` like every other versioned write. Restoring a deleted instance
recreates it with its old id (ids are never reused, so the id is free).

Example:
    >>> versions = ws.instance_history(7)  # doctest: +SKIP
    >>> [(v.version, v.author, v.replaced_by_action) for v in versions]  # doctest: +SKIP
    [(1, 'ann', 'update'), (2, 'rev', None)]
    >>> ws.restore_instance_version(7, 1, author_id=3, expected_version=2)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    String,
    and_,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.orm import aliased

from posekit.core import Instance
from posekit.store.codec import decode_instance
from posekit.store.errors import NotFoundError, StaleVersionError, StoreError
from posekit.store.records import InstanceRecord, record_from_row
from posekit.store.tables import InstanceRow, InstanceVersionRow, ItemRow, UserRow, utcnow

if TYPE_CHECKING:
    from posekit.skeleton import Skeleton

__all__ = [
    "REPLACED_BY_ACTIONS",
    "HistoryOperations",
    "InstanceVersion",
    "StaleRestoreError",
    "save_instance_version",
    "save_replaced_versions",
    "update_versioned",
]

#: How a version can end (``instance_versions.replaced_by_action``).
REPLACED_BY_ACTIONS = ("update", "review", "restore", "delete")

#: Instance columns a version keeps: every column the two tables share (a column added
#: to both later is kept without a code change).
_VERSION_COLUMNS: tuple[str, ...] = tuple(
    name
    for name in InstanceRow.__table__.columns.keys()  # noqa: SIM118 (names, in order)
    if name in InstanceVersionRow.__table__.columns
    and name not in ("id", "author_id", "item_id", "version")
)
#: Instance fields a version may lack (older schema): what the decoder assumes then.
_DEFAULTS = {"iscrowd": False, "area": None, "segmentation": None, "keyframe": False}


class StaleRestoreError(StoreError):
    """A restore of a deleted instance whose ``expected_version`` is not the version
    that was deleted (the caller's view is out of date). HTTP 409."""


@dataclass(frozen=True)
class InstanceVersion:
    """One version of an instance.

    Attributes:
        version: The version number (1 = as created).
        instance: Its values (``instance.id`` is the instance's id).
        item_id: The item it is on.
        author_id: Who wrote it (``users.id``); None: before teams, or a script
            without a user.
        author: That user's username (None when unknown).
        written_at: When it was written (naive UTC).
        replaced_by_action: How it ended: ``update``, ``review``, ``restore`` or
            ``delete``; None for the current version.
        replaced_by: Who ended it (``users.id``), or None.
        replaced_at: When it ended; None for the current version.
        current: Whether it is the instance as stored now.
        keyframe: The track keyframe flag it had.
        replaced_by_name: The username of ``replaced_by`` (None when unknown).
    """

    version: int
    instance: Instance
    item_id: int
    author_id: int | None
    author: str | None
    written_at: datetime
    replaced_by_action: str | None
    replaced_by: int | None
    replaced_at: datetime | None
    current: bool
    keyframe: bool = False
    replaced_by_name: str | None = None


def _copy_statement(where: Any) -> Any:
    """``INSERT INTO instance_versions SELECT ... FROM instances WHERE where``; the action,
    the acting user and the time are the bound parameters ``h_action``, ``h_by``, ``h_now``."""
    names = [
        "instance_id", "item_id", "version", *_VERSION_COLUMNS, "author_id", "written_at",
        "replaced_by_action", "replaced_by", "replaced_at",
    ]  # fmt: skip
    columns = [
        InstanceRow.id,
        InstanceRow.item_id,
        InstanceRow.version,
        *(getattr(InstanceRow, name) for name in _VERSION_COLUMNS),
        InstanceRow.author_id,
        InstanceRow.updated_at,
        bindparam("h_action", type_=String()),
        bindparam("h_by", type_=Integer()),
        bindparam("h_now", type_=DateTime()),
    ]
    # preserve_rowcount: SQLAlchemy keeps an INSERT's rowcount only when asked (psycopg
    # reports -1 otherwise; sqlite3 happens to keep it).
    return (
        insert(InstanceVersionRow)
        .from_select(names, select(*columns).where(where))
        .execution_options(preserve_rowcount=True)
    )


# The single-instance statements are built once: building and caching an INSERT ...
# SELECT of ~20 columns costs ~10x more than executing it (one save per person's edit).
_ONE = and_(InstanceRow.id == bindparam("h_id"), InstanceRow.version == bindparam("h_version"))
_COPY_ONE = _copy_statement(_ONE)
_LOCK_ONE = select(InstanceRow.id).where(_ONE).with_for_update()


def _parameters(action: str, by: int | None, now: datetime | None) -> dict[str, Any]:
    if action not in REPLACED_BY_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(REPLACED_BY_ACTIONS)}, got {action!r}")
    return {"h_action": action, "h_by": by, "h_now": now or utcnow()}


def save_instance_version(
    conn: Connection,
    instance_id: int,
    version: int,
    *,
    action: str,
    by: int | None,
    now: datetime | None = None,
) -> int:
    """:func:`save_replaced_versions` of one instance at ``version``: 1 if saved, 0 if
    the instance is not (any more) at that version."""
    parameters = {**_parameters(action, by, now), "h_id": instance_id, "h_version": version}
    if conn.dialect.name != "sqlite":
        conn.execute(_LOCK_ONE, parameters)
    return int(conn.execute(_COPY_ONE, parameters).rowcount or 0)


def save_replaced_versions(
    conn: Connection, where: Any, *, action: str, by: int | None, now: datetime | None = None
) -> int:
    """Copy the ``instances`` rows matching ``where`` into ``instance_versions``, inside
    the caller's transaction, before the caller updates or deletes them.

    One ``INSERT ... SELECT`` whatever the number of rows. On databases other than
    SQLite (whose writers hold the database lock from ``BEGIN IMMEDIATE``) the rows
    are locked first (``SELECT ... FOR UPDATE``), so that no concurrent writer can
    change them between the copy and the caller's write.

    Args:
        conn: Connection inside a write transaction.
        where: SQL condition on :class:`~posekit.store.tables.InstanceRow` (e.g. the
            items of an auto-label batch).
        action: One of :data:`REPLACED_BY_ACTIONS`.
        by: The acting user's id, or None.
        now: The replacement time (default now).

    Returns:
        The number of versions saved.
    """
    parameters = _parameters(action, by, now)
    if conn.dialect.name != "sqlite":
        conn.execute(select(InstanceRow.id).where(where).with_for_update())
    return int(conn.execute(_copy_statement(where), parameters).rowcount or 0)


def update_versioned(
    conn: Connection, ids: Sequence[int], values: Mapping[str, Any], *, action: str, by: int | None
) -> None:
    """Set ``values`` on the instances ``ids`` (unconditionally, e.g. a track edit), each
    getting version + 1 and ``by`` as author; their current versions are saved first."""
    now = utcnow()
    for start in range(0, len(ids), 500):  # SQLite limits bound parameters per statement
        chosen = InstanceRow.id.in_(list(ids[start : start + 500]))
        save_replaced_versions(conn, chosen, action=action, by=by, now=now)
        conn.execute(
            update(InstanceRow)
            .where(chosen)
            .values(version=InstanceRow.version + 1, updated_at=now, author_id=by, **values)
        )


def _version_instance(row: Any) -> Instance:
    """The :class:`Instance` of an ``instance_versions`` row (missing fields defaulted)."""
    values = dict(_DEFAULTS)
    values.update((name, getattr(row, name)) for name in _VERSION_COLUMNS)
    return decode_instance(SimpleNamespace(**values, id=row.instance_id))


class HistoryOperations:
    """Mixin of :class:`posekit.store.Workspace`: instance history and restore."""

    if TYPE_CHECKING:

        def transaction(self) -> Iterator[Connection]: ...
        def _read(self) -> Iterator[Connection]: ...
        def _template_of_item(self, conn: Connection, item_id: int) -> Skeleton: ...
        def _check_instance(self, instance: Instance, template: Skeleton, where: str) -> None: ...

    def instance_history(self, instance_id: int) -> list[InstanceVersion]:
        """Every version of an instance, oldest first; the current one last
        (``current=True``) unless the instance was deleted.

        Raises:
            NotFoundError: The instance never existed (or its item was deleted).
        """
        author = aliased(UserRow)
        replacer = aliased(UserRow)
        with self._read() as conn:
            old = conn.execute(
                select(
                    InstanceVersionRow,
                    author.username.label("author_name"),
                    replacer.username.label("replacer_name"),
                )
                .outerjoin(author, author.id == InstanceVersionRow.author_id)
                .outerjoin(replacer, replacer.id == InstanceVersionRow.replaced_by)
                .where(InstanceVersionRow.instance_id == instance_id)
                .order_by(InstanceVersionRow.version)
            ).all()
            now = conn.execute(
                select(InstanceRow, author.username.label("author_name"))
                .outerjoin(author, author.id == InstanceRow.author_id)
                .where(InstanceRow.id == instance_id)
            ).first()
        if not old and now is None:
            raise NotFoundError(f"instance {instance_id} does not exist and has no history")
        out = [
            InstanceVersion(
                version=r.version,
                instance=_version_instance(r),
                item_id=r.item_id,
                author_id=r.author_id,
                author=r.author_name,
                written_at=r.written_at,
                replaced_by_action=r.replaced_by_action,
                replaced_by=r.replaced_by,
                replaced_at=r.replaced_at,
                current=False,
                keyframe=bool(r.keyframe),
                replaced_by_name=r.replacer_name,
            )
            for r in old
        ]
        if now is not None:
            out.append(
                InstanceVersion(
                    version=now.version,
                    instance=decode_instance(now),
                    item_id=now.item_id,
                    author_id=now.author_id,
                    author=now.author_name,
                    written_at=now.updated_at,
                    replaced_by_action=None,
                    replaced_by=None,
                    replaced_at=None,
                    current=True,
                    keyframe=bool(now.keyframe),
                )
            )
        return out

    def instance_authors(self, dataset_ids: Sequence[int]) -> dict[int, str]:
        """``instance id -> username`` of the author of each instance of some datasets
        whose author is known (for exports carrying authors)."""
        query = (
            select(InstanceRow.id, UserRow.username)
            .join(UserRow, UserRow.id == InstanceRow.author_id)
            .join(ItemRow, ItemRow.id == InstanceRow.item_id)
            .where(ItemRow.dataset_id.in_(list(dataset_ids)))
        )
        with self._read() as conn:
            return {int(i): name for i, name in conn.execute(query)}

    def item_of_instance(self, instance_id: int) -> int:
        """The item an instance is (or, deleted, was) on.

        Raises:
            NotFoundError: The instance never existed (or its item was deleted).
        """
        with self._read() as conn:
            item_id = conn.execute(
                select(InstanceRow.item_id).where(InstanceRow.id == instance_id)
            ).scalar_one_or_none()
            if item_id is None:
                item_id = conn.execute(
                    select(InstanceVersionRow.item_id)
                    .where(InstanceVersionRow.instance_id == instance_id)
                    .limit(1)
                ).scalar_one_or_none()
        if item_id is None:
            raise NotFoundError(f"instance {instance_id} does not exist and has no history")
        return int(item_id)

    def restore_instance_version(
        self,
        instance_id: int,
        version: int,
        *,
        author_id: int | None,
        expected_version: int,
    ) -> InstanceRecord:
        """Write an old version's values as a new version of the instance.

        The current version is kept in the history (replaced by ``restore``); the
        new one is ``expected_version + 1`` with ``author_id`` as its author. A
        deleted instance is recreated with its old id; its ``expected_version`` is
        the version that was deleted (the last one its history lists). The item
        status is settled as after any person's edit.

        Raises:
            StaleVersionError: The instance changed since ``expected_version``
                (carries the current state); nothing was written.
            StaleRestoreError: A deleted instance whose deleted version is not
                ``expected_version``.
            NotFoundError: No such instance, or it has no version ``version``.
            StoreError: ``version`` is the current version, or its values do not fit
                the project's template any more (written before a template change).
        """
        from posekit.store.instances import settle_item_statuses

        now = utcnow()
        with self.transaction() as conn:
            old = conn.execute(
                select(InstanceVersionRow).where(
                    InstanceVersionRow.instance_id == instance_id,
                    InstanceVersionRow.version == version,
                )
            ).first()
            current = conn.execute(select(InstanceRow).where(InstanceRow.id == instance_id)).first()
            if current is not None and current.version == version:
                raise StoreError(
                    f"instance {instance_id}: version {version} is the current version; "
                    "nothing to restore"
                )
            if old is None:
                if current is None and not self._has_history(conn, instance_id):
                    raise NotFoundError(f"instance {instance_id} does not exist and has no history")
                raise NotFoundError(f"instance {instance_id} has no version {version}")
            if current is not None and current.version != expected_version:
                raise StaleVersionError(instance_id, expected_version, record_from_row(current))
            instance = _version_instance(old)
            template = self._template_of_item(conn, old.item_id)
            try:
                where = f"instance {instance_id} version {version}"
                self._check_instance(instance, template, where)
            except StoreError as exc:
                raise StoreError(
                    f"{exc} (the version was written before a template change and cannot "
                    "be restored)"
                ) from None
            values = {name: getattr(old, name) for name in _VERSION_COLUMNS}
            if current is not None:
                saved = save_instance_version(
                    conn, instance_id, expected_version, action="restore", by=author_id, now=now
                )
                done = conn.execute(
                    update(InstanceRow)
                    .where(InstanceRow.id == instance_id, InstanceRow.version == expected_version)
                    .values(
                        version=InstanceRow.version + 1,
                        updated_at=now,
                        author_id=author_id,
                        **values,
                    )
                ).rowcount
                if saved != 1 or done != 1:  # changed between the read and the write
                    latest = conn.execute(
                        select(InstanceRow).where(InstanceRow.id == instance_id)
                    ).one()
                    raise StaleVersionError(instance_id, expected_version, record_from_row(latest))
                item_id = current.item_id
            else:
                item_id = self._recreate(
                    conn, instance_id, expected_version, values, author_id, now
                )
            settle_item_statuses(conn, [item_id], by_person=True)
            row = conn.execute(select(InstanceRow).where(InstanceRow.id == instance_id)).one()
            return record_from_row(row)

    @staticmethod
    def _has_history(conn: Connection, instance_id: int) -> bool:
        found = conn.execute(
            select(InstanceVersionRow.id).where(InstanceVersionRow.instance_id == instance_id)
        ).first()
        return found is not None

    @staticmethod
    def _recreate(
        conn: Connection,
        instance_id: int,
        expected_version: int,
        values: dict[str, Any],
        author_id: int | None,
        now: datetime,
    ) -> int:
        """Insert a deleted instance again under its id; its item id."""
        versions = conn.execute(
            select(InstanceVersionRow)
            .where(InstanceVersionRow.instance_id == instance_id)
            .order_by(InstanceVersionRow.version)
        ).all()
        last = versions[-1]
        if last.version != expected_version:
            raise StaleRestoreError(
                f"instance {instance_id}: stale version {expected_version}; it was deleted "
                f"at version {last.version} (reload its history)"
            )
        found = conn.execute(select(ItemRow.id).where(ItemRow.id == last.item_id)).first()
        if found is None:
            raise NotFoundError(f"item {last.item_id} of instance {instance_id} does not exist")
        conn.execute(
            insert(InstanceRow).values(
                id=instance_id,
                item_id=last.item_id,
                version=last.version + 1,
                created_at=versions[0].written_at,
                updated_at=now,
                author_id=author_id,
                **values,
            )
        )
        return int(last.item_id)
