"""posekit: 2D human pose annotation and auto-labeling.

Importing ``posekit`` is cheap: it loads the skeleton and core types only.
Models, the store, formats and evaluation live in their sub-packages.
"""

from posekit.core import NOT_LABELED, OCCLUDED, VISIBLE, Instance, InstanceError
from posekit.skeleton import Skeleton, SkeletonError, get_preset, list_presets, load_template

__version__ = "0.1.0"

__all__ = [
    "NOT_LABELED",
    "OCCLUDED",
    "VISIBLE",
    "Instance",
    "InstanceError",
    "Skeleton",
    "SkeletonError",
    "__version__",
    "get_preset",
    "list_presets",
    "load_template",
]
