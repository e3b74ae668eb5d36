"""Supervisely projects (images and videos) with keypoint graphs: pure
``dict <-> PoseDataset`` functions (:func:`from_supervisely`, :func:`to_supervisely`),
thin folder I/O on top (:func:`read_supervisely`, :func:`write_supervisely`).

Layout (Supervisely's documented project format)::

    project/
      meta.json                    classes (one with "shape": "graph" holds the template:
                                   geometry_config.nodes {key: {label, loc, color}},
                                   geometry_config.edges [{src, dst, color}]), tag metas,
                                   "projectType": "images" | "videos"
      <dataset>/ann/<image>.json   {"size", "tags", "objects": [{"classTitle",
                                   "geometryType": "graph", "nodes": {key: {"loc": [x, y],
                                   "disabled": true?}}, "tags"}]}
      <dataset>/img/<image>        the images (written when ``media`` is given)
      <dataset>/ann/<video>.json   {"size", "framesCount", "objects": [{"key", "classTitle",
                                   "tags"}], "frames": [{"index", "figures": [{"key",
                                   "objectKey", "geometryType": "graph",
                                   "geometry": {"nodes": ...}}]}]}
      <dataset>/video/<video>      the videos (written when ``media`` is given)

Node keys map onto template keypoints through the class's node labels (names);
posekit writes the keypoint names as node keys.

States: a ``disabled`` node or a node missing from an object -> not labeled (0).
Supervisely has no occlusion flag; posekit writes the names of the occluded
keypoints of an object, comma separated, as the value of an ``any_string`` tag
``posekit_occluded`` (declared in ``meta.json``): on the object for images, and
as a video-object tag with ``frameRange [f, f]`` for each video frame that has
occluded points. Reading gives occluded (1) for those, visible (2) for the other
enabled nodes; files without the tag read as all visible.

Tracks: a video object is a track (``track_id`` from the object key when posekit
wrote it: ``uuid.UUID(int=track_id)``, else the object's position); every stored
figure is a keyframe (Supervisely stores each frame's figure; it has no keyframe
flag), a frame after a run of figures is an outside frame.

What it cannot carry (lost on export): boxes, scores and review status (rejected
instances and crowd regions are not written), instance ids and ``extra``;
keyframes of tracks (every frame with a figure comes back as a keyframe).
Image names are ``<dataset>/<image>``; names without a folder go to dataset
``ds0`` and read back without it. The Supervisely SDK floors node locations to
integer pixels when it loads them; the files keep posekit's float32 values.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from posekit.dataset import ImageRecord, LabeledImage, PoseDataset, TrackRecord, VideoRecord
from posekit.formats.supervisely_graph import (
    DEFAULT_DATASET,
    DEFAULT_SIGMA,
    OCCLUDED_TAG,
    SuperviselyFormatError,
    SuperviselyItem,
    _split_name,
    _template,
    meta_json,
)
from posekit.formats.supervisely_images import (
    _Graphs,
    _image_items,
    _image_objects,
    _labeled_images,
)
from posekit.formats.supervisely_json import image_annotation_bytes
from posekit.formats.supervisely_video import _read_video, _video_items
from posekit.gc_pause import gc_paused
from posekit.skeleton import Skeleton

__all__ = [
    "DEFAULT_DATASET",
    "DEFAULT_SIGMA",
    "OCCLUDED_TAG",
    "SuperviselyFormatError",
    "SuperviselyItem",
    "from_supervisely",
    "read_supervisely",
    "to_supervisely",
    "write_supervisely",
]

logger = logging.getLogger(__name__)

_IO_THREADS = 8
# reading: threads and files per task (see _load_all)
_READ_THREADS = 2
_READ_CHUNK = 256


def from_supervisely(
    meta: Mapping[str, Any],
    items: Sequence[SuperviselyItem],
    skeleton: Skeleton | None = None,
    *,
    class_title: str | None = None,
    source: str = "Supervisely project",
) -> PoseDataset:
    """A Supervisely project (its ``meta.json`` and annotation files) as a dataset.

    Args:
        meta: The parsed ``meta.json``.
        items: The annotation files, in the order to read them.
        skeleton: Template to read into (node labels matched by name); None: the
            shipped preset with the node labels, else a template built from the
            graph class (uniform sigmas :data:`DEFAULT_SIGMA`).
        class_title: The graph class to read (default: the first one).
        source: Name of the input for error messages.

    Raises:
        SuperviselyFormatError: no graph class, a node key not in the template, a
            malformed ``loc``, size or frame; nothing is returned in part.
    """
    template = _template(meta, skeleton, class_title, source)
    images: list[LabeledImage] = []
    videos: list[VideoRecord] = []
    tracks: list[TrackRecord] = []
    records: list[ImageRecord] = []
    pending: list[_Graphs] = []
    skipped = 0
    for item in items:
        where = f"{source}: {item.dataset}/ann/{item.name}.json"
        if not isinstance(item.annotation, Mapping):
            raise SuperviselyFormatError(f"{where}: not a JSON object")
        if item.kind == "video":
            video, frames, video_tracks = _read_video(item, template, where)
            videos.append(video)
            images += frames
            tracks += video_tracks
            continue
        record, graphs, skipped_here = _image_objects(item, template, where)
        skipped += skipped_here
        pending.append(graphs)
        records.append(record)
    images += _labeled_images(records, pending, template)
    if skipped:
        logger.info("%s: skipped %d objects that are not graphs of class %r", source, skipped,
                    template.title)  # fmt: skip
    return PoseDataset(skeleton=template.skeleton, images=images, videos=videos, tracks=tracks)


# --------------------------------------------------------------------- writing


def to_supervisely(
    dataset: PoseDataset, *, class_title: str | None = None
) -> tuple[dict[str, Any], list[SuperviselyItem]]:
    """``dataset`` as a Supervisely project: ``(meta.json, annotation files)``.

    Still images give an images project (``<dataset>/<image>`` names: the folder of
    a file name is its dataset, :data:`DEFAULT_DATASET` when it has none); a dataset
    with videos gives a videos project, one annotation per video.

    Raises:
        SuperviselyFormatError: still images mixed with video frames, an image name
            nested deeper than one folder or unsafe, two instances of a track on one frame.
    """
    skeleton = dataset.skeleton
    title = class_title or skeleton.category or "person"
    stills = [item for item in dataset.images if item.image.video is None]
    framed = [item for item in dataset.images if item.image.video is not None]
    if dataset.videos or framed:
        if stills:
            raise SuperviselyFormatError(
                f"image {stills[0].image.file_name!r} is a still image in a dataset with "
                "videos; a Supervisely project holds either images or videos"
            )
        return meta_json(skeleton, title, "videos"), _video_items(dataset, framed, title)
    return meta_json(skeleton, title, "images"), _image_items(dataset, title)


# ------------------------------------------------------------------------ files


def _parse_json(raw: bytes, path: Path) -> Any:
    import orjson

    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SuperviselyFormatError(f"{path}: not valid JSON: {exc}") from None


def _load_json(path: Path) -> Any:
    return _parse_json(path.read_bytes(), path)


def _read_bytes(path: str) -> bytes:
    # os.open/fstat/read: less CPU time than Path.read_bytes' io objects
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size)
        if len(data) == size:
            return data
        parts = [data]  # a short read, or the file changed: read to its end
        while part := os.read(fd, 1 << 20):
            parts.append(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def _read_chunk(paths: Sequence[Path]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for path in paths:
        try:
            out.append(_read_bytes(str(path)))
        except OSError:  # read again in file order by the parsing thread, which raises
            out.append(None)
    return out


def _load_all(paths: Sequence[Path]) -> list[Any]:
    """The parsed JSON of ``paths``, in order; the first bad file (in order) raises.

    A few threads read the files in chunks (the reads release the GIL) while this
    thread parses the chunks already read: no future per file (25k futures cost more
    CPU time than the reads), and the file system's latency hides behind the parsing.
    """
    chunks = [paths[i : i + _READ_CHUNK] for i in range(0, len(paths), _READ_CHUNK)]
    loaded: list[Any] = []
    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        try:
            for chunk_paths, raws in zip(chunks, pool.map(_read_chunk, chunks)):
                for path, raw in zip(chunk_paths, raws):
                    if raw is None:
                        raw = path.read_bytes()  # the error of Path.read_bytes, as before
                    loaded.append(_parse_json(raw, path))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return loaded


def _annotation_files(
    dataset: PoseDataset, class_title: str | None
) -> tuple[dict[str, Any], list[tuple[str, str, str, bytes]]]:
    """``meta.json`` and ``(dataset folder, name, kind, file bytes)`` per annotation file:
    :func:`to_supervisely`'s, with an images project's files rendered straight to bytes
    (:mod:`~posekit.formats.supervisely_json`, the same bytes)."""
    import orjson

    skeleton = dataset.skeleton
    title = class_title or skeleton.category or "person"
    if dataset.videos or any(item.image.video is not None for item in dataset.images):
        meta, items = to_supervisely(dataset, class_title=class_title)
        return meta, [(i.dataset, i.name, i.kind, orjson.dumps(i.annotation)) for i in items]
    files = image_annotation_bytes(dataset, title)
    return meta_json(skeleton, title, "images"), [(d, n, "image", b) for d, n, b in files]


def read_supervisely(
    path: str | os.PathLike[str],
    skeleton: Skeleton | None = None,
    *,
    class_title: str | None = None,
) -> PoseDataset:
    """Read a Supervisely project folder (see :func:`from_supervisely`).

    Raises:
        SuperviselyFormatError: no ``meta.json``, invalid JSON or content (the
            message names the file).
    """
    root = Path(path)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise SuperviselyFormatError(f"{root}: no meta.json (not a Supervisely project folder)")
    with gc_paused():
        meta = _load_json(meta_path)
        kind: Literal["image", "video"] = (
            "video" if isinstance(meta, Mapping) and meta.get("projectType") == "videos"
            else "image"
        )  # fmt: skip
        paths = [
            (dataset_dir.name, ann)
            for dataset_dir in sorted(p for p in root.iterdir() if (p / "ann").is_dir())
            for ann in sorted((dataset_dir / "ann").glob("*.json"))
        ]
        loaded = _load_all([ann for _, ann in paths])
        items = [
            SuperviselyItem(name, ann.name[: -len(".json")], data, kind)
            for (name, ann), data in zip(paths, loaded)
        ]
        return from_supervisely(meta, items, skeleton, class_title=class_title, source=str(root))


def write_supervisely(
    dataset: PoseDataset,
    destination: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
    class_title: str | None = None,
    link: bool = True,
) -> Path:
    """Write a Supervisely project folder (the format table's writer).

    Args:
        dataset: What to write (see :func:`to_supervisely`).
        destination: Project folder (created; files of the same names are replaced).
        media: ``file_name`` (or video name) -> file on disk; when given, images go to
            ``<dataset>/img/`` (videos to ``<dataset>/video/``), symlinked or copied.
        class_title: Graph class title (default: the template's category).
        link: Symlink media (default) instead of copying.

    Returns:
        The written ``meta.json``.

    Raises:
        SuperviselyFormatError: see :func:`to_supervisely`, or a ``media`` file that
            does not exist; raised before anything is written.
    """
    with gc_paused():
        meta, items = _annotation_files(dataset, class_title)
    for name, path in (media or {}).items():
        if not Path(path).is_file():
            raise SuperviselyFormatError(f"media {name!r}: file {path} does not exist")
    root = Path(destination)
    root.mkdir(parents=True, exist_ok=True)
    sources: dict[tuple[str, str], str] = {}
    if media is not None:
        for image in dataset.images:
            if image.image.video is None:
                sources[_split_name(image.image.file_name, "")] = image.image.file_name
        for video in dataset.videos:
            sources[_split_name(video.name, "")] = video.name
    for folder in sorted({ds_name for ds_name, _, _, _ in items}):
        (root / folder / "ann").mkdir(parents=True, exist_ok=True)

    def write_some(chunk: Sequence[tuple[str, str, str, bytes]]) -> None:
        # a few large tasks, not one per file: submitting 25k futures costs more than
        # the writes they wait on
        for ds_name, name, _, payload in chunk:
            with open(os.path.join(root, ds_name, "ann", name + ".json"), "wb") as handle:
                handle.write(payload)

    step = max(1, -(-len(items) // _IO_THREADS))
    with ThreadPoolExecutor(max_workers=_IO_THREADS) as pool:
        list(pool.map(write_some, [items[i : i + step] for i in range(0, len(items), step)]))
    for ds_name, name, kind, _ in items:
        original = sources.get((ds_name, name))
        if media is not None and original is not None and original in media:
            folder = root / ds_name / ("video" if kind == "video" else "img")
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / name
            if target.is_symlink() or target.exists():
                target.unlink()
            if link:
                os.symlink(Path(media[original]).resolve(), target)
            else:
                shutil.copy2(media[original], target)
    meta_path = root / "meta.json"
    meta_path.write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return meta_path
