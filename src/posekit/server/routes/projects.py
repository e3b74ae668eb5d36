"""Projects, datasets and the item listing."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.schemas import (
    DatasetCreate,
    DatasetOut,
    ItemOut,
    ItemPageOut,
    ProjectCreate,
    ProjectDetailOut,
    ProjectOut,
    TemplateOut,
)
from posekit.statuses import ITEM_STATUSES
from posekit.store import StoreError
from posekit.store.queries import (
    dataset_item_counts,
    get_project_by_id,
    item_summaries,
    project_counts,
)

router = APIRouter(prefix="/api", tags=["projects"], route_class=JSONRoute)

ItemFilter = Literal[("all", *ITEM_STATUSES)]  # type: ignore[valid-type]


def _detail(state: State, project_id: DatabaseId) -> ProjectDetailOut:
    project = get_project_by_id(state.ws, project_id)
    counts = project_counts(state.ws).get(project.id, (0, 0))
    per_dataset = dataset_item_counts(state.ws, project.id)
    return ProjectDetailOut(
        id=project.id,
        name=project.name,
        template_name=project.template.name,
        num_items=counts[0],
        num_instances=counts[1],
        template=TemplateOut.of(project.template),
        template_version=project.template_version,
        assist_model=project.settings.get("assist_model") or "blazepose",
        datasets=[
            DatasetOut(id=d.id, name=d.name, num_items=per_dataset.get(d.id, 0))
            for d in state.ws.list_datasets(project)
        ],
    )


@router.get("/projects", response_model=list[ProjectOut], dependencies=[allow(Permission.USER)])
def list_projects(state: State, user: CurrentUser) -> list[ProjectOut]:
    """The projects you are a member of (an admin: all), by name, with item and
    instance counts."""
    counts = project_counts(state.ws)
    mine = None if user.is_admin else state.ws.roles_of(user.id)
    return [
        ProjectOut(
            id=p.id,
            name=p.name,
            template_name=p.template.name,
            num_items=counts.get(p.id, (0, 0))[0],
            num_instances=counts.get(p.id, (0, 0))[1],
        )
        for p in state.ws.list_projects()
        if mine is None or p.id in mine
    ]


@router.post(
    "/projects",
    response_model=ProjectDetailOut,
    status_code=201,
    responses=errors(409, 422),
    dependencies=[allow(Permission.ADMIN)],
)
def create_project(body: ProjectCreate, state: State) -> ProjectDetailOut:
    """Create a project from a preset (``template``) or a custom template
    (``template_definition``, the YAML/JSON layout as an object). Its first dataset,
    ``default``, is created with it."""
    from posekit.skeleton import Skeleton, get_preset

    if (body.template is None) == (body.template_definition is None):
        raise StoreError("give exactly one of 'template' (preset name) or 'template_definition'")
    if body.template is not None:
        template = get_preset(body.template)
    else:
        template = Skeleton.from_dict(body.template_definition or {}, source="template_definition")
    project = state.ws.create_project(body.name, template)
    state.ws.get_or_create_dataset(project, "default")
    return _detail(state, project.id)


@router.get(
    "/projects/{project_id}",
    response_model=ProjectDetailOut,
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def get_project(project_id: DatabaseId, state: State) -> ProjectDetailOut:
    """A project with its template and datasets."""
    return _detail(state, project_id)


@router.post(
    "/projects/{project_id}/datasets",
    response_model=DatasetOut,
    status_code=201,
    responses=errors(404, 409, 422),
    dependencies=[allow(Permission.MANAGE)],
)
def create_dataset(project_id: DatabaseId, body: DatasetCreate, state: State) -> DatasetOut:
    """Create a dataset in a project."""
    project = get_project_by_id(state.ws, project_id)
    dataset = state.ws.create_dataset(project, body.name)
    return DatasetOut(id=dataset.id, name=dataset.name, num_items=0)


@router.get(
    "/projects/{project_id}/items",
    response_model=ItemPageOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.VIEW)],
)
def list_items(
    project_id: DatabaseId,
    state: State,
    dataset: str | None = Query(None, description="only this dataset (name)"),
    filter: Annotated[
        ItemFilter,
        Query(
            description="all, or an item status (posekit.statuses.ITEM_STATUSES): new: nobody "
            "looked at it yet; predicted: model output waits for review; reviewed: no "
            "prediction left",
        ),
    ] = "all",
    order: Literal["name", "confidence"] = Query(
        "name", description="confidence: lowest predicted score first (the review queue)"
    ),
    offset: int = Query(0, ge=0),
    limit: int = Query(50, ge=1, le=1000),
    stage: Literal["annotation", "review", "done"] | None = Query(
        None, description="only items in this workflow stage"
    ),
    assignee: str | None = Query(
        None, max_length=100, description="only items assigned to this username, or 'none'"
    ),
    open_comments: bool | None = Query(
        None, description="true: only items with unresolved comments; false: only without"
    ),
) -> ItemPageOut:
    """One page of a project's items (filters combine)."""
    from posekit.server.routes.workflow import user_id_of
    from posekit.store.queries import UNASSIGNED

    assignee_filter: int | str | None = assignee
    if assignee is not None and assignee != UNASSIGNED:
        assignee_filter = user_id_of(state, assignee, "assignee")
    total, page = item_summaries(
        state.ws,
        project_id,
        dataset=dataset,
        filter=filter,
        order=order,
        offset=offset,
        limit=limit,
        stage=stage,
        assignee=assignee_filter,
        open_comments=open_comments,
    )
    return ItemPageOut(total=total, items=[ItemOut.model_validate(s) for s in page])
