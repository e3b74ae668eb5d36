"""Keypoint MOTA/MOTP (PoseTrack definition) on hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from posekit.core import Instance
from posekit.evaluation.tracking import (
    POSETRACK_JOINTS,
    TrackingEvaluationError,
    evaluate_tracking,
    evaluate_tracking_video,
    head_size_from_annotation,
)
from posekit.skeleton import get_preset
from posekit.skeleton.template import Skeleton

# A 30 x 40 head box: diagonal 50, head size 0.6 * 50 = 30 px, threshold 15 px.
HEAD = [0, 0, 30, 40]


def two_joint() -> Skeleton:
    return Skeleton.from_dict(
        {"name": "pair", "keypoints": ["a", "b"], "edges": [["a", "b"]], "sigmas": [0.05, 0.05]}
    )


def gt(x: float, track: int, visibility=(2, 2)) -> Instance:
    return Instance(
        np.array([[x, 0.0], [x, 50.0]]),
        np.array(visibility),
        track_id=track,
        extra={"bbox_head": HEAD},
    )


def pred(x: float, track: int | None, dx: float = 0.0, visibility=(2, 2)) -> Instance:
    return Instance(
        np.array([[x + dx, 0.0], [x + dx, 50.0]]),
        np.array(visibility),
        keypoint_scores=np.array([0.9, 0.9]),
        score=0.9,
        track_id=track,
        source="model:test",
        status="predicted",
    )


def test_head_size_from_annotation():
    assert head_size_from_annotation(gt(0, 1)) == pytest.approx(30.0)
    assert head_size_from_annotation(pred(0, 1)) is None


def test_perfect_tracking_scores_one():
    truth = {f: [gt(0, 1), gt(200, 2)] for f in range(4)}
    preds = {f: [pred(200, 9), pred(0, 7)] for f in range(4)}
    result = evaluate_tracking_video(truth, preds, two_joint())
    assert (result.mota, result.motp, result.precision, result.recall) == (1.0, 1.0, 1.0, 1.0)
    assert result.total.num_switches == 0
    assert result.total.num_objects == 16
    assert result.num_frames == 4
    assert result.head_size_sources == {"head_box": 8}


def test_one_identity_switch():
    truth = {f: [gt(0, 1)] for f in range(4)}
    preds = {f: [pred(0, 5 if f < 2 else 6)] for f in range(4)}
    result = evaluate_tracking_video(truth, preds, two_joint())
    for joint in result.joints:
        assert joint.num_switches == 1
        assert joint.mota == 0.75  # 1 - 1 / 4
        assert joint.precision == 1.0 and joint.recall == 1.0
    assert result.mota == 0.75
    assert result.total.num_switches == 2  # summed over joints


def test_swapped_people_switch_twice():
    truth = {f: [gt(0, 1), gt(100, 2)] for f in range(3)}
    preds = {0: [pred(0, 10), pred(100, 20)], 1: [pred(0, 10), pred(100, 20)]}
    preds[2] = [pred(0, 20), pred(100, 10)]
    result = evaluate_tracking_video(truth, preds, two_joint())
    assert result.joint("a").num_switches == 2
    assert result.mota == pytest.approx(1.0 - 2.0 / 6.0)


def test_misses():
    truth = {0: [gt(0, 1)], 1: [gt(0, 1)]}
    preds = {0: [pred(0, 3)]}
    result = evaluate_tracking_video(truth, preds, two_joint())
    assert result.joint("a").num_misses == 1
    assert result.mota == 0.5
    assert result.recall == 0.5
    assert result.precision == 1.0


def test_false_positives():
    truth = {0: [gt(0, 1)], 1: [gt(0, 1)]}
    preds = {0: [pred(0, 3), pred(300, 4)], 1: [pred(0, 3)]}
    result = evaluate_tracking_video(truth, preds, two_joint())
    assert result.joint("b").num_false_positives == 1
    assert result.mota == 0.5
    assert result.precision == pytest.approx(2.0 / 3.0)
    assert result.recall == 1.0


def test_false_positives_on_a_labeled_empty_frame():
    truth = {0: [gt(0, 1)], 1: []}
    preds = {0: [pred(0, 3)], 1: [pred(0, 3)]}
    result = evaluate_tracking_video(truth, preds, two_joint())
    assert result.total.num_false_positives == 2
    assert result.mota == 0.0


def test_distance_gate_and_motp():
    truth = {0: [gt(0, 1)], 1: [gt(0, 1)]}
    near = evaluate_tracking_video(truth, {0: [pred(0, 3, dx=6)], 1: [pred(0, 3)]}, two_joint())
    assert near.mota == 1.0
    assert near.motp == pytest.approx(1.0 - (6.0 / 30.0) / 2.0)
    far = evaluate_tracking_video(truth, {0: [pred(0, 3, dx=16)], 1: [pred(0, 3)]}, two_joint())
    # 16 / 30 > 0.5: a miss and a false positive on frame 0, per joint
    assert far.joint("a").num_misses == 1 and far.joint("a").num_false_positives == 1
    assert far.mota == 0.0


def test_per_joint_labels():
    truth = {0: [gt(0, 1, visibility=(2, 0))]}
    preds = {0: [pred(0, 3)]}
    result = evaluate_tracking_video(truth, preds, two_joint())
    assert result.joint("a").mota == 1.0
    b = result.joint("b")
    assert b.num_objects == 0 and b.num_false_positives == 1 and math.isnan(b.mota)
    assert result.mota == 1.0  # the total averages the joints where MOTA is defined
    assert result.motp == 0.5  # joint b has no match: MOTP 0.0, as poseval reports


def test_unlabeled_or_low_score_predicted_joints_do_not_count():
    truth = {0: [gt(0, 1)]}
    p = pred(0, 3, visibility=(2, 0))
    result = evaluate_tracking_video(truth, {0: [p]}, two_joint())
    assert result.joint("b").num_misses == 1
    low = pred(0, 3).copy(keypoint_scores=np.array([0.9, 0.1]))
    result = evaluate_tracking_video(truth, {0: [low]}, two_joint(), min_keypoint_score=0.5)
    assert result.joint("b").num_misses == 1 and result.joint("a").num_matches == 1


def test_existing_correspondence_is_kept():
    # CLEAR-MOT: track 3 stays matched to GT 1 on frame 1 although track 4 is closer.
    truth = {0: [gt(0, 1)], 1: [gt(0, 1)]}
    preds = {0: [pred(0, 3)], 1: [pred(0, 3, dx=10), pred(0, 4, dx=1)]}
    result = evaluate_tracking_video(truth, preds, two_joint())
    a = result.joint("a")
    assert a.num_switches == 0 and a.num_matches == 2 and a.num_false_positives == 1
    assert a.motp == pytest.approx(1.0 - (10.0 / 30.0) / 2.0)


def test_rematch_after_a_miss_to_another_track_is_a_switch():
    truth = {f: [gt(0, 1)] for f in range(3)}
    preds = {0: [pred(0, 3)], 1: [], 2: [pred(0, 4)]}
    result = evaluate_tracking_video(truth, preds, two_joint())
    assert result.joint("a").num_switches == 1
    assert result.joint("a").mota == pytest.approx(1.0 - 2.0 / 3.0)


def test_videos_are_independent():
    truth = {"v1": {0: [gt(0, 1)]}, "v2": {0: [gt(0, 1)]}}
    preds = {"v1": {0: [pred(0, 5)]}, "v2": {0: [pred(0, 6)]}}
    result = evaluate_tracking(truth, preds, two_joint())
    assert result.total.num_switches == 0 and result.mota == 1.0
    assert result.num_videos == 2


def test_missing_prediction_video_counts_misses():
    result = evaluate_tracking({"v": {0: [gt(0, 1)]}}, {}, two_joint())
    assert result.mota == 0.0 and result.recall == 0.0


def test_drop_last_frame_like_poseval():
    truth = {0: [gt(0, 1)], 1: [gt(0, 1)]}
    preds = {0: [pred(0, 3)]}
    assert evaluate_tracking_video(truth, preds, two_joint()).mota == 0.5
    result = evaluate_tracking_video(truth, preds, two_joint(), drop_last_frame=True)
    assert result.mota == 1.0 and result.num_frames == 1


def test_unlabeled_prediction_frames_are_ignored():
    truth = {0: [gt(0, 1)]}
    preds = {0: [pred(0, 3)], 5: [pred(0, 3), pred(90, 4)]}
    assert evaluate_tracking_video(truth, preds, two_joint()).mota == 1.0


def test_person_box_fallback_for_head_size():
    person = Instance(np.array([[0.0, 0.0], [100.0, 100.0]]), np.array([2, 2]), track_id=1)
    # head size 0.18 * sqrt(100 * 100) = 18 px, threshold 9 px
    near = pred(0, 2, dx=8).copy(keypoints=np.array([[8.0, 0.0], [100.0, 100.0]]))
    far = near.copy(keypoints=np.array([[10.0, 0.0], [100.0, 100.0]]))
    good = evaluate_tracking_video({0: [person]}, {0: [near]}, two_joint())
    assert good.joint("a").num_matches == 1
    assert good.head_size_sources == {"person_box": 1}
    bad = evaluate_tracking_video({0: [person]}, {0: [far]}, two_joint())
    assert bad.joint("a").num_matches == 0
    fixed = evaluate_tracking_video(
        {0: [person]}, {0: [far]}, two_joint(), head_size=lambda inst: 40.0
    )
    assert fixed.joint("a").num_matches == 1 and fixed.head_size_sources == {"function": 1}


@pytest.mark.parametrize(
    ("truth", "preds", "match"),
    [
        ({0: [gt(0, 1)]}, {0: [pred(0, None)]}, "no track_id"),
        ({0: [gt(0, 1), gt(50, 1)]}, {0: []}, "appears twice"),
        ({0: [gt(0, 1)]}, {0: [pred(0, 2), pred(5, 2)]}, "appears twice"),
    ],
)
def test_invalid_input(truth, preds, match):
    with pytest.raises(TrackingEvaluationError, match=match):
        evaluate_tracking_video(truth, preds, two_joint())


def test_unknown_prediction_video():
    with pytest.raises(TrackingEvaluationError, match="not in the ground truth"):
        evaluate_tracking({"a": {}}, {"b": {}}, two_joint())


def test_wrong_keypoint_count():
    other = Instance(np.zeros((3, 2)), np.full(3, 2), track_id=1)
    with pytest.raises(TrackingEvaluationError, match="3 keypoints"):
        evaluate_tracking_video({0: [other]}, {}, two_joint())


def test_posetrack18_sample_scored_against_itself(shared_data):
    data = json.loads((shared_data / "posetrack18-sample/annotations/val.json").read_text())
    template = get_preset("posetrack17")
    images = {im["id"]: im for im in data["images"]}
    truth: dict[str, dict[int, list[Instance]]] = {}
    for ann in data["annotations"]:
        image = images[ann["image_id"]]
        kps = np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        inst = Instance(
            kps[:, :2],
            np.where(kps[:, 2] > 0, 2, 0),
            track_id=ann["track_id"],
            extra={"bbox_head": ann["bbox_head"]},
        )
        video = str(image.get("vid_id", image["file_name"].split("/")[-2]))
        truth.setdefault(video, {}).setdefault(int(image.get("frame_id", 0)), []).append(inst)
    result = evaluate_tracking(truth, truth, template, keypoints=POSETRACK_JOINTS)
    assert [j.name for j in result.joints] == list(POSETRACK_JOINTS)
    assert result.mota == 1.0 and result.motp == 1.0
    assert result.head_size_sources.get("person_box", 0) == 0
