"""Evaluation on video ground truth (PoseTrack style): only labeled frames are scored;
predictions on other frames, or on images the video ground truth lacks, are ignored
and counted instead of refused."""

from __future__ import annotations

import copy
import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from posekit.evaluation import STAT_NAMES, EvaluationError, evaluate

ANNOTATIONS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "posetrack18-sample"
ANNOTATIONS = ANNOTATIONS / "annotations"


def _load(relative: str) -> dict:
    path = ANNOTATIONS / relative
    if not path.exists():
        pytest.skip(f"PoseTrack18 sample annotations not found at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def _predict(gt: dict, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        kps = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        kps[:, :2] += rng.normal(0, 0.03 * math.sqrt(a["bbox"][2] * a["bbox"][3]), (len(kps), 2))
        out.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kps.reshape(-1).tolist(),
                "score": float(rng.random()),
            }
        )
    return out


def _with_unlabeled_frames(gt: dict, *, flag: bool) -> tuple[dict, list[dict]]:
    """Two more frames per video, not labeled (``is_labeled`` false, or with ``flag=False``
    no flag and no annotations), and predictions on them."""
    gt = copy.deepcopy(gt)
    if not flag:
        for img in gt["images"]:
            img.pop("is_labeled", None)
    extra_predictions = []
    for img in list(gt["images"]):
        for step in (1, 2):
            frame = dict(img, id=img["id"] + step, frame_id=img["frame_id"] + step)
            frame["file_name"] = img["file_name"].replace("000000.jpg", f"00000{step}.jpg")
            if flag:
                frame["is_labeled"] = False
            gt["images"].append(frame)
            extra_predictions.append(
                {
                    "image_id": frame["id"],
                    "category_id": 1,
                    "keypoints": np.tile([100.0, 100.0, 1.0], 17).tolist(),
                    "score": 0.99,
                }
            )
    return gt, extra_predictions


@pytest.mark.parametrize("flag", [True, False], ids=["is_labeled-false", "no-annotations"])
def test_predictions_on_unlabeled_frames_are_ignored_and_counted(flag, caplog):
    gt = _load("val.json")
    predictions = _predict(gt, 0)
    expected = evaluate(gt, predictions)
    video_gt, extra = _with_unlabeled_frames(gt, flag=flag)
    with caplog.at_level(logging.INFO, logger="posekit.evaluation"):
        result = evaluate(video_gt, predictions + extra)
    assert [result.stats[n] for n in STAT_NAMES] == [expected.stats[n] for n in STAT_NAMES]
    assert result.num_images == 3 == expected.num_images  # the labeled frames only
    assert result.num_pred == len(predictions) and result.num_pred_ignored == len(extra) == 6
    assert "ignored 6 predictions on video frames that are not labeled" in caplog.text
    # the reference engine sees the same restricted inputs
    reference = evaluate(video_gt, predictions + extra, engine="pycocotools")
    assert reference.stats == result.stats


def test_per_video_ground_truth_ignores_the_other_videos(caplog):
    """Predictions for the whole validation set scored against one video's file."""
    whole = _load("val.json")
    one_video = _load("per_video/012834_mpii_test.json")
    predictions = _predict(whole, 1)
    on_this_video = [p for p in predictions if p["image_id"] == one_video["images"][0]["id"]]
    assert 0 < len(on_this_video) < len(predictions)
    expected = evaluate(one_video, on_this_video)
    with caplog.at_level(logging.INFO, logger="posekit.evaluation"):
        result = evaluate(one_video, predictions)
    assert result.stats == expected.stats
    assert result.num_pred_ignored == len(predictions) - len(on_this_video)
    assert f"ignored {result.num_pred_ignored} predictions on images that are not in" in caplog.text
    # the same as a COCO dict matched by file name
    as_dict = {
        "images": [
            {"id": i + 1, "file_name": img["file_name"]} for i, img in enumerate(whole["images"])
        ],
        "annotations": [
            dict(
                p,
                id=n + 1,
                image_id=[img["id"] for img in whole["images"]].index(p["image_id"]) + 1,
            )
            for n, p in enumerate(predictions)
        ],
        "categories": whole["categories"],
    }
    from_dict = evaluate(one_video, as_dict)
    assert (
        from_dict.stats == expected.stats and from_dict.num_pred_ignored == result.num_pred_ignored
    )


def test_video_files_on_disk_through_the_command_line_entry(tmp_path):
    gt = _load("val.json")
    video_gt, extra = _with_unlabeled_frames(gt, flag=True)
    predictions = _predict(gt, 2) + extra
    (tmp_path / "gt.json").write_text(json.dumps(video_gt), encoding="utf-8")
    (tmp_path / "pred.json").write_text(json.dumps(predictions), encoding="utf-8")
    result = evaluate(tmp_path / "gt.json", tmp_path / "pred.json")
    assert result.num_pred_ignored == 6
    assert "6 on unlabeled or unknown frames ignored" in result.format_table()
    assert result.to_dict()["num_pred_ignored"] == 6


def test_image_ground_truth_still_refuses_unknown_images():
    gt = _load("val.json")
    for img in gt["images"]:  # the same file without its video fields
        for field in ("vid_id", "frame_id", "is_labeled", "nframes"):
            img.pop(field, None)
    predictions = [dict(_predict(gt, 3)[0], image_id=42)]
    with pytest.raises(EvaluationError, match="42"):
        evaluate(gt, predictions)
