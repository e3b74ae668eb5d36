"""OKS evaluation: golden values, agreement with pycocotools, id/name mapping, per-keypoint."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from posekit.evaluation import STAT_NAMES, EvaluationError, evaluate
from posekit.skeleton import Skeleton, get_preset

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _load(relative: str) -> dict:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"shared sample data not found at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def coco_gt() -> dict:
    return _load("coco-val2017-sample/person_keypoints.json")


def _gt_as_results(gt: dict, *, labeled_only: bool = True) -> list[dict]:
    return [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "keypoints": list(a["keypoints"]),
            "score": 1.0,
        }
        for a in gt["annotations"]
        if not a.get("iscrowd") and (a["num_keypoints"] > 0 or not labeled_only)
    ]


def _pycocotools_stats(gt: dict, results: list[dict], sigmas, tmp_path: Path) -> list[float]:
    """pycocotools run the standard way: files on disk, COCO(), loadRes(), COCOeval."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt), encoding="utf-8")
    res_path = tmp_path / "res.json"
    res_path.write_text(json.dumps(results), encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(res_path))
        coco_eval = COCOeval(coco_gt, coco_dt, "keypoints")
        coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return [float(s) for s in coco_eval.stats]


def _perturb(gt: dict, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    results = []
    for a in gt["annotations"]:
        if a.get("iscrowd") or a["num_keypoints"] == 0 or rng.random() < 0.2:
            continue  # dropped instance
        kps = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        scale = math.sqrt(a["area"]) * 0.05
        kps[:, :2] += rng.normal(0.0, scale, (len(kps), 2))
        results.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kps.reshape(-1).round(2).tolist(),
                "score": float(rng.random()),
            }
        )
        if rng.random() < 0.3:  # a false positive shifted far away
            far = kps.copy()
            far[:, :2] += a["bbox"][2]
            results.append(
                {
                    "image_id": a["image_id"],
                    "category_id": 1,
                    "keypoints": far.reshape(-1).round(2).tolist(),
                    "score": float(rng.random()),
                }
            )
    return results


def test_ground_truth_as_predictions_scores_one(coco_gt):
    result = evaluate(coco_gt, _gt_as_results(coco_gt))
    assert result.template == "coco17"
    assert all(result.stats[name] == 1.0 for name in STAT_NAMES)
    assert result.num_images == 4 and result.num_gt == 12 and result.num_pred == 12
    for stats in result.per_keypoint:
        assert stats.mean_normalized_error == 0.0 and stats.fraction_oks_50 == 1.0
    assert sum(s.count for s in result.per_keypoint) == sum(
        a["num_keypoints"] for a in coco_gt["annotations"]
    )


def test_unlabeled_ground_truth_as_predictions_are_false_positives(coco_gt, tmp_path):
    results = _gt_as_results(coco_gt, labeled_only=False)
    result = evaluate(coco_gt, results)
    assert result.num_pred == 14
    assert result.stats["AP"] == pytest.approx(0.8939, abs=1e-4)
    expected = _pycocotools_stats(coco_gt, results, get_preset("coco17").sigmas, tmp_path)
    assert [result.stats[n] for n in STAT_NAMES] == expected


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perturbed_predictions_match_pycocotools_exactly(coco_gt, tmp_path, seed):
    results = _perturb(coco_gt, seed)
    result = evaluate(coco_gt, results)
    expected = _pycocotools_stats(coco_gt, results, get_preset("coco17").sigmas, tmp_path)
    assert [result.stats[n] for n in STAT_NAMES] == expected
    assert 0.0 < result.stats["AP"] < 1.0


def test_shuffled_scores_change_ap_as_pycocotools_does(coco_gt, tmp_path):
    results = _perturb(coco_gt, 5)
    rng = np.random.default_rng(9)
    scores = rng.permutation([r["score"] for r in results])
    shuffled = [dict(r, score=float(s)) for r, s in zip(results, scores)]
    result = evaluate(coco_gt, shuffled)
    expected = _pycocotools_stats(coco_gt, shuffled, get_preset("coco17").sigmas, tmp_path)
    assert [result.stats[n] for n in STAT_NAMES] == expected


def test_paths_are_accepted_and_inputs_not_modified(coco_gt, tmp_path):
    results = _perturb(coco_gt, 0)
    gt_copy, res_copy = copy.deepcopy(coco_gt), copy.deepcopy(results)
    in_memory = evaluate(coco_gt, results)
    assert coco_gt == gt_copy and results == res_copy
    (tmp_path / "gt.json").write_text(json.dumps(coco_gt), encoding="utf-8")
    (tmp_path / "res.json").write_text(json.dumps(results), encoding="utf-8")
    from_files = evaluate(tmp_path / "gt.json", str(tmp_path / "res.json"))
    assert from_files.stats == in_memory.stats


def test_no_output_on_stdout(coco_gt, capsys):
    evaluate(coco_gt, _perturb(coco_gt, 0))
    assert capsys.readouterr().out == ""


def _as_coco_dict(gt: dict, results: list[dict], id_offset: int) -> dict:
    images = [dict(img, id=img["id"] + id_offset) for img in reversed(gt["images"])]
    annotations = [
        dict(r, image_id=r["image_id"] + id_offset, id=i + 1) for i, r in enumerate(results)
    ]
    return {"images": images, "annotations": annotations, "categories": gt["categories"]}


def test_coco_dict_predictions_are_matched_by_file_name(coco_gt):
    results = _perturb(coco_gt, 1)
    expected = evaluate(coco_gt, results).stats
    predictions = _as_coco_dict(coco_gt, results, id_offset=1000)
    assert evaluate(coco_gt, predictions).stats == expected
    # written with another folder prefix: the bare file name is unique, so it still matches
    for img in predictions["images"]:
        img["file_name"] = "exported/val2017/" + img["file_name"]
    assert evaluate(coco_gt, predictions).stats == expected


def test_prediction_image_missing_from_ground_truth_is_an_error(coco_gt):
    predictions = _as_coco_dict(coco_gt, _gt_as_results(coco_gt), id_offset=0)
    predictions["images"].append({"id": 99, "file_name": "not_in_gt.jpg"})
    with pytest.raises(EvaluationError, match=r"'not_in_gt\.jpg'"):
        evaluate(coco_gt, predictions)
    bad_list = [dict(_gt_as_results(coco_gt)[0], image_id=123456789)]
    with pytest.raises(EvaluationError, match="123456789"):
        evaluate(coco_gt, bad_list)


def test_predictions_in_another_keypoint_order_are_mapped_by_name(coco_gt):
    expected = evaluate(coco_gt, _perturb(coco_gt, 2)).stats
    names = coco_gt["categories"][0]["keypoints"]
    order = np.random.default_rng(0).permutation(len(names))
    results = _perturb(coco_gt, 2)
    for r in results:
        r["keypoints"] = np.asarray(r["keypoints"]).reshape(-1, 3)[order].reshape(-1).tolist()
    category = dict(coco_gt["categories"][0], keypoints=[names[i] for i in order])
    predictions = _as_coco_dict(coco_gt, results, id_offset=0)
    predictions["categories"] = [category]
    assert evaluate(coco_gt, predictions).stats == expected


def test_predictions_on_a_larger_template_are_mapped_by_name(coco_gt):
    """Halpe-26 predictions scored against COCO-17 ground truth: the body points match."""
    results = _perturb(coco_gt, 3)
    expected = evaluate(coco_gt, results).stats
    halpe = get_preset("halpe26")
    for r in results:
        extra = np.tile([5.0, 5.0, 1.0], 9)
        r["keypoints"] = list(r["keypoints"]) + extra.tolist()
    predictions = _as_coco_dict(coco_gt, results, id_offset=7)
    predictions["categories"] = [halpe.coco_category(1)]
    assert evaluate(coco_gt, predictions).stats == expected


@pytest.mark.parametrize(
    ("relative", "template"),
    [
        ("crowdpose-sample/keypoints.json", "crowdpose14"),
        ("aic-sample/keypoints.json", "aic14"),
        ("posetrack18-sample/annotations/val.json", "posetrack17"),
    ],
)
def test_other_layouts_use_their_own_template(relative, template, tmp_path):
    gt = _load(relative)
    golden = evaluate(gt, _gt_as_results(gt))
    assert golden.template == template and golden.stats["AP"] == 1.0
    results = _perturb_any(gt, seed=4)
    result = evaluate(gt, results)
    assert result.sigmas == get_preset(template).sigmas.tolist()
    # pycocotools run directly, given the fields our loader fills when a file lacks them
    # (CrowdPose/AIC/PoseTrack have no 'area': the box area; AIC has no 'iscrowd')
    filled = copy.deepcopy(gt)
    for a in filled["annotations"]:
        a.setdefault("area", a["bbox"][2] * a["bbox"][3])
        a.setdefault("iscrowd", 0)
    expected = _pycocotools_stats(filled, results, get_preset(template).sigmas, tmp_path)
    assert [result.stats[n] for n in STAT_NAMES] == expected
    # COCO's sigmas would give different numbers on AIC (its sigmas are much smaller)
    if template == "aic14":
        coco_like = _pycocotools_stats(filled, results, [0.079] * 14, tmp_path)
        assert coco_like != expected


def _perturb_any(gt: dict, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        if a.get("iscrowd") or a["num_keypoints"] == 0:
            continue
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


def test_unknown_layout_requires_a_template(coco_gt):
    gt = copy.deepcopy(coco_gt)
    gt["categories"][0]["keypoints"] = [f"point_{i}" for i in range(17)]
    with pytest.raises(EvaluationError, match="pass skeleton="):
        evaluate(gt, _gt_as_results(gt))
    custom = Skeleton.from_dict(
        {"name": "points17", "keypoints": [f"point_{i}" for i in range(17)], "default_sigma": 0.05}
    )
    result = evaluate(gt, _gt_as_results(gt), custom)
    assert result.template == "points17" and result.stats["AP"] == 1.0
    assert result.sigmas == [0.05] * 17


def test_wrong_template_is_rejected(coco_gt):
    with pytest.raises(EvaluationError, match="does not name every ground-truth keypoint"):
        evaluate(coco_gt, _gt_as_results(coco_gt), get_preset("crowdpose14"))


def test_empty_predictions_score_zero(coco_gt):
    result = evaluate(coco_gt, [])
    assert result.stats["AP"] == 0.0 and result.stats["AR"] == 0.0 and result.num_pred == 0


def test_per_keypoint_breakdown_finds_a_shifted_keypoint(coco_gt):
    names = coco_gt["categories"][0]["keypoints"]
    wrist = names.index("left_wrist")
    results = _gt_as_results(coco_gt)
    area = {(a["image_id"], tuple(a["keypoints"])): a["area"] for a in coco_gt["annotations"]}
    for r in results:
        kps = np.asarray(r["keypoints"], dtype=np.float64).reshape(-1, 3)
        shift = 0.2 * math.sqrt(area[(r["image_id"], tuple(r["keypoints"]))])
        kps[wrist, 0] += shift
        kps[:, :2] += 0.5  # small error everywhere, so every keypoint has a non-zero error
        r["keypoints"] = kps.reshape(-1).tolist()
    result = evaluate(coco_gt, results)
    by_name = {k.name: k for k in result.per_keypoint}
    worst = max(result.per_keypoint, key=lambda k: k.mean_normalized_error)
    assert worst.name == "left_wrist"
    assert by_name["left_wrist"].mean_normalized_error == pytest.approx(0.2, abs=0.01)
    assert by_name["left_wrist"].fraction_oks_50 < by_name["right_wrist"].fraction_oks_50
    assert by_name["right_wrist"].fraction_oks_50 == 1.0
    # the count is the number of matched pairs with a labeled ground-truth wrist
    assert by_name["left_wrist"].count == sum(
        1 for a in coco_gt["annotations"] if a["keypoints"][3 * wrist + 2] > 0
    )


def test_result_serialises_and_formats(coco_gt):
    result = evaluate(coco_gt, _perturb(coco_gt, 0))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert list(data)[:10] == list(STAT_NAMES)
    assert len(data["per_keypoint"]) == 17 and data["per_keypoint"][0]["name"] == "nose"
    table = result.format_table()
    assert "left_wrist" in table and "AP50" in table and f"{result.stats['AP']:.3f}" in table


# --------------------------------------------- derived points (COCO-17 -> MPII & co.)
#: One COCO-17 person: shoulders mean (100, 100), ears mean (100, 60), hips mean (100, 200).
_COCO_PERSON = {
    "nose": (100, 70), "left_eye": (105, 65), "right_eye": (95, 65),
    "left_ear": (110, 60), "right_ear": (90, 60),
    "left_shoulder": (120, 100), "right_shoulder": (80, 100),
    "left_elbow": (130, 140), "right_elbow": (70, 140),
    "left_wrist": (135, 180), "right_wrist": (65, 180),
    "left_hip": (115, 200), "right_hip": (85, 200),
    "left_knee": (115, 260), "right_knee": (85, 260),
    "left_ankle": (115, 320), "right_ankle": (85, 320),
}  # fmt: skip
#: Its points in the other layouts, written out from the presets' definitions:
#: thorax = shoulders mean, pelvis = hips mean, upper_neck = 0.7 shoulders + 0.3 ears,
#: head_top = 1.7 ears - 0.7 shoulders, CrowdPose/AIC neck = 0.8 shoulders + 0.2 ears.
_DERIVED_EXPECTED = {
    "thorax": (100, 100), "pelvis": (100, 200), "upper_neck": (100, 88),
    "head_bottom": (100, 88), "head_top": (100, 32), "neck": (100, 92),
}  # fmt: skip


def _derived_case(preset: str, prediction: dict[str, tuple]) -> tuple[dict, dict]:
    """Ground truth on ``preset`` (one person of area 100^2, every point labeled, at the
    derived positions written above) and COCO-17 predictions of ``prediction``
    (name -> (x, y) or (x, y, v))."""
    template = get_preset(preset)
    truth = {**_COCO_PERSON, **_DERIVED_EXPECTED}
    gt_kps = [v for name in template.keypoints for v in (*truth[name], 2)]
    gt = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 300, "height": 400}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "keypoints": gt_kps,
                "num_keypoints": template.num_keypoints,
                "area": 10000.0,
                "bbox": [60, 30, 80, 300],
                "iscrowd": 0,
            }
        ],
        "categories": [template.coco_category(1)],
    }
    coco = get_preset("coco17")
    pred_kps = []
    for name in coco.keypoints:
        point = prediction[name]
        pred_kps += [point[0], point[1], point[2] if len(point) == 3 else 2]
    predictions = {
        "images": [{"id": 7, "file_name": "a.jpg", "width": 300, "height": 400}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 1, "keypoints": pred_kps, "score": 0.9}
        ],
        "categories": [coco.coco_category(1)],
    }
    return gt, predictions


@pytest.mark.parametrize("preset", ["mpii16", "crowdpose14", "aic14", "posetrack17"])
def test_coco17_predictions_are_scored_on_derived_points(preset):
    gt, predictions = _derived_case(preset, _COCO_PERSON)
    result = evaluate(gt, predictions)
    assert result.template == preset
    # one ground-truth person: pycocotools' precision tp / (tp + fp + eps) is 1 - 2e-16
    assert result.stats["AP"] == pytest.approx(1.0, abs=1e-12)
    for k in result.per_keypoint:
        assert k.count == 1 and k.fraction_oks_50 == 1.0
        assert k.mean_normalized_error == pytest.approx(0.0, abs=1e-12), k.name


def test_derived_points_follow_their_inputs_exactly():
    moved = dict(_COCO_PERSON, right_ear=(80, 60), left_hip=(125, 200))
    gt, predictions = _derived_case("mpii16", moved)
    errors = {k.name: k.mean_normalized_error for k in evaluate(gt, predictions).per_keypoint}
    # ears mean moves 5 px, hips mean 5 px; the error is d / sqrt(area) = d / 100
    assert errors["head_top"] == pytest.approx(1.7 * 5 / 100, abs=1e-12)
    assert errors["upper_neck"] == pytest.approx(0.3 * 5 / 100, abs=1e-12)
    assert errors["pelvis"] == pytest.approx(5 / 100, abs=1e-12)
    assert errors["thorax"] == pytest.approx(0.0, abs=1e-12)
    assert errors["left_hip"] == pytest.approx(10 / 100, abs=1e-12)


def test_derived_points_use_the_labeled_points_of_a_group():
    # the far ear of a face in profile left out: the head comes from the other ear
    one_ear = dict(_COCO_PERSON, right_ear=(0, 0, 0))
    gt, predictions = _derived_case("mpii16", one_ear)
    errors = {k.name: k.mean_normalized_error for k in evaluate(gt, predictions).per_keypoint}
    # head_top = 1.7 (110, 60) - 0.7 (100, 100) = (117, 32); upper_neck = (103, 88)
    assert errors["head_top"] == pytest.approx(17 / 100, abs=1e-12)
    assert errors["upper_neck"] == pytest.approx(3 / 100, abs=1e-12)
    # no ear at all: those two points are not predicted, so they sit at (0, 0)
    no_ears = dict(one_ear, left_ear=(0, 0, 0))
    gt, predictions = _derived_case("mpii16", no_ears)
    result = evaluate(gt, predictions)
    errors = {k.name: k.mean_normalized_error for k in result.per_keypoint}
    assert errors["head_top"] == pytest.approx(math.hypot(100, 32) / 100, abs=1e-12)
    assert errors["upper_neck"] == pytest.approx(math.hypot(100, 88) / 100, abs=1e-12)
    assert errors["thorax"] == pytest.approx(0.0, abs=1e-12)
    assert result.stats["AP"] < 1.0


def test_a_named_point_is_never_replaced_by_a_derived_one():
    """PoseTrack names its ears: they are taken as predicted, and a prediction that
    names MPII's own points (here a MPII-16 file) is not derived at all."""
    gt, _ = _derived_case("mpii16", _COCO_PERSON)
    predictions = copy.deepcopy(gt)
    predictions["images"][0]["id"] = 9
    for a in predictions["annotations"]:
        a["image_id"], a["score"] = 9, 1.0
    thorax = get_preset("mpii16").index("thorax")
    predictions["annotations"][0]["keypoints"][3 * thorax] += 3  # off the shoulders' mean
    errors = {k.name: k.mean_normalized_error for k in evaluate(gt, predictions).per_keypoint}
    assert errors["thorax"] == pytest.approx(3 / 100, abs=1e-12)
