"""Exporting projects from a workspace to any writable format (COCO, YOLO, ...).

:func:`export` writes through the format table
(:mod:`posekit.formats.registry`); :func:`export_coco` and :func:`export_yolo`
are the same with the format's own options spelled out. One default-status
policy for every format: without ``statuses`` only
:data:`posekit.statuses.DEFAULT_EXPORT_STATUSES` (``accepted``) instances are
written, so unreviewed predictions never become labels by accident.

Which images an export writes (``images="labeled"``, the default of
:func:`export`): an image with at least one written instance, or one a person
settled as holding nobody (status ``reviewed`` with no instance left). Left out:
images nobody labeled or reviewed (``new``, or ``predicted`` with every
prediction filtered out) and images whose every instance was **rejected**: a
rejected prediction says the model was wrong, not that nobody is there, and an
image written with zero people teaches a model exactly that. ``images="all"``
writes every image. Predictions scoring below ``min_score`` (default: the
auto-labeling threshold, :attr:`posekit.pipeline.options.AutolabelOptions.min_instance_score`)
are never written.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, fill_missing_ids
from posekit.gc_pause import gc_paused
from posekit.statuses import DEFAULT_EXPORT_STATUSES, check_instance_statuses
from posekit.store.bulk_export import export_coco_rows
from posekit.store.errors import StoreError
from posekit.store.records import Dataset, Item, Project
from posekit.store.video_exports import add_videos
from posekit.store.workspace import Workspace

__all__ = [
    "ExportReport",
    "export",
    "export_coco",
    "export_yolo",
    "project_to_coco",
    "project_to_dataset",
]


@dataclass
class ExportReport:
    """What an export wrote: the output path and the numbers of images/instances."""

    path: Path
    images: int
    instances: int
    elapsed: float = 0.0
    left_out: int = 0  #: images not written (nobody labeled them, or all rejected)

    def summary(self) -> str:
        left = (
            f", {self.left_out} images without labels left out (unreviewed or all rejected)"
            if self.left_out
            else ""
        )
        return (
            f"{self.images} images, {self.instances} instances -> {self.path}{left} "
            f"({self.elapsed:.1f} s)"
        )


def _unique_ids(preferred: Sequence[int | None]) -> list[int]:
    """Keep each preferred id the first time it appears; number the rest after the max."""
    if None not in preferred and len(set(preferred)) == len(preferred):
        return list(preferred)  # all present and unique (an imported file): kept as they are
    seen: set[int] = set()
    kept: list[int | None] = []
    for value in preferred:
        if value is not None and value not in seen:
            seen.add(value)
            kept.append(value)
        else:
            kept.append(None)
    return fill_missing_ids(kept)


def project_to_dataset(
    ws: Workspace,
    project: Project | str,
    *,
    dataset: Dataset | str | None = None,
    statuses: Sequence[str] | None = None,
    require_media: bool = False,
    images: str = "all",
    min_score: float | None = None,
) -> tuple[PoseDataset, dict[str, Path]]:
    """A :class:`posekit.dataset.PoseDataset` of a project (or one dataset).

    Image and annotation ids are the ids of the imported file where there was
    one (and they are unique), else new ids after the largest. With several
    datasets, file names are prefixed by the dataset name.

    Args:
        statuses: Keep only instances with these review statuses (default
            :data:`posekit.statuses.DEFAULT_EXPORT_STATUSES`; pass
            :data:`posekit.statuses.INSTANCE_STATUSES` for all).
        require_media: Raise if an item has no media file.
        images: ``"all"`` items, or only ``"labeled"`` ones (see the module docstring).
        min_score: Leave out instances scoring below this; None: predictions below
            the auto-labeling default threshold (a person's accepted or rejected
            instances are kept whatever their score).

    Returns:
        ``(dataset, image_paths)`` where ``image_paths`` maps exported file names
        to the stored media files.
    """
    pose_dataset, paths, _ = _build_dataset(
        ws, project, dataset=dataset, statuses=statuses, require_media=require_media,
        images=images, min_score=min_score,
    )  # fmt: skip
    return pose_dataset, paths


def _build_dataset(
    ws: Workspace,
    project: Project | str,
    *,
    dataset: Dataset | str | None = None,
    statuses: Sequence[str] | None = None,
    require_media: bool = False,
    images: str = "all",
    min_score: float | None = None,
    remote: dict[str, str] | None = None,
    with_authors: bool = False,
) -> tuple[PoseDataset, dict[str, Path], int]:
    """:func:`project_to_dataset`, and how many items ``images`` left out; with
    ``with_authors`` each instance's ``extra["author"]`` is its author's username."""
    project, kept_statuses, datasets = _export_scope(ws, project, dataset, statuses)
    prefix = len(datasets) > 1
    items: list[tuple[Dataset, Item]] = []
    for ds in datasets:
        items.extend((ds, item) for item in ws.list_items(project, dataset=ds))
    if require_media:
        missing = [item.file_name for _, item in items if item.media_path is None]
        if missing:
            raise StoreError(
                f"{len(missing)} item(s) of project {project.name!r} have no media file "
                f"(imported without images), e.g. {missing[0]!r}"
            )
    if images not in ("all", "labeled"):
        raise StoreError(f"images must be 'all' or 'labeled', got {images!r}")
    wanted = tuple(kept_statuses) + (() if "rejected" in kept_statuses else ("rejected",))
    by_item = ws.instances_of_datasets([ds.id for ds in datasets], wanted)
    authors = ws.instance_authors([ds.id for ds in datasets]) if with_authors else {}
    per_item = []
    kept_items: list[tuple[Dataset, Item]] = []
    for ds, item in items:
        every = by_item.get(item.id, [])
        kept = [(i, e) for i, e in every if i.status in kept_statuses and _scored(i, min_score)]
        rejected = any(inst.status == "rejected" for inst, _ in every)
        if images == "labeled" and not kept and (item.status != "reviewed" or rejected):
            continue
        kept_items.append((ds, item))
        per_item.append(kept)
    left_out, items = len(items) - len(kept_items), kept_items
    image_ids = _unique_ids([item.external_id for _, item in items])
    ann_ids = iter(_unique_ids([external for kept in per_item for _, external in kept]))
    images = []
    paths: dict[str, Path] = {}
    for (ds, item), image_id, kept in zip(items, image_ids, per_item):
        name = f"{ds.name}/{item.file_name}" if prefix else item.file_name
        if item.path is not None:
            paths[name] = item.path
        elif item.media_path is not None and remote is not None:
            remote[name] = item.media_path  # a storage without local files
        instances = []
        for inst, _ in kept:
            author = authors.get(inst.id)  # type: ignore[arg-type]
            if author is not None:
                inst.extra = {**inst.extra, "author": author}
            inst.id = next(ann_ids)
            instances.append(inst)
        images.append(
            LabeledImage(
                image=ImageRecord(name, item.width, item.height, id=image_id, extra=item.extra),
                instances=instances,
            )
        )
    pose_dataset = dataset_meta(project, datasets)
    pose_dataset.images = images
    add_videos(ws, pose_dataset, [item for _, item in items], kept_statuses)
    return pose_dataset, paths, left_out


def dataset_meta(project: Project, datasets: Sequence[Dataset]) -> PoseDataset:
    """A dataset without images holding the file-level parts of an export of
    ``datasets`` (COCO ``info``, ``licenses``, categories; see :func:`project_to_dataset`)."""
    metas = [ds.extra["coco"] for ds in datasets if ds.extra.get("coco")]
    meta: dict[str, Any] = dict(metas[0]) if metas else {}
    if len(datasets) > 1:
        # Other-category annotations and unknown top-level fields belong to one
        # imported file; they are written back only when exporting that dataset.
        for key in ("extra_annotations", "extra_categories", "extra"):
            meta.pop(key, None)
    return PoseDataset(
        skeleton=project.template,
        images=[],
        category_id=int(meta.get("category_id", 1)),
        info=meta.get("info"),
        licenses=meta.get("licenses"),
        category=meta.get("category"),
        extra_categories=list(meta.get("extra_categories", [])),
        extra_annotations=list(meta.get("extra_annotations", [])),
        extra=dict(meta.get("extra", {})),
    )


def _scored(instance: Any, min_score: float | None) -> bool:
    """Whether an instance passes the score threshold (see :func:`project_to_dataset`)."""
    return passes_score(instance.score, instance.status, min_score)


def passes_score(score: float | None, status: str, min_score: float | None) -> bool:
    """Whether an instance of this score and status passes ``min_score`` (None: the
    auto-labeling threshold, for predictions only)."""
    if score is None:
        return True
    if min_score is None:
        if status != "predicted":
            return True
        from posekit.pipeline.options import AutolabelOptions

        min_score = AutolabelOptions().min_instance_score
    return score >= min_score


#: The former name of :func:`project_to_dataset` (posekit 0.1.0), kept for callers.
project_to_coco = project_to_dataset


class _MediaFiles(dict):  # type: ignore[type-arg]
    """Exported file name -> local file; :meth:`fill` copies the ``remote`` keys'
    objects (a storage without local files) into a staging folder of the workspace."""

    def __init__(self, ws: Workspace, remote: dict[str, str]) -> None:
        super().__init__()
        self._ws, self._remote = ws, remote
        self.folder: Path | None = None

    def fill(self) -> None:
        from posekit.store.media_staging import make_staging_dir

        if not self._remote:
            return
        self.folder = make_staging_dir(self._ws, "export-media-")
        for number, (name, key) in enumerate(self._remote.items()):
            target = self.folder / f"{number}{Path(key).suffix}"
            with self._ws.storage.open(key) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            self[name] = target


@contextmanager
def _local_media(ws: Workspace, remote: dict[str, str]) -> Iterator[_MediaFiles]:
    files = _MediaFiles(ws, remote)
    try:
        yield files
    finally:
        if files.folder is not None:
            shutil.rmtree(files.folder, ignore_errors=True)


def export(
    ws: Workspace,
    project: Project | str,
    destination: str | os.PathLike[str],
    *,
    format: str = "coco",
    dataset: Dataset | str | None = None,
    statuses: Sequence[str] | None = None,
    images: str = "labeled",
    min_score: float | None = None,
    with_authors: bool = False,
    **options: Any,
) -> ExportReport:
    """Write a project (or one dataset) in a writable format of the format table.

    Args:
        ws: The workspace.
        project: Project (or its name).
        destination: The file or folder to write (see the format's ``kind``).
        format: A writable format name (:func:`posekit.formats.registry.writable_formats`).
        dataset: Only this dataset.
        statuses: Keep only instances with these review statuses; default the
            format's ``default_statuses`` (:data:`posekit.statuses.DEFAULT_EXPORT_STATUSES`).
        images: ``"labeled"`` (default) leaves out images nobody labeled and images
            whose every instance was rejected; ``"all"`` writes every image.
        min_score: Leave out instances scoring below this (default: predictions
            below the auto-labeling threshold).
        with_authors: COCO only: write ``"author": "<username>"`` on each annotation
            whose author is known (the user who wrote its current version); the
            import keeps it as an unknown field.
        options: The format writer's own options (e.g. YOLO ``split``, ``link``,
            ``val_fraction``).

    Returns:
        An :class:`ExportReport` whose ``path`` is the main file written.

    Raises:
        StoreError: An unknown status, or an item without media for a format
            that carries the images.
    """
    from posekit.formats.registry import get_format

    spec = get_format(format)
    if spec.write is None:
        raise StoreError(f"posekit cannot write the {spec.title} format ({format!r})")
    if with_authors and format != "coco":
        raise StoreError(
            f"with_authors: only the COCO format carries each annotation's author, "
            f"not {spec.title} ({format!r})"
        )
    start = time.perf_counter()
    if format == "coco" and not with_authors:
        fast = _export_coco_fast(ws, project, destination, dataset, statuses, images, min_score)
        if fast is not None:
            path, n_images, n_instances, left_out = fast
            return ExportReport(
                path, n_images, n_instances, time.perf_counter() - start, left_out=left_out
            )
    remote: dict[str, str] = {}
    with gc_paused(), _local_media(ws, remote) as media:  # no reference cycles in 100k dicts
        pose_dataset, local, left_out = _build_dataset(
            ws,
            project,
            dataset=dataset,
            statuses=spec.default_statuses if statuses is None else statuses,
            # Folder formats carry the image files; a file format only names them.
            require_media=spec.kind == "folder",
            images=images,
            min_score=min_score,
            remote=remote if spec.kind == "folder" else None,
            with_authors=with_authors,
        )
        media.update(local)
        media.fill()
        destination = Path(destination)
        write = spec.write
        if format == "coco" and pose_dataset.videos:
            # COCO with PoseTrack18 per-image video fields (vid_id, frame_id, nframes,
            # is_labeled) and track_id: read back by the COCO import without loss.
            from posekit.formats.posetrack import write_posetrack

            write = write_posetrack
        written = write(pose_dataset, destination, media=media, **options)
    n_instances = sum(len(image.instances) for image in pose_dataset.images)
    return ExportReport(
        Path(written) if written is not None else destination,
        len(pose_dataset.images),
        n_instances,
        time.perf_counter() - start,
        left_out=left_out,
    )


def _export_coco_fast(
    ws: Workspace,
    project: Project | str,
    destination: str | os.PathLike[str],
    dataset: Dataset | str | None,
    statuses: Sequence[str] | None,
    images: str,
    min_score: float | None,
) -> tuple[Path, int, int, int] | None:
    """:func:`export` of a COCO file straight from the rows
    (:mod:`posekit.store.bulk_export`); None where the general path must write it."""
    project, kept_statuses, datasets = _export_scope(ws, project, dataset, statuses)
    if images not in ("all", "labeled"):
        raise StoreError(f"images must be 'all' or 'labeled', got {images!r}")
    with gc_paused():  # no reference cycles in 100k dicts
        return export_coco_rows(
            ws, project, datasets, dataset_meta(project, datasets), kept_statuses, images,
            min_score, Path(destination),
        )  # fmt: skip


def export_coco(
    ws: Workspace,
    project: Project | str,
    out_path: str | os.PathLike[str],
    *,
    dataset: Dataset | str | None = None,
    statuses: Sequence[str] | None = None,
    with_authors: bool = False,
) -> ExportReport:
    """Write a project (or one dataset) as a COCO keypoints file (atomically).

    Lossless for what COCO can carry plus posekit's own fields (ids, scores,
    track ids, crowd flags, segmentations, review status, unknown fields), via
    :func:`posekit.formats.coco.to_coco`.

    Args:
        statuses: Keep only instances with these review statuses (default
            ``accepted`` only; :data:`posekit.statuses.INSTANCE_STATUSES` for all).
        with_authors: Write ``"author": "<username>"`` on each annotation (see
            :func:`export`).
    """
    return export(
        ws, project, out_path, format="coco", dataset=dataset, statuses=statuses,
        with_authors=with_authors,
    )  # fmt: skip


def export_yolo(
    ws: Workspace,
    project: Project | str,
    out_dir: str | os.PathLike[str],
    *,
    dataset: Dataset | str | None = None,
    statuses: Sequence[str] | None = None,
    split: str = "train",
    link: bool = True,
    val_fraction: float = 0.0,
) -> ExportReport:
    """Write a project as an Ultralytics YOLO pose dataset.

    Only ``accepted`` instances by default (the one export policy): YOLO labels
    cannot carry a review status. Every exported item needs its media file.

    Returns:
        An :class:`ExportReport` whose ``path`` is the dataset YAML.
    """
    return export(
        ws, project, out_dir, format="yolo", dataset=dataset, statuses=statuses,
        split=split, link=link, val_fraction=val_fraction,
    )  # fmt: skip


def _export_scope(
    ws: Workspace,
    project: Project | str,
    dataset: Dataset | str | None,
    statuses: Sequence[str] | None,
) -> tuple[Project, Any, list[Dataset]]:
    """The project, the checked statuses (``StoreError`` naming a bad one) and the
    datasets (all, or the one named) an export covers."""
    project = ws._resolve_project(project)
    try:
        kept_statuses = check_instance_statuses(
            DEFAULT_EXPORT_STATUSES if statuses is None else statuses
        )
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    if dataset is None:
        return project, kept_statuses, ws.list_datasets(project)
    return project, kept_statuses, [ws._resolve_dataset(project, dataset)]
