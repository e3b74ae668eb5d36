"""Auto-label jobs as records (``jobs`` table, migration ``0005``): what was asked
(the options) and how it ended, kept after the server restarts.

The server's job queue (:mod:`posekit.server.jobs`) runs the jobs; this module only
stores them: :func:`record_job` when one is submitted (its id is the job's id),
:func:`finish_job` when it ends, :func:`list_job_records` to show them again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from posekit.store.database import retrying
from posekit.store.errors import NotFoundError
from posekit.store.tables import JobRow, utcnow

if TYPE_CHECKING:
    from posekit.store.workspace import Workspace

__all__ = ["JobRecord", "finish_job", "get_job_record", "list_job_records", "record_job"]

_MAX_ERROR = 4000


@dataclass(frozen=True)
class JobRecord:
    """A stored job: ``options`` as :meth:`AutolabelOptions.to_dict` wrote them."""

    id: int
    project_id: int
    kind: str
    status: str
    options: dict[str, Any]
    error: str | None
    device: str | None
    processed: int
    instances: int
    skipped: int
    created_at: datetime
    finished_at: datetime | None
    failures: list[tuple[str, str]] = field(default_factory=list)


def _record(row: Any) -> JobRecord:
    return JobRecord(
        id=row.id,
        project_id=row.project_id,
        kind=row.kind,
        status=row.status,
        options=dict(row.options or {}),
        error=row.error,
        device=row.device,
        processed=row.processed,
        instances=row.instances,
        skipped=row.skipped,
        created_at=row.created_at,
        finished_at=row.finished_at,
        failures=[(str(a), str(b)) for a, b in (row.failures or [])],
    )


@retrying
def record_job(
    ws: Workspace, project_id: int, kind: str, options: Mapping[str, Any], status: str = "queued"
) -> int:
    """Store a submitted job; returns its id."""
    with ws.transaction() as conn:
        result = conn.execute(
            insert(JobRow).values(
                project_id=project_id,
                kind=kind,
                status=status,
                options=dict(options),
                created_at=utcnow(),
            )
        )
        return int(result.inserted_primary_key[0])


@retrying
def finish_job(
    ws: Workspace,
    job_id: int,
    *,
    status: str,
    error: str | None = None,
    device: str | None = None,
    processed: int = 0,
    instances: int = 0,
    skipped: int = 0,
    failures: Sequence[tuple[str, str]] = (),
) -> None:
    """Store how a job ended."""
    with ws.transaction() as conn:
        conn.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(
                status=status,
                error=None if error is None else error[:_MAX_ERROR],
                device=device,
                processed=processed,
                instances=instances,
                skipped=skipped,
                failures=[list(f) for f in failures[:1000]] or None,
                finished_at=utcnow(),
            )
        )


def get_job_record(ws: Workspace, job_id: int) -> JobRecord:
    """One stored job; ``NotFoundError`` naming it if unknown."""
    with ws.engine.connect() as conn:
        row = conn.execute(select(JobRow).where(JobRow.id == job_id)).first()
    if row is None:
        raise NotFoundError(f"job {job_id} does not exist")
    return _record(row)


def list_job_records(ws: Workspace, project_id: int | None = None) -> list[JobRecord]:
    """Stored jobs (of one project), newest first."""
    query = select(JobRow).order_by(JobRow.id.desc())
    if project_id is not None:
        query = query.where(JobRow.project_id == project_id)
    with ws.engine.connect() as conn:
        return [_record(r) for r in conn.execute(query.limit(500)).all()]
