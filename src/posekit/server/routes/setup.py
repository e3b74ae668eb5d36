"""Project setup: validating and changing templates, the models that can run, and
project settings (the AI-assist model)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query

from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.setup_schemas import (
    ModelOut,
    ProjectSettingsIn,
    ProjectSettingsOut,
    TemplateChangeIn,
    TemplateChangeOut,
    TemplateDefinitionOut,
    TemplateValidateIn,
    TemplateValidationOut,
    problem_of,
)
from posekit.store.queries import get_project_by_id

router = APIRouter(prefix="/api", tags=["setup"], route_class=JSONRoute)


def _definition(template, version=None, layout=None) -> TemplateDefinitionOut:
    return TemplateDefinitionOut(
        definition=template.to_dict(),
        template_version=version,
        layout=layout or None,
        yaml=template.to_yaml(),
    )


@router.post(
    "/templates/validate",
    response_model=TemplateValidationOut,
    tags=["templates"],
    dependencies=[allow(Permission.USER)],
)
def validate_template(body: TemplateValidateIn) -> TemplateValidationOut:
    """Check a template (the YAML/JSON layout) as ``posekit templates validate`` does:
    ``valid``, or the error naming the bad element and where it is (``problem``)."""
    import yaml

    from posekit.skeleton import Skeleton, SkeletonError

    data: object = body.template
    if body.text is not None:
        try:
            data = yaml.safe_load(body.text)  # JSON is YAML too
        except yaml.YAMLError as exc:
            error = f"template: not valid YAML or JSON: {exc}"
            return TemplateValidationOut(valid=False, error=error, problem=problem_of(""))
    try:
        template = Skeleton.from_dict(data, source="template")  # type: ignore[arg-type]
    except SkeletonError as exc:
        problem = problem_of(str(exc), data)
        return TemplateValidationOut(valid=False, error=str(exc), problem=problem)
    return TemplateValidationOut(valid=True, definition=template.to_dict(), yaml=template.to_yaml())


@router.get(
    "/templates/{name}/definition",
    response_model=TemplateDefinitionOut,
    responses=errors(404),
    tags=["templates"],
    dependencies=[allow(Permission.USER)],
)
def preset_definition(name: str) -> TemplateDefinitionOut:
    """A preset in the YAML/JSON layout (a starting point for the template editor)."""
    from posekit.skeleton import SkeletonError, get_preset
    from posekit.store import NotFoundError

    try:
        return _definition(get_preset(name))
    except SkeletonError as exc:
        raise NotFoundError(str(exc)) from None


@router.get(
    "/projects/{project_id}/template",
    response_model=TemplateDefinitionOut,
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def project_template(project_id: DatabaseId, state: State) -> TemplateDefinitionOut:
    """A project's template in the YAML/JSON layout, its version and the editor layout."""
    project = get_project_by_id(state.ws, project_id)
    layout = project.settings.get("template_layout")
    return _definition(project.template, project.template_version, layout)


def _change(project_id: int, body: TemplateChangeIn, state: State, dry_run: bool, author_id=None):
    from posekit.skeleton import Skeleton

    project = get_project_by_id(state.ws, project_id)
    template = Skeleton.from_dict(body.template, source="template")
    return project, state.ws.change_template(
        project,
        template,
        renames=body.renames,
        expected_template_version=body.template_version,
        drop_labeled=body.drop_labeled,
        dry_run=dry_run,
        author_id=author_id,
    )


@router.post(
    "/projects/{project_id}/template/preview",
    response_model=TemplateChangeOut,
    responses=errors(404, 409, 422),
    dependencies=[allow(Permission.MANAGE)],
)
def preview_template_change(
    project_id: DatabaseId, body: TemplateChangeIn, state: State
) -> TemplateChangeOut:
    """What changing the template would do: renamed, added and removed keypoints, the
    instances migrated and the labeled points a removal drops. Writes nothing."""
    _, change = _change(project_id, body, state, dry_run=True)
    return TemplateChangeOut.model_validate(change)


@router.put(
    "/projects/{project_id}/template",
    response_model=TemplateChangeOut,
    responses=errors(404, 409, 422),
    dependencies=[allow(Permission.MANAGE)],
)
def change_template(
    project_id: DatabaseId, body: TemplateChangeIn, state: State, user: CurrentUser
) -> TemplateChangeOut:
    """Change a project's template and migrate every instance, in one transaction
    (:meth:`posekit.store.Workspace.change_template`): renamed points keep their data,
    added ones are not labeled, removed ones are dropped (only with ``drop_labeled``
    when labeled; they are written to ``backup`` first), every instance's version is
    incremented (editors holding the old layout get 409). A stale
    ``template_version`` is a 409 and changes nothing."""
    from posekit.server.routes.projects import _detail
    from posekit.store.project_settings import update_project_settings

    project, change = _change(project_id, body, state, dry_run=False, author_id=user.id)
    state.forget_template(project.id)
    if body.layout is not None:
        update_project_settings(state.ws, project, {"template_layout": body.layout})
    out = TemplateChangeOut.model_validate(change)
    out.project_detail = _detail(state, project.id)
    return out


@router.get(
    "/models", response_model=list[ModelOut], tags=["models"], dependencies=[allow(Permission.USER)]
)
def list_models(
    state: State,
    task: Literal["detector", "pose"] | None = Query(None, description="only this task"),
) -> list[ModelOut]:
    """The models to choose from: the bundled offline default, checkpoints in the
    server's model folders (``POSEKIT_MODEL_DIRS``) and the local Hugging Face cache,
    and known checkpoints that are not downloaded. ``available`` is false (with a
    ``reason``) for those that cannot run here: never offer them."""
    from posekit.models.available import available_models

    models = available_models(state.settings.model_dirs)
    return [ModelOut.model_validate(m) for m in models if task is None or m.task == task]


def _settings_out(project) -> ProjectSettingsOut:
    from posekit.models.available import DEFAULT_MODEL

    settings = project.settings
    return ProjectSettingsOut(
        assist_model=settings.get("assist_model") or DEFAULT_MODEL,
        autolabel=settings.get("autolabel") or {},
        template_layout=settings.get("template_layout") or {},
    )


@router.get(
    "/projects/{project_id}/settings",
    response_model=ProjectSettingsOut,
    responses=errors(404),
    dependencies=[allow(Permission.VIEW)],
)
def get_settings(project_id: DatabaseId, state: State) -> ProjectSettingsOut:
    """A project's settings (defaults filled in)."""
    return _settings_out(get_project_by_id(state.ws, project_id))


@router.patch(
    "/projects/{project_id}/settings",
    response_model=ProjectSettingsOut,
    responses=errors(404, 422),
    dependencies=[allow(Permission.MANAGE)],
)
def patch_settings(
    project_id: DatabaseId, body: ProjectSettingsIn, state: State
) -> ProjectSettingsOut:
    """Change some settings (the fields sent; null resets one)."""
    from posekit.store.project_settings import update_project_settings

    project = get_project_by_id(state.ws, project_id)
    changes = body.model_dump(include=body.model_fields_set)
    return _settings_out(update_project_settings(state.ws, project, changes))
