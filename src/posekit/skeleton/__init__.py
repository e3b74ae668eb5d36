"""Skeleton templates, presets and name-based mapping between templates."""

from posekit.skeleton.mapping import keypoint_mapping, names_mapping
from posekit.skeleton.presets import get_preset, list_presets, load_template
from posekit.skeleton.template import Skeleton, SkeletonError, side_of

__all__ = [
    "Skeleton",
    "SkeletonError",
    "get_preset",
    "keypoint_mapping",
    "list_presets",
    "load_template",
    "names_mapping",
    "side_of",
]
