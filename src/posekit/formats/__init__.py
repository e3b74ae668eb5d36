"""Dataset formats: one module per format, pure dict <-> core-type functions first,
all listed in one format table (:mod:`posekit.formats.registry`).

- :mod:`posekit.formats.coco`: COCO keypoints files and COCO results lists.
- :mod:`posekit.formats.yolo`: Ultralytics YOLO pose datasets.

The dataset types they read and write are in :mod:`posekit.dataset`.
"""

from posekit.formats.coco import (
    CocoFormatError,
    from_coco,
    read_coco,
    to_coco,
    to_coco_results,
    write_coco,
)
from posekit.formats.registry import (
    FORMATS,
    FormatCapabilities,
    FormatSpec,
    UnknownFormatError,
    get_format,
    readable_formats,
    writable_formats,
)
from posekit.formats.yolo import YoloFormatError, read_yolo, write_yolo

__all__ = [
    "FORMATS",
    "CocoFormatError",
    "FormatCapabilities",
    "FormatSpec",
    "UnknownFormatError",
    "YoloFormatError",
    "from_coco",
    "get_format",
    "read_coco",
    "read_yolo",
    "readable_formats",
    "to_coco",
    "to_coco_results",
    "writable_formats",
    "write_coco",
    "write_yolo",
]
