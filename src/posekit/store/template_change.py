"""Changing a project's template after data exists, in one transaction.

:meth:`TemplateChangeOperations.change_template` replaces a project's keypoint
template and migrates every instance of the project to it:

* a **renamed** keypoint (``renames={"old": "new"}``) keeps its position, visibility
  and score;
* an **added** keypoint is "not labeled" (visibility 0, score 0) on every instance;
* a **removed** keypoint is dropped; when labeled points would be lost the caller must
  say so (``drop_labeled=True``), and those points are first written to a JSON file in
  the workspace (``template_changes/<project id>/...json``, see
  :attr:`TemplateChange.backup`) from which they can be restored;
* a **reordered** template changes only the order of the arrays;
* flip pairs, edges, colours and sigmas change nothing in the instances.

Every migrated instance gets ``version + 1`` so that an editor holding the old layout
gets a stale-version conflict (HTTP 409) instead of saving it; the project's
``template_version`` is incremented too. Exports afterwards use the new template.

A keypoint is matched by name: a name in both templates is the same point unless
``renames`` maps it elsewhere.

Example:
    >>> new = Skeleton.from_dict({**old.to_dict(), "keypoints": [...]})  # doctest: +SKIP
    >>> preview = ws.change_template("people", new, dry_run=True)  # doctest: +SKIP
    >>> preview.labeled_points_dropped  # doctest: +SKIP
    0
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Connection, bindparam, select, update

from posekit.skeleton import Skeleton
from posekit.store.errors import StaleVersionError, StoreError
from posekit.store.history import save_replaced_versions
from posekit.store.records import InstanceRecord
from posekit.store.tables import DatasetRow, InstanceRow, ItemRow, ProjectRow, utcnow

if TYPE_CHECKING:
    from posekit.store.records import Project

__all__ = [
    "BACKUP_DIR",
    "StaleTemplateError",
    "TemplateChange",
    "TemplateChangeError",
    "TemplateChangeOperations",
    "TemplateVersionError",
    "plan_keypoints",
]

#: Folder of the workspace holding the points dropped by template changes.
BACKUP_DIR = "template_changes"
_CHUNK = 500


class TemplateChangeError(StoreError):
    """The change cannot be made as asked (the message says why)."""


class TemplateVersionError(TemplateChangeError):
    """The project's template was changed since the caller read it."""

    def __init__(self, project: str, expected: int, current: int) -> None:
        super().__init__(
            f"project {project!r}: template version {expected} is stale, the current "
            f"version is {current} (the template was changed meanwhile; reload it)"
        )
        self.expected = expected
        self.current = current


class StaleTemplateError(StaleVersionError):
    """An instance write in the layout of an older template version (409 with the
    instance as stored now, in the new layout)."""

    def __init__(self, current: InstanceRecord, expected: int, template_version: int) -> None:
        StoreError.__init__(
            self,
            f"instance {current.id}: written for template version {expected}, but the "
            f"project's template is at version {template_version} (its keypoints changed; "
            "reload the item)",
        )
        self.instance_id = current.id
        self.expected_version = current.version
        self.current = current
        self.template_version = template_version


@dataclass(frozen=True)
class TemplateChange:
    """What a template change does (or, with ``dry_run``, would do).

    Attributes:
        project: Project name.
        renamed: ``(old name, new name)`` pairs.
        added: Keypoints of the new template not taken from the old one.
        removed: Keypoints of the old template that the new one drops.
        reordered: Whether the kept keypoints change their order.
        instances: Instances of the project (each migrated, version + 1).
        labeled_points_dropped: Labeled points (visibility > 0) of removed keypoints.
        instances_losing_points: Instances holding at least one such point.
        template_version: The project's template version after the change (before it,
            for a dry run).
        backup: The JSON file with the dropped points (None when nothing was dropped or
            for a dry run).
        dry_run: Nothing was written.
    """

    project: str
    renamed: tuple[tuple[str, str], ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    reordered: bool
    instances: int
    labeled_points_dropped: int
    instances_losing_points: int
    template_version: int
    backup: Path | None = None
    dry_run: bool = False
    source_index: tuple[int | None, ...] = field(default=(), repr=False)


def plan_keypoints(
    old: Skeleton, new: Skeleton, renames: Mapping[str, str] | None = None
) -> tuple[int | None, ...]:
    """For each keypoint of ``new``, the index of the old keypoint it continues (None:
    added). A name kept in both templates is the same point unless renamed.

    Raises:
        TemplateChangeError: A rename names a keypoint missing from either template,
            or two old keypoints would become one new one.
    """
    renames = dict(renames or {})
    targets: dict[str, str] = {}
    for before, after in renames.items():
        if before not in old:
            raise TemplateChangeError(
                f"rename {before!r} -> {after!r}: {before!r} is not a keypoint of the current "
                "template"
            )
        if after not in new:
            raise TemplateChangeError(
                f"rename {before!r} -> {after!r}: {after!r} is not a keypoint of the new template"
            )
        if after in targets:
            raise TemplateChangeError(
                f"renames {targets[after]!r} and {before!r} both become {after!r}"
            )
        targets[after] = before
    out: list[int | None] = []
    for name in new.keypoints:
        if name in targets:
            out.append(old.index(targets[name]))
        elif name in old and name not in renames:
            out.append(old.index(name))
        else:
            out.append(None)
    return tuple(out)


def _remap(values: np.ndarray, source: np.ndarray, taken: np.ndarray, fill: Any) -> np.ndarray:
    """``values`` (K_old, ...) re-indexed to the new layout; added points get ``fill``."""
    shape = (len(source), *values.shape[1:])
    out = np.full(shape, fill, dtype=values.dtype)
    out[taken] = values[source[taken]]
    return out


class TemplateChangeOperations:
    """The template-change part of :class:`posekit.store.Workspace` (mixed into it)."""

    if TYPE_CHECKING:
        root: Path
        _templates: dict[int, tuple[int, Skeleton]]

        def transaction(self) -> Iterator[Connection]: ...
        def _resolve_project(self, project: Project | str) -> Project: ...
        def get_project(self, name: str) -> Project: ...

    def change_template(
        self,
        project: Project | str,
        template: Skeleton,
        *,
        renames: Mapping[str, str] | None = None,
        expected_template_version: int | None = None,
        drop_labeled: bool = False,
        dry_run: bool = False,
        author_id: int | None = None,
    ) -> TemplateChange:
        """Give a project a new template and migrate all its instances, atomically.

        Args:
            project: Project or name.
            template: The new template.
            renames: ``old keypoint name -> new name`` for renamed keypoints.
            expected_template_version: The project's ``template_version`` as the caller
                read it; a different current version refuses the change.
            drop_labeled: Allow removing keypoints that hold labeled points (they are
                written to :attr:`TemplateChange.backup` first). Without it such a
                change raises, naming the count.
            dry_run: Only count; write nothing.
            author_id: Who changes it: the migrated instances' author (their
                versions before the change stay in their history).

        Returns:
            A :class:`TemplateChange` with the counts (and the backup file).

        Raises:
            TemplateVersionError: ``expected_template_version`` is stale.
            TemplateChangeError: Bad renames, or labeled points would be dropped
                without ``drop_labeled``.
        """
        if not isinstance(template, Skeleton):
            raise TypeError(f"template: expected a Skeleton, got {type(template).__name__}")
        project = self._resolve_project(project)
        backup: Path | None = None
        with self.transaction() as conn:
            row = conn.execute(select(ProjectRow).where(ProjectRow.id == project.id)).one()
            version = int(row.template_version or 1)
            if expected_template_version is not None and expected_template_version != version:
                raise TemplateVersionError(project.name, expected_template_version, version)
            old = Skeleton.from_dict(row.template, source=f"project {project.name!r} template")
            plan = plan_keypoints(old, template, renames)
            source = np.array([-1 if s is None else s for s in plan], dtype=np.int64)
            taken = source >= 0
            removed_index = sorted(set(range(old.num_keypoints)) - set(source[taken].tolist()))
            dropped: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            count = 0
            if not dry_run:
                items = select(ItemRow.id).join(DatasetRow, DatasetRow.id == ItemRow.dataset_id)
                items = items.where(DatasetRow.project_id == project.id)
                of_project = InstanceRow.item_id.in_(items)
                save_replaced_versions(conn, of_project, action="update", by=author_id)
            for inst in _project_instances(conn, project.id):
                count += 1
                visibility = np.frombuffer(inst.visibility, dtype=np.uint8)
                keypoints = np.frombuffer(inst.keypoints, dtype="<f4").reshape(-1, 2)
                if visibility.shape[0] != old.num_keypoints:
                    raise TemplateChangeError(
                        f"instance {inst.id} has {visibility.shape[0]} keypoints, the current "
                        f"template {old.num_keypoints}; nothing was changed"
                    )
                lost = {
                    old.keypoints[k]: [float(keypoints[k, 0]), float(keypoints[k, 1]),
                                       int(visibility[k])]
                    for k in removed_index
                    if visibility[k] > 0
                }  # fmt: skip
                if lost:
                    dropped.append(
                        {"instance_id": inst.id, "item_id": inst.item_id,
                         "file_name": inst.file_name, "version": inst.version, "points": lost}
                    )  # fmt: skip
                if not dry_run:
                    updates.append(_migrated(inst, keypoints, visibility, source, taken))
                    if len(updates) >= _CHUNK:
                        _write(conn, updates, author_id)
                        updates = []
            labeled = sum(len(d["points"]) for d in dropped)
            change = TemplateChange(
                project=project.name,
                renamed=tuple(
                    (old.keypoints[s], name)
                    for name, s in zip(template.keypoints, plan)
                    if s is not None and old.keypoints[s] != name
                ),
                added=tuple(n for n, s in zip(template.keypoints, plan) if s is None),
                removed=tuple(old.keypoints[k] for k in removed_index),
                reordered=_reordered(source[taken]),
                instances=count,
                labeled_points_dropped=labeled,
                instances_losing_points=len(dropped),
                template_version=version,
                dry_run=dry_run,
                source_index=plan,
            )
            if dry_run:
                return change
            if labeled and not drop_labeled:
                raise TemplateChangeError(
                    f"removing {', '.join(map(repr, change.removed))} drops {labeled} labeled "
                    f"point(s) of {len(dropped)} instance(s); confirm with drop_labeled"
                )
            _write(conn, updates, author_id)
            if dropped:
                # Written before the commit: if it cannot be written nothing changes; if
                # the commit fails afterwards the file is removed again below.
                backup = self._write_dropped(project, old, version, dropped)
            try:
                conn.execute(
                    update(ProjectRow)
                    .where(ProjectRow.id == project.id)
                    .values(template=template.to_dict(), template_version=version + 1)
                )
            except Exception:
                if backup is not None:
                    backup.unlink(missing_ok=True)
                raise
        self._templates.pop(project.id, None)
        return replace(change, template_version=version + 1, backup=backup)

    def _write_dropped(
        self, project: Project, old: Skeleton, version: int, dropped: list[dict[str, Any]]
    ) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        folder = self.root / BACKUP_DIR / str(project.id)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{stamp}-template-v{version}.json"
        document = {
            "project": project.name,
            "template_version": version,
            "template": old.to_dict(),
            "note": "points dropped by a template change: [x, y, visibility] by keypoint name",
            "instances": dropped,
        }
        try:
            path.write_text(json.dumps(document, indent=1), encoding="utf-8")
        except OSError as exc:
            raise TemplateChangeError(
                f"cannot write the dropped points to {path}: {exc}; nothing was changed"
            ) from None
        return path


def _project_instances(conn: Connection, project_id: int) -> Iterator[Any]:
    query = (
        select(
            InstanceRow.id,
            InstanceRow.item_id,
            InstanceRow.version,
            InstanceRow.keypoints,
            InstanceRow.visibility,
            InstanceRow.keypoint_scores,
            ItemRow.file_name,
        )
        .join(ItemRow, ItemRow.id == InstanceRow.item_id)
        .join(DatasetRow, DatasetRow.id == ItemRow.dataset_id)
        .where(DatasetRow.project_id == project_id)
        .order_by(InstanceRow.id)
    )
    yield from conn.execute(query).all()


def _migrated(
    inst: Any, keypoints: np.ndarray, visibility: np.ndarray, source: np.ndarray, taken: np.ndarray
) -> dict[str, Any]:
    scores = inst.keypoint_scores
    new_scores = None
    if scores is not None:
        values = np.frombuffer(scores, dtype="<f4")
        new_scores = _remap(values, source, taken, 0.0).astype("<f4").tobytes()
    return {
        "b_id": inst.id,
        "b_version": inst.version,
        "keypoints": _remap(keypoints, source, taken, 0.0).astype("<f4").tobytes(),
        "visibility": _remap(visibility, source, taken, 0).astype(np.uint8).tobytes(),
        "keypoint_scores": new_scores,
    }


def _write(conn: Connection, updates: list[dict[str, Any]], author_id: int | None) -> None:
    if not updates:
        return
    now = utcnow()
    result = conn.execute(
        update(InstanceRow)
        .where(InstanceRow.id == bindparam("b_id"), InstanceRow.version == bindparam("b_version"))
        .values(
            keypoints=bindparam("keypoints"),
            visibility=bindparam("visibility"),
            keypoint_scores=bindparam("keypoint_scores"),
            version=InstanceRow.version + 1,
            updated_at=now,
            author_id=author_id,
        )
        .execution_options(synchronize_session=False),
        updates,
    )
    if result.rowcount not in (-1, len(updates)):
        raise TemplateChangeError(
            "an instance changed while the template was being changed; nothing was changed"
        )


def _reordered(kept: np.ndarray) -> bool:
    return bool(np.any(np.diff(kept) < 0)) if kept.size > 1 else False
