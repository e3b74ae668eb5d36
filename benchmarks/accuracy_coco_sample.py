"""COCO keypoint AP of the BlazePose pipeline on the shared COCO val2017 sample.

Three settings, each scored with pycocotools COCOeval (iouType='keypoints', COCO
sigmas): BlazePose's own person detector; every non-crowd ground-truth box handed in
(the AI-assist case); the boxes of ``person_detections.json``.

Run: ``python benchmarks/accuracy_coco_sample.py [--data DIR] [--min-box-score S]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
from pathlib import Path

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from posekit.media.image import load_image
from posekit.models import Detections
from posekit.models.blazepose import BlazePoseDetector, BlazePoseEstimator
from posekit.pipeline import predict
from posekit.skeleton import get_preset

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def to_results(image_id: int, instances: list) -> list[dict]:
    out = []
    for inst in instances:
        flat = np.concatenate([inst.keypoints, inst.visibility[:, None]], axis=1)
        out.append(
            {
                "image_id": image_id,
                "category_id": 1,
                "keypoints": [round(float(v), 2) for v in flat.reshape(-1)],
                "score": float(inst.score),
            }
        )
    return out


def evaluate(coco: COCO, results: list[dict]) -> tuple[float, float]:
    if not results:
        return 0.0, 0.0
    with contextlib.redirect_stdout(io.StringIO()):
        dt = coco.loadRes(results)
        ev = COCOeval(coco, dt, "keypoints")
        ev.params.kpt_oks_sigmas = get_preset("coco17").sigmas
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[5])


def xywh_to_xyxy(b: list[float]) -> list[float]:
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--min-box-score", type=float, default=0.3)
    parser.add_argument("--det-score", type=float, default=0.3)
    parser.add_argument("--tile-min-side", type=int, default=448)
    parser.add_argument("--box-enlarge", type=float, default=1.25)
    parser.add_argument("--refine-passes", type=int, default=2)
    parser.add_argument("--aligned-refine-passes", type=int, default=1)
    parser.add_argument("--box-align", choices=["detector", "box"], default="detector")
    parser.add_argument("--no-heatmap", action="store_true")
    parser.add_argument("--flip", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    folder = args.data / "coco-val2017-sample"
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(folder / "person_keypoints.json"))
    skeleton = get_preset("coco17")
    detector = BlazePoseDetector(score_threshold=args.det_score, tile_min_side=args.tile_min_side)
    estimator = BlazePoseEstimator(
        box_enlarge=args.box_enlarge,
        refine_passes=args.refine_passes,
        aligned_refine_passes=args.aligned_refine_passes,
        box_align=args.box_align,
        heatmap_refine=not args.no_heatmap,
        flip_test=args.flip,
    )
    file_dets = json.loads((folder / "person_detections.json").read_text())

    settings: dict[str, list[dict]] = {"detector": [], "gt_boxes": [], "det_file": []}
    for image_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(image_id)[0]
        image = load_image(folder / "images" / info["file_name"])
        own = predict([image], skeleton, detector, estimator)[0]
        settings["detector"] += to_results(image_id, own)

        anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id)) if not a["iscrowd"]]
        gt = Detections(
            np.array([xywh_to_xyxy(a["bbox"]) for a in anns], np.float32).reshape(-1, 4),
            np.ones(len(anns), np.float32),
        )
        settings["gt_boxes"] += to_results(
            image_id, predict([image], skeleton, None, estimator, [gt])[0]
        )

        boxes = [
            d for d in file_dets if d["image_id"] == image_id and d["score"] >= args.min_box_score
        ]
        fd = Detections(
            np.array([xywh_to_xyxy(d["bbox"]) for d in boxes], np.float32).reshape(-1, 4),
            np.array([d["score"] for d in boxes], np.float32),
        )
        insts = predict([image], skeleton, None, estimator, [fd])[0]
        # The detector's box score is evidence too: rank by pose score x box score.
        for inst, s in zip(insts, fd.scores):
            inst.score = float(inst.score) * float(s)
        settings["det_file"] += to_results(image_id, insts)

    names = {
        "detector": "BlazePose detector",
        "gt_boxes": "ground-truth boxes (non-crowd)",
        "det_file": f"person_detections.json boxes (score >= {args.min_box_score})",
    }
    for key, results in settings.items():
        ap, ar = evaluate(coco, results)
        print(f"{names[key]:48s} AP {ap:.3f}  AR {ar:.3f}  ({len(results)} predictions)")
    detector.close()
    estimator.close()


if __name__ == "__main__":
    main()
