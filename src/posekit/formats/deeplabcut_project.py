"""The DeepLabCut project layout: ``config.yaml`` (body parts, skeleton, video
crops) and where tables and frames live under ``labeled-data/<video>/`` (see
:mod:`posekit.formats.deeplabcut` for the mapping)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from posekit.dataset import LabeledImage
from posekit.formats.deeplabcut_tables import DeepLabCutFormatError
from posekit.formats.files import stored_image_size as image_size
from posekit.skeleton import Skeleton, SkeletonError, preset_for_names, uniform_sigma_template

__all__ = [
    "ANY_FOLDER",
    "DEFAULT_SIGMA",
    "STILLS_FOLDER",
    "crop_sizes",
    "dlc_path",
    "find_project",
    "image_size",
    "load_config",
    "template_from_config",
]

#: OKS sigma of templates built from DeepLabCut body parts (DeepLabCut has none).
DEFAULT_SIGMA = 0.07
#: ``labeled-data`` folder of still images (images that are not video frames).
STILLS_FOLDER = "posekit"
#: :func:`crop_sizes` key of the size of every folder (a project with one video).
ANY_FOLDER = "\0any"


def template_from_config(
    config: Mapping[str, Any] | None, table_parts: list[str], source: str
) -> Skeleton:
    multi = bool(config and config.get("multianimalproject"))
    names = None
    if config:
        names = config.get("multianimalbodyparts") if multi else config.get("bodyparts")
    if not isinstance(names, list) or not names or names == "MULTI!":
        names = list(dict.fromkeys(table_parts))
    names = [str(n) for n in names]
    preset = preset_for_names(names)
    if preset is not None:
        return preset
    edges = (config or {}).get("skeleton") or []
    position = {n: i for i, n in enumerate(names)}
    pairs = []
    for e, edge in enumerate(edges):
        if not isinstance(edge, list) or len(edge) != 2 or not all(p in position for p in edge):
            raise DeepLabCutFormatError(
                f"{source}: config.yaml skeleton entry #{e} {edge!r} is not a pair of body parts"
            )
        pairs.append((position[edge[0]], position[edge[1]]))
    task = str((config or {}).get("Task") or "deeplabcut")
    try:
        return uniform_sigma_template(
            task, names, pairs, sigma=DEFAULT_SIGMA, why="DeepLabCut projects carry no OKS sigmas"
        )
    except SkeletonError as exc:
        raise DeepLabCutFormatError(f"{source}: {exc}") from None


def crop_sizes(config: Mapping[str, Any] | None) -> dict[str, tuple[int, int]]:
    sizes: dict[str, tuple[int, int]] = {}
    video_sets = (config or {}).get("video_sets") or {}
    if not isinstance(video_sets, dict):
        return sizes
    for video, entry in video_sets.items():
        crop = entry.get("crop") if isinstance(entry, dict) else None
        try:
            x1, x2, y1, y2 = (int(float(v)) for v in str(crop).split(","))
        except (TypeError, ValueError):
            continue
        if x2 > x1 and y2 > y1:
            sizes[PurePosixPath(str(video).replace("\\", "/")).stem] = (x2 - x1, y2 - y1)
    if len(video_sets) == 1 and len(sizes) == 1:
        # one video: its crop is the frame size of every labeled-data folder
        sizes[ANY_FOLDER] = next(iter(sizes.values()))
    return sizes


def dlc_path(item: LabeledImage) -> str:
    record = item.image
    parts = PurePosixPath(record.file_name).parts
    if len(parts) == 3 and parts[0] == "labeled-data":
        return record.file_name
    if record.video is not None:
        return f"labeled-data/{record.video}/img{int(record.frame_index or 0):04d}.png"
    return f"labeled-data/{STILLS_FOLDER}/{record.file_name.replace('/', '__')}"


def load_config(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise DeepLabCutFormatError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise DeepLabCutFormatError(f"{path}: expected a mapping")
    return config


def find_project(path: Path) -> tuple[Path | None, list[Path]]:
    """``(project root or None, table files)`` for a project folder, a
    ``labeled-data/<video>`` folder or a table file."""
    if path.is_dir() and (path / "config.yaml").is_file():
        folders = sorted(p for p in (path / "labeled-data").glob("*") if p.is_dir())
        return path, [t for f in folders if (t := _table_in(f)) is not None]
    if path.is_dir():
        table = _table_in(path)
        if table is None:
            raise DeepLabCutFormatError(f"{path}: no config.yaml and no CollectedData_*.csv/.h5")
        root = path.parent.parent if path.parent.name == "labeled-data" else None
        return root, [table]
    root = path.parent.parent.parent if path.parent.parent.name == "labeled-data" else None
    return root, [path]


def _table_in(folder: Path) -> Path | None:
    csvs = sorted(folder.glob("CollectedData_*.csv"))
    if csvs:
        return csvs[0]
    h5s = sorted(folder.glob("CollectedData_*.h5"))
    return h5s[0] if h5s else None
