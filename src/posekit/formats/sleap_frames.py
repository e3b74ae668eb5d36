"""SLEAP's ``frames`` / ``instances`` / ``points`` / ``pred_points`` tables, written from
whole arrays.

``sleap_io.save_slp`` writes these tables through ``sleap_io.io.slp.write_lfs``, which
appends one Python list per point (1.7M for 100k COCO-17 instances) and was most
of posekit's SLEAP export time. :func:`write_lfs` writes the same four datasets
with the same dtypes and values from the instances' point arrays, concatenated
once; :func:`fast_frame_tables` puts it in sleap-io's place for one ``save_slp``
call. Labels it does not cover the way sleap-io does (embedded videos, instances
linked to the predictions they came from, unknown instance types) go to
sleap-io's own function. ``tests/formats/test_sleap.py`` compares the datasets
written both ways.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["fast_frame_tables", "write_lfs"]

_SWAP_LOCK = threading.Lock()


@contextmanager
def fast_frame_tables() -> Iterator[None]:
    """While inside, ``sleap_io.save_slp`` writes the frame tables with :func:`write_lfs`
    (one save at a time: the swap is of a module attribute)."""
    from sleap_io.io import slp

    with _SWAP_LOCK:
        original = slp.write_lfs
        slp.write_lfs = lambda path, labels: write_lfs(path, labels, original)
        try:
            yield
        finally:
            slp.write_lfs = original


def _covered(labels: Any) -> bool:
    """Whether :func:`write_lfs` writes these labels exactly as sleap-io does."""
    for video in labels.videos:
        backend = getattr(video, "backend", None)
        if backend is not None and getattr(backend, "dataset", None) is not None:
            return False  # embedded videos keep sparse video ids
    return True


def write_lfs(labels_path: str, labels: Any, original: Any = None) -> None:
    """``sleap_io.io.slp.write_lfs(labels_path, labels)``, from whole arrays.

    ``original`` (sleap-io's function) writes labels this function does not cover.
    """
    import h5py
    from sleap_io.io import slp
    from sleap_io.model.instance import Instance, PredictedInstance

    if original is None:
        original = slp.write_lfs
    if not _covered(labels):
        original(labels_path, labels)
        return
    video_ids = slp._identity_index(labels.videos)
    track_ids = slp._identity_index(labels.tracks)
    skeleton_ids: dict[int, int] = {}
    frames: list[list[Any]] = []
    instances: list[list[Any]] = []
    user_points: list[np.ndarray] = []
    predicted_points: list[np.ndarray] = []
    user_count = predicted_count = 0
    for lf in labels:
        frame_id = len(frames)
        instance_id_start = len(instances)
        for inst in lf:
            if inst.from_predicted:
                original(labels_path, labels)  # links are resolved by sleap-io
                return
            skeleton = inst.skeleton
            skeleton_id = skeleton_ids.get(id(skeleton))
            if skeleton_id is None:
                skeleton_id = skeleton_ids[id(skeleton)] = labels.skeletons.index(skeleton)
            track = -1
            if inst.track:
                track = track_ids.get(id(inst.track))
                if track is None:
                    track = labels.tracks.index(inst.track)  # raises if unknown, as sleap-io
            points = inst.points
            if type(inst) is Instance:
                instance_type, score = int(slp.InstanceType.USER), 0.0
                start = user_count
                user_count += len(points)
                user_points.append(points)
                end = user_count
            elif type(inst) is PredictedInstance:
                instance_type, score = int(slp.InstanceType.PREDICTED), inst.score
                start = predicted_count
                predicted_count += len(points)
                predicted_points.append(points)
                end = predicted_count
            else:
                original(labels_path, labels)  # raises on the unknown type
                return
            instances.append([len(instances), instance_type, frame_id, skeleton_id, track, -1,
                              score, start, end, inst.tracking_score])  # fmt: skip
        video_idx = video_ids.get(id(lf.video))
        if video_idx is None:
            video_idx = labels.videos.index(lf.video)  # raises if unknown, as sleap-io
        frames.append([frame_id, video_idx, lf.frame_idx, instance_id_start, len(instances)])

    point_dtype = np.dtype([("x", "f8"), ("y", "f8"), ("visible", "?"), ("complete", "?")])
    predicted_dtype = np.dtype(
        [("x", "f8"), ("y", "f8"), ("visible", "?"), ("complete", "?"), ("score", "f8")]
    )
    instance_dtype = np.dtype(
        [
            ("instance_id", "i8"),
            ("instance_type", "u1"),
            ("frame_id", "u8"),
            ("skeleton", "u4"),
            ("track", "i4"),
            ("from_predicted", "i8"),
            ("score", "f4"),
            ("point_id_start", "u8"),
            ("point_id_end", "u8"),
            ("tracking_score", "f4"),
        ]
    )
    frame_dtype = np.dtype(
        [
            ("frame_id", "u8"),
            ("video", "u4"),
            ("frame_idx", "u8"),
            ("instance_id_start", "u8"),
            ("instance_id_end", "u8"),
        ]
    )
    tables = {
        "points": _points_table(user_points, point_dtype),
        "pred_points": _points_table(predicted_points, predicted_dtype),
        # the same tuple conversion as sleap-io (None tracking scores become NaN)
        "instances": np.array([tuple(row) for row in instances], dtype=instance_dtype),
        "frames": np.array([tuple(row) for row in frames], dtype=frame_dtype),
    }
    with h5py.File(labels_path, "a") as f:
        for name, table in tables.items():
            f.create_dataset(name, data=table, dtype=table.dtype)


def _points_table(arrays: list[np.ndarray], dtype: np.dtype) -> np.ndarray:
    """The rows sleap-io appends point by point (``x, y, visible, complete[, score]``)."""
    if not arrays:
        return np.array([], dtype=dtype)
    try:
        points = np.concatenate(arrays)  # one dtype per instance class
    except (TypeError, ValueError):  # pragma: no cover - mixed point dtypes
        return np.concatenate([_points_table([array], dtype) for array in arrays])
    xy = np.asarray(points["xy"], dtype=np.float64).reshape(-1, 2)
    table = np.empty(len(points), dtype=dtype)
    table["x"], table["y"] = xy[:, 0], xy[:, 1]
    table["visible"] = points["visible"]
    table["complete"] = points["complete"]
    if "score" in dtype.names:
        table["score"] = points["score"]
    return table
