"""Request and response schemas of project setup: template validation and changes,
the models that can run, project settings."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from posekit.server.schemas import LibraryModel, ProjectDetailOut

__all__ = [
    "ModelOut",
    "ProjectSettingsIn",
    "ProjectSettingsOut",
    "TemplateChangeIn",
    "TemplateChangeOut",
    "TemplateDefinitionOut",
    "TemplateProblem",
    "TemplateValidateIn",
    "TemplateValidationOut",
    "problem_of",
]


class TemplateProblem(BaseModel):
    """Where a template error is: the element kind and its index or keypoint name."""

    kind: Literal[
        "template", "name", "keypoint", "edge", "flip_pair", "sigma", "colour", "derived",
        "alias",
    ]  # fmt: skip
    index: int | None = None
    keypoint: str | None = None


_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"keypoint #(\d+)", "keypoint"),
    (r"duplicate keypoint name '([^']+)'", "keypoint"),
    (r"edge colour #(\d+)", "colour"),
    (r"keypoint colour #(\d+)", "colour"),
    (r"colour of '([^']+)'", "colour"),
    (r"edge #(\d+)", "edge"),
    (r"flip pair #(\d+)", "flip_pair"),
    (r"flip pairs are not symmetric: '([^']+)'", "flip_pair"),
    (r"sigma for '([^']+)'", "sigma"),
    (r"sigmas", "sigma"),
    (r"derived keypoint '([^']+)'", "derived"),
    (r"aliases", "alias"),
    (r"'name'", "name"),
    (r"'keypoints' is empty", "keypoint"),
)


def _bad_pair(pairs: Any, names: set[str], symmetric: bool) -> int | None:
    """Index of the first malformed pair (unknown name, self pair, not symmetric)."""
    if not isinstance(pairs, list):
        return None
    partner: dict[str, str] = {}
    for index, pair in enumerate(pairs):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            return index
        a, b = pair
        if a not in names or b not in names or a == b:
            return index
        if symmetric:
            for x, y in ((a, b), (b, a)):
                if partner.get(x, y) != y:
                    return index
                partner[x] = y
    return None


def problem_of(message: str, definition: Any = None) -> TemplateProblem:
    """The element a :class:`posekit.skeleton.SkeletonError` message names: its kind
    from the message, a pair's 0-based index found in ``definition`` (the template
    dict), a keypoint by name or 0-based position."""
    for pattern, kind in _PATTERNS:
        match = re.search(pattern, message)
        if match is None:
            continue
        value = match.group(1) if match.groups() else None
        if kind in ("edge", "flip_pair") and isinstance(definition, dict):
            names = {str(n) for n in definition.get("keypoints") or [] if isinstance(n, str)}
            key = "edges" if kind == "edge" else "flip_pairs"
            index = _bad_pair(definition.get(key), names, kind == "flip_pair")
            if index is not None:
                return TemplateProblem(kind=kind, index=index)  # type: ignore[arg-type]
        if value is not None and value.isdigit():
            return TemplateProblem(kind=kind, index=int(value))  # type: ignore[arg-type]
        return TemplateProblem(kind=kind, keypoint=value)  # type: ignore[arg-type]
    return TemplateProblem(kind="template")


class TemplateDefinitionOut(BaseModel):
    """A template in the YAML/JSON layout of the presets
    (:meth:`posekit.skeleton.Skeleton.to_dict`), with the project's template version
    and the editor's layout when it belongs to a project."""

    definition: dict[str, Any]
    template_version: int | None = None
    layout: dict[str, tuple[float, float]] | None = None
    yaml: str = Field(description="the same template as YAML")


class TemplateValidateIn(BaseModel):
    """Give ``template`` (the layout as an object) or ``text`` (a YAML or JSON file's
    text, read with ``yaml.safe_load``)."""

    template: dict[str, Any] | None = Field(
        None, description="the YAML/JSON template layout as an object"
    )
    text: str | None = Field(None, max_length=1_000_000, description="a template file's text")


class TemplateValidationOut(BaseModel):
    """``valid``; else ``error`` (the message of ``posekit templates validate``) and
    ``problem`` (the element it names)."""

    valid: bool
    error: str | None = None
    problem: TemplateProblem | None = None
    definition: dict[str, Any] | None = Field(
        None, description="the template as it will be stored (defaults filled in)"
    )
    yaml: str | None = Field(None, description="the valid template as YAML (for export)")


class TemplateChangeIn(BaseModel):
    """A new template for a project with data; keypoints are matched by name unless
    ``renames`` (old name -> new name) says otherwise."""

    model_config = ConfigDict(extra="forbid")

    template: dict[str, Any]
    renames: dict[str, str] = Field(default_factory=dict)
    template_version: int | None = Field(
        None, ge=1, description="the project's template version as read; stale: 409"
    )
    drop_labeled: bool = Field(
        False, description="confirm removing keypoints that hold labeled points"
    )
    layout: dict[str, tuple[float, float]] | None = Field(
        None, description="where the editor drew each keypoint (0..1), kept as a setting"
    )


class TemplateChangeOut(LibraryModel):
    """What the change did (or, for a preview, would do)."""

    project: str
    renamed: list[tuple[str, str]]
    added: list[str]
    removed: list[str]
    reordered: bool
    instances: int
    labeled_points_dropped: int
    instances_losing_points: int
    template_version: int
    dry_run: bool
    backup: str | None = Field(
        None, description="the JSON file in the workspace holding the dropped points"
    )
    project_detail: ProjectDetailOut | None = None

    @field_validator("backup", mode="before")
    @classmethod
    def _path_text(cls, value: Any) -> Any:
        return None if value is None else str(value)


class ModelOut(LibraryModel):
    """A model choice (:class:`posekit.models.available.AvailableModel`)."""

    spec: str
    backend: str
    task: Literal["detector", "pose"]
    title: str
    location: Literal["bundled", "hf-cache", "folder", "download"]
    available: bool
    reason: str | None
    default: bool
    path: str | None


class ProjectSettingsIn(BaseModel):
    """Settings to change; a null value resets one to its default."""

    model_config = ConfigDict(extra="forbid")

    assist_model: str | None = Field(None, max_length=300)
    autolabel: dict[str, Any] | None = None
    template_layout: dict[str, tuple[float, float]] | None = None


class ProjectSettingsOut(BaseModel):
    assist_model: str = Field(description="the AI-assist model of the project")
    autolabel: dict[str, Any] = Field(default_factory=dict)
    template_layout: dict[str, tuple[float, float]] = Field(default_factory=dict)
