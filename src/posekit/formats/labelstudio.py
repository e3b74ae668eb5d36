"""Label Studio JSON export/import of keypoints, and the labeling config for a template.

A Label Studio export is a list of tasks (``data`` naming the image, ``annotations``
and ``predictions`` holding ``result`` lists). posekit maps them as follows:

* one task is one image (``ImageRecord.id`` is the task id); the image URL in
  ``data`` becomes ``file_name`` (``/data/local-files/?d=a/b.jpg`` -> ``a/b.jpg``,
  ``/data/upload/3/x.jpg`` -> ``upload/3/x.jpg``, ``s3://bucket/k.jpg`` ->
  ``bucket/k.jpg``, a URL -> its path) and is kept in
  ``ImageRecord.extra["labelstudio_image"]`` so that export writes it back;
* a person is a ``rectanglelabels`` region (the person box) and the
  ``keypointlabels`` regions whose ``parentID`` is that box's ``id``; keypoint
  ``x``/``y`` and box values are percent of ``original_width``/``original_height``;
* keypoints without a ``parentID`` form one person per result list when each
  keypoint name appears at most once (else the error names the repeated one);
* occlusion: Label Studio has no visibility flag; posekit writes a per-region
  ``choices`` result ``occluded`` (the ``Choices name="visibility" perRegion``
  control of :func:`labelstudio_config`) on occluded points and reads it back;
* the latest non-cancelled annotation of a task gives its ``accepted`` instances;
  each prediction gives ``predicted`` instances with ``source`` ``model:<model_version>``;
  region ``score`` values become instance / keypoint scores.

Label Studio has no skeleton (edges, flip pairs, OKS sigmas): pass the template,
or the labeling config (its ``KeyPointLabels`` in ``model_index`` order must be the
names of a shipped preset). It has no tracks, no crowd regions, no ``rejected``
state and no instance ids: those are not written (rejected instances are skipped,
with a warning). An instance without a box is written with the box around its
points, marked in the region's ``meta.text``, and read back without a box.

Label Studio's own COCO exporter (label-studio-sdk) puts every keypoint of a task
into a single annotation, whatever person it belongs to; posekit groups keypoints
by ``parentID`` instead, one instance per person box (as the SDK's YOLO exporter does).

Example:
    >>> from posekit.skeleton import get_preset
    >>> xml = labelstudio_config(get_preset("coco17"))
    >>> '<Label value="nose" model_index="0"' in xml
    True
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from posekit.dataset import PoseDataset
from posekit.formats.files import atomic_path, atomic_write_text
from posekit.formats.labelstudio_config import (
    DERIVED_BOX_NOTE,
    LOCAL_FILES_PREFIX,
    LabelStudioFormatError,
    labelstudio_config,
    parse_labelstudio_config,
)
from posekit.formats.labelstudio_config import IMAGE_URL_KEY as IMAGE_URL_KEY
from posekit.formats.labelstudio_config import OCCLUDED as OCCLUDED
from posekit.formats.labelstudio_fast import from_labelstudio_json
from posekit.formats.labelstudio_json import NOT_ENCODABLE, labelstudio_json_stream
from posekit.formats.labelstudio_read import from_labelstudio
from posekit.formats.labelstudio_write import to_labelstudio
from posekit.gc_pause import gc_paused
from posekit.skeleton import Skeleton

__all__ = [
    "DERIVED_BOX_NOTE",
    "LabelStudioFormatError",
    "from_labelstudio",
    "labelstudio_config",
    "parse_labelstudio_config",
    "read_labelstudio",
    "to_labelstudio",
    "write_labelstudio",
]


def read_labelstudio(
    path: str | os.PathLike[str],
    skeleton: Skeleton | None = None,
    *,
    label_config: str | os.PathLike[str] | None = None,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> PoseDataset:
    """Read a Label Studio JSON export file (see :func:`from_labelstudio`; the file
    is memory-mapped and read by the fast path of
    :func:`~posekit.formats.labelstudio_fast.from_labelstudio_json`).

    ``label_config`` is the XML text or a path to it; by default a
    ``<stem>.label_config.xml`` next to the export (as :func:`write_labelstudio`
    writes it) is used when present.

    Raises:
        LabelStudioFormatError: invalid JSON or content (the message starts with the path).
    """
    path = Path(path)
    config_text = None
    if label_config is not None:
        candidate = Path(label_config) if not str(label_config).lstrip().startswith("<") else None
        config_text = candidate.read_text("utf-8") if candidate else str(label_config)
    else:
        sidecar = path.with_name(path.stem + ".label_config.xml")
        if sidecar.is_file():
            config_text = sidecar.read_text("utf-8")
    with path.open("rb") as file:
        try:
            # mapped, not read: a 400 MB export costs no copy (nor page faults of one).
            # (Truncating the file while it is read would end the process: SIGBUS.)
            mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except (ValueError, OSError):  # an empty file, a pipe
            return from_labelstudio_json(file.read(), skeleton, label_config=config_text,
                                         image_sizes=image_sizes, source=str(path))  # fmt: skip
        with mapped, memoryview(mapped) as raw:
            return from_labelstudio_json(
                raw, skeleton, label_config=config_text, image_sizes=image_sizes, source=str(path)
            )


def _dumps(data: Any) -> bytes:
    import orjson

    try:
        return orjson.dumps(data)
    except TypeError:  # integers beyond 64 bits in fields carried verbatim
        return json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")


def write_labelstudio(
    dataset: PoseDataset,
    path: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
    image_prefix: str = LOCAL_FILES_PREFIX,
    label_config: bool = True,
) -> Path:
    """Write the dataset as a Label Studio JSON task file (see :func:`to_labelstudio`),
    atomically, and (``label_config=True``) the labeling config for its template
    next to it as ``<stem>.label_config.xml``. ``media`` is not used (tasks name
    their images). Returns the JSON file."""
    del media
    path = Path(path)
    stream = labelstudio_json_stream(dataset, image_prefix=image_prefix)  # checks first
    if label_config:
        sidecar = path.with_name(path.stem + ".label_config.xml")
        atomic_write_text(sidecar, labelstudio_config(dataset.skeleton))
    with atomic_path(path, suffix=".json") as temporary, temporary.open("wb") as file:
        try:
            with gc_paused():
                file.writelines(stream)  # one task at a time: never joined in memory
        except NOT_ENCODABLE:  # a value the direct encoder leaves to the task list's writer
            file.seek(0)
            file.truncate()
            file.write(_dumps(to_labelstudio(dataset, image_prefix=image_prefix)))
    return path
