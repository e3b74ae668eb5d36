"""Instances of items: reading, versioned writes, predictions and reviews.

Every write is one transaction and settles the item status with one rule
(:func:`settle_item_statuses`, vocabulary in :mod:`posekit.statuses`): an item
with a ``predicted`` instance is ``predicted``; once no prediction is left
after a person's edit or review, it is ``reviewed``.

Writers send the version they read; a write is refused with
:class:`~posekit.store.errors.StaleVersionError` (carrying the current state)
if someone changed the instance meanwhile (optimistic concurrency).

Every write takes ``author_id`` (the acting user, None for scripts without one): it
becomes the instance's ``author_id``, and the version it replaces (or deletes) is
kept in the instance's history first, in the same transaction
(:mod:`posekit.store.history`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from sqlalchemy import (
    Connection,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    exists,
    insert,
    select,
    update,
)

from posekit.core import Instance, InstanceError
from posekit.store.codec import (
    INSTANCE_FIELDS,
    decode_instance,
    decode_instance_columns,
    decode_json_column,
    instance_columns,
)
from posekit.store.database import lock_rows, starts_with
from posekit.store.errors import NotFoundError, StaleVersionError, StoreError
from posekit.store.history import save_instance_version, save_replaced_versions
from posekit.store.records import InstanceRecord, Item, record_from_row
from posekit.store.tables import InstanceRow, ItemRow, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterator

    from posekit.skeleton import Skeleton

__all__ = ["REVIEW_DECISIONS", "InstanceOperations", "settle_item_statuses"]

#: What :meth:`InstanceOperations.review` can decide, and the status it sets.
REVIEW_DECISIONS: dict[str, str] = {"accept": "accepted", "reject": "rejected"}
#: Instance fields :meth:`InstanceOperations.patch_instance` can change.
_PATCHABLE = tuple(f.name for f in fields(Instance) if f.name != "id")
_ARRAY_FIELDS = {
    "keypoints": (np.float32, (-1, 2)),
    "visibility": (np.uint8, None),
    "keypoint_scores": (np.float32, None),
    "box": (np.float32, None),
}


def settle_item_statuses(conn: Connection, item_ids: Sequence[int], *, by_person: bool) -> None:
    """Apply the item status rule to some items, inside the caller's transaction.

    * An item with a ``predicted`` instance becomes ``predicted``.
    * ``by_person`` (an edit, delete or review by a person): otherwise the item
      becomes ``reviewed`` (no prediction left => reviewed).
    * A model's write (``by_person=False``): an item with instances, none
      predicted, is ``reviewed``; a ``new`` item in which the model found
      nobody becomes ``predicted`` (a person still has to confirm it).
    """
    ids = [int(i) for i in item_ids]
    # Chunked IN lists: SQLite limits bound parameters per statement.
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        # Two writers changing different instances of one item must not each settle
        # it without seeing the other's change (PostgreSQL; see lock_rows).
        lock_rows(conn, ItemRow, chunk)
        for statement in _SETTLE_BY_PERSON if by_person else _SETTLE_BY_MODEL:
            conn.execute(statement, {"settled_ids": chunk})


def _settle_statuses() -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The UPDATEs of :func:`settle_item_statuses`, in order, by a person and by a
    model; built once (parameter ``settled_ids``, an expanding IN list): every save
    runs them, and building them anew cost more than running them."""
    of_item = InstanceRow.item_id == ItemRow.id
    has_prediction = exists().where(of_item, InstanceRow.status == "predicted")
    has_instance = exists().where(of_item)
    chosen = ItemRow.id.in_(bindparam("settled_ids", expanding=True))

    def set_status(status: str, *conditions: Any) -> Any:
        return (
            update(ItemRow)
            .where(chosen, ItemRow.status != status, *conditions)
            .values(status=status)
        )

    predicted = set_status("predicted", has_prediction)
    by_person = (predicted, set_status("reviewed", ~has_prediction))
    by_model = (
        predicted,
        set_status("reviewed", has_instance, ~has_prediction),
        set_status("predicted", ItemRow.status == "new", ~has_instance),
    )
    return by_person, by_model


_SETTLE_BY_PERSON, _SETTLE_BY_MODEL = _settle_statuses()
#: One instance by id (parameter ``instance_id``), built once.
_RECORD = select(InstanceRow).where(InstanceRow.id == bindparam("instance_id"))


@functools.cache
def _versioned_update(columns: tuple[str, ...]) -> Any:
    """``UPDATE instances SET <columns>, version = version + 1, updated_at, author_id
    WHERE id = :w_id AND version = :w_version`` (values ``v_<column>``), built once
    per set of columns (:meth:`InstanceOperations._write_version`)."""
    table = InstanceRow.__table__
    return (
        update(InstanceRow)
        .where(InstanceRow.id == bindparam("w_id"), InstanceRow.version == bindparam("w_version"))
        .values(
            version=InstanceRow.version + 1,
            updated_at=bindparam("w_now", type_=table.c.updated_at.type),
            author_id=bindparam("w_author", type_=table.c.author_id.type),
            **{name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns},
        )
    )


class InstanceOperations:
    """The instance part of :class:`posekit.store.Workspace` (mixed into it)."""

    if TYPE_CHECKING:

        def transaction(self) -> Iterator[Connection]: ...
        def _read(self) -> Iterator[Connection]: ...
        def _item_id(self, item: Item | int) -> int: ...
        def _template_of_item(self, conn: Connection, item_id: int) -> Skeleton: ...
        def _check_instance(self, instance: Instance, template: Skeleton, where: str) -> None: ...

    def get_instance_records(self, item: Item | int) -> list[InstanceRecord]:
        """Instances of an item with their versions, by id."""
        item_id = self._item_id(item)
        with self._read() as conn:
            rows = conn.execute(
                select(InstanceRow).where(InstanceRow.item_id == item_id).order_by(InstanceRow.id)
            ).all()
        return [record_from_row(r) for r in rows]

    def get_instances(self, item: Item | int) -> list[Instance]:
        """Instances of an item (``Instance.id`` is the database id), by id."""
        return [r.instance for r in self.get_instance_records(item)]

    def get_instance(self, instance_id: int) -> InstanceRecord:
        """One instance with its version."""
        with self._read() as conn:
            return self._get_record(conn, instance_id)

    @staticmethod
    def _get_record(conn: Connection, instance_id: int) -> InstanceRecord:
        row = conn.execute(_RECORD, {"instance_id": instance_id}).first()
        if row is None:
            raise NotFoundError(f"instance {instance_id} does not exist")
        return record_from_row(row)

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
            for name in INSTANCE_FIELDS
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
        names = ("item_id", "id", "external_id", *INSTANCE_FIELDS)
        data: dict[str, Sequence[Any]] = dict(zip(names, zip(*rows)))
        for name in json_fields:
            data[name] = decode_json_column(data[name])
        instances = decode_instance_columns(data)
        out: dict[int, list[tuple[Instance, int | None]]] = {}
        for item_id, inst, external in zip(data["item_id"], instances, data["external_id"]):
            kept = out.get(item_id)
            if kept is None:
                out[item_id] = kept = []
            kept.append((inst, external))
        return out

    def add_instance(
        self, item: Item | int, instance: Instance, *, author_id: int | None = None
    ) -> InstanceRecord:
        """Store a new instance on an item; returns it with its id and version 1.

        ``instance.id`` is ignored (the database assigns one); ``author_id`` is the
        user writing it.
        """
        item_id = self._item_id(item)
        now = utcnow()
        with self.transaction() as conn:
            template = self._template_of_item(conn, item_id)
            self._check_instance(instance, template, f"item {item_id}")
            new_id = _insert(conn, item_id, instance, now, author_id)
            settle_item_statuses(conn, [item_id], by_person=True)
            record = self._get_record(conn, new_id)
        return record

    def update_instance(
        self,
        instance_id: int,
        instance: Instance,
        expected_version: int,
        *,
        author_id: int | None = None,
    ) -> int:
        """Replace an instance's data if nobody changed it since ``expected_version``
        (the version replaced goes to its history; ``author_id`` writes the new one).

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
            self._write_version(
                conn, instance_id, expected_version, instance_columns(instance),
                action="update", author_id=author_id,
            )  # fmt: skip
            settle_item_statuses(conn, [item_id], by_person=True)
        return expected_version + 1

    def delete_instance(
        self,
        instance_id: int,
        expected_version: int | None = None,
        *,
        author_id: int | None = None,
    ) -> None:
        """Delete an instance; with ``expected_version`` only if it is unchanged.

        The deleted version stays in the instance's history (replaced by ``delete``,
        by ``author_id``), from which it can be restored.

        Raises:
            StaleVersionError: ``expected_version`` is given and stale.
            NotFoundError: The instance does not exist.
        """
        with self.transaction() as conn:
            columns = select(InstanceRow.item_id, InstanceRow.version)
            found = conn.execute(columns.where(InstanceRow.id == instance_id)).first()
            item_id = None if found is None else found.item_id
            version = expected_version if expected_version is not None else found and found.version
            where = and_(InstanceRow.id == instance_id, InstanceRow.version == version)
            saved = 0
            if found is not None:
                saved = save_instance_version(
                    conn, instance_id, version, action="delete", by=author_id
                )
            if saved != 1 or conn.execute(delete(InstanceRow).where(where)).rowcount != 1:
                current = self._get_record(conn, instance_id)  # raises NotFoundError
                raise StaleVersionError(instance_id, int(expected_version or 0), current)
            settle_item_statuses(conn, [item_id], by_person=True)

    def replace_predictions(
        self, item: Item | int, instances: Sequence[Instance], *, author_id: int | None = None
    ) -> list[int]:
        """Replace an item's model predictions with ``instances``.

        Deletes the item's instances that have ``status='predicted'`` and a
        ``model:*`` source, and inserts ``instances``. Manual instances and
        accepted/rejected ones are never touched. Returns the new ids.
        """
        item_id = self._item_id(item)
        written = self.write_predictions({item_id: instances}, overwrite=True, author_id=author_id)
        return written[item_id]

    def write_predictions(
        self,
        predictions: Mapping[int, Sequence[Instance]],
        *,
        overwrite: bool,
        author_id: int | None = None,
    ) -> dict[int, list[int]]:
        """Store model predictions of several items in one transaction.

        Args:
            predictions: ``item id -> instances``.
            overwrite: If False, items that have any instance at the time of
                writing are skipped (another writer may have labeled them). If
                True, the items' ``predicted`` model instances are replaced
                (kept in their history, deleted by ``author_id``); manual,
                accepted and rejected instances are kept.
            author_id: The user who ran the model (the new instances' author).

        Returns:
            ``item id -> new instance ids`` for the items written (skipped items
            are absent). Written items with a prediction become ``predicted``, and
            so do ``new`` items in which the model found nobody.
        """
        now = utcnow()
        written: dict[int, list[int]] = {}
        with self.transaction() as conn:
            ids = [int(i) for i in predictions] if overwrite else []
            # Chunked IN lists: SQLite limits bound parameters per statement.
            for start in range(0, len(ids), 500):
                replaced = and_(
                    InstanceRow.item_id.in_(ids[start : start + 500]),
                    InstanceRow.status == "predicted",
                    starts_with(InstanceRow.source, "model:"),
                )
                save_replaced_versions(conn, replaced, action="delete", by=author_id, now=now)
                conn.execute(delete(InstanceRow).where(replaced))
            for item_id, instances in predictions.items():
                template = self._template_of_item(conn, item_id)
                for i, inst in enumerate(instances):
                    self._check_instance(inst, template, f"item {item_id} prediction #{i}")
                if not overwrite:
                    has_any = conn.execute(
                        select(InstanceRow.id).where(InstanceRow.item_id == item_id).limit(1)
                    ).first()
                    if has_any is not None:
                        continue
                written[item_id] = [
                    _insert(conn, item_id, inst, now, author_id) for inst in instances
                ]
            settle_item_statuses(conn, list(written), by_person=False)
        return written

    # ---------------------------------------------------------- domain operations
    def patch_instance(
        self,
        instance_id: int,
        changes: Mapping[str, Any],
        expected_version: int,
        *,
        author_id: int | None = None,
    ) -> InstanceRecord:
        """Change some fields of an instance, if nobody changed it since ``expected_version``.

        One transaction: read the instance, merge ``changes`` (names of
        :class:`~posekit.core.Instance` fields; arrays may be given as lists),
        validate the result against the project's template, write it with the
        version incremented and ``author_id`` as its author (the version replaced
        goes to the instance's history), and settle the item status.

        Example:
            >>> record = ws.patch_instance(7, {"status": "accepted"}, 3)  # doctest: +SKIP
            >>> record.version  # doctest: +SKIP
            4

        Returns:
            The instance as stored now (version ``expected_version + 1``).

        Raises:
            StaleVersionError: The stored version differs; nothing was written and
                the error carries the current state.
            NotFoundError: The instance does not exist.
            InstanceError: An unknown field, or the merged instance is invalid.
        """
        unknown = sorted(set(changes) - set(_PATCHABLE))
        if unknown:
            raise InstanceError(
                f"instance {instance_id}: cannot change {', '.join(map(repr, unknown))}; "
                f"the fields are {', '.join(_PATCHABLE)}"
            )
        values = {name: _as_field(name, value) for name, value in changes.items()}
        with self.transaction() as conn:
            current = self._get_record(conn, instance_id)
            if current.version != expected_version:
                raise StaleVersionError(instance_id, expected_version, current)
            try:
                merged = current.instance.copy(**values)
            except (TypeError, ValueError) as exc:
                if isinstance(exc, InstanceError):
                    raise
                raise InstanceError(f"instance {instance_id}: {exc}") from None
            template = self._template_of_item(conn, current.item_id)
            self._check_instance(merged, template, f"instance {instance_id}")
            self._write_version(
                conn, instance_id, expected_version, instance_columns(merged),
                action="update", author_id=author_id,
            )  # fmt: skip
            settle_item_statuses(conn, [current.item_id], by_person=True)
            return self._get_record(conn, instance_id)

    def review(
        self,
        item_id: int,
        decisions: Mapping[int, Literal["accept", "reject"]],
        expected_versions: Mapping[int, int] | None = None,
        *,
        author_id: int | None = None,
    ) -> list[InstanceRecord]:
        """Accept or reject instances of an item and settle its status, atomically.

        One transaction: every decided instance gets status ``accepted`` or
        ``rejected`` (version + 1); then the item becomes ``reviewed`` if no
        ``predicted`` instance is left (also with no decisions at all: "a person
        looked at it"), else it stays ``predicted``. If any check fails nothing
        is written.

        Args:
            item_id: The item.
            decisions: ``instance id -> "accept" | "reject"``.
            expected_versions: ``instance id -> version`` as the caller read them;
                a decided instance whose version differs makes the whole review
                fail. Instances missing here are decided at their current version.
            author_id: The reviewer (the decided versions' author; the versions
                they replace go to the history as replaced by ``review``).

        Returns:
            The decided instances as stored now, in the order of ``decisions``.

        Raises:
            StaleVersionError: An instance changed since its expected version.
            NotFoundError: The item does not exist.
            StoreError: An instance is not one of the item's, or a decision is
                neither ``accept`` nor ``reject``.
        """
        expected = dict(expected_versions or {})
        for instance_id, decision in decisions.items():
            if decision not in REVIEW_DECISIONS:
                raise StoreError(
                    f"instance {instance_id}: decision {decision!r} is not one of "
                    f"{', '.join(REVIEW_DECISIONS)}"
                )
        with self.transaction() as conn:
            found = conn.execute(select(ItemRow.id).where(ItemRow.id == item_id)).first()
            if found is None:
                raise NotFoundError(f"item {item_id} does not exist")
            versions = dict(
                conn.execute(
                    select(InstanceRow.id, InstanceRow.version).where(
                        InstanceRow.item_id == item_id
                    )
                ).all()
            )
            for instance_id in decisions:
                if instance_id not in versions:
                    raise StoreError(f"instance {instance_id} is not an instance of item {item_id}")
                wanted = expected.get(instance_id, versions[instance_id])
                if wanted != versions[instance_id]:
                    current = self._get_record(conn, instance_id)
                    raise StaleVersionError(instance_id, wanted, current)
            for instance_id, decision in decisions.items():
                self._write_version(
                    conn, instance_id, versions[instance_id],
                    {"status": REVIEW_DECISIONS[decision]}, action="review", author_id=author_id,
                )  # fmt: skip
            settle_item_statuses(conn, [item_id], by_person=True)
            return [self._get_record(conn, instance_id) for instance_id in decisions]

    def _write_version(
        self,
        conn: Connection,
        instance_id: int,
        expected_version: int,
        values: Mapping[str, Any],
        *,
        action: str,
        author_id: int | None,
    ) -> None:
        """Keep the current version in the history, then write ``values`` with
        version + 1 and the author. The WHERE on version makes the check and the
        write atomic, also on databases without the up-front write lock SQLite takes
        (there :func:`save_instance_version` locks the row first)."""
        now = utcnow()
        saved = save_instance_version(
            conn, instance_id, expected_version, action=action, by=author_id, now=now
        )
        result = None
        if saved == 1:
            parameters = {f"v_{name}": value for name, value in values.items()}
            parameters.update(w_id=instance_id, w_version=expected_version, w_now=now,
                              w_author=author_id)  # fmt: skip
            result = conn.execute(_versioned_update(tuple(values)), parameters)
        if result is None or result.rowcount != 1:
            current = self._get_record(conn, instance_id)
            raise StaleVersionError(instance_id, expected_version, current)


def _insert(
    conn: Connection, item_id: int, instance: Instance, now: datetime, author_id: int | None
) -> int:
    """Insert a new instance (version 1) written by ``author_id``; returns its id."""
    result = conn.execute(
        insert(InstanceRow).values(
            item_id=item_id, version=1, created_at=now, updated_at=now, author_id=author_id,
            **instance_columns(instance),
        )
    )  # fmt: skip
    return int(result.inserted_primary_key[0])


def _as_field(name: str, value: Any) -> Any:
    """A patch value as the Instance field holds it (lists become arrays)."""
    spec = _ARRAY_FIELDS.get(name)
    if spec is None or value is None or isinstance(value, np.ndarray):
        return value
    dtype, shape = spec
    try:
        array = np.asarray(value, dtype=dtype)
        return array.reshape(shape) if shape else array
    except (TypeError, ValueError) as exc:
        raise InstanceError(f"{name}: {exc}") from None
