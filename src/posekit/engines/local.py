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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from functools import partial

import numpy as np

from posekit.core import Instance
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

__all__ = ["ItemSource", "PredictionWriter", "autolabel"]

log = logging.getLogger(__name__)


def _load_item(item: Item) -> np.ndarray:
    if item.path is None:
        raise FrameError("no media file (registered only)")
    return load_image(item.path)


class ItemSource:
    """A :class:`~posekit.pipeline.run.FrameSource` over project items (keyed by item id)."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[WorkUnit]:
        for item in self.items:
            yield WorkUnit(item.id, partial(_load_item, item))


class PredictionWriter:
    """A :class:`~posekit.pipeline.run.PredictionSink` writing each batch of predictions
    to the workspace in one transaction, counting into ``report``.

    Args:
        ws: The workspace.
        items: The items the keys (item ids) refer to.
        model_name: Names the ``model:<name>`` source of instances that lack one.
        overwrite: See :meth:`posekit.store.Workspace.write_predictions`.
        report: Receives processed / skipped / instances / failures counts.
    """

    def __init__(
        self,
        ws: Workspace,
        items: Sequence[Item],
        model_name: str,
        overwrite: bool,
        report: AutolabelReport,
    ) -> None:
        self._ws = ws
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
        written = self._ws.write_predictions(predictions, overwrite=self._overwrite)
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
        return instance.copy(status="predicted", source=source, id=None)


def _items_to_label(
    ws: Workspace, project: Project, options: AutolabelOptions
) -> tuple[list[Item], int]:
    """The items to process and how many of the selected ones are skipped."""
    wanted = None if options.item_ids is None else set(options.item_ids)

    def selected(items: list[Item]) -> list[Item]:
        return items if wanted is None else [i for i in items if i.id in wanted]

    if options.overwrite:
        return selected(ws.list_items(project, dataset=options.dataset)), 0
    # Labeled means: it has instances, or a model already looked at it and found
    # nobody (status moved on from "new"); neither is redone without overwrite.
    if wanted is None:
        total = ws.count_items(project, dataset=options.dataset)
    else:
        total = len(selected(ws.list_items(project, dataset=options.dataset)))
    todo = [
        item
        for item in selected(ws.list_items(project, dataset=options.dataset, has_instances=False))
        if item.status == "new"
    ]
    return todo, total - len(todo)


def autolabel(
    ws: Workspace,
    project: Project | str,
    options: AutolabelOptions | None = None,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    detector: Detector | None = None,
    pose: PoseEstimator | None = None,
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
    todo, report.skipped = _items_to_label(ws, project, options)
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
        sink = PredictionWriter(ws, todo, pose.name, options.overwrite, report)
        summary = run_pipeline(
            ItemSource(todo),
            sink,
            detector,
            pose,
            project.template,
            options,
            progress=progress,
            should_stop=should_stop,
        )
        report.cancelled = summary.cancelled
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
