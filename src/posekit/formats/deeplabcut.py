"""DeepLabCut projects: ``config.yaml`` and ``labeled-data/<video>/CollectedData_<scorer>``.

A DeepLabCut labeled-data table has three header rows (``scorer``, ``bodyparts``,
``coords``), four in multi-animal projects (``individuals`` after ``scorer``), then
one row per frame: its path (one column ``labeled-data/<video>/img0012.png``, or
three columns ``labeled-data``, ``<video>``, ``img0012.png`` in DLC >= 2.2) and ``x``,
``y`` per body part (and individual). An empty cell or ``NaN`` is "not labeled".
The CSV needs only the :mod:`csv` module; the ``.h5`` twin (a pandas table) needs
pandas and PyTables, imported only when an ``.h5`` is read or written.

Mapping:
    * template: ``config.yaml`` ``bodyparts`` (``multianimalbodyparts`` in multi-animal
      projects) and ``skeleton`` edges -> the shipped preset with exactly these
      names, else a template with a uniform OKS sigma of 0.07 (DeepLabCut has none)
      and left/right flip pairs inferred from the names. Without a config, the
      table's body parts. With a template, body parts are matched by name; one it
      lacks is an error.
    * each ``labeled-data/<video>`` folder is a :class:`~posekit.dataset.VideoRecord`
      (``name``: the folder) and each row a frame of it (``frame_index``: the number
      in ``img0012.png``, else the row's position); ``file_name`` is the row's path
      relative to the project folder.
    * frame size: read from the frame's image when present (only the header),
      else that of another present frame of the same folder, else the video's
      crop in ``config.yaml`` ``video_sets`` (``crop: 0, 640, 0, 480``; the key's file
      stem names the folder, and a project with one video uses its crop for all), else
      ``image_sizes``, else 0 x 0 (unknown, logged). Frames without their image
      are imported like the others.
    * single animal: one instance per row with a labeled point; multi-animal: one
      instance per individual with a labeled point, ``track_id`` = the individual's
      position in the project's ``individuals`` and a
      :class:`~posekit.dataset.TrackRecord` per (folder, individual) whose ``label``
      is the individual's name (None for ``individual<id>``) and whose keyframes
      are the frames where it is labeled.

Not carried (DeepLabCut labels have no such thing): occlusion (occluded points
are written as labeled and read back visible), scores and review status (every
written instance reads back ``accepted``/``manual``), boxes, still images outside
``labeled-data/<video>/`` (written as ``labeled-data/posekit/<name>`` with ``/``
replaced by ``__``). Unique body parts (the ``single`` individual) are refused.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from posekit.core import Instance, InstanceError
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.numbers import shortest_decimals
from posekit.media.paths import UnsafePathError, safe_relative_name, safe_relative_path
from posekit.skeleton import (
    Skeleton,
    SkeletonError,
    names_mapping,
    preset_for_names,
    skeleton_from_category,
)

__all__ = [
    "DEFAULT_SIGMA",
    "DeepLabCutFormatError",
    "LabelTable",
    "format_collected_csv",
    "from_deeplabcut",
    "parse_collected_csv",
    "read_deeplabcut",
    "to_deeplabcut",
    "write_deeplabcut",
]

log = logging.getLogger(__name__)

#: OKS sigma of templates built from DeepLabCut body parts (DeepLabCut has none).
DEFAULT_SIGMA = 0.07
STILLS_FOLDER = "posekit"
_FRAME_RE = re.compile(r"(\d+)$")
_DEFAULT_INDIVIDUAL = re.compile(r"individual(\d+)")
_MAX_PADDED_INDIVIDUALS = 1000
_ANY_FOLDER = "\0any"


class DeepLabCutFormatError(ValueError):
    """A DeepLabCut project or table is malformed; the message names the file, row and column."""


@dataclass
class LabelTable:
    """One ``CollectedData`` table.

    Attributes:
        scorer: The ``scorer`` header value.
        bodyparts: ``(C,)`` body part of each value column.
        coords: ``(C,)`` ``"x"`` or ``"y"`` of each value column.
        individuals: ``(C,)`` individual of each value column (multi-animal), or None.
        index: ``(N,)`` frame path of each row (``labeled-data/<video>/<file>``).
        values: ``(N, C) float64``, NaN where not labeled.
    """

    scorer: str
    bodyparts: list[str]
    coords: list[str]
    individuals: list[str] | None
    index: list[str]
    values: np.ndarray


# ------------------------------------------------------------------ tables


def parse_collected_csv(text: str, *, source: str = "CollectedData CSV") -> LabelTable:
    """Parse a ``CollectedData_<scorer>.csv`` (either index layout).

    Raises:
        DeepLabCutFormatError: naming the row and column of the first bad cell.
    """
    rows = list(csv.reader(io.StringIO(text)))
    header: dict[str, list[str]] = {}
    r = 0
    while (
        r < len(rows) and rows[r] and rows[r][0] in ("scorer", "individuals", "bodyparts", "coords")
    ):
        header[rows[r][0]] = rows[r]
        r += 1
        if "coords" in header:
            break
    for key in ("scorer", "bodyparts", "coords"):
        if key not in header:
            raise DeepLabCutFormatError(
                f"{source}: missing the {key!r} header row (expected scorer, [individuals,] "
                "bodyparts, coords)"
            )
    scorer_row = header["scorer"]
    start = next((j for j in range(1, len(scorer_row)) if scorer_row[j] != ""), None)
    if start is None:
        raise DeepLabCutFormatError(f"{source}: the scorer row names no scorer")
    width = len(scorer_row)
    for key, row in header.items():
        if len(row) != width:
            raise DeepLabCutFormatError(
                f"{source}: header row {key!r} has {len(row)} cells, the scorer row {width}"
            )
    coords = header["coords"][start:]
    for j, c in enumerate(coords):
        if c not in ("x", "y"):
            raise DeepLabCutFormatError(
                f"{source}: coords row, column {start + j + 1}: {c!r} (expected x or y; "
                "a CollectedData table has no likelihood)"
            )
    table = LabelTable(
        scorer=scorer_row[start],
        bodyparts=header["bodyparts"][start:],
        coords=coords,
        individuals=header["individuals"][start:] if "individuals" in header else None,
        index=[],
        values=np.zeros((0, width - start)),
    )
    values: list[list[float]] = []
    for line, row in enumerate(rows[r:], start=r + 1):
        if not row or all(cell == "" for cell in row):
            continue
        if len(row) != width:
            raise DeepLabCutFormatError(
                f"{source}: row {line} has {len(row)} cells, expected {width}"
            )
        path = "/".join(cell for cell in row[:start] if cell != "")
        numbers = []
        for j, cell in enumerate(row[start:]):
            if cell == "" or cell.lower() == "nan":
                numbers.append(math.nan)
                continue
            try:
                value = float(cell)
            except ValueError:
                value = math.inf
            if not math.isfinite(value):
                raise DeepLabCutFormatError(
                    f"{source}: row {line} ({path!r}), column {start + j + 1} "
                    f"({table.bodyparts[j]} {coords[j]}): {cell!r} is not a number"
                )
            numbers.append(value)
        table.index.append(path)
        values.append(numbers)
    table.values = np.array(values, dtype=np.float64).reshape(len(values), width - start)
    return table


def format_collected_csv(table: LabelTable) -> str:
    """The table as DeepLabCut >= 2.2 writes it (three index columns)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    pad = ["", ""]
    writer.writerow(["scorer", *pad, *[table.scorer] * len(table.coords)])
    if table.individuals is not None:
        writer.writerow(["individuals", *pad, *table.individuals])
    writer.writerow(["bodyparts", *pad, *table.bodyparts])
    writer.writerow(["coords", *pad, *table.coords])
    text = shortest_decimals(table.values.astype(np.float32)).tolist() if table.index else []
    for path, row, exact in zip(table.index, text, table.values.tolist()):
        parts = path.split("/", 2)
        cells = ["" if math.isnan(e) else repr(v) for v, e in zip(row, exact)]
        writer.writerow([*parts, *cells])
    return out.getvalue()


def _read_h5(path: Path) -> LabelTable:
    try:
        import pandas as pd
    except ImportError:
        raise DeepLabCutFormatError(
            f"{path}: reading DeepLabCut .h5 tables needs pandas and tables "
            "(pip install pandas tables), or read the CollectedData .csv"
        ) from None
    try:
        frame = pd.read_hdf(path)
    except Exception as exc:  # pandas/PyTables raise many kinds on damaged files
        raise DeepLabCutFormatError(f"{path}: cannot read the HDF5 table: {exc}") from None
    names = list(frame.columns.names)
    if names[0] != "scorer" or names[-2:] != ["bodyparts", "coords"]:
        raise DeepLabCutFormatError(
            f"{path}: columns are {names}, expected scorer, [individuals,] bodyparts, coords"
        )
    columns = list(frame.columns)
    index = [
        "/".join(str(p) for p in (key if isinstance(key, tuple) else (key,))) for key in frame.index
    ]
    return LabelTable(
        scorer=str(columns[0][0]) if columns else "",
        bodyparts=[str(c[-2]) for c in columns],
        coords=[str(c[-1]) for c in columns],
        individuals=[str(c[1]) for c in columns] if len(names) == 4 else None,
        index=index,
        values=frame.to_numpy(dtype=np.float64, na_value=np.nan),
    )


def _h5_bytes_writer() -> Any:
    try:
        import pandas as pd
        import tables  # noqa: F401  (pandas needs it for to_hdf)
    except ImportError:
        return None
    return pd


def _write_h5(pd: Any, table: LabelTable, path: Path) -> None:
    levels = ["scorer", "individuals", "bodyparts", "coords"]
    if table.individuals is None:
        levels.remove("individuals")
        tuples = [(table.scorer, b, c) for b, c in zip(table.bodyparts, table.coords)]
    else:
        tuples = [
            (table.scorer, i, b, c)
            for i, b, c in zip(table.individuals, table.bodyparts, table.coords)
        ]
    columns = pd.MultiIndex.from_tuples(tuples, names=levels)
    index = pd.MultiIndex.from_tuples([tuple(p.split("/", 2)) for p in table.index])
    frame = pd.DataFrame(table.values.astype(np.float64), columns=columns, index=index)
    frame.to_hdf(path, key="df_with_missing", mode="w")


# ------------------------------------------------------------------ import


def _template(config: Mapping[str, Any] | None, table_parts: list[str], source: str) -> Skeleton:
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
        pairs.append([position[edge[0]] + 1, position[edge[1]] + 1])
    task = str((config or {}).get("Task") or "deeplabcut")
    try:
        return skeleton_from_category(
            {"name": task, "keypoints": names, "skeleton": pairs},
            [DEFAULT_SIGMA] * len(names),
            sigmas_source=f"uniform {DEFAULT_SIGMA}: DeepLabCut projects carry no OKS sigmas",
        )
    except SkeletonError as exc:
        raise DeepLabCutFormatError(f"{source}: {exc}") from None


def _crop_sizes(config: Mapping[str, Any] | None) -> dict[str, tuple[int, int]]:
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
        sizes[_ANY_FOLDER] = next(iter(sizes.values()))
    return sizes


def from_deeplabcut(
    tables: Sequence[LabelTable],
    config: Mapping[str, Any] | None = None,
    skeleton: Skeleton | None = None,
    *,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
    source: str = "DeepLabCut project",
) -> PoseDataset:
    """DeepLabCut tables (one per ``labeled-data`` folder) and the project config as
    a :class:`PoseDataset` (see the module docstring).

    Args:
        tables: The ``CollectedData`` tables.
        config: The parsed ``config.yaml``, or None.
        skeleton: The project template, or None (from the config / the tables).
        image_sizes: ``(width, height)`` by frame path (``labeled-data/v/img0.png``)
            or by folder name (``v``); the file reader fills it from the images present.
        source: What to call the input in error messages.

    Raises:
        DeepLabCutFormatError: naming the file, row and body part.
    """
    all_parts = [b for t in tables for b in t.bodyparts]
    if skeleton is None:
        skeleton = _template(config, all_parts, source)
    k = skeleton.num_keypoints
    sizes = {**_crop_sizes(config), **dict(image_sizes or {})}
    individuals_order = list((config or {}).get("individuals") or [])
    images: list[LabeledImage] = []
    videos: dict[str, VideoRecord] = {}
    tracks: dict[tuple[str, int], TrackRecord] = {}
    seen: set[str] = set()
    for table in tables:
        where = f"{source}: table of scorer {table.scorer!r}"
        individuals = table.individuals or [""] * len(table.bodyparts)
        if "single" in individuals:
            raise DeepLabCutFormatError(
                f"{where}: unique body parts (individual 'single') are not supported; "
                "posekit reads one keypoint template per dataset"
            )
        names = list(dict.fromkeys(individuals))
        if table.individuals is not None:
            order = [n for n in individuals_order if n in names]
            names = order + [n for n in names if n not in order]
        columns: dict[tuple[str, int], int] = {}
        for j, (individual, part, coord) in enumerate(
            zip(individuals, table.bodyparts, table.coords)
        ):
            found = np.flatnonzero(names_mapping([part], skeleton) == 0)
            if not found.size:
                raise DeepLabCutFormatError(
                    f"{where}: body part {part!r} (column {j + 1}) is not in template "
                    f"{skeleton.name!r}"
                )
            key = (individual, int(found[0]) * 2 + (coord == "y"))
            if key in columns:
                raise DeepLabCutFormatError(
                    f"{where}: column {j + 1} repeats {individual + ' ' if individual else ''}"
                    f"{part} {coord}"
                )
            columns[key] = j
        by_individual = []
        for n, individual in enumerate(names):
            cols = np.full(2 * k, -1, dtype=np.int64)
            for (ind, slot), j in columns.items():
                if ind == individual:
                    cols[slot] = j
            by_individual.append((n, individual, cols.reshape(k, 2)))
        for r, path in enumerate(table.index):
            row_where = f"{where}: row {r + 1} ({path!r})"
            try:
                path = safe_relative_name(path)
            except UnsafePathError as exc:
                raise DeepLabCutFormatError(f"{row_where}: {exc}") from None
            if path in seen:
                raise DeepLabCutFormatError(f"{row_where}: this frame is listed twice")
            seen.add(path)
            parts = PurePosixPath(path).parts
            folder = parts[-2] if len(parts) >= 2 else STILLS_FOLDER
            match = _FRAME_RE.search(PurePosixPath(path).stem)
            frame = int(match.group(1)) if match else r
            size = sizes.get(path) or sizes.get(folder) or sizes.get(_ANY_FOLDER) or (0, 0)
            video = videos.get(folder)
            if video is None:
                video = videos[folder] = VideoRecord(folder, int(size[0]), int(size[1]))
                if size == (0, 0):
                    log.warning("%s: frame size of %r unknown (recorded as 0x0)", source, folder)
            record = ImageRecord(path, int(size[0]), int(size[1]), video=folder, frame_index=frame)
            values = table.values[r]
            instances = []
            for n, individual, cols in by_individual:
                xy = np.where(cols >= 0, values[np.maximum(cols, 0)], np.nan)
                x_nan, y_nan = np.isnan(xy[:, 0]), np.isnan(xy[:, 1])
                half = np.flatnonzero(x_nan != y_nan)
                if half.size:
                    raise DeepLabCutFormatError(
                        f"{row_where}: {skeleton.keypoints[int(half[0])]!r} has only one of x, y"
                    )
                labeled = ~x_nan
                if not labeled.any():
                    continue
                track_id = None
                if table.individuals is not None:
                    track_id = n
                    track = tracks.get((folder, n))
                    if track is None:
                        default = _DEFAULT_INDIVIDUAL.fullmatch(individual)
                        track = tracks[folder, n] = TrackRecord(
                            folder,
                            n,
                            label=None if default and int(default.group(1)) == n else individual,
                        )
                    track.keyframes.add(frame)
                try:
                    instances.append(
                        Instance(
                            np.where(labeled[:, None], xy, 0.0).astype(np.float32),
                            np.where(labeled, 2, 0).astype(np.uint8),
                            track_id=track_id,
                        )
                    )
                except InstanceError as exc:
                    raise DeepLabCutFormatError(f"{row_where}: {exc}") from None
            images.append(LabeledImage(record, instances))
    for video in videos.values():
        indices = [i.image.frame_index for i in images if i.image.video == video.name]
        if len(set(indices)) != len(indices):
            raise DeepLabCutFormatError(
                f"{source}: two frames of labeled-data/{video.name} have the same number"
            )
    return PoseDataset(
        skeleton=skeleton,
        images=images,
        videos=list(videos.values()),
        tracks=sorted(tracks.values(), key=lambda t: (t.video, t.track_id)),
    )


# ------------------------------------------------------------------ export


def _dlc_path(item: LabeledImage) -> str:
    record = item.image
    parts = PurePosixPath(record.file_name).parts
    if len(parts) == 3 and parts[0] == "labeled-data":
        return record.file_name
    if record.video is not None:
        return f"labeled-data/{record.video}/img{int(record.frame_index or 0):04d}.png"
    return f"labeled-data/{STILLS_FOLDER}/{record.file_name.replace('/', '__')}"


def to_deeplabcut(
    dataset: PoseDataset, *, scorer: str = "posekit", task: str | None = None
) -> tuple[dict[str, Any], dict[str, LabelTable]]:
    """The dataset as a DeepLabCut ``config.yaml`` dict and one table per
    ``labeled-data`` folder (keyed by folder name).

    The project is multi-animal when an image has more than one instance or an
    instance has a ``track_id``; individuals are named by their tracks' labels or
    ``individual<id>`` (ids are positions in ``individuals``).

    Raises:
        DeepLabCutFormatError: a path that is not safe, or two frames on one path.
    """
    template = dataset.skeleton
    k = template.num_keypoints
    multi = any(len(i.instances) > 1 for i in dataset.images) or any(
        inst.track_id is not None for i in dataset.images for inst in i.instances
    )
    rows: dict[str, list[tuple[str, LabeledImage]]] = {}
    seen: set[str] = set()
    for item in dataset.images:
        path = _dlc_path(item)
        try:
            safe_relative_path(path)
        except UnsafePathError as exc:
            raise DeepLabCutFormatError(f"image {item.image.file_name!r}: {exc}") from None
        if path in seen:
            raise DeepLabCutFormatError(f"image {item.image.file_name!r}: {path!r} is used twice")
        seen.add(path)
        rows.setdefault(PurePosixPath(path).parts[1], []).append((path, item))
    labels = {t.track_id: t.label for t in dataset.tracks if t.label}
    individuals: list[str] = []
    if multi:
        used = {
            inst.track_id
            for item in dataset.images
            for inst in item.instances
            if inst.track_id is not None
        }
        most = max((len(i.instances) for i in dataset.images), default=1)
        top = max(used, default=-1)
        if top >= _MAX_PADDED_INDIVIDUALS:
            raise DeepLabCutFormatError(
                f"track id {top}: DeepLabCut individuals are positions in a list; "
                f"renumber tracks below {_MAX_PADDED_INDIVIDUALS}"
            )
        count = max(top + 1, most)
        individuals = [labels.get(i) or f"individual{i}" for i in range(count)]
    tables: dict[str, LabelTable] = {}
    for folder, entries in rows.items():
        if multi:
            cols_ind = [ind for ind in individuals for _ in range(2 * k)]
            parts = [p for _ in individuals for p in template.keypoints for _ in (0, 1)]
            coords = ["x", "y"] * k * len(individuals)
        else:
            cols_ind = None
            parts = [p for p in template.keypoints for _ in (0, 1)]
            coords = ["x", "y"] * k
        values = np.full((len(entries), len(coords)), np.nan)
        for r, (path, item) in enumerate(entries):
            if not multi and len(item.instances) > 1:
                raise DeepLabCutFormatError(f"{path}: {len(item.instances)} instances")
            free = [i for i in range(len(individuals) or 1)]
            taken = {inst.track_id for inst in item.instances if inst.track_id is not None}
            free = [i for i in free if i not in taken]
            for inst in item.instances:
                if inst.num_keypoints != k:
                    raise DeepLabCutFormatError(
                        f"{path}: an instance has {inst.num_keypoints} keypoints, template "
                        f"{template.name!r} has {k}"
                    )
                slot = inst.track_id if inst.track_id is not None else free.pop(0)
                xy = np.where(inst.visibility[:, None] > 0, inst.keypoints, np.nan)
                values[r, slot * 2 * k : (slot + 1) * 2 * k] = xy.reshape(-1)
        tables[folder] = LabelTable(
            scorer, parts, coords, cols_ind, [p for p, _ in entries], values
        )
    config: dict[str, Any] = {
        "Task": task or template.name,
        "scorer": scorer,
        "date": "",
        "multianimalproject": multi,
        "identity": None,
        "project_path": "",
        # DeepLabCut finds labeled-data/<stem> through these keys; the crop is the frame size
        "video_sets": {
            f"videos/{video.name}.mp4": {"crop": f"0, {video.width}, 0, {video.height}"}
            for video in dataset.videos
            if video.name in tables and video.width > 0 and video.height > 0
        },
    }
    if multi:
        config.update(
            individuals=individuals,
            uniquebodyparts=[],
            multianimalbodyparts=list(template.keypoints),
            bodyparts="MULTI!",
        )
    else:
        config["bodyparts"] = list(template.keypoints)
    config.update(
        start=0,
        stop=1,
        numframes2pick=20,
        skeleton=[list(edge) for edge in template.edges],
        skeleton_color="black",
        pcutoff=0.6,
        dotsize=8,
        alphavalue=0.7,
        colormap="rainbow",
        TrainingFraction=[0.95],
        iteration=0,
        default_net_type="resnet_50",
        default_augmenter="default",
        snapshotindex=-1,
        batch_size=8,
    )
    return config, tables


# ------------------------------------------------------------------ files


def _image_size(path: Path) -> tuple[int, int] | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        return None


def _load_config(path: Path) -> dict[str, Any]:
    try:
        config = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise DeepLabCutFormatError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise DeepLabCutFormatError(f"{path}: expected a mapping")
    return config


def _find_project(path: Path) -> tuple[Path | None, list[Path]]:
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


def read_deeplabcut(
    path: str | os.PathLike[str],
    skeleton: Skeleton | None = None,
    *,
    image_sizes: Mapping[str, tuple[int, int]] | None = None,
) -> PoseDataset:
    """Read a DeepLabCut project folder (``config.yaml`` + ``labeled-data``), one
    ``labeled-data/<video>`` folder, or one ``CollectedData_*.csv`` / ``.h5`` file.

    The CSV is read when a folder has both; frame paths are relative to the
    project folder.

    Raises:
        DeepLabCutFormatError: naming the file, row and column.
    """
    path = Path(path)
    root, table_files = _find_project(path)
    config = None
    if root is not None and (root / "config.yaml").is_file():
        config = _load_config(root / "config.yaml")
    tables = []
    for table_file in table_files:
        if table_file.suffix.lower() == ".h5":
            tables.append(_read_h5(table_file))
            continue
        try:
            text = table_file.read_text("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DeepLabCutFormatError(f"{table_file}: not UTF-8 text: {exc}") from None
        tables.append(parse_collected_csv(text, source=str(table_file)))
    sizes: dict[str, tuple[int, int]] = {}
    base = root if root is not None else None
    for table, table_file in zip(tables, table_files):
        for frame_path in table.index:
            try:
                relative = safe_relative_path(frame_path)
            except UnsafePathError:
                continue  # from_deeplabcut names it
            candidate = (base / relative) if base is not None else table_file.parent / relative.name
            size = _image_size(candidate)
            if size is not None:
                sizes[frame_path] = size
                folder = relative.parts[-2] if len(relative.parts) >= 2 else STILLS_FOLDER
                sizes.setdefault(folder, size)
    sizes.update(image_sizes or {})
    return from_deeplabcut(tables, config, skeleton, image_sizes=sizes, source=str(path))


def _atomic_write(path: Path, payload: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_deeplabcut(
    dataset: PoseDataset,
    folder: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
    scorer: str = "posekit",
    h5: bool = True,
) -> Path:
    """Write the dataset as a DeepLabCut project folder: ``config.yaml``,
    ``labeled-data/<video>/CollectedData_<scorer>.csv`` and (``h5=True`` and pandas
    with PyTables installed) the ``.h5`` twin; images from ``media`` (file name ->
    path) are copied into place. Everything is built before the first file is
    written; each file is written atomically. Returns ``config.yaml``.
    """
    folder = Path(folder)
    config, tables = to_deeplabcut(dataset, scorer=scorer)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", scorer):
        raise DeepLabCutFormatError(f"scorer {scorer!r}: use letters, digits, '_', '-', '.'")
    csv_text = {name: format_collected_csv(table) for name, table in tables.items()}
    pd = _h5_bytes_writer() if h5 else None
    if h5 and pd is None:
        log.info("pandas/tables not installed: writing the CollectedData CSV only")
    copies = []
    for item in dataset.images:
        source = (media or {}).get(item.image.file_name)
        if source is not None:
            copies.append((Path(source), folder / safe_relative_path(_dlc_path(item))))
    folder.mkdir(parents=True, exist_ok=True)
    config["project_path"] = str(folder.resolve())
    _atomic_write(folder / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
    for name, table in tables.items():
        target = folder / "labeled-data" / name
        target.mkdir(parents=True, exist_ok=True)
        _atomic_write(target / f"CollectedData_{scorer}.csv", csv_text[name].encode("utf-8"))
        if pd is not None:
            tmp = target / f".CollectedData_{scorer}.h5.tmp"
            try:
                _write_h5(pd, table, tmp)
                os.replace(tmp, target / f"CollectedData_{scorer}.h5")
            finally:
                tmp.unlink(missing_ok=True)
    for source, destination in copies:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != destination.resolve():
            shutil.copyfile(source, destination)
    return folder / "config.yaml"
