"""Auto-label jobs: start, progress, cancel (state kept in server memory only)."""

from __future__ import annotations

from fastapi import APIRouter

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.schemas import JobCreate, JobOut
from posekit.store.queries import get_project_by_id

router = APIRouter(prefix="/api", tags=["jobs"], route_class=JSONRoute)


@router.post(
    "/projects/{project_id}/jobs",
    response_model=JobOut,
    status_code=202,
    responses=errors(404, 409, 422, 429),
    dependencies=[allow(Permission.MANAGE)],
)
def start_job(project_id: DatabaseId, body: JobCreate, state: State, user: CurrentUser) -> JobOut:
    """Queue an auto-label job. 409 if the project has a queued or running job, 429
    if the queue is full. Poll ``GET /api/jobs/{id}`` for progress (done of total)."""
    project = get_project_by_id(state.ws, project_id)
    if body.dataset is not None:
        state.ws.get_dataset(project, body.dataset)  # 404 now rather than a failed job
    job = state.jobs.submit(project, body.kind, body.options(), author_id=user.id)
    return JobOut.model_validate(job)


@router.get(
    "/projects/{project_id}/jobs",
    response_model=list[JobOut],
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def list_project_jobs(project_id: DatabaseId, state: State) -> list[JobOut]:
    """Jobs of a project, newest first."""
    get_project_by_id(state.ws, project_id)
    return [JobOut.model_validate(j) for j in state.jobs.list(project_id)]


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def get_job(job_id: DatabaseId, state: State) -> JobOut:
    """A job's status and progress."""
    return JobOut.model_validate(state.jobs.get(job_id))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses=errors(404),
    dependencies=[allow(Permission.MANAGE)],
)
def cancel_job(job_id: DatabaseId, state: State) -> JobOut:
    """Cancel a job: a queued one at once, a running one after its current batch
    (its status turns ``cancelled`` then)."""
    return JobOut.model_validate(state.jobs.cancel(job_id))
