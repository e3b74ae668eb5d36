"""Predicting poses for image files without a project (``posekit predict``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from posekit.media import ImageError, find_images, load_image
from posekit.models import Detections, Detector, PoseEstimator
from posekit.skeleton import Skeleton

if TYPE_CHECKING:
    from posekit.formats.coco import CocoDataset

__all__ = ["FilePrediction", "image_names", "predict_files"]

log = logging.getLogger(__name__)


@dataclass
class FilePrediction:
    """Result of :func:`predict_files`.

    Attributes:
        dataset: A :class:`posekit.formats.coco.CocoDataset` with one image per
            readable input file (named by its path relative to the folder given,
            or its base name for files given directly) and its predicted instances.
        paths: ``file_name -> Path`` of every image in ``dataset``.
        failures: ``(path, reason)`` of every input that could not be processed.
        elapsed: Wall time in seconds.
    """

    dataset: CocoDataset
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


def _load_batches(
    items: list[tuple[str, Path]], batch_size: int
) -> Iterator[list[tuple[str, Path, np.ndarray | None, str | None]]]:
    """Decode images one batch ahead in a worker thread (decoding releases the GIL)."""

    def load(batch: list[tuple[str, Path]]):
        out = []
        for name, path in batch:
            try:
                out.append((name, path, load_image(path), None))
            except ImageError as exc:
                # The message starts with the path; failures pair it with the path already.
                out.append((name, path, None, str(exc).removeprefix(f"{path}: ")))
        return out

    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="posekit-decode") as pool:
        pending = pool.submit(load, batches[0])
        for following in [*batches[1:], None]:
            current = pending.result()
            if following is not None:
                pending = pool.submit(load, following)
            yield current


def predict_files(
    inputs: Sequence[str | Path],
    skeleton: Skeleton,
    pose_estimator: PoseEstimator,
    detector: Detector | None = None,
    *,
    boxes: Mapping[str, Detections] | None = None,
    batch_size: int = 8,
    progress: bool = True,
) -> FilePrediction:
    """Run detection (or use ``boxes``) and pose estimation over image files.

    Args:
        inputs: Image files and/or folders (searched recursively).
        skeleton: Template the predictions are written on.
        pose_estimator: Top-down pose estimator.
        detector: Person detector; not needed when ``boxes`` is given.
        boxes: Person boxes by image file name (see
            :func:`posekit.formats.coco.load_boxes`); images without an entry get
            no detections. Matched by the name relative to the input folder, then
            by base name.
        batch_size: Images per model batch.
        progress: Show a progress bar on stderr.

    Returns:
        A :class:`FilePrediction`; unreadable files are listed in ``failures``.
    """
    from posekit.formats.coco import CocoDataset, ImageRecord, LabeledImage
    from posekit.pipeline.predict import predict

    if detector is None and boxes is None:
        raise ValueError("predict_files needs a detector or boxes")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    named = image_names(inputs)
    items = list(named.items())
    by_basename: dict[str, Detections] = {}
    if boxes is not None:
        for name, dets in boxes.items():
            by_basename.setdefault(Path(name).name, dets)
    labeled: list[LabeledImage] = []
    failures: list[tuple[str, str]] = []
    empty = Detections(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32))

    from rich.progress import Progress

    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task("predicting", total=len(items))
        image_id = 0
        for batch in _load_batches(items, batch_size):
            ok = [(n, p, img) for n, p, img, err in batch if img is not None]
            failures.extend((str(p), err) for n, p, img, err in batch if err is not None)
            if ok:
                images = [img for _, _, img in ok]
                given = None
                if boxes is not None:
                    given = [
                        boxes.get(n) or by_basename.get(Path(n).name) or empty for n, _, _ in ok
                    ]
                try:
                    results = predict(images, skeleton, detector, pose_estimator, given)
                except Exception as exc:  # a model failure on one batch is not fatal
                    log.exception("prediction failed on a batch")
                    failures.extend((str(p), f"prediction failed: {exc}") for _, p, _ in ok)
                    results = None
                if results is not None:
                    for (name, _path, img), instances in zip(ok, results):
                        image_id += 1
                        record = ImageRecord(
                            file_name=name, width=img.shape[1], height=img.shape[0], id=image_id
                        )
                        labeled.append(LabeledImage(record, list(instances)))
            bar.advance(task, len(batch))
    if failures:
        log.info(
            "skipped %d of %d input images (see FilePrediction.failures)", len(failures), len(items)
        )
    dataset = CocoDataset(skeleton=skeleton, images=labeled)
    return FilePrediction(
        dataset=dataset,
        paths={n: p for n, p in items},
        failures=failures,
        elapsed=time.perf_counter() - started,
    )
