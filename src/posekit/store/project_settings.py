"""Project settings: a small JSON document per project (``projects.settings``).

Known settings (others are refused, naming the known ones):

* ``assist_model``: the pose estimator spec AI-assist uses in the project (e.g.
  ``"blazepose"`` or ``"vitpose:/models/vitpose-base"``); a session may override it.
* ``autolabel``: the last auto-label choices of the project (a mapping of
  :class:`posekit.pipeline.options.AutolabelOptions` fields), offered again next time.
* ``template_layout``: ``keypoint name -> [x, y]`` in 0..1, where the template
  editor drew each point (also the layout of "place the template in a box").

Example:
    >>> update_project_settings(ws, "people", {"assist_model": "blazepose"})  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from posekit.store.database import retrying
from posekit.store.errors import StoreError
from posekit.store.tables import ProjectRow

if TYPE_CHECKING:
    from posekit.store.records import Project
    from posekit.store.workspace import Workspace

__all__ = ["PROJECT_SETTINGS", "update_project_settings"]

#: name -> what it holds
PROJECT_SETTINGS: dict[str, str] = {
    "assist_model": "pose estimator spec used by AI-assist",
    "autolabel": "last auto-label options (AutolabelOptions fields)",
    "template_layout": "keypoint name -> [x, y] in 0..1 drawn by the template editor",
}


def _check(name: str, value: Any) -> Any:
    if name not in PROJECT_SETTINGS:
        raise StoreError(
            f"unknown project setting {name!r}; known: {', '.join(sorted(PROJECT_SETTINGS))}"
        )
    if value is None:
        return None
    if name == "assist_model":
        if not isinstance(value, str) or not value.strip() or len(value) > 300:
            raise StoreError(
                f"assist_model must be a model spec such as 'blazepose', got {value!r}"
            )
        return value.strip()
    if name == "autolabel":
        if not isinstance(value, Mapping):
            raise StoreError("autolabel must be a mapping of auto-label options")
        from posekit.pipeline.options import AutolabelOptions

        try:
            AutolabelOptions.from_mapping(value)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"autolabel: {exc}") from None
        return dict(value)
    if not isinstance(value, Mapping):
        raise StoreError("template_layout must map keypoint names to [x, y]")
    layout: dict[str, list[float]] = {}
    for key, point in value.items():
        if (
            not isinstance(point, list | tuple)
            or len(point) != 2
            or not all(isinstance(v, int | float) and math.isfinite(v) for v in point)
        ):
            raise StoreError(f"template_layout: point of {key!r} must be [x, y], got {point!r}")
        layout[str(key)] = [float(point[0]), float(point[1])]
    return layout


@retrying
def update_project_settings(
    ws: Workspace, project: Project | str, changes: Mapping[str, Any]
) -> Project:
    """Set some settings of a project (a None value removes one), in one transaction.

    Returns:
        The project as stored now.

    Raises:
        StoreError: An unknown setting or a bad value (the message names it).
    """
    project = ws._resolve_project(project)
    checked = {name: _check(name, value) for name, value in changes.items()}
    with ws.transaction() as conn:
        current = conn.execute(
            select(ProjectRow.settings).where(ProjectRow.id == project.id)
        ).scalar_one()
        settings = dict(current or {})
        for name, value in checked.items():
            if value is None:
                settings.pop(name, None)
            else:
                settings[name] = value
        conn.execute(
            update(ProjectRow).where(ProjectRow.id == project.id).values(settings=settings or None)
        )
    return ws.get_project(project.name)
