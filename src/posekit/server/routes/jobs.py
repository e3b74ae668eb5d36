"""Auto-label jobs: start, progress, cancel (state kept in server memory only)."""

from __future__ import annotations

from fastapi import APIRouter

from posekit.server.jobs import Job
from posekit.server.routes.common import State, errors
from posekit.server.schemas import JobCreate, JobOut
from posekit.store.queries import get_project_by_id

router = APIRouter(prefix="/api", tags=["jobs"])


def job_out(job: Job) -> JobOut:
    """The API shape of a job snapshot."""
    return JobOut(
        id=job.id,
        project_id=job.project_id,
        kind=job.kind,
        status=job.status,  # type: ignore[arg-type]
        done=job.done,
        total=job.total,
        failures=job.failures,
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        device=job.device,
        processed=job.processed,
        instances=job.instances,
        skipped=job.skipped,
    )


@router.post(
    "/projects/{project_id}/jobs",
    response_model=JobOut,
    status_code=202,
    responses=errors(404, 409, 422, 429),
)
def start_job(project_id: int, body: JobCreate, state: State) -> JobOut:
    """Queue an auto-label job. 409 if the project has a queued or running job, 429
    if the queue is full. Poll ``GET /api/jobs/{id}`` for progress (done of total)."""
    project = get_project_by_id(state.ws, project_id)
    if body.dataset is not None:
        state.ws.get_dataset(project, body.dataset)  # 404 now rather than a failed job
    options = body.model_dump(exclude={"kind"})
    return job_out(state.jobs.submit(project, body.kind, options))


@router.get("/projects/{project_id}/jobs", response_model=list[JobOut], responses=errors(404))
def list_project_jobs(project_id: int, state: State) -> list[JobOut]:
    """Jobs of a project, newest first."""
    get_project_by_id(state.ws, project_id)
    return [job_out(j) for j in state.jobs.list(project_id)]


@router.get("/jobs/{job_id}", response_model=JobOut, responses=errors(404))
def get_job(job_id: int, state: State) -> JobOut:
    """A job's status and progress."""
    return job_out(state.jobs.get(job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses=errors(404))
def cancel_job(job_id: int, state: State) -> JobOut:
    """Cancel a job: a queued one at once, a running one after its current batch
    (its status turns ``cancelled`` then)."""
    return job_out(state.jobs.cancel(job_id))
