"""Project members and their roles, and the project any id belongs to (issue 12).

A member has one role per project, one of :data:`PROJECT_ROLES`; a workspace admin
(``users.is_admin``) needs none. :meth:`MemberOperations.project_id_of` is what the
server's authorization uses to find the project a request's path names.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Integer, bindparam, delete, func, insert, select, update

from posekit.store.database import codepoint_order
from posekit.store.errors import NotFoundError, StoreError
from posekit.store.records import Member, Project, User
from posekit.store.tables import (
    CommentRow,
    DatasetRow,
    InstanceRow,
    InstanceVersionRow,
    ItemRow,
    JobRow,
    MemberRow,
    ProjectRow,
    TrackRow,
    UserRow,
    VideoRow,
    utcnow,
)

__all__ = ["OWNED_KINDS", "PROJECT_ROLES", "MemberOperations"]

#: Roles a user can have in a project, most powerful first (the same tuple as
#: ``posekit.server.authz.PROJECT_ROLES``; the store cannot import the server).
PROJECT_ROLES = ("manager", "reviewer", "annotator", "viewer")
#: Kinds of ids :meth:`MemberOperations.project_id_of` finds the project of.
OWNED_KINDS = ("project", "dataset", "item", "instance", "video", "job", "comment", "track")


class MemberOperations:
    """The members part of :class:`posekit.store.Workspace` (a base of
    :class:`posekit.store.users.UserOperations`)."""

    if TYPE_CHECKING:

        def transaction(self) -> Iterator[Connection]: ...
        def _read(self) -> Iterator[Connection]: ...
        def get_project(self, name: str) -> Project: ...
        def _user_row(self, conn: Connection, user: int | str | User) -> Any: ...

    def set_member(self, project: Project | str | int, user: int | str | User, role: str) -> Member:
        """Give a user a role in a project (replacing their previous role).

        Raises:
            StoreError: ``role`` is not one of :data:`PROJECT_ROLES`.
            NotFoundError: No such project or user.
        """
        if role not in PROJECT_ROLES:
            raise StoreError(f"role must be one of {', '.join(PROJECT_ROLES)}; got {role!r}")
        project_id = self._member_project_id(project)
        with self.transaction() as conn:
            row = self._user_row(conn, user)
            where = (MemberRow.project_id == project_id, MemberRow.user_id == row.id)
            if conn.execute(select(MemberRow.role).where(*where)).first() is None:
                conn.execute(
                    insert(MemberRow).values(
                        project_id=project_id, user_id=row.id, role=role, created_at=utcnow()
                    )
                )
            else:
                conn.execute(update(MemberRow).where(*where).values(role=role))
        return Member(project_id, row.id, row.username, role)

    def remove_member(self, project: Project | str | int, user: int | str | User) -> None:
        """Take a user's role in a project away.

        Raises:
            NotFoundError: No such project or user, or the user is not a member.
        """
        project_id = self._member_project_id(project)
        with self.transaction() as conn:
            row = self._user_row(conn, user)
            removed = conn.execute(
                delete(MemberRow).where(
                    MemberRow.project_id == project_id, MemberRow.user_id == row.id
                )
            ).rowcount
        if not removed:
            raise NotFoundError(f"user {row.username!r} is not a member of project {project_id}")

    def list_members(self, project: Project | str | int) -> list[Member]:
        """The members of a project, by username."""
        project_id = self._member_project_id(project)
        with self._read() as conn:
            rows = conn.execute(
                select(MemberRow.project_id, MemberRow.user_id, UserRow.username, MemberRow.role)
                .join(UserRow, UserRow.id == MemberRow.user_id)
                .where(MemberRow.project_id == project_id)
                .order_by(codepoint_order(UserRow.username))
            ).all()
        return [Member(r.project_id, r.user_id, r.username, r.role) for r in rows]

    def role_of(self, user_id: int, project_id: int) -> str | None:
        """A user's role in a project, None if not a member (admins need none)."""
        with self._read() as conn:
            return conn.execute(
                select(MemberRow.role).where(
                    MemberRow.user_id == user_id, MemberRow.project_id == project_id
                )
            ).scalar_one_or_none()

    def roles_of(self, user_id: int) -> dict[int, str]:
        """A user's roles: ``project id -> role``."""
        with self._read() as conn:
            rows = conn.execute(
                select(MemberRow.project_id, MemberRow.role).where(MemberRow.user_id == user_id)
            ).all()
        return {r.project_id: r.role for r in rows}

    def project_id_of(self, kind: str, id: int) -> int:
        """The project an id of ``kind`` (one of :data:`OWNED_KINDS`) belongs to;
        ``track`` is the id of a ``tracks`` row; a deleted ``instance`` is found
        through its history (``instance_versions``).

        Raises:
            NotFoundError: Naming it, e.g. ``item 12 does not exist``.
            StoreError: Unknown ``kind``.
        """
        if kind not in OWNED_KINDS:
            raise StoreError(f"kind must be one of {', '.join(OWNED_KINDS)}; got {kind!r}")
        query = _PROJECT_OF[kind](int(id))
        with self._read() as conn:
            project_id = conn.execute(query).scalar_one_or_none()
        if project_id is None:
            raise NotFoundError(f"{kind} {id} does not exist")
        return int(project_id)

    def access_of(self, user_id: int, kind: str, id: int) -> Access:
        """What every authorized request asks (:func:`posekit.server.authz.allow`), in
        one query: the project of an id of ``kind``, the user's role there (None: not a
        member) and, for an item or an instance (also a deleted one), the item's id,
        assignee and stage.

        Raises:
            NotFoundError: The object does not exist (as :meth:`project_id_of`).
        """
        if kind not in OWNED_KINDS:
            raise StoreError(f"kind must be one of {', '.join(OWNED_KINDS)}; got {kind!r}")
        with self._read() as conn:
            row = conn.execute(_access_query(kind), {"user_id": user_id, "id": int(id)}).one()
        if row[0] is None:
            raise NotFoundError(f"{kind} {id} does not exist")
        if kind not in ("item", "instance"):
            return Access(int(row[0]), row[1])
        return Access(int(row[0]), row[1], row[2], row[3], row[4])

    def item_assignment(self, item_id: int) -> tuple[int | None, str]:
        """``(assignee id, stage)`` of an item, without building its record.

        Raises:
            NotFoundError: No such item.
        """
        with self._read() as conn:
            row = conn.execute(
                select(ItemRow.assignee_id, ItemRow.stage).where(ItemRow.id == item_id)
            ).first()
        if row is None:
            raise NotFoundError(f"item {item_id} does not exist")
        return row[0], row[1]

    # ------------------------------------------------------------ internals
    def _member_project_id(self, project: Project | str | int) -> int:
        if isinstance(project, Project):
            return project.id
        if isinstance(project, str):
            return self.get_project(project).id
        return self.project_id_of("project", project)


def _of_dataset(dataset_id: Any) -> Any:
    return select(DatasetRow.project_id).where(DatasetRow.id == dataset_id)


@functools.cache
def _access_query(kind: str) -> Any:
    """The one query of :meth:`MemberOperations.access_of` for ``kind``, built once
    with the parameters ``user_id`` and ``id`` (every authorized request runs it:
    building it anew took most of its time, in SQLAlchemy, not in the database)."""
    object_id = bindparam("id", type_=Integer)
    item_id: Any = None
    if kind == "item":
        item_id = object_id
    elif kind == "instance":
        item_id = _item_of_instance(object_id)
    project = (
        _of_item(item_id) if item_id is not None else _PROJECT_OF[kind](object_id)
    ).scalar_subquery()
    role = (
        select(MemberRow.role)
        .where(MemberRow.user_id == bindparam("user_id", type_=Integer))
        .where(MemberRow.project_id == project)
        .scalar_subquery()
    )
    columns: list[Any] = [project, role]
    if item_id is not None:
        item = select(ItemRow).where(ItemRow.id == item_id).subquery()
        columns += [
            select(item.c.id).scalar_subquery(),
            select(item.c.assignee_id).scalar_subquery(),
            select(item.c.stage).scalar_subquery(),
        ]
    return select(*columns)


class Access(NamedTuple):
    """:meth:`MemberOperations.access_of`: a project id, the user's role in it, and
    for items and instances the item's id, assignee and stage."""

    project_id: int
    role: str | None
    item_id: int | None = None
    assignee_id: int | None = None
    stage: str | None = None


def _item_of_instance(instance_id: int) -> Any:
    """The item of an instance, or of a deleted one from its history (a SQL value)."""
    return func.coalesce(
        select(InstanceRow.item_id).where(InstanceRow.id == instance_id).scalar_subquery(),
        select(InstanceVersionRow.item_id)
        .where(InstanceVersionRow.instance_id == instance_id)
        .limit(1)
        .scalar_subquery(),
    )


def _of_item(item_id: Any) -> Any:
    return _of_dataset(select(ItemRow.dataset_id).where(ItemRow.id == item_id).scalar_subquery())


_PROJECT_OF: dict[str, Any] = {
    "project": lambda i: select(ProjectRow.id).where(ProjectRow.id == i),
    "dataset": _of_dataset,
    "item": _of_item,
    # A deleted instance keeps its history (instance_versions): still in its project.
    "instance": lambda i: _of_item(
        func.coalesce(
            select(InstanceRow.item_id).where(InstanceRow.id == i).scalar_subquery(),
            select(InstanceVersionRow.item_id)
            .where(InstanceVersionRow.instance_id == i)
            .limit(1)
            .scalar_subquery(),
        )
    ),
    "video": lambda i: _of_dataset(
        select(VideoRow.dataset_id).where(VideoRow.id == i).scalar_subquery()
    ),
    "job": lambda i: select(JobRow.project_id).where(JobRow.id == i),
    "comment": lambda i: _of_item(
        select(CommentRow.item_id).where(CommentRow.id == i).scalar_subquery()
    ),
    "track": lambda i: select(TrackRow.project_id).where(TrackRow.id == i),
}
