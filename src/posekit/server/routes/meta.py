"""Health, keypoint templates and the file formats."""

from __future__ import annotations

from fastapi import APIRouter

from posekit.server.authz import Permission, allow
from posekit.server.deps import JSONRoute, errors
from posekit.server.schemas import FormatOut, HealthOut, TemplateOut, TemplateSummaryOut
from posekit.store import NotFoundError

router = APIRouter(prefix="/api", tags=["meta"], route_class=JSONRoute)


@router.get("/health", response_model=HealthOut, dependencies=[allow(Permission.PUBLIC)])
def health() -> HealthOut:
    """Liveness check with the posekit version."""
    from posekit import __version__

    return HealthOut(status="ok", version=__version__)


@router.get(
    "/templates",
    response_model=list[TemplateSummaryOut],
    tags=["templates"],
    dependencies=[allow(Permission.USER)],
)
def list_templates() -> list[TemplateSummaryOut]:
    """The shipped template presets."""
    from posekit.skeleton import get_preset, list_presets

    out = []
    for name in list_presets():
        preset = get_preset(name)
        out.append(
            TemplateSummaryOut(
                name=name, display_name=preset.display_name, num_keypoints=preset.num_keypoints
            )
        )
    return out


@router.get(
    "/templates/{name}",
    response_model=TemplateOut,
    responses=errors(404),
    tags=["templates"],
    dependencies=[allow(Permission.USER)],
)
def get_template(name: str) -> TemplateOut:
    """One preset template."""
    from posekit.skeleton import SkeletonError, get_preset

    try:
        return TemplateOut.of(get_preset(name))
    except SkeletonError as exc:
        raise NotFoundError(str(exc)) from None


@router.get(
    "/formats",
    response_model=list[FormatOut],
    tags=["formats"],
    dependencies=[allow(Permission.USER)],
)
def list_formats() -> list[FormatOut]:
    """The dataset file formats (the format table, :mod:`posekit.formats.registry`):
    what each carries, whether it can be imported (``can_read``) and exported
    (``can_write``), and the instance statuses an export writes by default."""
    from posekit.formats.registry import FORMATS

    return [FormatOut.model_validate(spec) for spec in FORMATS.values()]
