"""The csv-tracks writer: one row per frame, track and joint."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from posekit import get_preset
from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.formats.csv_tracks import COLUMNS, write_csv_tracks
from posekit.formats.registry import get_format


def test_rows_per_frame_track_and_joint(tmp_path: Path) -> None:
    skeleton = get_preset("coco17")
    kps = np.tile([[10.5, 20.25]], (17, 1))
    vis = np.full(17, 2)
    vis[3] = 0
    vis[4] = 1
    tracked = Instance(kps, vis, keypoint_scores=np.full(17, 0.5), track_id=3)
    manual = Instance(kps, np.full(17, 2))
    frames = [
        LabeledImage(ImageRecord("v/000002.jpg", 64, 48, video="v", frame_index=2, timestamp=0.08),
                     [manual, tracked]),
        LabeledImage(ImageRecord("v/000001.jpg", 64, 48, video="v", frame_index=1, timestamp=0.04),
                     []),
        LabeledImage(ImageRecord("still.jpg", 64, 48), [manual]),
    ]  # fmt: skip
    out = write_csv_tracks(PoseDataset(skeleton, frames), tmp_path / "t.csv")
    rows = list(csv.DictReader(out.open()))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 3 * 17
    first = rows[17]  # frame 2: the tracked instance first, then the untracked one
    assert (first["video"], first["frame"], first["time"], first["track"]) == (
        "v",
        "2",
        "0.08",
        "3",
    )
    assert (first["joint"], first["x"], first["y"], first["score"]) == (
        "nose",
        "10.5",
        "20.25",
        "0.5",
    )
    assert rows[17 + 3]["x"] == "" and rows[17 + 3]["visibility"] == "0"
    assert rows[17 + 4]["visibility"] == "1"
    untracked = rows[2 * 17]
    assert untracked["track"] == "" and untracked["score"] == ""
    assert rows[0]["video"] == "still.jpg" and rows[0]["frame"] == "" and rows[0]["time"] == ""
    spec = get_format("csv-tracks")
    assert spec.read is None and spec.capabilities.tracks and spec.kind == "file"
