"""COCO keypoints format: pure ``dict <-> PoseDataset`` functions, thin file I/O on top.

The codec is lossless for COCO keypoint files whose keypoint layout is the
template's (same names, same order): ``to_coco(from_coco(d)) == d`` up to the
normalisations listed below, and ``from_coco(to_coco(ds))`` gives back ``ds``.

Coordinates are float32 in :class:`~posekit.core.Instance`. On export each
float32 is written as the *shortest decimal that reads back as the same
float32* (so ``313`` stays ``313``, ``353.37`` stays ``353.37``); COCO boxes are
written as ``[x, y, w, h]`` with the shortest ``w``/``h`` that give back the same
float32 ``x2``/``y2``. Inputs with more digits than float32 holds (PoseTrack has
``488.60028996999995``), COCO ``num_keypoints`` values that disagree with the
visibility flags, coordinates at not-labeled points that are not ``0, 0``,
``iscrowd: false`` instead of ``0`` and similar details are kept in a small
per-instance stash, ``Instance.extra["_coco"]``, used on export only while the
instance's geometry is unchanged (checked by a CRC of its keypoints,
visibility and box). The stash is present only for the instances that need it.

Documented normalisations (``to_coco(from_coco(d))`` vs ``d``):
    * annotations are written grouped by image, in image order (file order
      within an image), keypoint-category annotations first, then the
      annotations of other categories; the keypoint category is written first;
    * integral numbers are written as JSON integers (``401.0`` -> ``401``);
    * a file whose keypoint layout differs from the template (other order,
      missing points) is remapped by name, so its category and keypoint lists
      are written in the template's layout.

Review status, source and keypoint scores of predictions travel in a
``"posekit"`` field of each annotation (written only when they differ from a
manual, accepted annotation), so that export -> import is the identity.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from posekit.dataset import PoseDataset
from posekit.formats.coco_read import from_coco
from posekit.formats.coco_schema import STASH_KEY, CocoFormatError
from posekit.formats.coco_write import to_coco, to_coco_results
from posekit.formats.files import temporary_beside
from posekit.gc_pause import gc_paused
from posekit.skeleton import Skeleton

__all__ = [
    "STASH_KEY",
    "CocoFormatError",
    "from_coco",
    "load_coco_json",
    "read_coco",
    "to_coco",
    "to_coco_results",
    "write_coco",
    "write_coco_chunks",
    "write_coco_document",
]


def load_coco_json(path: Path) -> Any:
    """The parsed JSON of a COCO file (keypoints file or results list).

    Raises:
        CocoFormatError: not JSON or not UTF-8 (the message starts with the path).
        OSError: the file cannot be read.
    """
    import orjson

    raw = path.read_bytes()
    try:
        with gc_paused():
            # orjson parses large COCO files 2-3x faster than the json module.
            return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Strict JSON failed: the json module accepts what orjson refuses (NaN and
        # Infinity literals, integers beyond 64 bits), so that validation can name
        # the element, and it gives the precise message for truly broken files.
        pass
    try:
        with gc_paused():
            return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CocoFormatError(f"{path}: not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CocoFormatError(f"{path}: not UTF-8 text: {exc}") from None


def read_coco(path: str | os.PathLike[str], skeleton: Skeleton | None = None) -> PoseDataset:
    """Read a COCO keypoints file (see :func:`from_coco`).

    Raises:
        CocoFormatError: invalid JSON or COCO content (the message starts with the path).
        OSError: the file cannot be read.
    """
    path = Path(path)
    return from_coco(load_coco_json(path), skeleton, source=str(path))


def write_coco(
    dataset: PoseDataset,
    path: str | os.PathLike[str],
    *,
    media: Mapping[str, Path] | None = None,
) -> Path:
    """Write ``dataset`` as a COCO keypoints file, atomically.

    The JSON goes to a temporary file in the destination folder, which then
    replaces ``path`` (``os.replace``), so a crash never leaves half a file.

    Args:
        dataset: What to write.
        path: The COCO file to write.
        media: Not used: a COCO file names its images and does not carry them
            (the argument exists because every format writer takes it).

    Returns:
        ``path``, as a :class:`~pathlib.Path`.
    """
    del media
    with gc_paused():
        return write_coco_document(to_coco(dataset), path)


def write_coco_document(data: Any, path: str | os.PathLike[str]) -> Path:
    """Write a COCO dict (or results list) as compact JSON, atomically (see
    :func:`write_coco`); returns ``path`` as a :class:`~pathlib.Path`."""
    path = Path(path)
    with gc_paused():
        try:
            import orjson

            # orjson writes large files several times faster than the json module.
            # It writes non-finite floats as null; our own fields are validated finite,
            # and JSON has no NaN, so an unknown field carried verbatim becomes null.
            payload = orjson.dumps(data)
        except TypeError:
            # Integers beyond 64 bits in fields carried verbatim: the json module
            # writes them.
            payload = json.dumps(
                data, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
    with _atomic_file(path) as handle:
        handle.write(payload)
    return path


@contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A temporary file in ``path``'s folder that replaces ``path`` (keeping its mode)
    when the block succeeds, and is removed if it fails."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp_name = temporary_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_coco_chunks(
    document: dict[str, Any], chunks: Iterable[list[Any]], path: str | os.PathLike[str]
) -> Path:
    """:func:`write_coco_document` of ``document`` whose ``annotations`` are the
    concatenated ``chunks``, serialised chunk by chunk (the whole list is never in
    memory): the same bytes as ``orjson.dumps`` of the whole dict.

    Raises:
        TypeError: a value orjson cannot write (integers beyond 64 bits); nothing
            is written (:func:`write_coco_document` falls back to the json module).
    """
    import orjson

    path = Path(path)
    marker = orjson.dumps(f"posekit-annotations-{uuid.uuid4().hex}")
    head, found, tail = orjson.dumps({**document, "annotations": orjson.loads(marker)}).partition(
        marker
    )
    if not found:
        raise ValueError("document has no annotations to stream")
    with _atomic_file(path) as handle:
        handle.write(head + b"[")
        first = True
        for chunk in chunks:
            if not chunk:
                continue
            if not first:
                handle.write(b",")
            handle.write(orjson.dumps(chunk)[1:-1])
            first = False
        handle.write(b"]" + tail)
    return path
