"""Synthetic COCO keypoint files for tests and benchmarks.

``make_coco`` builds a COCO-17 keypoints dict that looks like the real thing:
integer keypoint coordinates with 0/1/2 visibility (0,0 for unlabeled points),
boxes with two decimals, polygon segmentations, a few crowd regions with RLE
masks, ``info`` and ``licenses``. It is deterministic for a given seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COCO17_NAMES = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]  # fmt: skip
COCO17_EDGES = [
    [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8],
    [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]  # fmt: skip


def make_coco(
    num_images: int, num_annotations: int, seed: int = 0, *, crowd_fraction: float = 0.01
) -> dict[str, Any]:
    """A synthetic COCO-17 keypoints dataset.

    Args:
        num_images: Number of entries in ``images``.
        num_annotations: Number of entries in ``annotations`` (spread over random
            images, grouped by image in image order as COCO files usually are).
        seed: Random seed; the same seed gives the same dict.
        crowd_fraction: Fraction of annotations that are crowd regions (RLE
            segmentation, all keypoints zero).

    Returns:
        A dict ready for ``json.dump`` (plain Python ints, floats, lists, dicts).
    """
    rng = np.random.default_rng(seed)
    k = len(COCO17_NAMES)
    widths = rng.integers(320, 1280, num_images)
    heights = rng.integers(240, 960, num_images)
    images = [
        {
            "license": int(rng.integers(1, 9)),
            "file_name": f"{i + 1:012d}.jpg",
            "coco_url": f"http://images.example.org/val/{i + 1:012d}.jpg",
            "height": int(heights[i]),
            "width": int(widths[i]),
            "date_captured": "2013-11-14 16:28:13",
            "id": i + 1,
        }
        for i in range(num_images)
    ]
    image_index = np.sort(rng.integers(0, num_images, num_annotations))
    w_img = widths[image_index].astype(np.float64)
    h_img = heights[image_index].astype(np.float64)
    bw = np.round(rng.uniform(0.05, 0.5, num_annotations) * w_img, 2)
    bh = np.round(rng.uniform(0.1, 0.9, num_annotations) * h_img, 2)
    bx = np.round(rng.uniform(0, 1, num_annotations) * (w_img - bw), 2)
    by = np.round(rng.uniform(0, 1, num_annotations) * (h_img - bh), 2)
    kx = np.floor(bx[:, None] + rng.uniform(0, 1, (num_annotations, k)) * bw[:, None])
    ky = np.floor(by[:, None] + rng.uniform(0, 1, (num_annotations, k)) * bh[:, None])
    vis = rng.choice([0, 1, 2], size=(num_annotations, k), p=[0.3, 0.15, 0.55])
    crowd = rng.uniform(0, 1, num_annotations) < crowd_fraction
    vis[crowd] = 0
    kx[vis == 0] = 0
    ky[vis == 0] = 0
    triplets = np.stack([kx, ky, vis], axis=2).reshape(num_annotations, 3 * k).astype(np.int64)
    keypoint_lists = triplets.tolist()
    num_labeled = np.count_nonzero(vis, axis=1).tolist()
    boxes = np.stack([bx, by, bw, bh], axis=1).tolist()
    areas = np.round(bw * bh * 0.6, 4).tolist()
    annotations = []
    for a in range(num_annotations):
        x, y, w, h = boxes[a]
        if crowd[a]:
            segmentation: Any = {
                "counts": [int(c) for c in rng.integers(1, 50, 12)],
                "size": [int(h_img[a]), int(w_img[a])],
            }
        else:
            x2, y2 = round(x + w, 2), round(y + h, 2)
            segmentation = [[x, y, x2, y, x2, y2, x, y2]]
        annotations.append(
            {
                "segmentation": segmentation,
                "num_keypoints": num_labeled[a],
                "area": areas[a],
                "iscrowd": int(crowd[a]),
                "keypoints": keypoint_lists[a],
                "image_id": int(image_index[a]) + 1,
                "bbox": boxes[a],
                "category_id": 1,
                "id": 100000 + a,
            }
        )
    return {
        "info": {"description": "synthetic posekit test data", "year": 2024},
        "licenses": [{"id": i, "name": f"license {i}", "url": ""} for i in range(1, 9)],
        "images": images,
        "annotations": annotations,
        "categories": [
            {
                "supercategory": "person",
                "id": 1,
                "name": "person",
                "keypoints": list(COCO17_NAMES),
                "skeleton": [list(e) for e in COCO17_EDGES],
            }
        ],
    }
