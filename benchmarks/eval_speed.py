"""Speed of ``posekit eval`` against pycocotools and faster-coco-eval (issue 15).

Generates a seeded synthetic COCO keypoints ground truth (6,000 images, several
people per image, partly labeled and occluded keypoints, some crowd regions and
people without labeled points) and about 18,000 noisy predictions (misses, false
positives, some inside crowd regions), writes both as JSON, then times in one run:

* pycocotools alone: ``COCO(gt)``, ``loadRes``, ``evaluate``, ``accumulate``, ``summarize``;
* faster-coco-eval alone: the same five steps, and its evaluate+accumulate+summarize
  on their own (the reference for the 1.3x target);
* the whole ``posekit eval`` command as a subprocess (interpreter start included),
  and the in-process :func:`posekit.evaluation.evaluate` on the two paths.

It prints the times, the ratios and whether the ten AP/AR numbers agree. There are
no assertions on time: the figures depend on the machine and its load.

Usage:
    python benchmarks/eval_speed.py [--images 6000] [--seed 0] [--repeat 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COCO_NAMES = [
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]
# a standing person in a unit box (x right, y down), roughly
_POSE = np.array(
    [
        [0.50, 0.08],
        [0.53, 0.06],
        [0.47, 0.06],
        [0.57, 0.08],
        [0.43, 0.08],
        [0.65, 0.22],
        [0.35, 0.22],
        [0.72, 0.38],
        [0.28, 0.38],
        [0.75, 0.52],
        [0.25, 0.52],
        [0.60, 0.55],
        [0.40, 0.55],
        [0.60, 0.76],
        [0.40, 0.76],
        [0.60, 0.97],
        [0.40, 0.97],
    ]
)


def make_dataset(num_images: int = 6000, seed: int = 0) -> tuple[dict, list[dict]]:
    """A synthetic COCO keypoints ground truth and a results list on its image ids."""
    rng = np.random.default_rng(seed)
    k = len(COCO_NAMES)
    images, annotations, results = [], [], []
    ann_id = 1
    for image_id in range(1, num_images + 1):
        width, height = 640, 480
        images.append(
            {"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": width, "height": height}
        )
        for _ in range(int(rng.integers(1, 6))):  # 1-5 people, mean 3
            h = float(rng.uniform(30, 420))
            w = h * float(rng.uniform(0.35, 0.6))
            x = float(rng.uniform(0, width - w))
            y = float(rng.uniform(0, max(1.0, height - h)))
            pts = _POSE * [w, h] + [x, y] + rng.normal(0, 0.02 * h, (k, 2))
            vis = rng.choice([0, 1, 2], size=k, p=[0.15, 0.15, 0.70])
            if h < 60:  # small people: fewer labeled points
                vis[rng.random(k) < 0.5] = 0
            kps = np.concatenate([pts, vis[:, None]], axis=1)
            kps[vis == 0] = 0.0
            area = w * h * float(rng.uniform(0.45, 0.7))  # a segmentation is smaller than its box
            ann = {
                "id": ann_id,
                "image_id": image_id,
                "category_id": 1,
                "keypoints": [round(float(v), 2) for v in kps.reshape(-1)],
                "num_keypoints": int(np.count_nonzero(vis)),
                "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                "area": round(area, 2),
                "iscrowd": 0,
            }
            annotations.append(ann)
            ann_id += 1
            if ann["num_keypoints"] == 0 or rng.random() < 0.1:
                continue  # a miss
            noise = rng.normal(0, 1, (k, 2)) * math.sqrt(area) * rng.uniform(0.01, 0.12)
            pred = np.concatenate([pts + noise, rng.uniform(0.05, 1.0, (k, 1))], axis=1)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": [round(float(v), 2) for v in pred.reshape(-1)],
                    "score": round(float(np.clip(rng.normal(0.75, 0.15), 0.01, 1.0)), 4),
                }
            )
        if rng.random() < 0.06:  # a crowd region, sometimes with a prediction inside
            w, h = float(rng.uniform(80, 250)), float(rng.uniform(60, 200))
            x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h))
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": [0.0] * (3 * k),
                    "num_keypoints": 0,
                    "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                    "area": round(w * h, 2),
                    "iscrowd": 1,
                }
            )
            ann_id += 1
            if rng.random() < 0.7:
                pts = _POSE * [w * 0.3, h * 0.8] + [x + w * 0.3, y + h * 0.1]
                pred = np.concatenate([pts, np.ones((k, 1))], axis=1)
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": 1,
                        "keypoints": [round(float(v), 2) for v in pred.reshape(-1)],
                        "score": round(float(rng.uniform(0.05, 0.6)), 4),
                    }
                )
        for _ in range(int(rng.poisson(0.35))):  # false positives
            h = float(rng.uniform(30, 300))
            w = h * 0.5
            x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h))
            pts = _POSE * [w, h] + [x, y] + rng.normal(0, 0.05 * h, (k, 2))
            pred = np.concatenate([pts, rng.uniform(0.05, 0.5, (k, 1))], axis=1)
            results.append(
                {
                    "image_id": image_id,
                    "category_id": 1,
                    "keypoints": [round(float(v), 2) for v in pred.reshape(-1)],
                    "score": round(float(rng.uniform(0.01, 0.5)), 4),
                }
            )
    skeleton = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7]]
    gt = {
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "supercategory": "person",
                "keypoints": COCO_NAMES,
                "skeleton": skeleton,
            }
        ],
    }
    return gt, results


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run_pycocotools(gt_path: Path, res_path: Path, sigmas: np.ndarray) -> dict:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        t0, c0 = time.perf_counter(), time.process_time()
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(res_path))
        t1, c1 = time.perf_counter(), time.process_time()
        ev = COCOeval(coco_gt, coco_dt, "keypoints")
        ev.params.kpt_oks_sigmas = sigmas
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        t2, c2 = time.perf_counter(), time.process_time()
    return _times(t0, t1, t2, c0, c1, c2, list(ev.stats))


def _times(t0, t1, t2, c0, c1, c2, stats) -> dict:
    return {
        "load": t1 - t0,
        "eval": t2 - t1,
        "total": t2 - t0,
        "load_cpu": c1 - c0,
        "eval_cpu": c2 - c1,
        "cpu": c2 - c0,
        "stats": stats,
    }


def run_faster_coco_eval(gt_path: Path, res_path: Path, sigmas: np.ndarray) -> dict:
    import logging

    from faster_coco_eval import COCO, COCOeval_faster

    logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)
    with contextlib.redirect_stdout(io.StringIO()):
        t0, c0 = time.perf_counter(), time.process_time()
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(res_path))
        t1, c1 = time.perf_counter(), time.process_time()
        ev = COCOeval_faster(coco_gt, coco_dt, "keypoints", kpt_oks_sigmas=sigmas)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        t2, c2 = time.perf_counter(), time.process_time()
    return _times(t0, t1, t2, c0, c1, c2, list(ev.stats[:10]))


def run_posekit_inprocess(gt_path: Path, res_path: Path, engine: str) -> dict:
    from posekit.evaluation import STAT_NAMES, evaluate

    c0 = time.process_time()
    seconds, result = _timed(lambda: evaluate(gt_path, res_path, engine=engine))
    cpu = time.process_time() - c0
    return {"total": seconds, "cpu": cpu, "stats": [result.stats[n] for n in STAT_NAMES]}


def run_posekit_cli(gt_path: Path, res_path: Path) -> dict:
    from posekit.evaluation import STAT_NAMES

    cmd = [sys.executable, "-m", "posekit.cli", "eval", str(gt_path), str(res_path), "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, proc = _timed(lambda: subprocess.run(cmd, capture_output=True, text=True, check=True))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    data = json.loads(proc.stdout)
    return {"total": seconds, "cpu": cpu, "stats": [data[n] for n in STAT_NAMES]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is shown")
    parser.add_argument("--keep", type=Path, help="write the JSON files here and keep them")
    args = parser.parse_args(argv)

    from posekit.skeleton import get_preset

    gt, results = make_dataset(args.images, args.seed)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="posekit-eval-speed-"))
    folder.mkdir(parents=True, exist_ok=True)
    gt_path, res_path = folder / "gt.json", folder / "predictions.json"
    gt_path.write_text(json.dumps(gt), encoding="utf-8")
    res_path.write_text(json.dumps(results), encoding="utf-8")
    crowd = sum(1 for a in gt["annotations"] if a["iscrowd"])
    print(
        f"synthetic COCO keypoints: {len(gt['images'])} images, {len(gt['annotations'])} "
        f"ground-truth annotations ({crowd} crowd regions), {len(results)} predictions"
    )
    sigmas = get_preset("coco17").sigmas.astype(np.float64)

    runs = {
        "pycocotools": lambda: run_pycocotools(gt_path, res_path, sigmas),
        "faster-coco-eval": lambda: run_faster_coco_eval(gt_path, res_path, sigmas),
        "posekit evaluate()": lambda: run_posekit_inprocess(gt_path, res_path, "posekit"),
        "posekit evaluate(engine=pycocotools)": lambda: run_posekit_inprocess(
            gt_path, res_path, "pycocotools"
        ),
        "posekit eval (subprocess)": lambda: run_posekit_cli(gt_path, res_path),
    }
    best: dict[str, dict] = {}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            out = fn()
            if name not in best or out["total"] < best[name]["total"]:
                best[name] = out
    try:
        reference = best["pycocotools"]["stats"]
        pyc, fce = best["pycocotools"], best["faster-coco-eval"]
        cli, inproc = best["posekit eval (subprocess)"], best["posekit evaluate()"]
        print()
        print(f"{'run':<40} {'wall s':>7} {'CPU s':>7}  AP/AR equal to pycocotools")
        for name, out in best.items():
            diff = max(abs(a - b) for a, b in zip(out["stats"], reference))
            agree = "exactly" if diff == 0 else f"max diff {diff:.2e}"
            print(f"{name:<40} {out['total']:7.3f} {out['cpu']:7.3f}  {agree}")
        for label, out in (("faster-coco-eval", fce), ("pycocotools", pyc)):
            for part, key in (("load (COCO + loadRes)", "load"), ("evaluate+acc+summ", "eval")):
                name = f"  {label} {part}"
                print(f"{name:<40} {out[key]:7.3f} {out[key + '_cpu']:7.3f}")
        print()
        print(f"AP = {reference[0]:.4f}, AR = {reference[5]:.4f}")
        print("ratios (wall / CPU):")
        print(
            f"  posekit eval command / faster-coco-eval evaluate+accumulate+summarize: "
            f"{cli['total'] / fce['eval']:.2f}x / {cli['cpu'] / fce['eval_cpu']:.2f}x "
            "(target <= 1.3x)"
        )
        print(
            f"  posekit evaluate() in-process / faster-coco-eval evaluate+accumulate+summarize: "
            f"{inproc['total'] / fce['eval']:.2f}x / {inproc['cpu'] / fce['eval_cpu']:.2f}x"
        )
        print(
            f"  pycocotools (load+evaluate+accumulate+summarize) / posekit eval command: "
            f"{pyc['total'] / cli['total']:.2f}x / {pyc['cpu'] / cli['cpu']:.2f}x faster "
            "(target >= 2.5x)"
        )
        print(
            f"  pycocotools / posekit evaluate() in-process: "
            f"{pyc['total'] / inproc['total']:.2f}x / {pyc['cpu'] / inproc['cpu']:.2f}x faster"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
