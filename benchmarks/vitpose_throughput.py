"""ViTPose throughput: per-person latency, batched throughput, pipeline overhead.

Random weights in the real architectures give the true compute cost: ViTPose-S
(hidden 384, 12 layers, 6 heads) and ViTPose-B (hidden 768, 12 layers, 12 heads),
input 256x192, patch 16, simple decoder, 17 COCO keypoints. The models are saved
with ``save_pretrained`` and loaded through the public spec
``vitpose:<folder>``, the path a user's checkpoint takes.

*Pipeline overhead* is the full ``estimate()`` call (UDP crops, normalisation,
forward, DARK decoding, Instances) over the bare forward pass of the same batch
of already prepared tensors, measured in the same run (target: <= 15% at batch 16).

Run (CPU, a few minutes on 2 cores)::

    python benchmarks/vitpose_throughput.py
    python benchmarks/vitpose_throughput.py --device cuda --half --batch 64   # GPU

Timings on a shared machine vary with other load; the script reports medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SIZES = {
    "ViTPose-S": {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 6},
    "ViTPose-B": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
}
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "coco-val2017-sample"


def build_model(folder: Path, size: str) -> Path:
    import torch
    import transformers

    from posekit.skeleton import get_preset

    torch.manual_seed(0)
    names = get_preset("coco17").keypoints
    backbone = transformers.VitPoseBackboneConfig(
        image_size=[256, 192], patch_size=[16, 16], mlp_ratio=4, out_indices=[12], **SIZES[size]
    )
    config = transformers.VitPoseConfig(
        backbone_config=backbone,
        num_labels=17,
        id2label=dict(enumerate(names)),
        label2id={n: i for i, n in enumerate(names)},
    )
    transformers.VitPoseForPoseEstimation(config).save_pretrained(folder)
    return folder


def sample_boxes(count: int) -> tuple[np.ndarray, np.ndarray]:
    """A real COCO image and ``count`` person boxes from the 56-AP detector (cycled)."""
    from posekit.media.image import load_image

    keypoints = json.loads((DATA / "person_keypoints.json").read_text())
    detections = json.loads((DATA / "person_detections.json").read_text())
    info = keypoints["images"][0]
    image = load_image(DATA / "images" / info["file_name"])
    boxes = np.array([d["bbox"] for d in detections if d["image_id"] == info["id"]], np.float64)
    boxes[:, 2:] += boxes[:, :2]
    return image, boxes[np.arange(count) % len(boxes)]


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up (allocations, kernels)
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        fn()
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def run(size: str, args: argparse.Namespace, workdir: Path) -> None:
    import torch

    from posekit.core import Detections
    from posekit.models import create_pose_estimator, heatmap_codec
    from posekit.skeleton import get_preset

    folder = build_model(workdir / size, size)
    skeleton = get_preset("coco17")
    estimator = create_pose_estimator(
        f"vitpose:{folder}", device=args.device, half=args.half, flip_test=False,
        batch_size=args.batch,
    )  # fmt: skip
    image, boxes = sample_boxes(args.batch)
    one = [Detections(boxes[:1], np.ones(1))]
    batch = [Detections(boxes, np.ones(len(boxes)))]

    latency = median_seconds(lambda: estimator.estimate([image], one, skeleton), args.repeats)

    # The bare forward pass on the same batch, inputs already on the device.
    centers, scales = heatmap_codec.box_to_center_scale(boxes, estimator.input_size)
    crops = heatmap_codec.warp_crops(image, centers, scales, estimator.input_size)
    dtype = torch.float16 if estimator.half else torch.float32
    pixels = torch.from_numpy(crops).permute(0, 3, 1, 2).float().div(255.0)
    pixels = ((pixels - estimator._mean.cpu()) / estimator._std.cpu()).to(args.device or "cpu")
    pixels = pixels.to(estimator.device, dtype=dtype)
    model = estimator._model

    def bare() -> None:
        with torch.inference_mode():
            heat = model(pixel_values=pixels).heatmaps
        heat.float().cpu()  # synchronises with the device, as the pipeline does

    # Pipeline and bare forward alternate, so that both see the same machine load.
    bare()
    estimator.estimate([image], batch, skeleton)
    pipeline_times, forward_times, inside_ratio = [], [], []
    for _ in range(args.repeats):
        estimator.inference_seconds = 0.0
        tic = time.perf_counter()
        estimator.estimate([image], batch, skeleton)
        total = time.perf_counter() - tic
        pipeline_times.append(total)
        # Same call: everything but the model's forward (+ device copy) is overhead.
        inside_ratio.append((total - estimator.inference_seconds) / estimator.inference_seconds)
        tic = time.perf_counter()
        bare()
        forward_times.append(time.perf_counter() - tic)
    pipeline = statistics.median(pipeline_times)
    forward = statistics.median(forward_times)
    flipped = None
    if args.flip:
        estimator.flip_test = True
        flipped = median_seconds(lambda: estimator.estimate([image], batch, skeleton), args.repeats)
    estimator.close()

    print(
        f"{size:10s} device={estimator.device}{' fp16' if estimator.half else ''} "
        f"threads={torch.get_num_threads()} batch={args.batch}\n"
        f"  per-person latency (batch 1, no flip): {latency * 1000:8.1f} ms\n"
        f"  batched throughput (no flip):          {args.batch / pipeline:8.1f} persons/s "
        f"({pipeline * 1000:.0f} ms per batch)\n"
        + (
            f"  batched throughput (flip test):        {args.batch / flipped:8.1f} persons/s\n"
            if flipped
            else ""
        )
        + f"  bare forward, same batch:              {forward * 1000:8.0f} ms\n"
        f"  pipeline overhead over forward:        {100 * (pipeline - forward) / forward:8.1f} %"
        f"  (target <= 15%)\n"
        f"  same-call overhead (non-model time):   {100 * statistics.median(inside_ratio):8.1f} %",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="ViTPose-S,ViTPose-B")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--half", action="store_true", help="fp16 (CUDA/MPS)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--flip", action="store_true", help="also time the flip test")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if not (DATA / "person_detections.json").is_file():
        raise SystemExit(f"shared sample data not found at {DATA}")
    with tempfile.TemporaryDirectory(prefix="posekit-vitpose-bench-") as tmp:
        for size in args.models.split(","):
            run(size.strip(), args, Path(tmp))


if __name__ == "__main__":
    main()
