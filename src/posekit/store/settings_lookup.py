"""Reading one project setting without loading the project (its template) first.

For per-request lookups such as the AI-assist model of a project: one query of the
``projects.settings`` column, where :func:`posekit.store.queries.get_project_by_id`
takes two and builds the project's template.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from posekit.store.errors import NotFoundError
from posekit.store.project_settings import PROJECT_SETTINGS
from posekit.store.tables import ProjectRow

if TYPE_CHECKING:
    from posekit.store.workspace import Workspace

__all__ = ["project_setting"]


def project_setting(ws: Workspace, project_id: int, name: str) -> Any:
    """The value of project setting ``name`` (None when it is not set).

    Raises:
        KeyError: ``name`` is not a known setting (:data:`PROJECT_SETTINGS`).
        NotFoundError: No such project.
    """
    if name not in PROJECT_SETTINGS:
        raise KeyError(f"unknown project setting {name!r}; known: {', '.join(PROJECT_SETTINGS)}")
    with ws.engine.connect() as conn:
        row = conn.execute(
            select(ProjectRow.settings).where(ProjectRow.id == project_id)
        ).one_or_none()
    if row is None:
        raise NotFoundError(f"project {project_id} does not exist")
    return (row[0] or {}).get(name)
