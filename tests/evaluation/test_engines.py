"""The evaluation engines against pycocotools: OKS matrices bit for bit, the ten AP/AR
numbers exactly (faster-coco-eval to 1e-9), crowd regions, maxDets, other templates."""

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
from posekit.evaluation.engines import oks_matrices
from posekit.evaluation.inputs import ground_truth_arrays, prediction_arrays
from posekit.skeleton import get_preset

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def _load(relative: str) -> dict:
    path = DATA / relative
    if not path.exists():
        pytest.skip(f"shared sample data not found at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def _filled(gt: dict) -> dict:
    """The fields posekit fills when a file lacks them, for running pycocotools directly."""
    gt = copy.deepcopy(gt)
    for a in gt["annotations"]:
        a.setdefault("area", a["bbox"][2] * a["bbox"][3])
        a.setdefault("iscrowd", 0)
        a.setdefault("num_keypoints", int(np.count_nonzero(np.asarray(a["keypoints"])[2::3])))
    return gt


def _pycocotools(gt: dict, results: list[dict], sigmas, tmp_path: Path):
    """pycocotools the standard way: files, COCO(), loadRes(), COCOeval."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    (tmp_path / "gt.json").write_text(json.dumps(gt), encoding="utf-8")
    (tmp_path / "res.json").write_text(json.dumps(results), encoding="utf-8")
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(tmp_path / "gt.json"))
        coco_dt = coco_gt.loadRes(str(tmp_path / "res.json"))
        coco_eval = COCOeval(coco_gt, coco_dt, "keypoints")
        coco_eval.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return coco_eval


def _synthetic(num_images: int, seed: int, *, crowd: float = 0.3, many: bool = False):
    """Several people per image, partly labeled points, crowd regions with predictions
    inside them, misses, false positives, ties in score; optionally one image with
    more than maxDets (20) predictions."""
    rng = np.random.default_rng(seed)
    k = 17
    images, anns, results = [], [], []
    for image_id in range(1, num_images + 1):
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 640, "height": 480})
        for _ in range(int(rng.integers(0, 5))):
            h = float(rng.uniform(20, 400))
            w = 0.5 * h
            x, y = rng.uniform(0, 400), rng.uniform(0, 300)
            pts = rng.uniform([x, y], [x + w, y + h], (k, 2))
            vis = rng.choice([0, 1, 2], k, p=[0.2, 0.2, 0.6])
            kps = np.concatenate([pts, vis[:, None]], 1)
            kps[vis == 0] = 0
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": kps.round(1).reshape(-1).tolist(),
                    "num_keypoints": int(np.count_nonzero(vis)),
                    "bbox": [x, y, w, h],
                    "area": w * h * 0.6,
                    "iscrowd": 0,
                }
            )
            if rng.random() < 0.85:
                noisy = pts + rng.normal(0, 1, (k, 2)) * math.sqrt(w * h) * rng.uniform(0.01, 0.1)
                results.append(_result(image_id, noisy, rng))
        if rng.random() < crowd:
            x, y, w, h = 50.0, 60.0, 200.0, 150.0
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": [0] * (3 * k),
                    "num_keypoints": 0,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 1,
                }
            )
            for _ in range(int(rng.integers(0, 3))):  # predictions inside the crowd region
                results.append(_result(image_id, rng.uniform([x, y], [x + w, y + h], (k, 2)), rng))
        for _ in range(int(rng.poisson(0.5))):
            results.append(_result(image_id, rng.uniform([0, 0], [640, 480], (k, 2)), rng))
    if many:
        for _ in range(27):
            results.append(_result(1, rng.uniform([0, 0], [640, 480], (k, 2)), rng))
    gt = {
        "images": images,
        "annotations": anns,
        "categories": [
            {"id": 1, "name": "person", "keypoints": list(get_preset("coco17").keypoints)}
        ],
    }
    return gt, results


def _result(image_id: int, pts: np.ndarray, rng) -> dict:
    kps = np.concatenate([pts, np.ones((len(pts), 1))], 1)
    # scores on a coarse grid, so that ties (kept in input order) occur
    return {
        "image_id": image_id,
        "category_id": 1,
        "keypoints": kps.round(2).reshape(-1).tolist(),
        "score": round(float(rng.random()), 1),
    }


def _gt_as_results(gt: dict) -> list[dict]:
    return [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in gt["annotations"]
        if not a.get("iscrowd") and np.count_nonzero(np.asarray(a["keypoints"])[2::3]) > 0
    ]


def _perturbed(gt: dict, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for a in gt["annotations"]:
        if a.get("iscrowd") or rng.random() < 0.15:
            continue
        kps = np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3)
        kps[:, :2] += rng.normal(0, 0.04 * math.sqrt(a["bbox"][2] * a["bbox"][3]), (len(kps), 2))
        out.append(
            {
                "image_id": a["image_id"],
                "category_id": 1,
                "keypoints": kps.reshape(-1).tolist(),
                "score": float(rng.random()),
            }
        )
    return out


def _duplicates_and_a_crowded_image():
    """Equal OKS to two ground truths (duplicated annotations), duplicated predictions,
    and one image with 40 people and 30 predictions (more than maxDets)."""
    gt, results = _synthetic(40, 8)
    anns = gt["annotations"]
    for a in list(anns[::4]):
        anns.append(dict(a, id=len(anns) + 1))
    results += [dict(r) for r in results[::5]]
    crowded, crowded_results = _synthetic(40, 9, crowd=0.0)
    for a in crowded["annotations"]:
        anns.append(dict(a, id=len(anns) + 1, image_id=1))
    results += [dict(r, image_id=1) for r in crowded_results[:30]]
    return gt, results


def _cases():
    yield "synthetic-crowd", lambda: _synthetic(120, 0), "coco17"
    yield "synthetic-duplicates-crowded", _duplicates_and_a_crowded_image, "coco17"
    yield "synthetic-maxdets", lambda: _synthetic(60, 1, many=True), "coco17"
    yield "synthetic-no-crowd", lambda: _synthetic(80, 2, crowd=0.0), "coco17"
    for seed in (0, 1):
        yield (
            f"coco-perturbed-{seed}",
            lambda seed=seed: _with(_load("coco-val2017-sample/person_keypoints.json"), seed),
            "coco17",
        )
    yield (
        "coco-golden",
        lambda: _with(_load("coco-val2017-sample/person_keypoints.json"), None),
        "coco17",
    )
    for relative, template in (
        ("crowdpose-sample/keypoints.json", "crowdpose14"),
        ("aic-sample/keypoints.json", "aic14"),
        ("posetrack18-sample/annotations/val.json", "posetrack17"),
    ):
        yield f"{template}-perturbed", lambda r=relative: _with(_load(r), 7), template
        yield f"{template}-golden", lambda r=relative: _with(_load(r), None), template


def _with(gt: dict, seed: int | None):
    return gt, (_gt_as_results(gt) if seed is None else _perturbed(gt, seed))


CASES = list(_cases())


@pytest.mark.parametrize(("make", "template"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_engines_equal_pycocotools(make, template, tmp_path):
    gt, results = make()
    sigmas = get_preset(template).sigmas
    reference = [float(s) for s in _pycocotools(_filled(gt), results, sigmas, tmp_path).stats]
    fast = evaluate(gt, results)
    assert fast.engine == "posekit" and fast.template == template
    assert [fast.stats[n] for n in STAT_NAMES] == reference  # bit for bit
    slow = evaluate(gt, results, engine="pycocotools")
    assert [slow.stats[n] for n in STAT_NAMES] == reference
    assert fast.per_keypoint == slow.per_keypoint
    pytest.importorskip("faster_coco_eval", reason="faster-coco-eval is not installed")
    fce = evaluate(gt, results, engine="faster-coco-eval")
    assert np.allclose([fce.stats[n] for n in STAT_NAMES], reference, rtol=0, atol=1e-9)


def test_golden_cases_score_one():
    gt, _ = _synthetic(50, 3)
    result = evaluate(gt, _gt_as_results(gt))
    assert all(result.stats[n] == 1.0 for n in STAT_NAMES)


@pytest.mark.parametrize(
    ("make", "template"), [c[1:] for c in CASES[:5]], ids=[c[0] for c in CASES[:5]]
)
def test_oks_matrices_are_bit_identical_to_pycocotools(make, template, tmp_path):
    gt, results = make()
    sigmas = get_preset(template).sigmas.astype(np.float64)
    coco_eval = _pycocotools(_filled(gt), results, sigmas, tmp_path)
    category = gt["categories"][0]
    k = len(category["keypoints"])
    gt_arrays = ground_truth_arrays(gt, category["id"], k)
    pairs = oks_matrices(gt_arrays, prediction_arrays(results, gt_arrays, k, None), sigmas)
    ours = pairs.matrices()
    compared = 0
    for (image_id, _), theirs in coco_eval.ious.items():
        index = gt_arrays.id_to_index[image_id]
        if len(theirs) == 0:
            assert index not in ours
            continue
        np.testing.assert_array_equal(ours[index], theirs)  # exact, not approximate
        compared += 1
    assert compared == len(ours) > 0


def test_crowd_region_absorbs_predictions_inside_it():
    """A prediction matched to a crowd region is neither a hit nor a false positive."""
    gt, _ = _synthetic(30, 4, crowd=0.0)
    results = _gt_as_results(gt)
    for r in results[::3]:
        r["score"] = 0.5
    base = evaluate(gt, results).stats
    region = {
        "id": 10_000,
        "image_id": 1,
        "category_id": 1,
        "keypoints": [0] * 51,
        "num_keypoints": 0,
        "bbox": [300.0, 300.0, 100.0, 100.0],
        "area": 10_000.0,
        "iscrowd": 1,
    }
    inside = np.tile([350.0, 350.0, 1.0], 17).tolist()
    with_region = dict(gt, annotations=[*gt["annotations"], region])
    extra = [*results, {"image_id": 1, "category_id": 1, "keypoints": inside, "score": 0.9}]
    assert evaluate(with_region, extra).stats == base
    # without the region the same prediction is a high-scoring false positive
    assert evaluate(gt, extra).stats["AP"] < base["AP"]
    reference = evaluate(with_region, extra, engine="pycocotools").stats
    assert reference == base


def test_unknown_engine_is_an_error():
    gt, results = _synthetic(3, 5)
    with pytest.raises(EvaluationError, match="unknown engine"):
        evaluate(gt, results, engine="detectron")


def test_result_records_the_engine():
    gt, results = _synthetic(5, 6)
    data = evaluate(gt, results, engine="pycocotools").to_dict()
    assert data["engine"] == "pycocotools" and data["num_pred_ignored"] == 0
