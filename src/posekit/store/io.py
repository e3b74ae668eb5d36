"""Importing images and COCO files into a workspace, exporting COCO and YOLO.

Every import is one database transaction. Media files are copied to
temporary names first and moved into place just before the commit; if
anything fails, the transaction is rolled back and every file the import
created is removed, so a failed import leaves the database and the media
folder exactly as they were.

Missing images in :func:`import_coco`: by default (``missing_media="error"``)
an image listed in the file but absent on disk aborts the import with an error
naming the file (nothing is written). ``missing_media="register"`` imports
such images without media (the item has ``path=None``; its size comes from the
COCO file), and ``copy_media=False`` registers *all* images without copying
(useful to load annotations whose images live elsewhere, and for benchmarks).
Items without media can be reviewed as data and exported to COCO, but not
shown, auto-labeled or exported to YOLO.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sqlalchemy import delete, select, update

from posekit.core import REVIEW_STATUSES
from posekit.gc_pause import gc_paused
from posekit.media import IMAGE_EXTENSIONS, ImageError, find_images, image_size, load_image
from posekit.store.models import DatasetRow, InstanceRow, ItemRow, utcnow
from posekit.store.workspace import (
    Dataset,
    Item,
    MediaStager,
    NotFoundError,
    Project,
    StoreError,
    Workspace,
    bulk_insert,
    bulk_insert_columns,
    file_sha256,
    instance_column_lists,
)

__all__ = [
    "MAX_FILE_BYTES",
    "ExportReport",
    "ImportReport",
    "export_coco",
    "export_yolo",
    "import_coco",
    "import_images",
    "project_to_coco",
]

log = logging.getLogger(__name__)

#: Refuse image files larger than this (bytes); pixel limits are enforced by
#: :mod:`posekit.media` (``POSEKIT_MAX_PIXELS``).
MAX_FILE_BYTES = int(os.environ.get("POSEKIT_MAX_FILE_BYTES", 512 * 1024 * 1024))


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        dataset: Name of the dataset imported into.
        added: Number of items added.
        instances: Number of instances added.
        skipped: ``(name, reason)`` of inputs skipped as duplicates (same file
            name already in the dataset, or same content under another name).
        failures: ``(path, reason)`` of inputs that could not be imported
            (unreadable, corrupt, too large, unsupported).
        renamed: ``(original name, stored name)`` for images whose name was
            taken in the dataset by a different image.
        missing_media: File names registered without media.
        elapsed: Wall time in seconds.
    """

    dataset: str
    added: int = 0
    instances: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)
    missing_media: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    def summary(self) -> str:
        """One line for people: counts of what was added, skipped and failed."""
        parts = [f"{self.added} images and {self.instances} instances added to {self.dataset!r}"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} duplicates skipped")
        if self.renamed:
            parts.append(f"{len(self.renamed)} renamed")
        if self.missing_media:
            parts.append(f"{len(self.missing_media)} without media")
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        return ", ".join(parts) + f" ({self.elapsed:.1f} s)"


@dataclass
class ExportReport:
    """What an export wrote: the output path and the numbers of images/instances."""

    path: Path
    images: int
    instances: int
    elapsed: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.images} images, {self.instances} instances -> {self.path} "
            f"({self.elapsed:.1f} s)"
        )


def _resolve(
    ws: Workspace, project: Project | str, dataset: Dataset | str
) -> tuple[Project, Dataset, bool]:
    """Project, dataset (created if missing) and whether it was created now."""
    project = ws._resolve_project(project)
    if isinstance(dataset, Dataset):
        if dataset.project_id != project.id:
            raise StoreError(
                f"dataset {dataset.name!r} does not belong to project {project.name!r}"
            )
        return project, dataset, False
    try:
        return project, ws.get_dataset(project, dataset), False
    except NotFoundError:
        return project, ws.create_dataset(project, dataset), True


def _drop_if_created_empty(ws: Workspace, dataset: Dataset, created: bool) -> None:
    """Undo the creation of a dataset by an import that failed (if still empty)."""
    if not created:
        return
    with ws.transaction() as conn:
        has_items = conn.execute(
            select(ItemRow.id).where(ItemRow.dataset_id == dataset.id).limit(1)
        ).first()
        if has_items is None:
            conn.execute(delete(DatasetRow).where(DatasetRow.id == dataset.id))


def _existing(ws: Workspace, dataset_id: int) -> tuple[set[str], dict[str, str]]:
    """File names and ``sha256 -> file name`` of a dataset's items."""
    with ws.engine.connect() as conn:
        rows = conn.execute(
            select(ItemRow.file_name, ItemRow.sha256).where(ItemRow.dataset_id == dataset_id)
        ).all()
    return {r.file_name for r in rows}, {r.sha256: r.file_name for r in rows if r.sha256}


def _stored_name(file_name: str) -> str:
    """The file name an item is stored under (POSIX, checked to stay inside the folder).

    Plain names (no backslash, drive colon or NUL; no empty, ``.`` or ``..``
    component) are already what :func:`posekit.formats.coco.safe_relative_path`
    would return; only the others pay for the full check.
    """
    if (
        type(file_name) is str
        and file_name
        and "\\" not in file_name
        and ":" not in file_name
        and "\x00" not in file_name
        and not any(part in ("", ".", "..") for part in file_name.split("/"))
    ):
        return file_name
    from posekit.formats.coco import safe_relative_path

    return safe_relative_path(file_name).as_posix()


def _enumerate_images(
    paths: Iterable[str | os.PathLike[str]], recursive: bool, failures: list[tuple[str, str]]
) -> list[tuple[str, Path, str]]:
    """``(name, path, folder name)``: files in a folder are named by their POSIX
    path relative to that folder, files given directly by their base name."""
    found: list[tuple[str, Path, str]] = []
    for raw in paths:
        root = Path(raw)
        if root.is_dir():
            for path in find_images([root], recursive=recursive):
                found.append((path.relative_to(root).as_posix(), path, root.resolve().name))
        elif root.is_file():
            if root.suffix.lower() not in IMAGE_EXTENSIONS:
                failures.append(
                    (str(root), f"unsupported file type {root.suffix!r} (not an image)")
                )
                continue
            found.append((root.name, root, root.resolve().parent.name))
        else:
            failures.append((str(root), "no such file or folder"))
    return found


def _unique_name(name: str, folder: str, sha: str, taken: set[str]) -> str:
    candidates = [f"{folder}/{name}"] if folder else []
    stem = PurePosixPath(name)
    candidates.append(str(stem.with_name(f"{stem.stem}-{sha[:8]}{stem.suffix}")))
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    return str(stem.with_name(f"{stem.stem}-{sha}{stem.suffix}"))


def import_images(
    ws: Workspace,
    project: Project | str,
    dataset: Dataset | str,
    paths: Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> ImportReport:
    """Copy image files into a dataset (created if missing), in one transaction.

    Each file is fully decoded once (with EXIF orientation applied, so
    ``width``/``height`` are as displayed); truncated, corrupt, oversized or
    non-image files are reported in ``failures`` by path and skipped. A file
    whose name is already in the dataset, or whose content is (under any name),
    is skipped as a duplicate. A *different* image whose name is taken is
    stored as ``<folder>/<name>`` or ``<stem>-<sha8><ext>`` and listed in
    ``renamed``.

    Args:
        ws: The workspace.
        project: Project (or its name).
        dataset: Dataset (or the name of one to use or create).
        paths: Image files and/or folders.
        recursive: Search folders recursively.
        max_file_bytes: Larger files are refused.

    Returns:
        An :class:`ImportReport`.
    """
    start = time.perf_counter()
    project, dataset, created = _resolve(ws, project, dataset)
    report = ImportReport(dataset=dataset.name)
    candidates = _enumerate_images(paths, recursive, report.failures)
    names, shas = _existing(ws, dataset.id)
    stager = MediaStager(ws, project.id, dataset.id)
    rows: list[dict[str, Any]] = []
    now = utcnow()
    try:
        for name, path, folder in candidates:
            try:
                size = path.stat().st_size
                if size > max_file_bytes:
                    raise ImageError(f"{path}: file is too large ({size} > {max_file_bytes} bytes)")
                # Re-importing a folder: recognise known files by hash before decoding.
                if name in names and (known := shas.get(file_sha256(path))) is not None:
                    report.skipped.append((name, f"same content as {known!r}"))
                    continue
                height, width = load_image(path).shape[:2]
            except (ImageError, OSError) as exc:
                report.failures.append((str(path), str(exc)))
                log.warning("skipping %s", exc)
                continue
            sha, media_path = stager.stage(path)
            if sha in shas:
                stager.discard_last()
                report.skipped.append((name, f"same content as {shas[sha]!r}"))
                continue
            stored_name = name
            if name in names:
                stored_name = _unique_name(name, folder, sha, names)
                report.renamed.append((name, stored_name))
            names.add(stored_name)
            shas[sha] = stored_name
            rows.append(
                {
                    "dataset_id": dataset.id,
                    "kind": "image",
                    "file_name": stored_name,
                    "media_path": media_path,
                    "width": int(width),
                    "height": int(height),
                    "sha256": sha,
                    "status": "new",
                    "created_at": now,
                }
            )
        if rows:
            with ws.transaction() as conn:
                bulk_insert(conn, ItemRow, rows)
                stager.publish()
    except BaseException:
        stager.rollback()
        _drop_if_created_empty(ws, dataset, created)
        raise
    report.added = len(rows)
    report.elapsed = time.perf_counter() - start
    log.info(
        "imported %d images into %s/%s (%d skipped, %d failed)",
        report.added,
        project.name,
        dataset.name,
        len(report.skipped),
        len(report.failures),
    )
    return report


# Building ~2 million row values with the cyclic GC on makes it walk the parsed
# file over and over (nothing here creates reference cycles).
@gc_paused()
def import_coco(
    ws: Workspace,
    project: Project | str,
    dataset: Dataset | str,
    coco_path: str | os.PathLike[str],
    image_root: str | os.PathLike[str] | None = None,
    *,
    copy_media: bool = True,
    missing_media: Literal["error", "register"] = "error",
) -> ImportReport:
    """Import a COCO keypoints file (images and annotations) in one transaction.

    The whole file is validated first by :func:`posekit.formats.coco.from_coco`
    against the project's template (keypoints mapped by name); a malformed file
    raises :class:`posekit.formats.coco.CocoFormatError` naming the bad element
    and writes nothing. Images whose file name is already in the dataset are
    skipped with their annotations (re-importing a file adds nothing). COCO
    image and annotation ids are kept and written back by :func:`export_coco`.

    Args:
        ws: The workspace.
        project: Project (or its name).
        dataset: Dataset (or the name of one to use or create).
        coco_path: The COCO json file.
        image_root: Folder the ``file_name`` entries are relative to; default
            the json file's folder.
        copy_media: Copy the images into the workspace. False registers the
            annotations only (items get ``path=None``; width/height from the file).
        missing_media: ``"error"``: an image missing on disk raises
            :class:`StoreError` naming it, nothing is written. ``"register"``:
            import it without media and list it in ``report.missing_media``.

    Returns:
        An :class:`ImportReport`.
    """
    from posekit.formats.coco import read_coco

    if missing_media not in ("error", "register"):
        raise ValueError(f"missing_media must be 'error' or 'register', got {missing_media!r}")
    start = time.perf_counter()
    coco_path = Path(coco_path)
    project = ws._resolve_project(project)
    # Validate everything before touching the database.
    parsed = read_coco(coco_path, project.template)
    root = Path(image_root) if image_root is not None else coco_path.parent
    project, dataset, created = _resolve(ws, project, dataset)
    report = ImportReport(dataset=dataset.name)
    names, _ = _existing(ws, dataset.id)
    stager = MediaStager(ws, project.id, dataset.id)
    now = utcnow()
    # Item rows column by column (see bulk_insert_columns).
    item_names: list[str] = []
    item_media: list[str | None] = []
    item_sha: list[str | None] = []
    item_width: list[int] = []
    item_height: list[int] = []
    item_status: list[str] = []
    item_external: list[int | None] = []
    item_extra: list[dict[str, Any] | None] = []
    labeled: list[Any] = []
    seen: set[str] = set()
    n_instances = 0
    try:
        missing: list[str] = []
        for labeled_image in parsed.images:
            record = labeled_image.image
            name = _stored_name(record.file_name)
            if name in seen:
                raise StoreError(f"{coco_path}: image file_name {name!r} is listed twice")
            seen.add(name)
            if name in names:
                report.skipped.append((name, "file name already in the dataset"))
                continue
            sha = media_path = None
            if copy_media:
                source = root / name
                if source.is_file():
                    try:
                        image_size(source)  # header check: is it an image at all?
                    except ImageError as exc:
                        raise StoreError(f"{coco_path}: image {name!r}: {exc}") from None
                    sha, media_path = stager.stage(source)
                elif missing_media == "error":
                    missing.append(name)
                    continue
                else:
                    report.missing_media.append(name)
            instances = labeled_image.instances
            predicted = any(inst.status == "predicted" for inst in instances)
            item_names.append(name)
            item_media.append(media_path)
            item_sha.append(sha)
            item_width.append(int(record.width))
            item_height.append(int(record.height))
            item_status.append("predicted" if predicted else "reviewed")
            item_external.append(record.id)
            item_extra.append(dict(record.extra) or None)
            labeled.append(instances)
            n_instances += len(instances)
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise StoreError(
                f"{coco_path}: {len(missing)} image(s) not found under {root}: {shown}{more} "
                "(pass image_root=, or missing_media='register' / copy_media=False to import "
                "the annotations without the images)"
            )
        with ws.transaction() as conn:
            bulk_insert_columns(
                conn,
                ItemRow,
                {
                    "file_name": item_names,
                    "media_path": item_media,
                    "sha256": item_sha,
                    "width": item_width,
                    "height": item_height,
                    "status": item_status,
                    "external_id": item_external,
                    "extra": item_extra,
                },
                {"dataset_id": dataset.id, "kind": "image", "created_at": now},
            )
            if n_instances:
                ids = dict(
                    conn.execute(
                        select(ItemRow.file_name, ItemRow.id).where(
                            ItemRow.dataset_id == dataset.id
                        )
                    ).all()
                )
                all_instances = [inst for instances in labeled for inst in instances]
                columns: dict[str, list[Any]] = instance_column_lists(all_instances)
                columns["item_id"] = [
                    item_id
                    for item_id, instances in zip(map(ids.__getitem__, item_names), labeled)
                    for _ in instances
                ]
                columns["external_id"] = [inst.id for inst in all_instances]
                bulk_insert_columns(
                    conn,
                    InstanceRow,
                    columns,
                    {"version": 1, "created_at": now, "updated_at": now},
                )
            if not dataset.extra:
                conn.execute(
                    update(DatasetRow)
                    .where(DatasetRow.id == dataset.id)
                    .values(extra=_coco_file_meta(parsed))
                )
            stager.publish()
    except BaseException:
        stager.rollback()
        _drop_if_created_empty(ws, dataset, created)
        raise
    report.added = len(item_names)
    report.instances = n_instances
    report.elapsed = time.perf_counter() - start
    log.info(
        "imported %s: %d images, %d instances into %s/%s (%d skipped)",
        coco_path,
        report.added,
        report.instances,
        project.name,
        dataset.name,
        len(report.skipped),
    )
    return report


_FILE_META = (
    "info",
    "licenses",
    "category",
    "extra_categories",
    "extra_annotations",
    "extra",
)


def _coco_file_meta(parsed: Any) -> dict[str, Any]:
    """File-level parts of a parsed COCO file, stored with the dataset for export."""
    meta: dict[str, Any] = {"category_id": getattr(parsed, "category_id", 1)}
    for key in _FILE_META:
        value = getattr(parsed, key, None)
        if value:
            meta[key] = value
    return {"coco": meta}


# ------------------------------------------------------------------ export
def _unique_ids(preferred: Sequence[int | None]) -> list[int]:
    """Keep each preferred id the first time it appears; number the rest after the max."""
    used: set[int] = set()
    out: list[int | None] = []
    for value in preferred:
        if value is not None and value not in used:
            used.add(value)
            out.append(value)
        else:
            out.append(None)
    next_id = max(used, default=0) + 1
    result: list[int] = []
    for value in out:
        if value is None:
            value = next_id
            next_id += 1
        result.append(value)
    return result


def project_to_coco(
    ws: Workspace,
    project: Project | str,
    *,
    dataset: Dataset | str | None = None,
    statuses: Sequence[str] | None = None,
    require_media: bool = False,
) -> tuple[Any, dict[str, Path]]:
    """A :class:`posekit.formats.coco.CocoDataset` of a project (or one dataset).

    Image and annotation ids are the ids of the imported file where there was
    one (and they are unique), else new ids after the largest. With several
    datasets, file names are prefixed by the dataset name.

    Args:
        statuses: Keep only instances with these review statuses (default all).
        require_media: Raise if an item has no media file.

    Returns:
        ``(dataset, image_paths)`` where ``image_paths`` maps exported file names
        to the stored media files.
    """
    from posekit.formats.coco import CocoDataset, ImageRecord, LabeledImage

    project = ws._resolve_project(project)
    if statuses is not None:
        statuses = list(statuses)
        for s in statuses:
            if s not in REVIEW_STATUSES:
                raise StoreError(f"status {s!r} is not one of {', '.join(REVIEW_STATUSES)}")
    if dataset is None:
        datasets = ws.list_datasets(project)
    else:
        datasets = [ws._resolve_dataset(project, dataset)]
    prefix = len(datasets) > 1
    items: list[tuple[Dataset, Item]] = []
    for ds in datasets:
        items.extend((ds, item) for item in ws.list_items(project, dataset=ds))
    if require_media:
        missing = [item.file_name for _, item in items if item.path is None]
        if missing:
            raise StoreError(
                f"{len(missing)} item(s) of project {project.name!r} have no media file "
                f"(imported without images), e.g. {missing[0]!r}"
            )
    by_item = ws.instances_of_datasets([ds.id for ds in datasets], statuses)
    image_ids = _unique_ids([item.external_id for _, item in items])
    per_item = [by_item.get(item.id, []) for _, item in items]
    ann_ids = iter(_unique_ids([external for kept in per_item for _, external in kept]))
    images = []
    paths: dict[str, Path] = {}
    for (ds, item), image_id, kept in zip(items, image_ids, per_item):
        name = f"{ds.name}/{item.file_name}" if prefix else item.file_name
        if item.path is not None:
            paths[name] = item.path
        instances = []
        for inst, _ in kept:
            inst.id = next(ann_ids)
            instances.append(inst)
        images.append(
            LabeledImage(
                image=ImageRecord(name, item.width, item.height, id=image_id, extra=item.extra),
                instances=instances,
            )
        )
    metas = [ds.extra["coco"] for ds in datasets if ds.extra.get("coco")]
    meta: dict[str, Any] = dict(metas[0]) if metas else {}
    if len(datasets) > 1:
        # Other-category annotations and unknown top-level fields belong to one
        # imported file; they are written back only when exporting that dataset.
        for key in ("extra_annotations", "extra_categories", "extra"):
            meta.pop(key, None)
    coco = CocoDataset(
        skeleton=project.template,
        images=images,
        category_id=int(meta.get("category_id", 1)),
        info=meta.get("info"),
        licenses=meta.get("licenses"),
        category=meta.get("category"),
        extra_categories=list(meta.get("extra_categories", [])),
        extra_annotations=list(meta.get("extra_annotations", [])),
        extra=dict(meta.get("extra", {})),
    )
    return coco, paths


def export_coco(
    ws: Workspace,
    project: Project | str,
    out_path: str | os.PathLike[str],
    *,
    dataset: Dataset | str | None = None,
    statuses: Sequence[str] | None = None,
) -> ExportReport:
    """Write a project (or one dataset) as a COCO keypoints file (atomically).

    Lossless for what COCO can carry plus posekit's own fields (ids, scores,
    track ids, crowd flags, segmentations, review status, unknown fields), via
    :func:`posekit.formats.coco.to_coco`.

    Args:
        statuses: Keep only instances with these review statuses, e.g.
            ``("accepted",)`` for training data (default: all).
    """
    from posekit.formats.coco import write_coco

    start = time.perf_counter()
    with gc_paused():  # 100k instances and their dicts hold no reference cycles
        coco, _ = project_to_coco(ws, project, dataset=dataset, statuses=statuses)
        out_path = Path(out_path)
        write_coco(coco, out_path)
    n_instances = sum(len(image.instances) for image in coco.images)
    return ExportReport(out_path, len(coco.images), n_instances, time.perf_counter() - start)


def export_yolo(
    ws: Workspace,
    project: Project | str,
    out_dir: str | os.PathLike[str],
    *,
    dataset: Dataset | str | None = None,
    statuses: Sequence[str] | None = ("accepted",),
    split: str = "train",
    link: bool = True,
    val_fraction: float = 0.0,
) -> ExportReport:
    """Write a project as an Ultralytics YOLO pose dataset.

    Only ``accepted`` instances by default: YOLO labels cannot carry a review
    status, and unreviewed predictions should not become training labels. Every
    exported item needs its media file.

    Returns:
        An :class:`ExportReport` whose ``path`` is what
        :func:`posekit.formats.yolo.write_yolo` returns (the dataset YAML).
    """
    start = time.perf_counter()
    with gc_paused():
        coco, paths = project_to_coco(
            ws, project, dataset=dataset, statuses=statuses, require_media=True
        )
    from posekit.formats.yolo import write_yolo

    out = write_yolo(coco, paths, Path(out_dir), split=split, link=link, val_fraction=val_fraction)
    n_instances = sum(len(image.instances) for image in coco.images)
    return ExportReport(Path(out), len(coco.images), n_instances, time.perf_counter() - start)
