"""Accuracy of the default offline pipeline on the COCO val2017 sample, through the CLI.

Runs exactly what a user runs, ``posekit predict`` then ``posekit eval --json``, in
three settings:

1. BlazePose's own person detector (no boxes given);
2. the ground-truth person boxes handed in with ``--boxes`` (the AI-assist case);
3. the detector boxes of ``person_detections.json`` (a 56-AP detector) with
   ``--boxes ... --images-from ...`` at a few box-score thresholds.

Run: ``python benchmarks/accuracy_coco_sample.py [--data ../shared/data/coco-val2017-sample]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / ".." / "shared" / "data" / "coco-val2017-sample"


def posekit(*args: str) -> str:
    cmd = [sys.executable, "-m", "posekit.cli", "-q", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    data = args.data.resolve()
    gt = data / "person_keypoints.json"
    images = data / "images"
    settings = [
        ("BlazePose detector (own boxes)", []),
        ("ground-truth boxes (--boxes GT)", ["--boxes", str(gt)]),
    ]
    for threshold in ("0.0", "0.3", "0.5"):
        settings.append(
            (
                f"person_detections.json, box score >= {threshold}",
                [
                    "--boxes",
                    str(data / "person_detections.json"),
                    "--images-from",
                    str(gt),
                    "--min-box-score",
                    threshold,
                ],
            )
        )
    print(f"{'setting':48s} {'AP':>6s} {'AP50':>6s} {'AP75':>6s} {'AR':>6s} {'preds':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in settings:
            pred = Path(tmp) / "pred.json"
            posekit("predict", str(images), "-o", str(pred), *extra)
            scores = json.loads(posekit("eval", str(gt), str(pred), "--json"))
            count = len(json.loads(pred.read_text())["annotations"])
            print(
                f"{label:48s} {scores['AP']:6.3f} {scores['AP50']:6.3f} {scores['AP75']:6.3f} "
                f"{scores['AR']:6.3f} {count:6d}"
            )


if __name__ == "__main__":
    main()
