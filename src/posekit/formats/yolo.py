"""Ultralytics YOLO pose datasets: labels as pure ``Instance <-> text`` functions, then
the dataset writer/reader on top.

Layout written by :func:`write_yolo`::

    out_dir/
      data.yaml                  train, val, kpt_shape, flip_idx, names, kpt_names (no
                                 path: relative to the file's folder, loads anywhere)
      images/<split>/<name>      symlinks to (or copies of) the source images
      labels/<split>/<stem>.txt  one line per person:
                                 class cx cy w h x1 y1 v1 ... xK yK vK  (normalised to [0, 1])
      posekit_names.json         exported image name -> original COCO file_name

Nested COCO file names (``a/1.jpg`` and ``b/1.jpg``) are flattened to
``a__1.jpg`` / ``b__1.jpg``; names that still collide (also case-insensitively,
for macOS and Windows file systems) get a ``_2``, ``_3``... suffix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset
from posekit.media.paths import UnsafePathError, safe_relative_path
from posekit.skeleton import Skeleton

__all__ = [
    "YoloFormatError",
    "export_names",
    "instance_to_yolo_line",
    "read_yolo",
    "write_yolo",
    "write_yolo_folder",
    "yolo_line_to_instance",
]

logger = logging.getLogger(__name__)

NAMES_FILE = "posekit_names.json"


class YoloFormatError(ValueError):
    """A YOLO dataset cannot be written or read; the message names the file or image."""


# ------------------------------------------------------------------- labels


def instance_to_yolo_line(
    instance: Instance, width: int, height: int, class_index: int = 0
) -> str | None:
    """One label line ``class cx cy w h x y v ...`` normalised by the image size.

    The box is the instance box, or the tight box around its labeled points.
    Not-labeled points are ``0 0 0``; coordinates are clipped to [0, 1] (YOLO
    rejects labels outside the image). Returns None for an instance without a box
    and without labeled points (nothing to train on).
    """
    box = instance.bbox_or_keypoint_box()
    if box is None:
        return None
    size = np.array([width, height, width, height], dtype=np.float64)
    x1, y1, x2, y2 = np.clip(np.asarray(box, np.float64) / size, 0.0, 1.0)
    values = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]
    xy = np.clip(instance.keypoints.astype(np.float64) / [width, height], 0.0, 1.0)
    labeled = instance.visibility > 0
    if not (np.isfinite(values).all() and np.isfinite(xy[labeled]).all()):
        raise YoloFormatError(
            f"instance {instance.id}: a coordinate or box value is not finite; "
            "YOLO labels would be corrupt"
        )
    xy[~labeled] = 0.0
    parts = [str(class_index)] + [f"{v:.6f}" for v in values]
    for (x, y), v in zip(xy.tolist(), instance.visibility.tolist()):
        parts += [f"{x:.6f}", f"{y:.6f}", str(v)]
    return " ".join(parts)


def yolo_line_to_instance(
    line: str, width: int, height: int, num_keypoints: int, *, where: str = "label"
) -> tuple[int, Instance]:
    """Parse one label line back to ``(class_index, Instance)`` in absolute pixels.

    Accepts ``kpt_shape`` ``[K, 3]`` (with visibility) and ``[K, 2]`` lines (then
    points at exactly ``0 0`` are taken as not labeled, the others as visible).

    Raises:
        YoloFormatError: wrong number of values, non-numbers, bad visibility.
    """
    fields = line.split()
    k = num_keypoints
    if len(fields) not in (5 + 3 * k, 5 + 2 * k):
        raise YoloFormatError(
            f"{where}: {len(fields)} values, expected {5 + 3 * k} (class, box, {k} x y v) "
            f"or {5 + 2 * k}"
        )
    try:
        class_index = int(fields[0])
        numbers = np.asarray([float(f) for f in fields[1:]], dtype=np.float64)
    except ValueError:
        raise YoloFormatError(f"{where}: not all values are numbers: {line.strip()!r}") from None
    if not np.all(np.isfinite(numbers)):
        raise YoloFormatError(f"{where}: non-finite value in {line.strip()!r}")
    cx, cy, w, h = numbers[:4]
    dims = 3 if len(fields) == 5 + 3 * k else 2
    points = numbers[4:].reshape(k, dims)
    if dims == 3:
        vis = points[:, 2]
        if not np.all(np.isin(vis, (0, 1, 2))):
            raise YoloFormatError(f"{where}: visibility must be 0, 1 or 2: {line.strip()!r}")
        visibility = vis.astype(np.uint8)
    else:
        visibility = np.where(np.all(points == 0, axis=1), 0, 2).astype(np.uint8)
    scale = np.array([width, height], dtype=np.float64)
    box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]) * np.tile(scale, 2)
    instance = Instance(points[:, :2] * scale, visibility, box=box)
    return class_index, instance


# ------------------------------------------------------------------ datasets


def export_names(file_names: Sequence[str]) -> list[str]:
    """Flat, unique image names for ``images/<split>/`` (same order as the input).

    ``a/1.jpg`` -> ``a__1.jpg``; a name whose stem is already taken (compared
    case-insensitively; label files are named by stem) gets ``_2``, ``_3``... before
    its suffix.

    Raises:
        YoloFormatError: for an unsafe file name (``..``, absolute path...).
    """
    used: set[str] = set()
    out = []
    for name in file_names:
        try:
            relative = safe_relative_path(name)
        except UnsafePathError as exc:
            raise YoloFormatError(f"image {name!r}: {exc}") from None
        flat = "__".join(part for part in relative.parts if part not in ("", "."))
        candidate = flat
        stem, suffix = PurePosixPath(flat).stem, PurePosixPath(flat).suffix
        n = 2
        # Labels are named by stem, so "x.jpg" and "x.png" collide as well.
        while PurePosixPath(candidate).stem.lower() in used:
            candidate = f"{stem}_{n}{suffix}"
            n += 1
        used.add(PurePosixPath(candidate).stem.lower())
        out.append(candidate)
    return out


def _val_selection(names: Sequence[str], val_fraction: float) -> set[int]:
    """Deterministic validation subset: the images with the smallest CRC of their name
    (stable when images are added, independent of file order)."""
    if val_fraction <= 0 or len(names) < 2:
        return set()
    count = min(len(names) - 1, max(1, round(len(names) * val_fraction)))
    ranked = sorted(range(len(names)), key=lambda i: (zlib.crc32(names[i].encode()), names[i]))
    return set(ranked[:count])


def _place_image(source: Path, target: Path, link: bool) -> None:
    if target.is_symlink() or target.exists():
        target.unlink()
    if link:
        os.symlink(source.resolve(), target)
    else:
        shutil.copy2(source, target)


def write_yolo(
    dataset: PoseDataset,
    image_paths: Mapping[str, Path],
    out_dir: str | os.PathLike[str],
    *,
    split: str = "train",
    link: bool = True,
    val_fraction: float = 0.0,
) -> Path:
    """Write an Ultralytics pose dataset (:func:`write_yolo_folder` with the image
    paths as second argument)."""
    return write_yolo_folder(
        dataset, out_dir, media=image_paths, split=split, link=link, val_fraction=val_fraction
    )


def write_yolo_folder(
    dataset: PoseDataset,
    destination: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
    split: str = "train",
    link: bool = True,
    val_fraction: float = 0.0,
) -> Path:
    """Write an Ultralytics pose dataset (the format table's YOLO writer).

    Args:
        dataset: Images and instances; crowd regions and ``rejected`` instances are
            skipped, instances without a box use the box around their labeled points.
        destination: Output folder (created; files of the same names are replaced).
        media: ``file_name`` -> the image file on disk, for every image (a YOLO
            dataset carries its images).
        split: Name of the split the images go to (``train``).
        link: Symlink the images (default) instead of copying them.
        val_fraction: Fraction of images put in a ``val`` split (deterministic by
            name); 0 writes ``val`` = ``split`` in ``data.yaml``.

    Returns:
        Path of the written ``data.yaml``.

    Raises:
        YoloFormatError: an image has no path in ``media`` or its file is missing.
    """
    image_paths = {} if media is None else media
    if not 0 <= val_fraction < 1:
        raise YoloFormatError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if split == "val" and val_fraction > 0:
        raise YoloFormatError("split 'val' cannot be combined with val_fraction > 0")
    skeleton = dataset.skeleton
    out = Path(destination)
    file_names = [item.image.file_name for item in dataset.images]
    for name in file_names:
        source = image_paths.get(name)
        if source is None:
            raise YoloFormatError(f"image {name!r}: no path given in image_paths")
        if not Path(source).is_file():
            raise YoloFormatError(f"image {name!r}: file {source} does not exist")
    flat_names = export_names(file_names)
    val_set = _val_selection(file_names, val_fraction)
    splits = {split} | ({"val"} if val_set else set())
    for name in splits:
        (out / "images" / name).mkdir(parents=True, exist_ok=True)
        (out / "labels" / name).mkdir(parents=True, exist_ok=True)
    names_map: dict[str, dict[str, str]] = {s: {} for s in sorted(splits)}
    skipped = 0
    for i, item in enumerate(dataset.images):
        record = item.image
        target_split = "val" if i in val_set else split
        flat = flat_names[i]
        _place_image(Path(image_paths[record.file_name]), out / "images" / target_split / flat,
                     link)  # fmt: skip
        lines = []
        for instance in item.instances:
            if instance.iscrowd or instance.status == "rejected":
                continue
            line = instance_to_yolo_line(instance, record.width, record.height)
            if line is None:
                skipped += 1
                continue
            lines.append(line)
        label = out / "labels" / target_split / (PurePosixPath(flat).stem + ".txt")
        label.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        names_map[target_split][flat] = record.file_name
    if skipped:
        logger.info("YOLO export: skipped %d instances without box or labeled points", skipped)
    # No ``path``: Ultralytics then resolves train/val against this file's folder, so
    # the dataset loads as-is wherever it is unzipped (a relative ``path`` would be
    # taken relative to Ultralytics' own datasets folder, an absolute one goes stale).
    config: dict[str, Any] = {
        "train": f"images/{split}",
        "val": "images/val" if val_set else f"images/{split}",
        "kpt_shape": [skeleton.num_keypoints, 3],
        "flip_idx": [int(i) for i in skeleton.flip_index],
        "names": {0: skeleton.category},
        "kpt_names": {0: list(skeleton.keypoints)},
    }
    data_yaml = out / "data.yaml"
    data_yaml.write_text(
        f"# Ultralytics pose dataset written by posekit (template {skeleton.name})\n"
        + yaml.safe_dump(config, sort_keys=False, default_flow_style=None),
        encoding="utf-8",
    )
    (out / NAMES_FILE).write_text(json.dumps(names_map, indent=1, ensure_ascii=False), "utf-8")
    return data_yaml


def read_yolo(
    out_dir: str | os.PathLike[str], skeleton: Skeleton, *, split: str = "train"
) -> list[LabeledImage]:
    """Read one split of a YOLO pose dataset back into images and instances.

    Image sizes are read from the image files; ``file_name`` is the original COCO
    name when ``posekit_names.json`` is present, else the name in ``images/<split>``.

    Raises:
        YoloFormatError: a label line is malformed (naming file and line), the
            keypoint count differs from the template, or an image is missing.
    """
    from posekit.media.image import ImageError, image_size

    root = Path(out_dir)
    image_dir = root / "images" / split
    label_dir = root / "labels" / split
    if not image_dir.is_dir():
        raise YoloFormatError(f"{image_dir}: no such image folder")
    original: dict[str, str] = {}
    names_file = root / NAMES_FILE
    if names_file.is_file():
        original = json.loads(names_file.read_text(encoding="utf-8")).get(split, {})
    items = []
    for image_path in sorted(p for p in image_dir.iterdir() if not p.name.startswith(".")):
        try:
            width, height = image_size(image_path)
        except ImageError as exc:
            raise YoloFormatError(f"{image_path}: {exc}") from None
        label = label_dir / (image_path.stem + ".txt")
        instances = []
        if label.is_file():
            for number, line in enumerate(label.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                _, instance = yolo_line_to_instance(
                    line, width, height, skeleton.num_keypoints, where=f"{label}:{number}"
                )
                instances.append(instance)
        record = ImageRecord(original.get(image_path.name, image_path.name), width, height)
        items.append(LabeledImage(record, instances))
    return items
