"""Factories for the tracking tests: a small template and synthetic people."""

from __future__ import annotations

import numpy as np

from posekit.core import Instance
from posekit.skeleton.template import Skeleton

#: Offsets of five keypoints around a person's centre (a 40 x 80 px figure).
POSE = np.array([[0.0, -40.0], [-20.0, -10.0], [20.0, -10.0], [-10.0, 40.0], [10.0, 40.0]])


def template() -> Skeleton:
    return Skeleton.from_dict(
        {
            "name": "five",
            "keypoints": ["head", "left_hand", "right_hand", "left_foot", "right_foot"],
            "edges": [["head", "left_hand"]],
            "flip_pairs": [["left_hand", "right_hand"], ["left_foot", "right_foot"]],
            "sigmas": [0.05] * 5,
        }
    )


def person(x: float, y: float, score: float = 0.9, **changes) -> Instance:
    keypoints = POSE + np.array([x, y])
    box = np.array([x - 20.0, y - 40.0, x + 20.0, y + 40.0])
    inst = Instance(
        keypoints,
        np.full(5, 2),
        keypoint_scores=np.full(5, score),
        box=box,
        score=score,
        source="model:test",
        status="predicted",
    )
    return inst.copy(**changes) if changes else inst
