"""Dataset files that arrive as a zip: the export of another tool, or a folder format.

CVAT, Supervisely and COCO exports are zips of the annotation file(s) with an
``images/`` folder; DeepLabCut and Supervisely projects are folders, which a
browser can only send zipped. :func:`unpack_archive` extracts a zip safely
(no absolute names, no ``..``, no links, limits on members and sizes, macOS
``__MACOSX`` / ``.DS_Store`` left out) and :func:`locate_dataset` finds in it
what the format's reader takes and the folder the file's image names are
relative to, so that :func:`posekit.store.imports.import_dataset` can import it
as if the user had given the unpacked folder.

Example:
    >>> from pathlib import Path
    >>> import tempfile, zipfile
    >>> tmp = Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(tmp / "export.zip", "w") as z:
    ...     z.writestr("task/annotations.xml", "<annotations/>")
    >>> root = unpack_archive(tmp / "export.zip", tmp / "out")
    >>> found = locate_dataset(root, "cvat")
    >>> found.source.relative_to(root).as_posix(), found.image_root.relative_to(root).as_posix()
    ('task/annotations.xml', 'task')
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posekit.media import IMAGE_EXTENSIONS
from posekit.media.paths import UnsafePathError, safe_relative_path
from posekit.store.errors import StoreError
from posekit.store.media_names import base_name_candidates

__all__ = [
    "ArchiveError",
    "LocatedDataset",
    "is_zip_file",
    "link_by_base_name",
    "locate_dataset",
    "unpack_archive",
]

#: Entries that zips made on macOS carry beside the real files.
_JUNK_PARTS = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db"})
_CHUNK = 1024 * 1024


class ArchiveError(StoreError):
    """A zip that cannot be imported; the message names the member or what is missing."""


def is_zip_file(path: str | os.PathLike[str]) -> bool:
    """Whether a file starts like a zip archive (local file header or empty archive).

    Checked by the first bytes, not :func:`zipfile.is_zipfile` (which looks for an
    end record anywhere near the end, and so also says yes to some other files).
    """
    with open(path, "rb") as handle:
        return handle.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def unpack_archive(
    archive: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    max_members: int = 100_000,
    max_member_bytes: int = 1024**3,
    max_total_bytes: int = 8 * 1024**3,
) -> Path:
    """Extract a zip into ``destination`` (created; must not exist) and return it.

    Every member name is checked before anything is written; members are
    written with their sizes counted as they are decompressed (a header that
    lies about a size does not get past the limits).

    Raises:
        ArchiveError: not a zip, a corrupt member, an unsafe name (absolute,
            ``..``, a drive letter), a symbolic link, two members of one name,
            or more members / bytes than allowed (the message names the member).
    """
    archive, destination = Path(archive), Path(destination)
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{archive.name}: not a readable zip archive ({exc})") from None
    with bundle:
        members = _checked_members(bundle, max_members, max_member_bytes, max_total_bytes)
        destination.mkdir(parents=True)
        total = 0
        for info, relative in members:
            target = destination.joinpath(*relative.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with bundle.open(info) as source, open(target, "xb") as sink:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        if written > max_member_bytes or total > max_total_bytes:
                            raise ArchiveError(
                                f"zip member {info.filename!r} unpacks to more bytes than "
                                f"allowed ({max_member_bytes} a file, {max_total_bytes} in all)"
                            )
                        sink.write(chunk)
            except FileExistsError:
                raise ArchiveError(f"zip member {info.filename!r} appears twice") from None
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
                raise ArchiveError(f"zip member {info.filename!r} cannot be read: {exc}") from None
    return destination


def _checked_members(
    bundle: zipfile.ZipFile, max_members: int, max_member_bytes: int, max_total_bytes: int
) -> list[tuple[zipfile.ZipInfo, Path]]:
    infos = bundle.infolist()
    if len(infos) > max_members:
        raise ArchiveError(f"the zip holds {len(infos)} members, more than {max_members}")
    declared = 0
    members: list[tuple[zipfile.ZipInfo, Path]] = []
    seen: set[str] = set()
    for info in infos:
        try:
            relative = safe_relative_path(info.filename.rstrip("/") or ".")
        except UnsafePathError as exc:
            raise ArchiveError(f"zip member {info.filename!r}: {exc}") from None
        if str(relative) == "." or _JUNK_PARTS.intersection(relative.parts):
            continue
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ArchiveError(f"zip member {info.filename!r} is a symbolic link")
        key = relative.as_posix().casefold()
        if not info.is_dir():
            if key in seen:
                raise ArchiveError(f"zip member {info.filename!r} appears twice")
            seen.add(key)
            if info.file_size > max_member_bytes:
                raise ArchiveError(
                    f"zip member {info.filename!r} is too large "
                    f"({info.file_size} > {max_member_bytes} bytes)"
                )
            declared += info.file_size
            if declared > max_total_bytes:
                raise ArchiveError(f"the zip unpacks to more than {max_total_bytes} bytes")
        members.append((info, Path(*relative.parts)))
    return members


@dataclass(frozen=True)
class LocatedDataset:
    """What to import from an unpacked zip.

    Attributes:
        source: The file or folder the format's reader takes.
        image_root: The folder the file's image names are relative to.
    """

    source: Path
    image_root: Path


def locate_dataset(
    root: str | os.PathLike[str],
    format: str,
    image_names: Callable[[Path], list[str]] | None = None,
) -> LocatedDataset:
    """Find a format's file (or project folder) and its images in an unpacked zip.

    * DeepLabCut: the shallowest folder with ``config.yaml`` (frame paths are
      relative to it), else one ``labeled-data/<video>`` folder's
      ``CollectedData_*`` table.
    * Supervisely: the shallowest folder with ``meta.json``; its
      ``<dataset>/img/<image>`` files are laid out as ``<dataset>/<image>``
      (``ds0``'s as ``<image>``), the names posekit gives them.
    * File formats: the one file with the format's extension (``annotations.xml``
      / ``annotations.json`` first when there are several); images are looked
      for next to it, in its ``images/`` folder, or that folder's only
      subfolder (CVAT's and Datumaro's ``images/default/``). When more than one
      of those holds images, ``image_names(source)`` (the names the file lists)
      picks the folder where most of them are; without it, the folder holding
      most images itself.

    Raises:
        ArchiveError: no such file in the zip, or several with nothing to choose
            between them (the message lists them).
    """
    from posekit.formats.registry import get_format

    root = Path(root)
    spec = get_format(format)
    if format == "deeplabcut":
        project = _shallowest(root, lambda p: (p / "config.yaml").is_file())
        if project is not None:
            return LocatedDataset(project, project)
        tables = sorted(root.rglob("CollectedData_*.csv"))
        tables = tables or sorted(root.rglob("CollectedData_*.h5"))
        if len(tables) == 1:
            return LocatedDataset(tables[0].parent, _dlc_root(tables[0].parent))
        raise ArchiveError(
            f"no DeepLabCut project in the zip: expected config.yaml with labeled-data/ "
            f"(found {len(tables)} CollectedData tables)"
        )
    if format == "supervisely":
        project = _shallowest(root, lambda p: (p / "meta.json").is_file())
        if project is None:
            raise ArchiveError("no Supervisely project in the zip: expected meta.json")
        return LocatedDataset(project, _supervisely_images(project, root))
    if spec.kind != "file":
        raise ArchiveError(f"posekit cannot import the {spec.title} format from a zip")
    source = _annotation_file(root, spec.extensions, spec.title)
    candidates = _image_folders(source.parent, root)
    if not candidates:
        return LocatedDataset(source, source.parent)
    if len(candidates) > 1 and image_names is not None:
        names = image_names(source)
        return LocatedDataset(
            source, max(candidates, key=lambda folder: sum((folder / n).is_file() for n in names))
        )
    # Without the names: the folder holding most images itself (not in subfolders).
    return LocatedDataset(source, max(candidates, key=_direct_images))


def _shallowest(root: Path, test: Callable[[Path], bool]) -> Path | None:
    folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    matches = [p for p in folders if test(p)]
    return min(matches, key=lambda p: len(p.parts)) if matches else None


def _dlc_root(folder: Path) -> Path:
    return folder.parent.parent if folder.parent.name == "labeled-data" else folder


def _annotation_file(root: Path, extensions: tuple[str, ...], title: str) -> Path:
    wanted = tuple(e.lower() for e in extensions)
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(wanted))
    if len(found) == 1:
        return found[0]
    preferred = [p for p in found if p.stem.lower() == "annotations"]
    if len(preferred) == 1:
        return preferred[0]
    if not found:
        raise ArchiveError(f"no {title} file ({', '.join(extensions)}) in the zip")
    names = ", ".join(repr(p.relative_to(root).as_posix()) for p in found[:10])
    raise ArchiveError(
        f"the zip holds {len(found)} {title} files ({names}): zip one annotation file per import"
    )


def _direct_images(folder: Path) -> int:
    return sum(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir() if p.is_file())


def _holds_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.rglob("*") if p.is_file())


def _image_folders(folder: Path, root: Path) -> list[Path]:
    """Folders the images may be relative to, nearest first, those holding images only."""
    candidates: list[Path] = []
    for base in dict.fromkeys([folder, folder.parent if folder != root else folder, root]):
        images = base / "images"
        subfolders = [p for p in images.iterdir() if p.is_dir()] if images.is_dir() else []
        for candidate in (base, images, *(subfolders if len(subfolders) == 1 else [])):
            if candidate.is_dir() and candidate not in candidates and _holds_images(candidate):
                candidates.append(candidate)
    return candidates


def _supervisely_images(project: Path, root: Path) -> Path:
    """A folder holding ``<dataset>/<image>`` for the project's ``<dataset>/img/<image>``."""
    from posekit.formats.supervisely_graph import DEFAULT_DATASET

    laid_out = root.parent / f"{root.name}-images"
    laid_out.mkdir(exist_ok=True)
    for dataset in sorted(p for p in project.iterdir() if (p / "img").is_dir()):
        target = laid_out if dataset.name == DEFAULT_DATASET else laid_out / dataset.name
        for image in sorted((dataset / "img").rglob("*")):
            if image.is_file():
                destination = target / image.relative_to(dataset / "img")
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(image, destination)
    return laid_out


def link_by_base_name(image_root: str | os.PathLike[str], names: list[str]) -> list[str]:
    """Make each image the file names findable under ``image_root`` by its full name
    when a file of the same base name (or Label Studio's upload name without its
    ``<8 hex>-`` prefix) is there under one other path only: the images of a file
    naming ``upload/18/3f2a9c1b-photo.jpg`` or ``train/photo.jpg`` can be uploaded
    as ``photo.jpg``. Names found as they are, or ambiguous ones, are left alone.

    Returns:
        The names linked (hard links, or copies where links fail).
    """
    root = Path(image_root)
    if not root.is_dir():
        return []
    by_base: dict[str, list[Path]] = {}
    for path in root.rglob("*"):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            by_base.setdefault(path.name, []).append(path)
    linked: list[str] = []
    for name in names:
        try:
            relative = safe_relative_path(name)
        except UnsafePathError:
            continue  # the import names it
        target = root.joinpath(*relative.parts)
        if target.exists():
            continue
        found = base_name_candidates(relative.as_posix(), by_base)
        if len(found) != 1:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(found[0], target)
        except OSError:
            shutil.copyfile(found[0], target)
        linked.append(name)
    return linked
