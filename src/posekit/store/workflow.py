"""The team workflow of items: assignment, atomic claiming, and the stages
annotation -> review -> done (issue 12).

Every item is in one *stage*: ``annotation`` (its annotator works on it),
``review`` (submitted, waiting for a reviewer) or ``done`` (accepted). A reviewer
accepts an item (-> ``done``) or rejects it with a comment (-> back to
``annotation``, to the same annotator, who sees it first in their queue).

*Unlabeled* (what "next N unlabeled" and claiming take): an image item (not a
video frame) in stage ``annotation`` whose item status (:mod:`posekit.statuses`) is
``new`` or ``predicted``, i.e. no person has settled it yet, or one sent back with
open comments.

Queues (:meth:`WorkflowOperations.claim_next`):

* annotator: own items in ``annotation`` with open comments (to fix), then own
  items in ``annotation``, then it *claims* an unassigned unlabeled item;
* reviewer: items in ``review`` it already took, then it claims an untaken one.

Claiming is atomic on every database: a conditional ``UPDATE ... WHERE
assignee_id IS NULL`` (or ``reviewer_id IS NULL``) whose row count says whether
this caller won the item; a lost race moves on to the next candidate, so two
people never get the same item. Only portable SQL (SQLite and PostgreSQL).

Permissions: the server checks each route's permission (:mod:`posekit.server.authz`);
these methods also refuse what a role may not do (an annotator submitting someone
else's item, a viewer claiming), so scripts obey the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, exists, select, update

from posekit.store.comments import insert_comment, resolve_item_threads
from posekit.store.errors import NotFoundError, StoreError
from posekit.store.records import Item, Project
from posekit.store.tables import (
    CommentRow,
    DatasetRow,
    ItemRow,
    MemberRow,
    ProjectRow,
    UserRow,
    utcnow,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from posekit.skeleton import Skeleton

__all__ = [
    "DECISIONS",
    "QUEUE_ROLES",
    "STAGES",
    "StageError",
    "WorkflowOperations",
    "WorkflowPermissionError",
]

#: The stages of an item, in order.
STAGES = ("annotation", "review", "done")
#: The queues of :meth:`WorkflowOperations.claim_next`.
QUEUE_ROLES = ("annotator", "reviewer")
#: What a reviewer can decide.
DECISIONS = ("accept", "reject")
#: Project roles that may work in each queue (a workspace admin may always).
_QUEUE_MEMBERS = {"annotator": ("annotator", "manager"), "reviewer": ("reviewer", "manager")}
#: Candidates fetched per claiming round, and rounds before giving up.
_CANDIDATES = 8
_CLAIM_ROUNDS = 50
#: Oldest stage change first; NULLs last on every database (SQLite sorts them first).
_OLDEST_FIRST = (ItemRow.stage_changed_at.is_(None), ItemRow.stage_changed_at, ItemRow.id)


class StageError(StoreError):
    """The item is not in the stage the operation needs (HTTP 409)."""


class WorkflowPermissionError(StoreError):
    """The user's role (or assignment) does not allow the operation (HTTP 403)."""


@dataclass(frozen=True)
class _Actor:
    id: int
    username: str
    is_admin: bool
    role: str | None

    def has_role(self, *roles: str) -> bool:
        return self.is_admin or self.role in roles

    def describe(self) -> str:
        return f"user {self.username!r} ({'admin' if self.is_admin else self.role or 'no role'})"


def _actor(conn: Connection, user_id: int, project_id: int, what: str = "user") -> _Actor:
    row = conn.execute(
        select(UserRow.id, UserRow.username, UserRow.is_admin, UserRow.is_active, MemberRow.role)
        .outerjoin(
            MemberRow, (MemberRow.user_id == UserRow.id) & (MemberRow.project_id == project_id)
        )
        .where(UserRow.id == user_id)
    ).first()
    if row is None:
        raise NotFoundError(f"{what} {user_id} does not exist")
    if not row.is_active:
        raise WorkflowPermissionError(f"{what} {row.username!r} is disabled")
    return _Actor(int(row.id), row.username, bool(row.is_admin), row.role)


def _in_project(project_id: int) -> Any:
    return ItemRow.dataset_id.in_(select(DatasetRow.id).where(DatasetRow.project_id == project_id))


def _open_comments() -> Any:
    return (
        exists()
        .where(
            CommentRow.item_id == ItemRow.id,
            CommentRow.parent_id.is_(None),
            CommentRow.resolved_at.is_(None),
        )
        .correlate(ItemRow)
    )


def _unlabeled() -> Any:
    """An image (not a video frame: videos are annotated by track, in the video view)
    in stage annotation, not settled by a person yet (or sent back with comments)."""
    return (
        (ItemRow.stage == "annotation")
        & ItemRow.video_id.is_(None)
        & (ItemRow.status.in_(("new", "predicted")) | _open_comments())
    )


class WorkflowOperations:
    """Mixin of :class:`posekit.store.Workspace`."""

    if TYPE_CHECKING:

        def transaction(self) -> Iterator[Connection]: ...
        def _read(self) -> Iterator[Connection]: ...
        def _item(self, row: Any) -> Item: ...
        def _template_of_item(self, conn: Connection, item_id: int) -> Skeleton: ...
        def get_item(self, item_id: int) -> Item: ...

    # ------------------------------------------------------------ helpers
    def _workflow_project(self, conn: Connection, project: Project | str | int) -> tuple[int, str]:
        if isinstance(project, Project):
            return project.id, project.name
        column = ProjectRow.name if isinstance(project, str) else ProjectRow.id
        row = conn.execute(select(ProjectRow.id, ProjectRow.name).where(column == project)).first()
        if row is None:
            what = f"named {project!r}" if isinstance(project, str) else str(project)
            raise NotFoundError(f"project {what} does not exist")
        return int(row.id), row.name

    def _manager(self, conn: Connection, by: int | None, project_id: int, name: str) -> None:
        if by is None:
            return
        actor = _actor(conn, by, project_id, "by: user")
        if not actor.has_role("manager"):
            raise WorkflowPermissionError(
                f"{actor.describe()} is not a manager of project {name!r}: only managers assign"
            )

    def _assignee(
        self, conn: Connection, assignee_id: int | None, project_id: int, name: str
    ) -> None:
        if assignee_id is None:
            return
        actor = _actor(conn, assignee_id, project_id, "assignee: user")
        if not actor.has_role("annotator", "manager"):
            raise StoreError(
                f"assignee: {actor.describe()} is not an annotator of project {name!r}"
            )

    @staticmethod
    def _set_assignee(conn: Connection, ids: Sequence[int], assignee_id: int | None) -> None:
        for start in range(0, len(ids), 500):
            conn.execute(
                update(ItemRow)
                .where(ItemRow.id.in_(ids[start : start + 500]))
                .values(assignee_id=assignee_id)
            )

    def _item_row(self, conn: Connection, item_id: int) -> Any:
        row = conn.execute(
            select(ItemRow, DatasetRow.project_id)
            .join(DatasetRow, DatasetRow.id == ItemRow.dataset_id)
            .where(ItemRow.id == item_id)
        ).first()
        if row is None:
            raise NotFoundError(f"item {item_id} does not exist")
        return row

    # ------------------------------------------------------------ assignment
    def assign_items(
        self,
        project: Project | str | int,
        item_ids: Sequence[int],
        assignee_id: int | None,
        *,
        by: int | None,
    ) -> list[int]:
        """Assign items of a project to an annotator (``None``: unassign them).

        Args:
            project: The project (record, name or id) the items must belong to.
            item_ids: The items.
            assignee_id: An annotator (or manager) of the project, or None.
            by: The manager assigning (checked), or None for a trusted script.

        Returns:
            The item ids, sorted.

        Raises:
            NotFoundError: An item is not in the project; no such user or project.
            WorkflowPermissionError: ``by`` is not a manager of the project.
            StoreError: The assignee is not an annotator or manager of the project.
        """
        ids = sorted({int(i) for i in item_ids})
        if not ids:
            raise StoreError("item_ids: give at least one item")
        with self.transaction() as conn:
            project_id, name = self._workflow_project(conn, project)
            self._manager(conn, by, project_id, name)
            self._assignee(conn, assignee_id, project_id, name)
            found: set[int] = set()
            for start in range(0, len(ids), 500):
                found.update(
                    conn.execute(
                        select(ItemRow.id).where(
                            ItemRow.id.in_(ids[start : start + 500]), _in_project(project_id)
                        )
                    ).scalars()
                )
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFoundError(
                    f"item {missing[0]} is not an item of project {name!r}"
                    + (f" (nor are {len(missing) - 1} more)" if len(missing) > 1 else "")
                )
            self._set_assignee(conn, ids, assignee_id)
        return ids

    def assign_range(
        self,
        project: Project | str | int,
        first_item_id: int,
        last_item_id: int,
        assignee_id: int | None,
        *,
        by: int | None,
    ) -> list[int]:
        """Assign the project's items with ids ``first_item_id..last_item_id`` (inclusive).

        Raises:
            StoreError: ``first_item_id`` > ``last_item_id``, or no item in the range;
                see :meth:`assign_items` for the rest.
        """
        if first_item_id > last_item_id:
            raise StoreError(f"first_item_id {first_item_id} is after last_item_id {last_item_id}")
        with self.transaction() as conn:
            project_id, name = self._workflow_project(conn, project)
            self._manager(conn, by, project_id, name)
            self._assignee(conn, assignee_id, project_id, name)
            ids = list(
                conn.execute(
                    select(ItemRow.id)
                    .where(
                        _in_project(project_id),
                        ItemRow.id >= first_item_id,
                        ItemRow.id <= last_item_id,
                    )
                    .order_by(ItemRow.id)
                ).scalars()
            )
            if not ids:
                raise StoreError(
                    f"project {name!r} has no item with an id from {first_item_id} "
                    f"to {last_item_id}"
                )
            self._set_assignee(conn, ids, assignee_id)
        return ids

    def assign_next_unlabeled(
        self,
        project: Project | str | int,
        count: int,
        assignee_id: int,
        *,
        by: int | None,
    ) -> list[int]:
        """Assign the first ``count`` unassigned unlabeled items (by id) to an annotator.

        Returns:
            The ids assigned (fewer than ``count`` when fewer are left; maybe none).
        """
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise StoreError(f"count: {count!r} is not a positive number of items")
        if assignee_id is None:
            raise StoreError("assignee: next unlabeled items need an annotator to go to")
        with self.transaction() as conn:
            project_id, name = self._workflow_project(conn, project)
            self._manager(conn, by, project_id, name)
            self._assignee(conn, assignee_id, project_id, name)
            ids = list(
                conn.execute(
                    select(ItemRow.id)
                    .where(_in_project(project_id), ItemRow.assignee_id.is_(None), _unlabeled())
                    .order_by(ItemRow.id)
                    .limit(count)
                ).scalars()
            )
            # Conditional: an item claimed meanwhile by someone else stays theirs.
            assigned = []
            for item_id in ids:
                result = conn.execute(
                    update(ItemRow)
                    .where(ItemRow.id == item_id, ItemRow.assignee_id.is_(None))
                    .values(assignee_id=assignee_id)
                )
                if result.rowcount == 1:
                    assigned.append(item_id)
        return assigned

    # ------------------------------------------------------------ queues
    def claim_next(
        self, project: Project | str | int, user_id: int, *, role: str = "annotator"
    ) -> Item | None:
        """The next item of a user's queue, claimed for them (see the module docstring).

        Args:
            project: The project (record, name or id).
            user_id: The annotator or reviewer.
            role: ``annotator`` or ``reviewer``: which queue.

        Returns:
            The item (now assigned to, or taken for review by, the user), or None
            when the queue is empty.

        Raises:
            WorkflowPermissionError: The user has no role for that queue.
            StoreError: Unknown role; or no item could be claimed after many rounds
                of losing races (retry).
        """
        if role not in QUEUE_ROLES:
            raise StoreError(f"role {role!r} is not one of {', '.join(QUEUE_ROLES)}")
        owner = ItemRow.assignee_id if role == "annotator" else ItemRow.reviewer_id
        stage = "annotation" if role == "annotator" else "review"
        for _ in range(_CLAIM_ROUNDS):
            claimed = None
            # One transaction per round: a fresh snapshot on every database.
            with self.transaction() as conn:
                project_id, name = self._workflow_project(conn, project)
                actor = _actor(conn, user_id, project_id)
                if not actor.has_role(*_QUEUE_MEMBERS[role]):
                    raise WorkflowPermissionError(
                        f"{actor.describe()} cannot take items as {role} in project {name!r}"
                    )
                mine = select(ItemRow).where(
                    _in_project(project_id), owner == user_id, ItemRow.stage == stage
                )
                if role == "annotator":
                    row = conn.execute(mine.where(_open_comments()).order_by(ItemRow.id)).first()
                    row = row or conn.execute(mine.order_by(ItemRow.id)).first()
                else:
                    row = conn.execute(mine.order_by(*_OLDEST_FIRST)).first()
                if row is not None:
                    return self._item(row)
                if role == "annotator":
                    free, order = _unlabeled(), (ItemRow.id,)
                else:  # oldest submission first (submitting sets stage_changed_at)
                    free, order = ItemRow.stage == "review", _OLDEST_FIRST
                candidates = list(
                    conn.execute(
                        select(ItemRow.id)
                        .where(_in_project(project_id), owner.is_(None), free)
                        .order_by(*order)
                        .limit(_CANDIDATES)
                    ).scalars()
                )
                if not candidates:
                    return None
                for item_id in candidates:
                    result = conn.execute(
                        update(ItemRow)
                        .where(ItemRow.id == item_id, owner.is_(None), ItemRow.stage == stage)
                        .values({owner.key: user_id})
                    )
                    if result.rowcount == 1:
                        claimed = item_id
                        break
            if claimed is not None:
                return self.get_item(claimed)
        raise StoreError(
            f"could not claim an item of project {project!r} after {_CLAIM_ROUNDS} rounds "
            "(many people are claiming at once); try again"
        )

    # ------------------------------------------------------------ stages
    def _move(
        self, conn: Connection, item_id: int, from_stage: str, values: dict[str, Any]
    ) -> None:
        result = conn.execute(
            update(ItemRow)
            .where(ItemRow.id == item_id, ItemRow.stage == from_stage)
            .values(stage_changed_at=utcnow(), **values)
        )
        if result.rowcount != 1:  # moved by someone else since it was read
            raise StageError(f"item {item_id} left stage {from_stage} meanwhile; reload it")

    def submit_item(self, item_id: int, user_id: int) -> Item:
        """Submit an item for review (stage ``annotation`` -> ``review``).

        Only its assignee or a manager (or admin) may. A reviewer who rejected it
        before keeps it: it comes back to their queue first.

        Raises:
            NotFoundError: No such item or user.
            StageError: The item is not in stage ``annotation``.
            WorkflowPermissionError: The user is neither its assignee nor a manager.
        """
        with self.transaction() as conn:
            row = self._item_row(conn, item_id)
            actor = _actor(conn, user_id, row.project_id)
            if row.stage != "annotation":
                raise StageError(f"item {item_id} is in stage {row.stage}, not annotation")
            if row.assignee_id != user_id and not actor.has_role("manager"):
                holder = f"user {row.assignee_id}" if row.assignee_id is not None else "nobody"
                raise WorkflowPermissionError(
                    f"item {item_id} is assigned to {holder}; only its assignee or a manager "
                    f"can submit it ({actor.describe()})"
                )
            self._move(conn, item_id, "annotation", {"stage": "review"})
        return self.get_item(item_id)

    def decide_review(
        self,
        item_id: int,
        user_id: int,
        decision: str,
        *,
        comment: str | None = None,
        instance_id: int | None = None,
        keypoint: int | None = None,
    ) -> Item:
        """Accept (-> ``done``) or reject (-> back to ``annotation``) an item in review.

        Rejecting needs ``comment``, which opens a thread on the item, or on
        ``instance_id`` and its ``keypoint`` (an index in the project's template).
        Accepting resolves the item's open threads (after adding ``comment``, if any).
        The item stays with its annotator, and with this reviewer for the next round.

        Raises:
            NotFoundError: No such item, user or instance.
            StageError: The item is not in stage ``review``.
            WorkflowPermissionError: The user is not a reviewer or manager of the project.
            StoreError: Unknown decision; a rejection without a comment; a bad
                instance or keypoint.
        """
        if decision not in DECISIONS:
            raise StoreError(f"decision {decision!r} is not one of {', '.join(DECISIONS)}")
        if decision == "reject" and (not isinstance(comment, str) or not comment.strip()):
            raise StoreError(
                f"comment: rejecting item {item_id} needs a comment saying what to fix"
            )
        with self.transaction() as conn:
            row = self._item_row(conn, item_id)
            actor = _actor(conn, user_id, row.project_id)
            if not actor.has_role("reviewer", "manager"):
                raise WorkflowPermissionError(
                    f"{actor.describe()} is not a reviewer of the project of item {item_id}"
                )
            if row.stage != "review":
                raise StageError(f"item {item_id} is in stage {row.stage}, not review")
            if comment is not None or instance_id is not None or keypoint is not None:
                insert_comment(
                    conn,
                    self._template_of_item(conn, item_id),
                    item_id,
                    user_id,
                    comment,
                    instance_id=instance_id,
                    keypoint=keypoint,
                )
            if decision == "accept":
                resolve_item_threads(conn, item_id, user_id)
            stage = "done" if decision == "accept" else "annotation"
            self._move(conn, item_id, "review", {"stage": stage, "reviewer_id": user_id})
        return self.get_item(item_id)
