"""Auto-label quality on every shared sample set: one table.

For each sample set (COCO val2017, CrowdPose, AI Challenger, MPII, PoseTrack18), at
the library's default settings (the same ones ``posekit predict`` uses), on the
set's own template (COCO-17 / MediaPipe-33 predictions mapped onto it by name):

* ``AP det``: OKS AP (``posekit.evaluation.evaluate``) with the default detector;
* ``AP gt``: the same with the ground-truth person boxes as input (the AI-assist
  case: ``posekit predict --boxes``, boxes from ``../shared/tools/gt_boxes.py``);
* ``edits gt`` / ``edits det``: a simulated annotator's edits per ground-truth
  person (``../shared/tools/correction_cost.py``) for those two inputs;
* ``dup det`` / ``dup gt``: pairs of predicted instances on one image whose OKS
  (each instance taken as the reference of the other, template sigmas) is >= 0.5
  both ways;
* ``AUROC gt``: how well the keypoint scores tell "correct within its own OKS 0.5"
  keypoints from wrong ones (correction_cost.py, ground-truth boxes).

MPII's json layout is converted to COCO (box: labeled-joint extent padded 10%);
PoseTrack frames are renamed ``<video>_<frame>.jpg`` because the simulated
annotator matches images by base name.

``--keypoints`` also prints, per set and input, each keypoint's mean OKS term
(exp(-d^2 / (2 s^2 k^2)) over the points labeled in both), its drags (term < 0.5) and
labels the annotators did not make, matched as correction_cost.py matches people.

``--cost ROUNDS`` times the pose estimator on the COCO sample with ground-truth boxes
with and without the face refinement (``face_refine``), alternating, ROUNDS rounds,
and prints the best round of each and their ratio.

Run: ``python benchmarks/quality.py [--data ../shared/data] [--json out.json]
[--before earlier.json] [--modes det gt] [--sets coco-val2017 ...] [--keypoints]``
(prints a Markdown table; ``--modes gt`` measures only the AI-assist case, about 25 s).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data"
TOOLS = ROOT / ".." / "shared" / "tools"

# name: (ground truth relative to the data folder, images folder, template preset)
SETS = {
    "coco-val2017": (
        "coco-val2017-sample/person_keypoints.json",
        "coco-val2017-sample/images",
        "coco17",
    ),
    "crowdpose": ("crowdpose-sample/keypoints.json", "crowdpose-sample/images", "crowdpose14"),
    "aic": ("aic-sample/keypoints.json", "aic-sample/images", "aic14"),
    "mpii": ("mpii-sample/annotations.json", "mpii-sample/images", "mpii16"),
    "posetrack18": ("posetrack18-sample/annotations/val.json", "posetrack18-sample", "posetrack17"),
}


def _mpii_to_coco(entries: list[dict], image_dir: Path) -> dict:
    """MPII json entries (one person each) -> a COCO keypoints dict."""
    import cv2

    images, annotations, ids = [], [], {}
    for n, entry in enumerate(entries, start=1):
        name = entry["image"]
        if name not in ids:
            h, w = cv2.imread(str(image_dir / name)).shape[:2]
            ids[name] = len(ids) + 1
            images.append({"id": ids[name], "file_name": name, "width": w, "height": h})
        joints = np.asarray(entry["joints"], float)
        vis = np.asarray(entry["joints_vis"], int)
        labeled = (vis > 0) & (joints[:, 0] >= 0) & (joints[:, 1] >= 0)
        kps = np.zeros((len(joints), 3))
        kps[labeled, :2] = joints[labeled]
        kps[labeled, 2] = 2
        lo, hi = joints[labeled].min(axis=0), joints[labeled].max(axis=0)
        pad = 0.1 * (hi - lo)
        x0, y0 = lo - pad
        bw, bh = hi - lo + 2 * pad
        annotations.append(
            {
                "id": n,
                "image_id": ids[name],
                "category_id": 1,
                "keypoints": kps.ravel().round(2).tolist(),
                "num_keypoints": int(labeled.sum()),
                "bbox": [round(float(v), 2) for v in (x0, y0, bw, bh)],
                "area": round(float(bw * bh), 2),
                "iscrowd": 0,
            }
        )
    return {"images": images, "annotations": annotations, "categories": []}


def prepare(name: str, data: Path, work: Path) -> tuple[Path, Path, str]:
    """Ground truth (COCO, template keypoint names, unique base names) and an image
    folder for one sample set."""
    from posekit.skeleton import get_preset, names_mapping

    gt_rel, images_rel, preset = SETS[name]
    template = get_preset(preset)
    raw = json.loads((data / gt_rel).read_text())
    image_root = data / images_rel
    if name == "mpii":
        raw = _mpii_to_coco(raw, image_root)
        source_names = list(template.keypoints)
    else:
        source_names = raw["categories"][0]["keypoints"]
    order = names_mapping(source_names, template)
    if sorted(order.tolist()) != list(range(template.num_keypoints)):
        raise SystemExit(f"{name}: ground-truth names do not map onto {preset}")
    folder = work / name / "images"
    shutil.rmtree(work / name, ignore_errors=True)
    folder.mkdir(parents=True)
    images = []
    for img in raw["images"]:
        flat = img["file_name"].replace("images/val/", "").replace("/", "_")
        os.symlink((image_root / img["file_name"]).resolve(), folder / flat)
        images.append(
            {"id": img["id"], "file_name": flat, "width": img["width"], "height": img["height"]}
        )
    annotations = []
    for ann in raw["annotations"]:
        kps = np.asarray(ann.get("keypoints") or [], float).reshape(-1, 3)
        if len(kps) == 0:
            continue
        kps = kps[order]
        out = {k: ann[k] for k in ("id", "image_id", "bbox", "iscrowd") if k in ann}
        out.update(
            category_id=1,
            keypoints=kps.ravel().tolist(),
            num_keypoints=int((kps[:, 2] > 0).sum()),
            iscrowd=int(ann.get("iscrowd", 0)),
        )
        if ann.get("area"):
            out["area"] = ann["area"]
        annotations.append(out)
    gt = {
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "id": 1,
                "name": "person",
                "keypoints": list(template.keypoints),
                "skeleton": [[int(a) + 1, int(b) + 1] for a, b in template.edge_index],
            }
        ],
    }
    gt_path = work / name / "gt.json"
    gt_path.write_text(json.dumps(gt))
    return gt_path, folder, preset


def duplicate_pairs(dataset, sigmas: np.ndarray, threshold: float = 0.5) -> int:
    """Pairs of instances on one image with OKS >= ``threshold`` both ways."""
    count = 0
    var = (2.0 * sigmas) ** 2
    for labeled_image in dataset.images:
        people = labeled_image.instances
        for i in range(len(people)):
            for j in range(i + 1, len(people)):
                a, b = people[i], people[j]
                both = (a.visibility > 0) & (b.visibility > 0)
                if not both.any():
                    continue
                d2 = ((a.keypoints - b.keypoints) ** 2).sum(axis=1)[both]
                ok = True
                for ref in (a, b):
                    xy = ref.keypoints[ref.visibility > 0]
                    area = max(float(np.prod(xy.max(axis=0) - xy.min(axis=0))), 1.0)
                    oks = np.exp(-d2 / (2.0 * area * var[both])).mean()
                    ok &= oks >= threshold
                if ok:
                    count += 1
    return count


def correction_cost(gt: Path, pred: Path, sigmas: np.ndarray) -> dict:
    cmd = [
        sys.executable,
        str(TOOLS / "correction_cost.py"),
        str(gt),
        str(pred),
        "--sigmas",
        ",".join(f"{s:.8f}" for s in sigmas),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def _area(ann: dict) -> float:
    if ann.get("area"):
        return float(ann["area"])
    w, h = ann.get("bbox", [0, 0, 1, 1])[2:4]
    return max(float(w) * float(h), 1.0)


def keypoint_errors(gt_path: Path, pred_path: Path, sigmas: np.ndarray) -> dict:
    """Per keypoint name: ``[labeled in both, mean OKS term, drags, extra labels]``,
    people matched greedily by OKS (highest score first, OKS >= 0.1) as
    correction_cost.py does."""
    gt, pred = json.loads(gt_path.read_text()), json.loads(pred_path.read_text())
    names = gt["categories"][0]["keypoints"]
    order = [pred["categories"][0]["keypoints"].index(n) for n in names]
    image_of = {i["id"]: Path(i["file_name"]).name for i in pred["images"]}
    var = (2.0 * sigmas) ** 2
    k = len(names)
    count, total, drags, extra = np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)
    for img in gt["images"]:
        people = [
            a
            for a in gt["annotations"]
            if a["image_id"] == img["id"]
            and not a.get("iscrowd")
            and np.any(np.asarray(a["keypoints"]).reshape(-1, 3)[:, 2] > 0)
        ]
        preds = [a for a in pred["annotations"] if image_of[a["image_id"]] == img["file_name"]]
        used: set[int] = set()
        for p in sorted(preds, key=lambda a: -a.get("score", 1.0)):
            pk = np.asarray(p["keypoints"], float).reshape(-1, 3)[order]
            best, match = 0.1, None
            for j, g in enumerate(people):
                gk = np.asarray(g["keypoints"], float).reshape(-1, 3)
                sim = np.exp(-((pk[:, :2] - gk[:, :2]) ** 2).sum(1) / (2 * _area(g) * var))
                if j not in used and sim[gk[:, 2] > 0].mean() > best:
                    best, match = sim[gk[:, 2] > 0].mean(), j
            if match is None:
                continue
            used.add(match)
            g = people[match]
            gk = np.asarray(g["keypoints"], float).reshape(-1, 3)
            sim = np.exp(-((pk[:, :2] - gk[:, :2]) ** 2).sum(1) / (2 * _area(g) * var))
            both, labeled = (gk[:, 2] > 0) & (pk[:, 2] > 0), gk[:, 2] > 0
            count += both
            total += np.where(both, sim, 0.0)
            drags += labeled & (sim < 0.5)
            extra += ~labeled & (pk[:, 2] > 0)
    return {
        name: [int(count[i]), round(float(total[i] / max(count[i], 1)), 3), int(drags[i]),
               int(extra[i])]
        for i, name in enumerate(names)
    }  # fmt: skip


def print_keypoints(rows: dict, before: dict | None) -> None:
    """One Markdown table per set and input: n, mean OKS term, drags, extra labels."""
    for name, row in rows.items():
        for mode in ("gt", "det"):
            table = row.get(f"keypoints_{mode}")
            if not table:
                continue
            old = ((before or {}).get(name) or {}).get(f"keypoints_{mode}") or {}
            print(f"\n{name}, {mode}: keypoint | labeled in both | mean OKS term | drags | extra")
            print("|---|---:|---:|---:|---:|")
            for kp, (n, sim, drag, extra) in table.items():
                cells = [str(n), f"{sim:.3f}", str(drag), str(extra)]
                if kp in old:
                    cells = [f"{a} → {b}" for a, b in zip((str(old[kp][0]), f"{old[kp][1]:.3f}",
                             str(old[kp][2]), str(old[kp][3])), cells)]  # fmt: skip
                print(f"| {kp} | " + " | ".join(cells) + " |")


def measure_cost(data: Path, rounds: int) -> None:
    """Best-of-``rounds`` seconds of the estimator on the COCO sample with its
    ground-truth boxes, face refinement on and off, alternating in one process."""
    from posekit.core import Detections
    from posekit.media.image import load_image
    from posekit.models.registry import create_pose_estimator
    from posekit.skeleton import get_preset

    gt = json.loads((data / SETS["coco-val2017"][0]).read_text())
    folder = data / SETS["coco-val2017"][1]
    items = []
    for img in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == img["id"] and not a["iscrowd"]]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)])
        dets = Detections(boxes.astype(np.float32), np.ones(len(boxes), np.float32))
        items.append((load_image(folder / img["file_name"]), dets))
    template = get_preset("coco17")
    # One estimator, its face model detached for the "off" rounds: both use the very
    # same interpreters (two estimators' interpreters differed by 10-15% here).
    model = create_pose_estimator("blazepose")
    face = model._face  # the face model, to detach it and read its share of the inference
    best = {k: (float("inf"), 0.0) for k in ("off", "on")}
    people = sum(len(d) for _, d in items)
    face_share = 1.0
    for round_ in range(rounds):
        for key in ("off", "on") if round_ % 2 == 0 else ("on", "off"):
            model._face = face if key == "on" else None
            model.inference_seconds = 0.0
            face_before = face.inference_seconds
            start = time.perf_counter()
            for image, dets in items:
                model.estimate([image], [dets], template)
            wall = time.perf_counter() - start
            if key == "on":
                face_share = min(
                    face_share, (face.inference_seconds - face_before) / model.inference_seconds
                )
            if wall < best[key][0]:
                best[key] = (wall, model.inference_seconds)
    model._face = face
    model.close()
    for key, (wall, inference) in best.items():
        per_person = 1000 * wall / people
        print(
            f"face_refine {key:3s}: {per_person:6.1f} ms/person "
            f"(inference {1000 * inference / people:6.1f} ms/person), best of {rounds}"
        )
    print(f"face model: {100 * face_share:.1f}% of the estimator's inference (lowest round)")
    print(
        f"ratio on/off: {best['on'][0] / best['off'][0]:.3f} ({people} people, "
        f"{len(items)} images; load average {os.getloadavg()[0]:.1f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument(
        "--pose-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra pose-estimator option (JSON value), e.g. flip_test=true",
    )
    parser.add_argument("--detector-option", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--keep", type=Path, help="write the ground truth and predictions here")
    parser.add_argument(
        "--modes",
        nargs="*",
        default=["det", "gt"],
        choices=["det", "gt"],
        help="inputs to measure: the own detector and/or the ground-truth boxes",
    )
    parser.add_argument(
        "--before", type=Path, help="an earlier --json: print each cell as 'before -> now'"
    )
    parser.add_argument(
        "--keypoints", action="store_true", help="also print per-keypoint errors per set"
    )
    parser.add_argument("--cost", type=int, metavar="ROUNDS", help="time the face refinement")
    args = parser.parse_args()
    if args.cost:
        measure_cost(args.data.resolve(), args.cost)
        return

    from posekit.evaluation import evaluate
    from posekit.formats.coco import write_coco
    from posekit.models.registry import create_detector, create_pose_estimator
    from posekit.pipeline.boxes import load_boxes
    from posekit.pipeline.options import AutolabelOptions
    from posekit.pipeline.predict_files import predict_files
    from posekit.skeleton import get_preset

    defaults = AutolabelOptions()

    def options(pairs: list[str]) -> dict:
        return {k: json.loads(v) for k, v in (p.split("=", 1) for p in pairs)}

    detector = (
        create_detector(defaults.detector, **options(args.detector_option))
        if "det" in args.modes
        else None
    )
    pose = create_pose_estimator(defaults.pose, **options(args.pose_option))
    rows = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) if args.keep is None else args.keep
        work.mkdir(parents=True, exist_ok=True)
        for name in args.sets:
            gt_path, folder, preset = prepare(name, args.data.resolve(), work)
            template = get_preset(preset)
            sigmas = np.asarray(template.sigmas, float)
            boxes_path = work / name / "gt_boxes.json"
            subprocess.run(
                [sys.executable, str(TOOLS / "gt_boxes.py"), str(gt_path), str(boxes_path)],
                check=True,
            )
            row = {}
            for mode in args.modes:
                kwargs = (
                    {"detector": detector} if mode == "det" else {"boxes": load_boxes(boxes_path)}
                )
                result = predict_files([folder], template, pose, **kwargs)
                pred_path = work / name / f"pred_{mode}.json"
                write_coco(result.dataset, pred_path)
                scores = evaluate(str(gt_path), str(pred_path), template)
                cost = correction_cost(gt_path, pred_path, sigmas)
                row[f"AP_{mode}"] = round(float(scores.to_dict()["AP"]), 3)
                row[f"edits_{mode}"] = cost["edits_per_person"]
                row[f"dup_{mode}"] = duplicate_pairs(result.dataset, sigmas)
                auroc = cost["keypoint_score_auroc"]
                row[f"auroc_{mode}"] = None if auroc is None else round(auroc, 3)
                row[f"preds_{mode}"] = sum(len(li.instances) for li in result.dataset.images)
                row[f"keypoints_{mode}"] = keypoint_errors(gt_path, pred_path, sigmas)
                row["persons"] = cost["persons"]
            rows[name] = row
    pose.close()
    if detector is not None:
        detector.close()
    before = json.loads(args.before.read_text()) if args.before else None
    print_table(rows, before)
    if args.keypoints:
        print_keypoints(rows, before)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


COLUMNS = [
    ("AP det", "AP_det"),
    ("AP gt", "AP_gt"),
    ("edits gt", "edits_gt"),
    ("edits det", "edits_det"),
    ("dup det", "dup_det"),
    ("dup gt", "dup_gt"),
    ("AUROC gt", "auroc_gt"),
    ("AUROC det", "auroc_det"),
    ("preds det", "preds_det"),
    ("persons", "persons"),
]


def print_table(rows: dict, before: dict | None = None) -> None:
    """A Markdown table; with ``before`` (an earlier ``--json``) each cell reads
    ``before -> now``."""

    def cell(value) -> str:
        return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)

    print("| sample set | " + " | ".join(c for c, _ in COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, row in rows.items():
        cells = []
        for _, key in COLUMNS:
            now = cell(row.get(key))
            if before is not None and name in before:
                now = f"{cell(before[name].get(key))} → {now}"
            cells.append(now)
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
