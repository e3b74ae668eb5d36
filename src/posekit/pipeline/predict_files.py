"""Predicting poses for image files without a project (``posekit predict``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from posekit.core import Detections, Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.media import ImageError, find_images, load_image
from posekit.models.base import Detector, PoseEstimator
from posekit.pipeline.options import AutolabelOptions
from posekit.pipeline.run import FrameError, ProgressCallback, WorkUnit, run_pipeline
from posekit.skeleton import Skeleton

__all__ = ["FilePrediction", "image_names", "predict_files"]

log = logging.getLogger(__name__)


@dataclass
class FilePrediction:
    """Result of :func:`predict_files`.

    Attributes:
        dataset: A :class:`posekit.dataset.PoseDataset` with one image per
            readable input file (named by its path relative to the folder given,
            or its base name for files given directly) and its predicted instances.
        paths: ``file_name -> Path`` of every image in ``dataset``.
        failures: ``(path, reason)`` of every input that could not be processed.
        elapsed: Wall time in seconds.
    """

    dataset: PoseDataset
    paths: dict[str, Path]
    failures: list[tuple[str, str]] = field(default_factory=list)
    elapsed: float = 0.0


def image_names(inputs: Sequence[str | Path]) -> dict[str, Path]:
    """``file_name -> path`` of the images among ``inputs``: files in a folder are
    named by their POSIX path relative to that folder, files given directly by
    their base name. A name given twice raises ``ImageError`` naming both files."""
    named: dict[str, Path] = {}
    for raw in inputs:
        root = Path(raw)
        for path in find_images([root]):
            name = path.relative_to(root).as_posix() if root.is_dir() else path.name
            if name in named and named[name].resolve() != path.resolve():
                raise ImageError(
                    f"two input images share the name {name!r}: {named[name]} and {path}; "
                    "pass their common parent folder instead"
                )
            named[name] = path
    return named


def _load_file(path: Path) -> np.ndarray:
    try:
        return load_image(path)
    except ImageError as exc:
        # The message starts with the path; failures pair it with the path already.
        raise FrameError(str(exc).removeprefix(f"{path}: ")) from exc


class _DatasetSink:
    """Collects predictions as labeled images, numbered in input order."""

    def __init__(self) -> None:
        self.images: list[LabeledImage] = []

    def put(self, key: Hashable, frame: np.ndarray, instances: list[Instance]) -> None:
        record = ImageRecord(
            file_name=str(key),
            width=frame.shape[1],
            height=frame.shape[0],
            id=len(self.images) + 1,
        )
        self.images.append(LabeledImage(record, list(instances)))

    def fail(self, key: Hashable, reason: str) -> None:
        pass  # failures come back in the pipeline summary

    def commit(self) -> None:
        pass

    def flush(self) -> None:
        pass


def predict_files(
    inputs: Sequence[str | Path],
    skeleton: Skeleton,
    pose_estimator: PoseEstimator,
    detector: Detector | None = None,
    *,
    boxes: Mapping[str, Detections] | None = None,
    batch_size: int | None = None,
    options: AutolabelOptions | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FilePrediction:
    """Run detection (or use ``boxes``) and pose estimation over image files.

    Args:
        inputs: Image files and/or folders (searched recursively).
        skeleton: Template the predictions are written on.
        pose_estimator: Top-down pose estimator.
        detector: Person detector; not needed when ``boxes`` is given.
        boxes: Person boxes by image file name (see
            :func:`posekit.pipeline.boxes.load_boxes`); images without an entry get
            no detections. Matched by the name relative to the input folder, then
            by base name.
        batch_size: Images per model batch (default: ``options``').
        options: Thresholds and batching (``min_box_score``, ``min_instance_score``,
            ``oks_nms_threshold``, ``batch_size``); default :class:`AutolabelOptions`.
        progress: ``progress(done, total)`` after every batch (see
            :func:`posekit.pipeline.run.run_pipeline`).
        should_stop: Checked before every batch; True stops the run there.

    Returns:
        A :class:`FilePrediction`; unreadable files are listed in ``failures``.
    """
    if detector is None and boxes is None:
        raise ValueError("predict_files needs a detector or boxes")
    started = time.perf_counter()
    named = image_names(inputs)
    items = list(named.items())
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))
    by_basename: dict[str, Detections] = {}
    if boxes is not None:
        for name, dets in boxes.items():
            by_basename.setdefault(Path(name).name, dets)
    source = [
        WorkUnit(
            name,
            partial(_load_file, path),
            None if boxes is None else boxes.get(name) or by_basename.get(Path(name).name) or empty,
        )
        for name, path in items
    ]
    sink = _DatasetSink()
    options = options or AutolabelOptions()
    if batch_size is not None:
        options = replace(options, batch_size=batch_size)
    summary = run_pipeline(
        source,
        sink,
        detector,
        pose_estimator,
        skeleton,
        options,
        progress=progress,
        should_stop=should_stop,
    )
    failures = [(str(named[name]), reason) for name, reason in summary.failures]
    if failures:
        log.info(
            "skipped %d of %d input images (see FilePrediction.failures)", len(failures), len(items)
        )
    dataset = PoseDataset(skeleton=skeleton, images=sink.images)
    return FilePrediction(
        dataset=dataset,
        paths={n: p for n, p in items},
        failures=failures,
        elapsed=time.perf_counter() - started,
    )
