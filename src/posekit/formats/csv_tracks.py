"""Pose tracks as CSV, one row per frame, track and joint, for analysis (pandas, R,
spreadsheets).

Columns: ``video, frame, time, track, joint, x, y, visibility, score``:

* ``video``: the frame's video name (``VideoRecord.name``), or the image's
  ``file_name`` for a still image;
* ``frame``: 0-based frame index (empty for still images); ``time``: its presentation
  time in seconds (empty when unknown);
* ``track``: the instance's ``track_id`` (empty when untracked);
* ``joint``: the keypoint name of the template; ``x``, ``y``: pixels, empty where the
  joint is not labeled; ``visibility``: 0 not labeled, 1 occluded, 2 visible;
* ``score``: the keypoint score (empty for manual annotations).

Rows are ordered by video, frame, track, joint (template order). Write-only: a CSV
per track is an analysis output, not an annotation format to import.

Example:
    >>> import io
    >>> from posekit.dataset import PoseDataset
from posekit.formats.files import temporary_beside
    >>> from posekit.skeleton import get_preset
    >>> buffer = io.StringIO()
    >>> to_csv_tracks(PoseDataset(get_preset("coco17"), []), buffer)
    >>> buffer.getvalue().strip()
    'video,frame,time,track,joint,x,y,visibility,score'
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from posekit.dataset import PoseDataset
from posekit.formats.files import temporary_beside

__all__ = ["CAPABILITIES", "COLUMNS", "SPEC", "to_csv_tracks", "write_csv_tracks"]

COLUMNS = ("video", "frame", "time", "track", "joint", "x", "y", "visibility", "score")


def _number(value: float) -> str:
    return f"{float(value):.6g}" if abs(value) < 1e6 else f"{float(value):.3f}"


def to_csv_tracks(dataset: PoseDataset, stream: IO[str]) -> int:
    """Write the CSV rows of ``dataset`` to a text stream; returns the number of rows."""
    names = list(dataset.skeleton.keypoints)
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    rows = 0
    images = sorted(
        dataset.images,
        key=lambda li: (li.image.video or li.image.file_name, li.image.frame_index or 0),
    )
    for labeled in images:
        record = labeled.image
        video = record.video if record.video is not None else record.file_name
        frame = "" if record.frame_index is None else str(record.frame_index)
        time = "" if record.timestamp is None else _number(record.timestamp)
        ordered = sorted(labeled.instances, key=lambda i: (i.track_id is None, i.track_id or 0))
        for inst in ordered:
            track = "" if inst.track_id is None else str(inst.track_id)
            for j, name in enumerate(names):
                labeled_joint = inst.visibility[j] > 0
                x = _number(inst.keypoints[j, 0]) if labeled_joint else ""
                y = _number(inst.keypoints[j, 1]) if labeled_joint else ""
                score = "" if inst.keypoint_scores is None else _number(inst.keypoint_scores[j])
                writer.writerow(
                    (video, frame, time, track, name, x, y, int(inst.visibility[j]), score)
                )
                rows += 1
    return rows


def write_csv_tracks(
    dataset: PoseDataset,
    path: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
) -> Path:
    """Write ``dataset`` as a CSV file, atomically; ``media`` is not used."""
    del media
    path = Path(path)
    fd, tmp_name = temporary_beside(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            to_csv_tracks(dataset, handle)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


#: The format table entry (:mod:`posekit.formats.registry`): write-only.
SPEC = {
    "name": "csv-tracks",
    "title": "CSV per frame, track and joint",
    "extensions": (".csv",),
    "kind": "file",
    "read": None,
    "write": write_csv_tracks,
}
CAPABILITIES = {"scores": True, "tracks": True, "video": True}
