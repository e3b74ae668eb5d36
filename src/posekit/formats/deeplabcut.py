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

import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import yaml

from posekit.core import Instance
from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.deeplabcut_project import (
    ANY_FOLDER,
    DEFAULT_SIGMA,
    STILLS_FOLDER,
    crop_sizes,
    dlc_path,
    find_project,
    image_size,
    load_config,
    template_from_config,
)
from posekit.formats.deeplabcut_tables import (
    DeepLabCutFormatError,
    LabelTable,
    format_collected_csv,
    h5_writer,
    parse_collected_csv,
    read_h5,
    write_h5,
)
from posekit.formats.files import atomic_path, atomic_write_bytes, atomic_write_text
from posekit.gc_pause import gc_paused
from posekit.media.paths import UnsafePathError, safe_relative_name, safe_relative_path
from posekit.skeleton import Skeleton, names_mapping

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

_FRAME_RE = re.compile(r"(\d+)$")
_DEFAULT_INDIVIDUAL = re.compile(r"individual(\d+)")
_MAX_PADDED_INDIVIDUALS = 1000


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
        skeleton = template_from_config(config, all_parts, source)
    k = skeleton.num_keypoints
    sizes = {**crop_sizes(config), **dict(image_sizes or {})}
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
        # Every row and individual at once (the same values and checks as row by row)
        count = len(table.index)
        all_xy = np.empty((count, len(by_individual), k, 2), np.float64)
        for n, _, cols in by_individual:
            all_xy[:, n] = np.where(cols >= 0, table.values[:, np.maximum(cols, 0)], np.nan)
        x_nan, y_nan = np.isnan(all_xy[..., 0]), np.isnan(all_xy[..., 1])
        half = x_nan != y_nan  # (rows, individuals, keypoints)
        labeled = ~x_nan
        present = labeled.any(axis=2)
        all_keypoints = np.where(labeled[..., None], all_xy, 0.0).astype(np.float32)
        out_of_range = present & ~np.isfinite(all_keypoints).all(axis=(2, 3))
        all_visibility = np.where(labeled, 2, 0).astype(np.uint8)
        bad_rows = set(np.flatnonzero(half.any(axis=(1, 2)) | out_of_range.any(axis=1)).tolist())
        present_rows = present.tolist()
        for r, path in enumerate(table.index):
            row_where = f"{where}: row {r + 1} ({path!r})"
            try:
                path = safe_relative_name(path)
            except UnsafePathError as exc:
                raise DeepLabCutFormatError(f"{row_where}: {exc}") from None
            if path in seen:
                raise DeepLabCutFormatError(f"{row_where}: this frame is listed twice")
            seen.add(path)
            pure = PurePosixPath(path)
            parts = pure.parts
            folder = parts[-2] if len(parts) >= 2 else STILLS_FOLDER
            match = _FRAME_RE.search(pure.stem)
            frame = int(match.group(1)) if match else r
            size = sizes.get(path) or sizes.get(folder) or sizes.get(ANY_FOLDER) or (0, 0)
            video = videos.get(folder)
            if video is None:
                video = videos[folder] = VideoRecord(folder, int(size[0]), int(size[1]))
                if size == (0, 0):
                    log.warning("%s: frame size of %r unknown (recorded as 0x0)", source, folder)
            record = ImageRecord(path, int(size[0]), int(size[1]), video=folder, frame_index=frame)
            if r in bad_rows:
                for n in range(len(by_individual)):
                    found = np.flatnonzero(half[r, n])
                    if found.size:
                        raise DeepLabCutFormatError(
                            f"{row_where}: {skeleton.keypoints[int(found[0])]!r} has only one "
                            "of x, y"
                        )
                    if out_of_range[r, n]:
                        raise DeepLabCutFormatError(f"{row_where}: a value is beyond float32 range")
            instances = []
            for n, individual, _ in by_individual:
                if not present_rows[r][n]:
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
                # validated above (finite, 0/2 flags, zeros at unlabeled points): skip
                # Instance's re-validation, which dominates big imports
                instance = Instance.trusted(
                    all_keypoints[r, n], all_visibility[r, n], track_id=track_id
                )
                instances.append(instance)
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
        path = dlc_path(item)
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
    root, table_files = find_project(path)
    config = None
    if root is not None and (root / "config.yaml").is_file():
        config = load_config(root / "config.yaml")
    tables = []
    for table_file in table_files:
        if table_file.suffix.lower() == ".h5":
            tables.append(read_h5(table_file))
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
            size = image_size(candidate)
            if size is not None:
                sizes[frame_path] = size
                folder = relative.parts[-2] if len(relative.parts) >= 2 else STILLS_FOLDER
                sizes.setdefault(folder, size)
    sizes.update(image_sizes or {})
    with gc_paused():
        return from_deeplabcut(tables, config, skeleton, image_sizes=sizes, source=str(path))


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
    with gc_paused():
        config, tables = to_deeplabcut(dataset, scorer=scorer)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", scorer):
        raise DeepLabCutFormatError(f"scorer {scorer!r}: use letters, digits, '_', '-', '.'")
    csv_text = {name: format_collected_csv(table) for name, table in tables.items()}
    pd = h5_writer() if h5 else None
    if h5 and pd is None:
        log.info("pandas/tables not installed: writing the CollectedData CSV only")
    copies = []
    for item in dataset.images:
        source = (media or {}).get(item.image.file_name)
        if source is not None:
            copies.append((Path(source), folder / safe_relative_path(dlc_path(item))))
    folder.mkdir(parents=True, exist_ok=True)
    config["project_path"] = str(folder.resolve())
    atomic_write_bytes(folder / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode())
    for name, table in tables.items():
        target = folder / "labeled-data" / name
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target / f"CollectedData_{scorer}.csv", csv_text[name])
        if pd is not None:
            with atomic_path(target / f"CollectedData_{scorer}.h5") as tmp:
                write_h5(pd, table, tmp)
    for source, destination in copies:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.resolve() != destination.resolve():
            shutil.copyfile(source, destination)
    return folder / "config.yaml"
