"""Auto-labeling a project: detect people, estimate their poses, store predictions.

Resumable and safe to interrupt:

* Items that already have instances are skipped unless ``overwrite=True``, so
  a second run picks up where an interrupted one stopped.
* Each batch is written in its own transaction: after Ctrl-C, a kill or a
  cancel event, every item is either fully labeled or untouched.
* ``overwrite=True`` replaces only instances with status ``predicted`` and a
  ``model:*`` source. Manual instances and anything a person accepted or
  rejected are never modified or deleted (new predictions are added next to
  them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from posekit.core import Instance
from posekit.media import ImageError, load_image
from posekit.models.base import Detector, PoseEstimator
from posekit.skeleton import Skeleton

if TYPE_CHECKING:
    from posekit.store import Dataset, Item, Project, Workspace

__all__ = ["AutolabelReport", "autolabel"]

log = logging.getLogger(__name__)


@dataclass
class AutolabelReport:
    """Summary of an :func:`autolabel` run.

    Attributes:
        processed: Items labeled (predictions written, possibly zero people).
        skipped: Items left alone because they already had instances.
        failures: ``(file_name, reason)`` of items that could not be processed.
        instances: Number of instances written.
        device: Devices the models reported, e.g. ``"detector: cpu, pose: cpu"``.
        elapsed: Wall time in seconds.
        cancelled: True if the run stopped early on the cancel event.
    """

    processed: int = 0
    skipped: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    instances: int = 0
    device: str = ""
    elapsed: float = 0.0
    cancelled: bool = False

    def summary(self) -> str:
        """One line for people: what was labeled, skipped, failed, on which device."""
        text = (
            f"{self.processed} items labeled ({self.instances} instances), "
            f"{self.skipped} already labeled and skipped, {len(self.failures)} failed "
            f"in {self.elapsed:.1f} s on {self.device or 'unknown device'}"
        )
        return text + (" (cancelled)" if self.cancelled else "")


def _as_prediction(instance: Instance, model_name: str) -> Instance:
    source = instance.source if instance.source.startswith("model:") else f"model:{model_name}"
    return instance.copy(status="predicted", source=source, id=None)


def _predict_batch(
    images: Sequence[np.ndarray],
    skeleton: Skeleton,
    detector: Detector,
    pose_estimator: PoseEstimator,
) -> list[list[Instance] | Exception]:
    """Predictions per image; if the batch fails, images are retried one by one
    so that one bad image does not cost the others."""
    from posekit.pipeline.predict import predict

    try:
        return list(predict(images, skeleton, detector, pose_estimator))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as batch_error:
        if len(images) == 1:
            return [batch_error]
        results: list[list[Instance] | Exception] = []
        for image in images:
            try:
                results.append(predict([image], skeleton, detector, pose_estimator)[0])
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:
                results.append(exc)
        return results


def autolabel(
    ws: Workspace,
    project: Project | str,
    *,
    detector: str | Detector = "blazepose",
    pose: str | PoseEstimator = "blazepose",
    dataset: Dataset | str | None = None,
    overwrite: bool = False,
    batch_size: int = 8,
    progress: bool = True,
    cancel: threading.Event | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> AutolabelReport:
    """Predict poses for every item of a project (or one dataset) and store them.

    Args:
        ws: The :class:`posekit.store.Workspace`.
        project: Project or project name.
        detector: Detector spec (``"blazepose"``) or a created :class:`Detector`
            (which is then not closed here).
        pose: Pose estimator spec or a created :class:`PoseEstimator`.
        dataset: Only this dataset (object or name); default all datasets.
        overwrite: Also process items that have instances, replacing their
            ``predicted`` model instances (manual/accepted/rejected ones are kept).
        batch_size: Images per model call and per database transaction.
        progress: Show a rich progress bar.
        cancel: Stop after the current batch once this event is set.
        on_progress: Called as ``on_progress(done, total)`` with the number of
            items to process: once before the first batch (``done=0``) and after
            every batch (from the calling thread; keep it cheap).

    Returns:
        An :class:`AutolabelReport`; per-item failures are collected there.

    Example:
        >>> report = autolabel(ws, "people", dataset="train")  # doctest: +SKIP
        >>> report.processed, report.failures  # doctest: +SKIP
    """
    from posekit.models import create_detector, create_pose_estimator
    from posekit.store import Workspace

    if not isinstance(ws, Workspace):
        raise TypeError(f"ws: expected a posekit.store.Workspace, got {type(ws).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    start = time.perf_counter()
    project = ws._resolve_project(project)
    skeleton = project.template
    report = AutolabelReport()
    if overwrite:
        todo = ws.list_items(project, dataset=dataset)
    else:
        # Labeled means: it has instances, or a model already looked at it and found
        # nobody (status moved on from "new"); neither is redone without overwrite.
        total = ws.count_items(project, dataset=dataset)
        todo = [
            item
            for item in ws.list_items(project, dataset=dataset, has_instances=False)
            if item.status == "new"
        ]
        report.skipped = total - len(todo)
    owned: list[Detector | PoseEstimator] = []
    try:
        if isinstance(detector, str):
            detector = create_detector(detector)
            owned.append(detector)
        if isinstance(pose, str):
            pose = create_pose_estimator(pose)
            owned.append(pose)
        report.device = f"detector: {detector.device}, pose: {pose.device}"
        log.info(
            "autolabel %s: %d items to label (%d skipped) with %s + %s on %s",
            project.name,
            len(todo),
            report.skipped,
            detector.name,
            pose.name,
            report.device,
        )
        _run(
            ws,
            todo,
            skeleton,
            detector,
            pose,
            report,
            overwrite,
            batch_size,
            progress,
            cancel,
            on_progress,
        )
    finally:
        for model in owned:
            model.close()
        report.elapsed = time.perf_counter() - start
    log.info(
        "autolabel %s: %d labeled, %d instances, %d skipped, %d failed in %.1f s%s",
        project.name,
        report.processed,
        report.instances,
        report.skipped,
        len(report.failures),
        report.elapsed,
        " (cancelled)" if report.cancelled else "",
    )
    return report


def _run(
    ws: Workspace,
    todo: list[Item],
    skeleton: Skeleton,
    detector: Detector,
    pose: PoseEstimator,
    report: AutolabelReport,
    overwrite: bool,
    batch_size: int,
    progress: bool,
    cancel: threading.Event | None,
    on_progress: Callable[[int, int], None] | None = None,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        disable=not progress,
    ) as bar:
        task = bar.add_task("auto-labeling", total=len(todo))
        if on_progress is not None:
            on_progress(0, len(todo))
        for begin in range(0, len(todo), batch_size):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                log.info("autolabel cancelled; %d items left", len(todo) - begin)
                break
            batch = todo[begin : begin + batch_size]
            loaded = []
            images = []
            for item in batch:
                if item.path is None:
                    report.failures.append((item.file_name, "no media file (registered only)"))
                    continue
                try:
                    images.append(load_image(item.path))
                    loaded.append(item)
                except ImageError as exc:
                    report.failures.append((item.file_name, str(exc)))
            results = _predict_batch(images, skeleton, detector, pose) if images else []
            predictions: dict[int, list[Instance]] = {}
            for item, result in zip(loaded, results):
                if isinstance(result, Exception):
                    report.failures.append((item.file_name, f"{type(result).__name__}: {result}"))
                    continue
                predictions[item.id] = [_as_prediction(i, pose.name) for i in result]
            written = ws.write_predictions(predictions, overwrite=overwrite)
            report.processed += len(written)
            report.skipped += len(predictions) - len(written)
            report.instances += sum(len(ids) for ids in written.values())
            bar.advance(task, len(batch))
            if on_progress is not None:
                on_progress(min(begin + batch_size, len(todo)), len(todo))
