"""Auto-label jobs: start, progress, cancel (state kept in server memory only)."""

from __future__ import annotations

from fastapi import APIRouter

from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.schemas import JobCreate, JobOut
from posekit.store.queries import get_project_by_id

router = APIRouter(prefix="/api", tags=["jobs"], route_class=JSONRoute)


@router.post(
    "/projects/{project_id}/jobs",
    response_model=JobOut,
    status_code=202,
    responses=errors(404, 409, 422, 429),
)
def start_job(project_id: DatabaseId, body: JobCreate, state: State) -> JobOut:
    """Queue an auto-label job. 409 if the project has a queued or running job, 429
    if the queue is full. Poll ``GET /api/jobs/{id}`` for progress (done of total)."""
    project = get_project_by_id(state.ws, project_id)
    if body.dataset is not None:
        state.ws.get_dataset(project, body.dataset)  # 404 now rather than a failed job
    return JobOut.model_validate(state.jobs.submit(project, body.kind, body.options()))


@router.get("/projects/{project_id}/jobs", response_model=list[JobOut], responses=errors(404))
def list_project_jobs(project_id: DatabaseId, state: State) -> list[JobOut]:
    """Jobs of a project, newest first."""
    get_project_by_id(state.ws, project_id)
    return [JobOut.model_validate(j) for j in state.jobs.list(project_id)]


@router.get("/jobs/{job_id}", response_model=JobOut, responses=errors(404))
def get_job(job_id: DatabaseId, state: State) -> JobOut:
    """A job's status and progress."""
    return JobOut.model_validate(state.jobs.get(job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, responses=errors(404))
def cancel_job(job_id: DatabaseId, state: State) -> JobOut:
    """Cancel a job: a queued one at once, a running one after its current batch
    (its status turns ``cancelled`` then)."""
    return JobOut.model_validate(state.jobs.cancel(job_id))
