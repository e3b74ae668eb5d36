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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from posekit.statuses import ITEM_STATUSES
from posekit.store.errors import NotFoundError, StoreError
from posekit.store.records import Project
from posekit.store.tables import DatasetCountRow, DatasetRow, InstanceRow, ItemRow, ProjectRow
from posekit.store.workspace import Workspace

__all__ = [
    "ITEM_FILTERS",
    "ITEM_ORDERS",
    "LEGACY_ITEM_FILTERS",
    "ItemSummary",
    "dataset_item_counts",
    "get_project_by_id",
    "instance_item_ids",
    "item_summaries",
    "item_summary",
    "project_counts",
    "project_id_of_item",
]

#: Item filters: ``all`` or one item status (:data:`posekit.statuses.ITEM_STATUSES`).
ITEM_FILTERS = ("all", *ITEM_STATUSES)
#: The 0.1.0 filter names, derived from the instances: ``unlabeled`` (no instance),
#: ``accepted`` (instances, none predicted). Kept until the HTTP API uses ITEM_FILTERS.
LEGACY_ITEM_FILTERS = ("unlabeled", "accepted")
ITEM_ORDERS = ("name", "confidence")


@dataclass(frozen=True)
class ItemSummary:
    """An item with its instance counts.

    Attributes:
        status: The item status (:data:`posekit.statuses.ITEM_STATUSES`).
        num_instances: All instances of the item.
        num_predicted: Instances with status ``predicted``.
        min_score: Lowest ``score`` among the predicted instances, or None.
        has_media: False for items registered without an image file.
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
            stats.c.min_score,
        )
        .join(DatasetRow, DatasetRow.id == ItemRow.dataset_id)
        .outerjoin(stats, stats.c.item_id == ItemRow.id)
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
    if order == "name":
        ordered = query.order_by(ItemRow.file_name, ItemRow.id)
    else:
        # "IS NULL" first key instead of NULLS LAST: portable to every database.
        ordered = query.order_by(
            stats.c.min_score.is_(None), stats.c.min_score, ItemRow.file_name, ItemRow.id
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
