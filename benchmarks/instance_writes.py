"""Update-heavy store paths: what recording instance history costs per write.

Builds a project of ``--images`` items with ``--per-image`` instances (imported
from a synthetic COCO file, register-only), then measures in the same run:

* ``patch_instance`` of ``--edits`` instances one after the other (a person's
  saves: one transaction each);
* ``review`` of every instance of ``--edits`` items (accept, one transaction per item);
* ``delete_instance`` of ``--edits`` instances;
* ``write_predictions(overwrite=True)`` over every item twice (auto-label re-run:
  the predictions replaced are bulk-deleted);
* ``change_template`` renaming one keypoint (every instance of the project gets
  version + 1 in one transaction).

Prints the process CPU times (best of N; steadier than wall time on a shared
machine, and a single client's SQLite work is all in-process) and the per-write
microseconds. The same script
runs against an older tree (``PYTHONPATH=<tree>/src``) for a before/after
comparison: it only uses API that existed before history was recorded. Run:
``python benchmarks/instance_writes.py [--images N] [--per-image N] [--edits N]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np

from helpers_coco import make_coco
from posekit import Instance
from posekit.skeleton import Skeleton, get_preset
from posekit.store import Workspace, import_coco


def _timed(func: Callable[[], Any]) -> float:
    gc.collect()
    start = time.process_time()
    func()
    return time.process_time() - start


def _prediction(seed: int) -> Instance:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 600, (17, 2)).astype(np.float32)
    return Instance(
        xy, np.full(17, 2, np.uint8), score=0.9, status="predicted", source="model:bench",
        keypoint_scores=np.full(17, 0.9, np.float32),
    )  # fmt: skip


def run_once(root: Path, source: Path, edits: int) -> dict[str, tuple[float, int]]:
    ws = Workspace(root)
    ws.create_project("bench", get_preset("coco17"))
    import_coco(ws, "bench", "all", source, copy_media=False)
    items = ws.list_items("bench")
    out: dict[str, tuple[float, int]] = {}
    records = [r for item in items[:edits] for r in ws.get_instance_records(item)][:edits]

    def patch() -> None:
        for n, rec in enumerate(records):
            kps = rec.instance.keypoints + np.float32(1.0 + n % 3)
            ws.patch_instance(rec.id, {"keypoints": kps}, rec.version)

    out["patch_instance"] = (_timed(patch), len(records))
    review_items = items[edits : 2 * edits]

    def review() -> None:
        for item in review_items:
            ids = [r.id for r in ws.get_instance_records(item)]
            ws.review(item.id, dict.fromkeys(ids, "accept"))

    out["review (per item)"] = (_timed(review), len(review_items))
    doomed = [r for item in items[2 * edits : 3 * edits] for r in ws.get_instance_records(item)]
    doomed = doomed[:edits]

    def remove() -> None:
        for rec in doomed:
            ws.delete_instance(rec.id, rec.version)

    out["delete_instance"] = (_timed(remove), len(doomed))
    predictions = {item.id: [_prediction(item.id)] for item in items}
    ws.write_predictions(predictions, overwrite=True)
    out["write_predictions overwrite"] = (
        _timed(lambda: ws.write_predictions(predictions, overwrite=True)),
        len(predictions),
    )
    template = ws.get_project("bench").template
    data = template.to_dict()
    names = [n if n != "nose" else "nose_tip" for n in data["keypoints"]]
    renamed = Skeleton.from_dict(
        {
            **data,
            "keypoints": names,
            "edges": [[("nose_tip" if a == "nose" else a), ("nose_tip" if b == "nose" else b)]
                      for a, b in data.get("edges", [])],
            "flip_pairs": data.get("flip_pairs", []),
            "sigmas": data.get("sigmas"),
        }
    )  # fmt: skip
    total = ws.row_counts()["instances"]
    out["change_template (all)"] = (
        _timed(lambda: ws.change_template("bench", renamed, renames={"nose": "nose_tip"})),
        total,
    )
    ws.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--per-image", type=int, default=5)
    parser.add_argument("--edits", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs per timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "synthetic.json"
        source.write_text(json.dumps(make_coco(args.images, args.images * args.per_image, 0)))
        best: dict[str, tuple[float, int]] = {}
        for n in range(args.repeats):
            for name, (seconds, count) in run_once(tmp / f"ws{n}", source, args.edits).items():
                if name not in best or seconds < best[name][0]:
                    best[name] = (seconds, count)
    print(f"{'path':32} {'writes':>8} {'total s':>9} {'us/write':>10}")
    for name, (seconds, count) in best.items():
        print(f"{name:32} {count:8d} {seconds:9.3f} {1e6 * seconds / max(count, 1):10.1f}")


if __name__ == "__main__":
    main()
