"""Dataset formats: one module per format, pure dict <-> core-type functions first.

- :mod:`posekit.formats.coco`: COCO keypoints files, COCO results lists, box files.
- :mod:`posekit.formats.yolo`: Ultralytics YOLO pose datasets.
"""

from posekit.formats.coco import (
    CocoDataset,
    CocoFormatError,
    ImageRecord,
    LabeledImage,
    from_coco,
    load_boxes,
    read_coco,
    safe_relative_path,
    skeleton_from_category,
    to_coco,
    to_coco_results,
    write_coco,
)
from posekit.formats.yolo import YoloFormatError, read_yolo, write_yolo

__all__ = [
    "CocoDataset",
    "CocoFormatError",
    "ImageRecord",
    "LabeledImage",
    "YoloFormatError",
    "from_coco",
    "load_boxes",
    "read_coco",
    "read_yolo",
    "safe_relative_path",
    "skeleton_from_category",
    "to_coco",
    "to_coco_results",
    "write_coco",
    "write_yolo",
]
