"""Person boxes given with the images (``posekit predict --boxes``): COCO files and
COCO results lists read into :class:`~posekit.core.Detections` by image name."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from posekit.core import Detections
from posekit.formats.coco import CocoFormatError, load_coco_json
from posekit.formats.coco_schema import element_name, is_int, is_number
from posekit.media.paths import UnsafePathError, safe_relative_name

__all__ = ["load_boxes"]


def _person_category_ids(categories: Any) -> set[int] | None:
    """Ids of person categories (named ``person`` or carrying keypoints), or None if
    the file says nothing about categories."""
    if not isinstance(categories, list) or not categories:
        return None
    ids = {
        c["id"]
        for c in categories
        if isinstance(c, dict) and (c.get("name") == "person" or c.get("keypoints"))
    }
    if not ids and len(categories) == 1 and isinstance(categories[0], dict):
        ids = {categories[0].get("id")}
    return ids


def _image_names(data: Any, source: str) -> dict[int, str]:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CocoFormatError(f"{source}: expected a COCO file with an 'images' list")
    names: dict[int, str] = {}
    for i, img in enumerate(data["images"]):
        if not isinstance(img, dict) or not is_int(img.get("id")):
            raise CocoFormatError(
                f"{source}: {element_name('images', i, img)}: needs an integer 'id'"
            )
        try:
            safe_relative_name(img.get("file_name"))
        except UnsafePathError as exc:
            raise CocoFormatError(
                f"{source}: {element_name('images', i, img)}: 'file_name': {exc}"
            ) from None
        if img["id"] in names:
            raise CocoFormatError(f"{source}: {element_name('images', i, img)}: duplicate image id")
        names[img["id"]] = img["file_name"]
    return names


def load_boxes(
    path: str | os.PathLike[str], images_from: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Person boxes from a COCO file or a COCO results list, by image ``file_name``.

    Args:
        path: Either a COCO file (``images`` + ``annotations`` with ``bbox`` and
            optional ``score``; crowd regions are skipped) or a COCO results list
            (``image_id``, ``bbox``, ``score``, optional ``category_id``).
        images_from: For a results list, the COCO file whose ``images`` name the
            ``image_id`` values (file names are not in results lists).

    Returns:
        ``{file_name: Detections}`` with ``boxes (N, 4) float32`` xyxy and
        ``scores (N,) float32`` (1.0 where the input has none), for every image
        of the COCO file (images without boxes get empty detections). Only person
        boxes are kept (the category named ``person`` or with keypoints).

    Raises:
        CocoFormatError: malformed input, naming the element; a results list
            without ``images_from``.
    """
    path = Path(path)
    data = load_coco_json(path)
    if isinstance(data, list):
        if images_from is None:
            raise CocoFormatError(
                f"{path}: is a COCO results list, which has image ids but no file names; "
                "pass images_from=<the COCO file whose 'images' those ids refer to>"
            )
        names_source = Path(images_from)
        names_data = load_coco_json(names_source)
        names = _image_names(names_data, str(names_source))
        person_ids = _person_category_ids(names_data.get("categories"))
        entries, kind = data, "results"
    elif isinstance(data, dict):
        names = _image_names(data, str(path))
        person_ids = _person_category_ids(data.get("categories"))
        entries = data.get("annotations")
        if not isinstance(entries, list):
            raise CocoFormatError(f"{path}: missing 'annotations' list")
        kind = "annotations"
    else:
        raise CocoFormatError(f"{path}: expected a COCO file or a COCO results list")

    per_image: dict[int, tuple[list[list[float]], list[float]]] = {i: ([], []) for i in names}
    for e, entry in enumerate(entries):
        where = f"{path}: {element_name(kind, e, entry)}"
        if not isinstance(entry, dict):
            raise CocoFormatError(f"{where}: not an object")
        if not is_int(entry.get("image_id")) or entry["image_id"] not in names:
            raise CocoFormatError(
                f"{where}: 'image_id' {entry.get('image_id')!r} is not the id of any image"
                + (f" in {images_from}" if kind == "results" else "")
            )
        category = entry.get("category_id")
        if person_ids is not None and category is not None and category not in person_ids:
            continue
        if entry.get("iscrowd"):
            continue
        bbox = entry.get("bbox")
        if bbox is None and kind == "annotations":
            continue
        if (
            not isinstance(bbox, list)
            or len(bbox) != 4
            or not all(is_number(v) and math.isfinite(v) for v in bbox)
            or bbox[2] < 0
            or bbox[3] < 0
        ):
            raise CocoFormatError(
                f"{where}: 'bbox' {bbox!r} must be 4 finite numbers x, y, width, height "
                "with non-negative size"
            )
        score = entry.get("score", 1.0)
        if not is_number(score) or not math.isfinite(score):
            raise CocoFormatError(f"{where}: 'score' {score!r} must be a finite number")
        x, y, w, h = (float(v) for v in bbox)
        boxes, scores = per_image[entry["image_id"]]
        boxes.append([x, y, x + w, y + h])
        scores.append(float(score))
    return {
        names[image_id]: Detections(np.asarray(boxes, np.float32).reshape(-1, 4), scores)
        for image_id, (boxes, scores) in per_image.items()
    }
