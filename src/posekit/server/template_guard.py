"""Refusing instance writes laid out for an older template version.

A template change increments every instance's version, so an editor that saves an
instance it read before gets the usual stale-version 409. Writes that carry no
stored version (a new instance) or that already took the current one ("keep mine"
after a conflict) are caught by the ``template_version`` they send: when it is not
the project's current one the write is refused with 409 and nothing is written.
"""

from __future__ import annotations

from posekit.server.state import AppState
from posekit.store import TemplateVersionError
from posekit.store.queries import get_project_by_id, project_id_of_item
from posekit.store.template_change import StaleTemplateError

__all__ = ["check_instance_template", "check_item_template"]


def _current_version(state: AppState, item_id: int) -> tuple[str, int]:
    project = get_project_by_id(state.ws, project_id_of_item(state.ws, item_id))
    return project.name, project.template_version


def check_item_template(state: AppState, item_id: int, template_version: int | None) -> None:
    """Raise :class:`TemplateVersionError` (409) if a new instance of ``item_id`` is laid
    out for another template version than the project's."""
    if template_version is None:
        return
    name, current = _current_version(state, item_id)
    if current != template_version:
        raise TemplateVersionError(name, template_version, current)


def check_instance_template(
    state: AppState, instance_id: int, template_version: int | None
) -> None:
    """Raise :class:`StaleTemplateError` (409 with the stored instance) if an update of
    ``instance_id`` is laid out for another template version than the project's."""
    if template_version is None:
        return
    record = state.ws.get_instance(instance_id)
    _, current = _current_version(state, record.item_id)
    if current != template_version:
        raise StaleTemplateError(record, template_version, current)
