"""Read queries for the web app: item listings with review counts, per-project counts.

These complement :class:`posekit.store.Workspace` with the aggregate queries a
browsing UI needs (one SQL statement per page instead of one per item). They use
the same engine and tables and are read-only.

Item filters are the item statuses of :mod:`posekit.statuses` (``new``,
``predicted``, ``reviewed``; the store keeps them settled on every write) plus
``all``. The 0.1.0 names ``unlabeled`` (no instance) and ``accepted`` (instances,
none predicted) are still accepted, derived from the instances, until the HTTP
API has switched (:data:`LEGACY_ITEM_FILTERS`).

Order ``confidence`` is the review queue: items by the lowest score among their
``predicted`` instances, lowest first; items without predictions come last.

The team workflow (:mod:`posekit.store.workflow`) adds filters by stage, by
assignee (a user id, or :data:`UNASSIGNED`) and by open comments, and
:func:`workflow_counts` for the grid's tabs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import aliased

from posekit.statuses import ITEM_STATUSES
from posekit.store.database import codepoint_order
from posekit.store.errors import NotFoundError, StoreError
from posekit.store.records import Project
from posekit.store.tables import (
    CommentRow,
    DatasetCountRow,
    DatasetRow,
    InstanceRow,
    ItemRow,
    ProjectRow,
    UserRow,
)
from posekit.store.workspace import Workspace

__all__ = [
    "ITEM_FILTERS",
    "ITEM_ORDERS",
    "LEGACY_ITEM_FILTERS",
    "UNASSIGNED",
    "ItemSummary",
    "dataset_item_counts",
    "get_project_by_id",
    "instance_item_ids",
    "item_summaries",
    "item_summary",
    "project_counts",
    "project_id_of_item",
    "workflow_counts",
]

#: Item filters: ``all`` or one item status (:data:`posekit.statuses.ITEM_STATUSES`).
ITEM_FILTERS = ("all", *ITEM_STATUSES)
#: The 0.1.0 filter names, derived from the instances: ``unlabeled`` (no instance),
#: ``accepted`` (instances, none predicted). Kept until the HTTP API uses ITEM_FILTERS.
LEGACY_ITEM_FILTERS = ("unlabeled", "accepted")
ITEM_ORDERS = ("name", "confidence")
#: The ``assignee`` filter value of items assigned to nobody.
UNASSIGNED = "none"
_STAGES = ("annotation", "review", "done")


@dataclass(frozen=True)
class ItemSummary:
    """An item with its instance counts.

    Attributes:
        status: The item status (:data:`posekit.statuses.ITEM_STATUSES`).
        num_instances: All instances of the item.
        num_predicted: Instances with status ``predicted``.
        min_score: Lowest ``score`` among the predicted instances, or None.
        has_media: False for items registered without an image file.
        stage: The workflow stage (``annotation``, ``review``, ``done``).
        assignee_id, assignee: The annotator (user id and username), or None.
        reviewer_id, reviewer: The reviewer who took it (user id and username), or None.
        open_comments: Unresolved comment threads on the item.
        num_rejected: Instances with status ``rejected`` (not labels: an item whose
            every instance was rejected counts no labeled person).
    """

    id: int
    dataset_id: int
    dataset: str
    file_name: str
    width: int
    height: int
    has_media: bool
    sha256: str | None
    num_instances: int
    num_predicted: int
    min_score: float | None
    status: str = "new"
    stage: str = "annotation"
    assignee_id: int | None = None
    assignee: str | None = None
    reviewer_id: int | None = None
    reviewer: str | None = None
    open_comments: int = 0
    num_rejected: int = 0

    @property
    def review_status(self) -> str:
        """The 0.1.0 API status: ``unlabeled``, ``predicted`` or ``accepted`` (derived
        from the instances). Use :attr:`status`; this goes when the API has switched."""
        if self.num_predicted:
            return "predicted"
        return "accepted" if self.num_instances else "unlabeled"


def get_project_by_id(ws: Workspace, project_id: int) -> Project:
    """The project with database id ``project_id``.

    Raises:
        NotFoundError: No such project.
    """
    with ws.engine.connect() as conn:
        name = conn.execute(
            select(ProjectRow.name).where(ProjectRow.id == project_id)
        ).scalar_one_or_none()
    if name is None:
        raise NotFoundError(f"project {project_id} does not exist")
    return ws.get_project(name)


def project_id_of_item(ws: Workspace, item_id: int) -> int:
    """Id of the project an item belongs to.

    Raises:
        NotFoundError: No such item.
    """
    with ws.engine.connect() as conn:
        project_id = conn.execute(
            select(DatasetRow.project_id)
            .join(ItemRow, ItemRow.dataset_id == DatasetRow.id)
            .where(ItemRow.id == item_id)
        ).scalar_one_or_none()
    if project_id is None:
        raise NotFoundError(f"item {item_id} does not exist")
    return int(project_id)


def project_counts(ws: Workspace) -> dict[int, tuple[int, int]]:
    """``project id -> (number of items, number of instances)`` for all projects.

    Read from the per-dataset counters the database keeps (``dataset_counts``,
    migration 0004): a few rows per project, however many instances there are.
    """
    query = (
        select(
            ProjectRow.id,
            func.coalesce(func.sum(DatasetCountRow.num_items), 0),
            func.coalesce(func.sum(DatasetCountRow.num_instances), 0),
        )
        .outerjoin(DatasetRow, DatasetRow.project_id == ProjectRow.id)
        .outerjoin(DatasetCountRow, DatasetCountRow.dataset_id == DatasetRow.id)
        .group_by(ProjectRow.id)
    )
    with ws.engine.connect() as conn:
        return {
            int(i): (int(n_items), int(n_instances))
            for i, n_items, n_instances in conn.execute(query)
        }


def dataset_item_counts(ws: Workspace, project_id: int) -> dict[int, int]:
    """``dataset id -> number of items`` for the datasets of a project (counters)."""
    query = (
        select(DatasetRow.id, func.coalesce(DatasetCountRow.num_items, 0))
        .outerjoin(DatasetCountRow, DatasetCountRow.dataset_id == DatasetRow.id)
        .where(DatasetRow.project_id == project_id)
    )
    with ws.engine.connect() as conn:
        return {int(k): int(v) for k, v in conn.execute(query).all()}


def _summary_query(project_id: int | None, item_id: int | None = None) -> tuple[Any, Any]:
    """``(query, stats subquery)`` selecting items with their instance counts."""
    is_predicted = InstanceRow.status == "predicted"
    stats = select(
        InstanceRow.item_id.label("item_id"),
        func.count(InstanceRow.id).label("num_instances"),
        func.sum(case((is_predicted, 1), else_=0)).label("num_predicted"),
        func.sum(case((InstanceRow.status == "rejected", 1), else_=0)).label("num_rejected"),
        func.min(case((is_predicted, InstanceRow.score), else_=None)).label("min_score"),
    ).group_by(InstanceRow.item_id)
    # Restrict the aggregate to the rows asked for: without this SQLite would
    # aggregate every instance of every project for one page.
    if item_id is not None:
        stats = stats.where(InstanceRow.item_id == item_id)
    elif project_id is not None:
        project_items = (
            select(ItemRow.id)
            .join(DatasetRow, DatasetRow.id == ItemRow.dataset_id)
            .where(DatasetRow.project_id == project_id)
        )
        stats = stats.where(InstanceRow.item_id.in_(project_items))
    stats = stats.subquery()
    threads = select(
        CommentRow.item_id.label("item_id"), func.count(CommentRow.id).label("open_comments")
    ).where(CommentRow.parent_id.is_(None), CommentRow.resolved_at.is_(None))
    if item_id is not None:
        threads = threads.where(CommentRow.item_id == item_id)
    threads = threads.group_by(CommentRow.item_id).subquery()
    assignee = aliased(UserRow)
    reviewer = aliased(UserRow)
    query = (
        select(
            ItemRow.id,
            ItemRow.dataset_id,
            DatasetRow.name.label("dataset"),
            ItemRow.file_name,
            ItemRow.width,
            ItemRow.height,
            ItemRow.media_path,
            ItemRow.sha256,
            ItemRow.status,
            func.coalesce(stats.c.num_instances, 0).label("num_instances"),
            func.coalesce(stats.c.num_predicted, 0).label("num_predicted"),
            func.coalesce(stats.c.num_rejected, 0).label("num_rejected"),
            stats.c.min_score,
            ItemRow.stage,
            ItemRow.assignee_id,
            assignee.username.label("assignee"),
            ItemRow.reviewer_id,
            reviewer.username.label("reviewer"),
            func.coalesce(threads.c.open_comments, 0).label("open_comments"),
        )
        .join(DatasetRow, DatasetRow.id == ItemRow.dataset_id)
        .outerjoin(stats, stats.c.item_id == ItemRow.id)
        .outerjoin(threads, threads.c.item_id == ItemRow.id)
        .outerjoin(assignee, assignee.id == ItemRow.assignee_id)
        .outerjoin(reviewer, reviewer.id == ItemRow.reviewer_id)
    )
    return query, stats


def _summary(row: Any) -> ItemSummary:
    return ItemSummary(
        id=int(row.id),
        dataset_id=int(row.dataset_id),
        dataset=row.dataset,
        file_name=row.file_name,
        width=int(row.width),
        height=int(row.height),
        has_media=row.media_path is not None,
        sha256=row.sha256,
        num_instances=int(row.num_instances),
        num_predicted=int(row.num_predicted),
        min_score=None if row.min_score is None else float(row.min_score),
        status=row.status,
        stage=row.stage,
        assignee_id=row.assignee_id,
        assignee=row.assignee,
        reviewer_id=row.reviewer_id,
        reviewer=row.reviewer,
        open_comments=int(row.open_comments),
        num_rejected=int(row.num_rejected),
    )


def item_summaries(
    ws: Workspace,
    project_id: int,
    *,
    dataset: str | None = None,
    filter: str = "all",
    order: str = "name",
    offset: int = 0,
    limit: int | None = 50,
    stage: str | None = None,
    assignee: int | str | None = None,
    open_comments: bool | None = None,
) -> tuple[int, list[ItemSummary]]:
    """One page of a project's items with their instance counts.

    Args:
        ws: The workspace.
        project_id: Project database id.
        dataset: Only the dataset of this name.
        filter: One of :data:`ITEM_FILTERS` (see the module docstring).
        order: ``name`` (file name, then id) or ``confidence`` (lowest predicted
            score first, items without predictions last).
        offset: Items to skip.
        limit: At most this many items (None: all).
        stage: Only items in this workflow stage.
        assignee: Only items assigned to this user id, or (:data:`UNASSIGNED`) to nobody.
        open_comments: True: only items with an unresolved comment thread; False:
            only items without.

    Returns:
        ``(total matching items, page)``.

    Raises:
        StoreError: Unknown filter or order (the message lists the valid ones).
        NotFoundError: The project or dataset does not exist.
    """
    if filter not in ITEM_FILTERS and filter not in LEGACY_ITEM_FILTERS:
        raise StoreError(f"filter {filter!r} is not one of {', '.join(ITEM_FILTERS)}")
    if order not in ITEM_ORDERS:
        raise StoreError(f"order {order!r} is not one of {', '.join(ITEM_ORDERS)}")
    if stage is not None and stage not in _STAGES:
        raise StoreError(f"stage {stage!r} is not one of {', '.join(_STAGES)}")
    if isinstance(assignee, str) and assignee != UNASSIGNED:
        raise StoreError(f"assignee {assignee!r} is not a user id or {UNASSIGNED!r}")
    project = get_project_by_id(ws, project_id)
    query, stats = _summary_query(project_id)
    query = query.where(DatasetRow.project_id == project_id)
    if dataset is not None:
        query = query.where(DatasetRow.name == ws.get_dataset(project, dataset).name)
    num_instances = func.coalesce(stats.c.num_instances, 0)
    num_predicted = func.coalesce(stats.c.num_predicted, 0)
    if filter in ITEM_STATUSES:
        query = query.where(ItemRow.status == filter)
    elif filter == "unlabeled":
        query = query.where(num_instances == 0)
    elif filter == "accepted":
        query = query.where(num_instances > 0, num_predicted == 0)
    if stage is not None:
        query = query.where(ItemRow.stage == stage)
    if assignee == UNASSIGNED:
        query = query.where(ItemRow.assignee_id.is_(None))
    elif assignee is not None:
        query = query.where(ItemRow.assignee_id == int(assignee))
    if open_comments is not None:
        has_open = (
            select(CommentRow.id)
            .where(
                CommentRow.item_id == ItemRow.id,
                CommentRow.parent_id.is_(None),
                CommentRow.resolved_at.is_(None),
            )
            .exists()
        )
        query = query.where(has_open if open_comments else ~has_open)
    if order == "name":
        ordered = query.order_by(codepoint_order(ItemRow.file_name), ItemRow.id)
    else:
        # "IS NULL" first key instead of NULLS LAST: portable to every database.
        ordered = query.order_by(
            stats.c.min_score.is_(None),
            stats.c.min_score,
            codepoint_order(ItemRow.file_name),
            ItemRow.id,
        )
    ordered = ordered.offset(offset).limit(limit)
    with ws.engine.connect() as conn:
        total = int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())
        rows = conn.execute(ordered).all()
    return total, [_summary(r) for r in rows]


def item_summary(ws: Workspace, item_id: int) -> ItemSummary:
    """The summary of one item.

    Raises:
        NotFoundError: No such item.
    """
    query, _ = _summary_query(None, item_id)
    with ws.engine.connect() as conn:
        row = conn.execute(query.where(ItemRow.id == item_id)).first()
    if row is None:
        raise NotFoundError(f"item {item_id} does not exist")
    return _summary(row)


def instance_item_ids(ws: Workspace, instance_ids: Sequence[int]) -> dict[int, int]:
    """``instance id -> item id`` for the instances that exist."""
    ids = [int(i) for i in instance_ids]
    out: dict[int, int] = {}
    with ws.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = conn.execute(
                select(InstanceRow.id, InstanceRow.item_id).where(InstanceRow.id.in_(chunk))
            ).all()
            out.update({int(a): int(b) for a, b in rows})
    return out


def workflow_counts(ws: Workspace, project_id: int, user_id: int | None = None) -> dict[str, int]:
    """The grid's workflow counts of a project: items per stage (``annotation``,
    ``review``, ``done``), ``unassigned`` (in annotation, assigned to nobody),
    ``open_comments`` (items with an unresolved thread); with ``user_id`` also that
    user's queue: ``mine`` (their items in annotation), ``to_fix`` (those with open
    comments) and ``my_reviews`` (items in review they took).

    Raises:
        NotFoundError: No such project.
    """
    get_project_by_id(ws, project_id)
    in_project = ItemRow.dataset_id.in_(
        select(DatasetRow.id).where(DatasetRow.project_id == project_id)
    )
    has_open = (
        select(CommentRow.id)
        .where(
            CommentRow.item_id == ItemRow.id,
            CommentRow.parent_id.is_(None),
            CommentRow.resolved_at.is_(None),
        )
        .exists()
    )
    in_annotation = ItemRow.stage == "annotation"

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    columns = {stage: count(ItemRow.stage == stage) for stage in _STAGES}
    columns["unassigned"] = count(in_annotation & ItemRow.assignee_id.is_(None))
    columns["open_comments"] = count(has_open)
    me = literal(user_id if user_id is not None else -1)
    columns["mine"] = count(in_annotation & (ItemRow.assignee_id == me))
    columns["to_fix"] = count(in_annotation & (ItemRow.assignee_id == me) & has_open)
    columns["my_reviews"] = count((ItemRow.stage == "review") & (ItemRow.reviewer_id == me))
    query = select(*(c.label(name) for name, c in columns.items())).where(in_project)
    with ws.engine.connect() as conn:
        row = conn.execute(query).one()
    out = {name: int(getattr(row, name)) for name in columns}
    if user_id is None:
        for name in ("mine", "to_fix", "my_reviews"):
            out.pop(name)
    return out
