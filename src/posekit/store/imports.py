"""Importing images and dataset files (COCO, any readable format) into a workspace.

Every import is one database transaction. Media files are copied to
temporary names first and moved into place just before the commit; if
anything fails, the transaction is rolled back and every file the import
created is removed, so a failed import leaves the database and the media
folder exactly as they were.

Missing images in :func:`import_dataset` / :func:`import_coco`: by default
(``missing_media="error"``) an image listed in the file but absent on disk
aborts the import with an error naming the file (nothing is written).
``missing_media="register"`` imports such images without media (the item has
``path=None``; its size comes from the file), and ``copy_media=False``
registers *all* images without copying (useful to load annotations whose
images live elsewhere, and for benchmarks). Items without media can be
reviewed as data and exported to COCO, but not shown, auto-labeled or exported
to YOLO.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sqlalchemy import delete, select, update

from posekit.gc_pause import gc_paused
from posekit.media import IMAGE_EXTENSIONS, ImageError, find_images, image_size, load_image
from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.store.bulk import bulk_insert, bulk_insert_columns
from posekit.store.codec import instance_column_lists
from posekit.store.errors import NotFoundError, StoreError
from posekit.store.media_staging import MediaStager, file_sha256
from posekit.store.records import Dataset, Project
from posekit.store.tables import DatasetRow, InstanceRow, ItemRow, utcnow
from posekit.store.video_exports import restore_track_meta
from posekit.store.video_imports import attach_dataset_videos
from posekit.store.workspace import Workspace

__all__ = [
    "MAX_FILE_BYTES",
    "ImportReport",
    "import_coco",
    "import_dataset",
    "import_images",
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


@contextmanager
def _undone_on_failure(
    ws: Workspace, stager: MediaStager, dataset: Dataset, created: bool
) -> Iterator[None]:
    """Remove the staged media and the dataset the import created if the block fails."""
    try:
        yield
    except BaseException:
        stager.rollback()
        _drop_if_created_empty(ws, dataset, created)
        raise


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
    with _undone_on_failure(ws, stager, dataset, created):
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

    :func:`import_dataset` with ``format="coco"``: the whole file is validated
    first against the project's template (keypoints mapped by name); a
    malformed file raises :class:`posekit.formats.coco.CocoFormatError` naming
    the bad element and writes nothing. COCO image and annotation ids, ``info``,
    ``licenses`` and unknown fields are kept and written back by
    :func:`posekit.store.exports.export_coco`.
    """
    return import_dataset(
        ws, project, dataset, coco_path, format="coco", image_root=image_root,
        copy_media=copy_media, missing_media=missing_media,
    )  # fmt: skip


# Building ~2 million row values with the cyclic GC on makes it walk the parsed
# file over and over (nothing here creates reference cycles).
@gc_paused()
def import_dataset(
    ws: Workspace,
    project: Project | str,
    dataset: Dataset | str,
    source: str | os.PathLike[str],
    *,
    format: str = "coco",
    image_root: str | os.PathLike[str] | None = None,
    copy_media: bool = True,
    missing_media: Literal["error", "register"] = "error",
) -> ImportReport:
    """Import a dataset file of any readable format (images and annotations) in one
    transaction.

    The file is read by the format table's reader
    (:func:`posekit.formats.registry.get_format`) and validated as a whole
    against the project's template before anything is written. Images whose
    file name is already in the dataset are skipped with their annotations
    (re-importing a file adds nothing). Items with a ``predicted`` instance get
    status ``predicted``, the others ``reviewed`` (ground truth).

    Args:
        ws: The workspace.
        project: Project (or its name).
        dataset: Dataset (or the name of one to use or create).
        source: The file (or folder) to read.
        format: A readable format name (:func:`posekit.formats.registry.readable_formats`).
        image_root: Folder the ``file_name`` entries are relative to; default
            the file's folder.
        copy_media: Copy the images into the workspace. False registers the
            annotations only (items get ``path=None``; width/height from the file).
        missing_media: ``"error"``: an image missing on disk raises
            :class:`StoreError` naming it, nothing is written. ``"register"``:
            import it without media and list it in ``report.missing_media``.

    Returns:
        An :class:`ImportReport`.
    """
    from posekit.formats.registry import get_format

    spec = get_format(format)
    if spec.read is None:
        raise StoreError(f"posekit cannot read the {spec.title} format ({format!r})")

    if missing_media not in ("error", "register"):
        raise ValueError(f"missing_media must be 'error' or 'register', got {missing_media!r}")
    start = time.perf_counter()
    coco_path = Path(source)
    project = ws._resolve_project(project)
    # Validate everything before touching the database.
    parsed = spec.read(coco_path, project.template)
    restore_track_meta(parsed)  # video frames, tracks and keyframes of a posekit export
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
    with _undone_on_failure(ws, stager, dataset, created):
        missing: list[str] = []
        for labeled_image in parsed.images:
            record = labeled_image.image
            try:
                name = safe_relative_name(record.file_name)
            except UnsafePathError as exc:
                raise StoreError(f"{coco_path}: image {exc}") from None
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
            attach_dataset_videos(conn, ws, dataset, parsed)
            if not dataset.extra:
                conn.execute(
                    update(DatasetRow)
                    .where(DatasetRow.id == dataset.id)
                    .values(extra=_file_meta(parsed))
                )
            stager.publish()
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


def _file_meta(parsed: Any) -> dict[str, Any]:
    """File-level parts of a parsed file (COCO ``info``, ``licenses``, other categories
    and unknown fields), stored with the dataset for export."""
    meta: dict[str, Any] = {"category_id": getattr(parsed, "category_id", 1)}
    for key in _FILE_META:
        value = getattr(parsed, key, None)
        if value:
            meta[key] = value
    return {"coco": meta}
