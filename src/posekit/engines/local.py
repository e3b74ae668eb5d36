"""Auto-labeling a project in this process: the store-backed adapter over the pipeline.

:func:`autolabel` feeds a project's items to :func:`posekit.pipeline.run.run_pipeline`
and writes what it finds back to the workspace. Resumable and safe to interrupt:

* Items that already have instances (or that a model already looked at) are
  skipped unless ``options.overwrite``, so a second run picks up where an
  interrupted one stopped.
* Each batch is written in its own transaction: after Ctrl-C, a kill or a
  cancel request, every item is either fully labeled or untouched.
* ``overwrite=True`` replaces only instances with status ``predicted`` and a
  ``model:*`` source. Manual instances and anything a person accepted or
  rejected are never modified or deleted (new predictions are added next to
  them).
* Videos of the project are auto-labeled with tracking after the images
  (:mod:`posekit.engines.local_video`): predictions per frame with ``track_id``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from posekit.core import Instance
from posekit.engines.local_video import autolabel_videos, videos_to_label
from posekit.engines.report import AutolabelReport
from posekit.media import load_image
from posekit.models.base import Detector, PoseEstimator
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.run import (
    FrameError,
    ProgressCallback,
    WorkUnit,
    models_device,
    run_pipeline,
)
from posekit.store import Item, Project, Workspace
from posekit.store.storage import MediaStorage
from posekit.store.videos import FRAME_ITEM_KIND

__all__ = ["PROVENANCE_OPTIONS", "ItemSource", "PredictionWriter", "autolabel", "provenance"]

log = logging.getLogger(__name__)


def _load_item(item: Item, storage: MediaStorage | None = None) -> np.ndarray:
    if item.media_path is None:
        raise FrameError("no media file (registered only)")
    if item.path is None and storage is not None:  # a storage without local files
        from posekit.store.storage import media_source

        return load_image(media_source(storage, item.media_path))
    if item.path is None:
        raise FrameError("its media storage keeps no local files")
    return load_image(item.path)


class ItemSource:
    """A :class:`~posekit.pipeline.run.FrameSource` over project items (keyed by item id)."""

    def __init__(self, items: Sequence[Item], storage: MediaStorage | None = None) -> None:
        self.items = list(items)
        self.storage = storage

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[WorkUnit]:
        for item in self.items:
            yield WorkUnit(item.id, partial(_load_item, item, self.storage))


class PredictionWriter:
    """A :class:`~posekit.pipeline.run.PredictionSink` writing each batch of predictions
    to the workspace in one transaction, counting into ``report``.

    Args:
        ws: The workspace.
        items: The items the keys (item ids) refer to.
        model_name: Names the ``model:<name>`` source of instances that lack one.
        overwrite: See :meth:`posekit.store.Workspace.write_predictions`.
        report: Receives processed / skipped / instances / failures counts.
        provenance: What produced the predictions (:func:`provenance`), stored in each
            prediction's ``extra["autolabel"]`` so a reviewer can see it.
        author_id: The user who ran the job (the predictions' author), or None.
    """

    def __init__(
        self,
        ws: Workspace,
        items: Sequence[Item],
        model_name: str,
        overwrite: bool,
        report: AutolabelReport,
        provenance: Mapping[str, Any] | None = None,
        author_id: int | None = None,
    ) -> None:
        self._ws = ws
        self._author_id = author_id
        self._provenance = dict(provenance) if provenance else None
        self._names = {item.id: item.file_name for item in items}
        self._model_name = model_name
        self._overwrite = overwrite
        self._report = report
        self._pending: dict[int, list[Instance]] = {}

    def put(self, key: Hashable, frame: np.ndarray, instances: list[Instance]) -> None:
        self._pending[int(key)] = [self._as_prediction(i) for i in instances]  # type: ignore[call-overload]

    def fail(self, key: Hashable, reason: str) -> None:
        self._report.failures.append((self._names.get(key, str(key)), reason))  # type: ignore[arg-type]

    def commit(self) -> None:
        predictions, self._pending = self._pending, {}
        written = self._ws.write_predictions(
            predictions, overwrite=self._overwrite, author_id=self._author_id
        )
        # Items labeled by someone else since the run started are skipped, not overwritten.
        self._report.processed += len(written)
        self._report.skipped += len(predictions) - len(written)
        self._report.instances += sum(len(ids) for ids in written.values())

    def flush(self) -> None:
        if self._pending:
            self.commit()

    def _as_prediction(self, instance: Instance) -> Instance:
        source = instance.source
        if not source.startswith("model:"):
            source = f"model:{self._model_name}"
        if self._provenance is None:
            return instance.copy(status="predicted", source=source, id=None)
        extra = {**instance.extra, "autolabel": self._provenance}
        return instance.copy(status="predicted", source=source, id=None, extra=extra)


#: The options that decide what a prediction is, stored with it (:func:`provenance`).
PROVENANCE_OPTIONS = (
    "detector", "pose", "min_box_score", "min_instance_score", "oks_nms_threshold",
    "batch_size", "device", "existing", "overwrite",
)  # fmt: skip


def provenance(
    options: AutolabelOptions, detector: Detector, pose: PoseEstimator
) -> dict[str, Any]:
    """What produced a prediction: the model specs and thresholds of the run, and the
    models' names and device (stored in ``Instance.extra["autolabel"]``)."""
    chosen = options.to_dict()
    out: dict[str, Any] = {name: chosen[name] for name in PROVENANCE_OPTIONS}
    out["models"] = {"detector": detector.name, "pose": pose.name}
    out["ran_on"] = models_device(detector, pose)
    return out


def _is_stored_frame(item: Item) -> bool:
    """A frame of a stored video: labeled through its video (tracked), not as an image."""
    return item.kind == FRAME_ITEM_KIND and item.media_path is None


def items_to_label(
    ws: Workspace, project: Project, options: AutolabelOptions
) -> tuple[list[Item], int]:
    """The items to process and how many of the selected ones are skipped."""
    wanted = None if options.item_ids is None else set(options.item_ids)

    def selected(items: list[Item]) -> list[Item]:
        return items if wanted is None else [i for i in items if i.id in wanted]

    existing = options.existing_labels
    if options.overwrite or existing != "skip":
        items = selected(
            [i for i in ws.list_items(project, dataset=options.dataset) if not _is_stored_frame(i)]
        )
        return _filter_labeled(ws, items, existing, options.overwrite)
    # Labeled means: it has instances, or a model already looked at it and found
    # nobody (status moved on from "new"); neither is redone without overwrite.
    if wanted is None:
        total = ws.count_items(project, dataset=options.dataset)
        total -= ws.count_frame_items(project, dataset=options.dataset)
    else:
        items = selected(ws.list_items(project, dataset=options.dataset))
        total = len([i for i in items if not _is_stored_frame(i)])
    todo = [
        item
        for item in selected(ws.list_items(project, dataset=options.dataset, has_instances=False))
        if item.status == "new" and not _is_stored_frame(item)
    ]
    return todo, total - len(todo)


def _filter_labeled(
    ws: Workspace, items: list[Item], existing: str, redo_predictions: bool
) -> tuple[list[Item], int]:
    """Items to process under ``options.existing`` (see :class:`AutolabelOptions`)."""
    if existing == "replace-predictions":
        return items, 0
    instances = ws.instances_by_item([i.id for i in items])
    todo = []
    for item in items:
        held = instances.get(item.id, [])
        by_person = any(inst.status != "predicted" for inst in held)
        by_model = any(inst.source != "manual" for inst in held) or (
            not held and item.status != "new"
        )
        if by_person:
            # skip: never; beside: once (until a model instance is there).
            take = existing == "beside" and (redo_predictions or not by_model)
        else:
            take = redo_predictions or not by_model
        if take:
            todo.append(item)
    return todo, len(items) - len(todo)


def autolabel(
    ws: Workspace,
    project: Project | str,
    options: AutolabelOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    detector: Detector | None = None,
    pose: PoseEstimator | None = None,
    author_id: int | None = None,
) -> AutolabelReport:
    """Predict poses for every item of a project (or one dataset) and store them.

    Args:
        ws: The :class:`posekit.store.Workspace`.
        project: Project or project name.
        options: Models, thresholds, batch size, overwrite, item selection
            (default :class:`AutolabelOptions`).
        progress: ``progress(done, total)`` with the number of items to process:
            once before the first batch (``done=0``) and after every batch, from
            the calling thread (keep it cheap).
        should_stop: Checked before every batch; the run stops there when it
            returns True (``cancelled`` in the report), e.g. ``event.is_set``.
        detector: A created detector to use instead of ``options.detector`` (it
            belongs to the caller and is not closed here).
        pose: A created pose estimator to use instead of ``options.pose``.
        author_id: The user running it: the author of the image predictions (the
            predictions they replace stay in their history).

    Returns:
        An :class:`AutolabelReport`; per-item failures are collected there.

    Example:
        >>> options = AutolabelOptions(dataset="train", batch_size=16)
        >>> report = autolabel(ws, "people", options)  # doctest: +SKIP
        >>> report.processed, report.failures  # doctest: +SKIP
    """
    from posekit.models.registry import create_detector, create_pose_estimator

    if not isinstance(ws, Workspace):
        raise TypeError(f"ws: expected a posekit.store.Workspace, got {type(ws).__name__}")
    options = options or AutolabelOptions()
    if not isinstance(options, AutolabelOptions):
        raise TypeError(f"options: expected AutolabelOptions, got {type(options).__name__}")
    start = time.perf_counter()
    if isinstance(project, str):
        project = ws.get_project(project)
    report = AutolabelReport()
    todo, report.skipped = items_to_label(ws, project, options)
    videos, skipped_videos = videos_to_label(ws, project, options)
    report.skipped += skipped_videos
    owned: list[Detector | PoseEstimator] = []
    try:
        if detector is None:
            detector = create_detector(options.detector, **options.model_options("detector"))
            owned.append(detector)
        if pose is None:
            pose = create_pose_estimator(options.pose, **options.model_options("pose"))
            owned.append(pose)
        report.device = models_device(detector, pose)
        log.info(
            "autolabel %s: %d items to label (%d skipped) with %s + %s on %s",
            project.name,
            len(todo),
            report.skipped,
            detector.name,
            pose.name,
            report.device,
        )
        sink = PredictionWriter(
            ws, todo, pose.name, options.replaces_predictions, report,
            provenance=provenance(options, detector, pose), author_id=author_id,
        )  # fmt: skip
        summary = run_pipeline(
            ItemSource(todo, ws.storage),
            sink,
            detector,
            pose,
            project.template,
            options,
            progress=progress,
            should_stop=should_stop,
        )
        report.cancelled = summary.cancelled
        if videos and not report.cancelled:
            # Video items: tracked prediction on their frames (engines.local_video).
            autolabel_videos(
                ws, project, videos, detector, pose, options, report,
                progress=progress, should_stop=should_stop,
            )  # fmt: skip
    finally:
        for model in owned:
            model.close()
        report.elapsed = time.perf_counter() - start
    log.info(
        "autolabel %s: %d labeled, %d instances, %d skipped, %d failed in %.1f s on %s%s",
        project.name,
        report.processed,
        report.instances,
        report.skipped,
        len(report.failures),
        report.elapsed,
        report.device,
        " (cancelled)" if report.cancelled else "",
    )
    return report
