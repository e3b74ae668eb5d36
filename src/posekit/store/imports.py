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
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sqlalchemy import delete, select, update

from posekit.formats.coco_read import prepare_coco_file
from posekit.gc_pause import gc_paused
from posekit.media import IMAGE_EXTENSIONS, ImageError, find_images, load_image
from posekit.media.paths import UnsafePathError, safe_relative_name
from posekit.media.video import VIDEO_EXTENSIONS
from posekit.store.bulk import bulk_insert, bulk_insert_columns
from posekit.store.bulk_coco import import_coco_rows, streamable
from posekit.store.codec import instance_column_lists
from posekit.store.database import retrying
from posekit.store.errors import NotFoundError, StoreError
from posekit.store.import_matching import ItemMatcher, existing_items
from posekit.store.import_report import ImportReport, MissingMediaError
from posekit.store.instances import settle_item_statuses
from posekit.store.media_names import check_declared_size, claim_stored_name, portable_name
from posekit.store.media_staging import MediaStager, file_sha256
from posekit.store.records import Dataset, Project
from posekit.store.tables import DatasetRow, InstanceRow, ItemRow, utcnow
from posekit.store.video_exports import restore_track_meta
from posekit.store.video_imports import attach_dataset_videos
from posekit.store.workspace import Workspace

__all__ = [
    "MAX_FILE_BYTES",
    "ImportReport",
    "MissingMediaError",
    "import_coco",
    "import_dataset",
    "import_images",
]

log = logging.getLogger(__name__)

#: Refuse image files larger than this (bytes); pixel limits are enforced by
#: :mod:`posekit.media` (``POSEKIT_MAX_PIXELS``).
MAX_FILE_BYTES = int(os.environ.get("POSEKIT_MAX_FILE_BYTES", 512 * 1024 * 1024))


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
            images = find_images([root], recursive=recursive)
            if not images:
                looked = ", ".join(sorted(IMAGE_EXTENSIONS))
                failures.append((str(root), f"no image files in this folder (looked for {looked})"))
            for path in images:
                name = portable_name(path.relative_to(root).as_posix())
                found.append((name, path, root.resolve().name))
        elif root.is_file():
            if root.suffix.lower() not in IMAGE_EXTENSIONS:
                failures.append(
                    (
                        str(root),
                        f"unsupported file type {root.suffix!r}: neither an image "
                        f"({', '.join(sorted(IMAGE_EXTENSIONS))}) nor a video "
                        f"({', '.join(sorted(VIDEO_EXTENSIONS))})",
                    )
                )
                continue
            found.append((portable_name(root.name), root, root.resolve().parent.name))
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


@retrying
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
    is skipped as a duplicate. Names are made valid on Windows too
    (:func:`portable_name`: ``<>:"|?*`` and control characters become ``_``). A
    *different* image whose name is taken is
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
                # The CLI and the server print failures: log them once, quietly, and
                # do not repeat the path the message already starts with.
                reason = str(exc).removeprefix(f"{path}: ")
                report.failures.append((str(path), reason))
                log.info("skipping %s: %s", path, reason)
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
    existing: Literal["attach", "skip"] = "attach",
    author_id: int | None = None,
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
        copy_media=copy_media, missing_media=missing_media, existing=existing,
        author_id=author_id,
    )  # fmt: skip


# Building ~2 million row values with the cyclic GC on makes it walk the parsed
# file over and over (nothing here creates reference cycles).
@retrying
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
    existing: Literal["attach", "skip"] = "attach",
    author_id: int | None = None,
) -> ImportReport:
    """Import a dataset file of any readable format (images and annotations) in one
    transaction.

    The file is read by the format table's reader
    (:func:`posekit.formats.registry.get_format`) and validated as a whole
    against the project's template before anything is written. Items with a
    ``predicted`` instance get status ``predicted``, the others ``reviewed``
    (ground truth).

    Images already in the dataset (same file name; the same content under
    another name when the image file is there, e.g. after ``posekit import P
    photos/``; else the same base name when only one item of the dataset has it,
    e.g. ``photo.jpg`` for ``upload/18/photo.jpg``, listed in ``report.matched``;
    see :mod:`posekit.store.import_matching`) get the file's annotations attached
    (``report.attached``), unless they already hold ground truth (an accepted or
    rejected instance): then they are skipped with their annotations, so
    re-importing a file adds nothing. Predictions already on such an item stay
    beside the attached annotations. An ambiguous base name (two items of the
    dataset, or two entries of the file, with it) is not guessed: the entry is
    skipped, the reason naming the candidates.

    Declared image sizes are checked against the image file when it is there
    (and against the item already in the dataset): a mismatch raises
    :class:`StoreError` naming the image; nothing is written. Annotations
    without keypoints are kept as box-only instances (every point not labeled)
    and counted in ``report.box_only``.

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
        existing: Images already in the dataset (matched by name, content or base
            name): ``"attach"`` the file's annotations where they hold no ground
            truth (default), ``"skip"`` leave them as they are (reported in
            ``skipped``).
        author_id: The importing user, the author of every imported instance.

    Returns:
        An :class:`ImportReport`.
    """
    from posekit.formats.registry import get_format

    spec = get_format(format)
    if spec.read is None:
        raise StoreError(f"posekit cannot read the {spec.title} format ({format!r})")

    if missing_media not in ("error", "register"):
        raise ValueError(f"missing_media must be 'error' or 'register', got {missing_media!r}")
    if existing not in ("attach", "skip"):
        raise ValueError(f"existing must be 'attach' or 'skip', got {existing!r}")
    start = time.perf_counter()
    coco_path = Path(source)
    project = ws._resolve_project(project)
    root = Path(image_root) if image_root is not None else coco_path.parent
    if format == "coco":
        # Validate everything that runs on whole arrays before touching the database.
        prepared = prepare_coco_file(coco_path, project.template, source=str(coco_path))
        project, dataset, created = _resolve(ws, project, dataset)
        in_dataset = existing_items(ws, dataset.id)
        if streamable(prepared, bool(in_dataset)):  # an empty dataset: the bulk path
            stager = MediaStager(ws, project.id, dataset.id)
            with _undone_on_failure(ws, stager, dataset, created):
                return import_coco_rows(
                    ws, prepared, dataset, coco_path, root, stager, copy_media=copy_media,
                    missing_media=missing_media, author_id=author_id, now=utcnow(),
                    file_meta=_file_meta(prepared), start=start,
                )  # fmt: skip
        try:
            parsed = prepared.dataset()  # the per-annotation checks
        except BaseException:
            _drop_if_created_empty(ws, dataset, created)
            raise
    else:
        parsed = spec.read(coco_path, project.template)  # all validated, nothing written yet
        project, dataset, created = _resolve(ws, project, dataset)
        in_dataset = existing_items(ws, dataset.id)
    restore_track_meta(parsed)  # video frames, tracks and keyframes of a posekit export
    report = ImportReport(dataset=dataset.name)
    matcher = ItemMatcher(in_dataset, coco_path, existing)
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
    n_instances = 0
    with _undone_on_failure(ws, stager, dataset, created):
        entries = _checked_entries(parsed, coco_path, root, format, copy_media)
        matcher.plan((e.stored_name, e.source is not None, e.declared) for e in entries)
        missing: list[str] = []
        for entry, labeled_image in zip(entries, parsed.images):
            name, record, source = entry.name, labeled_image.image, entry.source
            instances = labeled_image.instances
            if matcher.take(
                name, entry.stored_name, entry.where, entry.declared, source, instances, report
            ):
                continue
            sha = media_path = None
            if copy_media:
                if source is not None:
                    sha, media_path = stager.stage(source)
                elif missing_media == "error":
                    missing.append(name)
                    continue
                else:
                    report.missing_media.append(name)
            predicted = any(inst.status == "predicted" for inst in instances)
            item_names.append(entry.stored_name)
            item_media.append(media_path)
            item_sha.append(sha)
            item_width.append(int(record.width))
            item_height.append(int(record.height))
            item_status.append("predicted" if predicted else "reviewed")
            item_external.append(record.id)
            item_extra.append(dict(record.extra) or None)
            labeled.append(instances)
            n_instances += len(instances)
        attach_ids, attach_instances = matcher.attach_ids, matcher.attach_instances
        n_instances += sum(map(len, attach_instances))
        if missing:
            raise MissingMediaError(coco_path, root, missing)
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
                item_ids = [*map(ids.__getitem__, item_names), *attach_ids]
                groups = [*labeled, *attach_instances]
                all_instances = [inst for instances in groups for inst in instances]
                columns: dict[str, list[Any]] = instance_column_lists(all_instances)
                columns["item_id"] = [
                    item_id for item_id, instances in zip(item_ids, groups) for _ in instances
                ]
                columns["external_id"] = [inst.id for inst in all_instances]
                bulk_insert_columns(
                    conn,
                    InstanceRow,
                    columns,
                    {"version": 1, "created_at": now, "updated_at": now, "author_id": author_id},
                )
                report.box_only = sum(not inst.visibility.any() for inst in all_instances)
            # Ground truth from a file counts as a person's labels (no prediction left
            # => reviewed; predictions already there keep the item "predicted").
            settle_item_statuses(conn, attach_ids, by_person=True)
            attach_dataset_videos(conn, ws, dataset, parsed)
            if not dataset.extra:
                conn.execute(
                    update(DatasetRow)
                    .where(DatasetRow.id == dataset.id)
                    .values(extra=_file_meta(parsed))
                )
            stager.publish()
    report.added = len(item_names)
    report.attached = len(attach_ids)
    report.matched = matcher.matched
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


@dataclass(slots=True)
class _Entry:
    """An image entry of a parsed file, its name checked."""

    name: str  # as in the file (a safe relative name)
    stored_name: str  # the portable name it is stored under
    where: str  # as messages name it
    declared: tuple[int, int]  # (width, height) in the file
    source: Path | None  # its image file when it is there (of the declared size)


def _checked_entries(
    parsed: Any, file: Path, root: Path, format: str, copy_media: bool
) -> list[_Entry]:
    """The file's image entries with safe, unique names; the image files that are there
    checked against the declared sizes (``StoreError`` naming the entry)."""
    entries: list[_Entry] = []
    seen: set[str] = set()
    for index, labeled_image in enumerate(parsed.images):
        record = labeled_image.image
        try:
            name = safe_relative_name(record.file_name)
        except UnsafePathError as exc:
            raise StoreError(f"{file}: image {exc}") from None
        if name in seen:
            raise StoreError(f"{file}: image file_name {name!r} is listed twice")
        seen.add(name)
        where = f"images[{index}] ({name!r})" if format == "coco" else f"image {name!r}"
        declared = (int(record.width), int(record.height))
        source = root / name if copy_media else None
        if source is not None and source.is_file():
            check_declared_size(file, where, source, declared)
        else:
            source = None
        # valid on Windows too (exports get copied)
        stored_name = claim_stored_name(file, where, name, seen)
        entries.append(_Entry(name, stored_name, where, declared, source))
    return entries


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
