"""Skeleton templates, presets, name-based mapping between templates, and finding
the template of a keypoint layout by its names."""

from posekit.skeleton.derived import DerivedKeypoint
from posekit.skeleton.inference import (
    preset_for_names,
    skeleton_from_category,
    template_for_names,
    uniform_sigma_template,
)
from posekit.skeleton.mapping import (
    add_derived_points,
    derived_mapping,
    keypoint_mapping,
    names_mapping,
    normalize_keypoint_name,
)
from posekit.skeleton.presets import get_preset, list_presets, load_template
from posekit.skeleton.template import Skeleton, SkeletonError, side_of

__all__ = [
    "DerivedKeypoint",
    "Skeleton",
    "SkeletonError",
    "add_derived_points",
    "derived_mapping",
    "get_preset",
    "keypoint_mapping",
    "list_presets",
    "load_template",
    "names_mapping",
    "normalize_keypoint_name",
    "preset_for_names",
    "side_of",
    "skeleton_from_category",
    "template_for_names",
    "uniform_sigma_template",
]
