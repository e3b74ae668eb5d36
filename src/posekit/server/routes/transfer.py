"""Image upload, dataset import and export downloads.

Import and export dispatch through the format table
(:mod:`posekit.formats.registry`): a new format needs no change here.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from posekit.formats.registry import get_format, readable_formats, writable_formats
from posekit.media import IMAGE_EXTENSIONS
from posekit.server.auth import CurrentUser
from posekit.server.authz import Permission, allow
from posekit.server.deps import DatabaseId, JSONRoute, State, errors
from posekit.server.schemas import ImportReportOut
from posekit.server.uploads import (
    UploadRefused,
    check_image_file,
    remove_tree,
    safe_upload_name,
    save_upload,
    stored_name,
)
from posekit.statuses import INSTANCE_STATUSES
from posekit.store import StoreError
from posekit.store.import_archive import (
    ArchiveError,
    LocatedDataset,
    is_zip_file,
    link_by_base_name,
    locate_dataset,
    unpack_archive,
)
from posekit.store.import_report import ImportReport
from posekit.store.media_staging import make_staging_dir
from posekit.store.queries import get_project_by_id

router = APIRouter(prefix="/api/projects", tags=["import/export"], route_class=JSONRoute)

ReadableFormat = Literal[tuple(readable_formats())]  # type: ignore[valid-type]
WritableFormat = Literal[tuple(writable_formats())]  # type: ignore[valid-type]
InstanceStatus = Literal[INSTANCE_STATUSES]  # type: ignore[valid-type]


def _stage_images(state: State, files: list[UploadFile], root: Path) -> None:
    """Check every uploaded image into ``root`` under its safe relative name
    (raises :class:`UploadRefused` naming the first bad file)."""
    settings = state.settings
    if len(files) > settings.max_files:
        raise UploadRefused(
            413, f"too many files in one upload ({len(files)} > {settings.max_files})"
        )
    seen: set[PurePosixPath] = set()
    for upload in files:
        name = safe_upload_name(upload.filename)
        if upload.size is not None and upload.size > settings.max_upload_bytes:
            raise UploadRefused(
                413,
                f"file {str(name)!r} is too large ({upload.size} > {settings.max_upload_bytes} "
                "bytes)",
            )
        target = root.joinpath(*name.parts)
        if not target.resolve().is_relative_to(root.resolve()):  # defence in depth
            raise UploadRefused(422, f"file name {upload.filename!r} leaves the upload folder")
        try:
            if name in seen or target.exists():
                raise UploadRefused(422, f"file name {str(name)!r} appears twice in the upload")
            save_upload(upload.file, target, str(name), settings.max_upload_bytes)
        except OSError as exc:
            raise UploadRefused(422, f"file {str(name)!r} cannot be stored: {exc}") from None
        extension = check_image_file(target, str(name), settings.max_pixels)
        final = stored_name(name, extension)
        if final != name:
            final_path = root.joinpath(*final.parts)
            if final in seen or final_path.exists():
                raise UploadRefused(422, f"file name {str(final)!r} appears twice in the upload")
            target.rename(final_path)
        seen.add(name)
        seen.add(final)


@router.post(
    "/{project_id}/upload",
    response_model=ImportReportOut,
    responses=errors(404, 413, 415, 422),
    dependencies=[allow(Permission.MANAGE)],
)
def upload_images(
    project_id: DatabaseId,
    state: State,
    files: Annotated[list[UploadFile], File(description="image files; names may contain folders")],
    dataset: str = Query("default", min_length=1, max_length=200),
) -> ImportReportOut:
    """Upload images into a dataset (created if missing).

    All or nothing: every file is checked first (safe name, size, image type by
    content, pixel count, complete decode); the first bad one refuses the whole
    request (413 size/pixels, 415 not an image, 422 bad name or corrupt image,
    the message names the file) and nothing is written. Files already in the
    dataset (same content) are reported as ``skipped``.
    """
    from posekit.store import import_images

    project = get_project_by_id(state.ws, project_id)
    tmp = make_staging_dir(state.ws, "upload-")
    try:
        # The folder name becomes the prefix import_images gives renamed files.
        root = tmp / "upload"
        root.mkdir()
        _stage_images(state, files, root)
        report = import_images(
            state.ws, project, dataset, [root], max_file_bytes=state.settings.max_upload_bytes
        )
    finally:
        remove_tree(tmp)
    return ImportReportOut.model_validate(report)


@router.post(
    "/{project_id}/import/{format}",
    response_model=ImportReportOut,
    responses=errors(404, 413, 415, 422),
    dependencies=[allow(Permission.MANAGE)],
)
def import_file(
    project_id: DatabaseId,
    format: ReadableFormat,
    state: State,
    user: CurrentUser,
    file: Annotated[
        UploadFile,
        File(
            description="the annotation file (e.g. COCO keypoints JSON, CVAT XML), or a zip: "
            "another tool's export (annotation file with its images/ folder) or a folder "
            "format's project (DeepLabCut: config.yaml + labeled-data/; Supervisely: "
            "meta.json + <dataset>/ann, img)"
        ),
    ],
    images: Annotated[
        list[UploadFile] | None,
        File(
            description="the images it names (file names as in the file, folders included); "
            "given with a zip, they are used instead of the zip's images"
        ),
    ] = None,
    dataset: str = Query("default", min_length=1, max_length=200),
    missing_media: Literal["error", "register"] = Query(
        "error",
        description="error: images named in the file but neither uploaded nor in the dataset "
        "refuse the import; register: import their annotations without the image",
    ),
    existing: Literal["attach", "skip"] = Query(
        "attach",
        description="images already in the dataset (same file name; same content when "
        "uploaded; else the same base name in another folder, e.g. photo.jpg for "
        "upload/18/photo.jpg, when only one image of the dataset and one entry of the file "
        "have it: listed in matched; an ambiguous one is skipped, not guessed): "
        "attach: give them the file's annotations unless someone already labeled them "
        "(an accepted or rejected instance; those are skipped); skip: leave them as they are",
    ),
) -> ImportReportOut:
    """Import an annotation file of a readable format (``GET /api/formats``; keypoints
    matched to the project template by name) with its images, in one transaction.

    A malformed file gives 422 naming the bad element, and nothing is written. The
    report counts new images (``added``), images already in the dataset that got the
    file's annotations (``attached``), lists the entries ``matched`` to an image of
    the dataset by base name, and the ``skipped`` ones with the reason (an ambiguous
    base name among them). Uploaded images win: an entry whose image is uploaded (by
    its name in the file or its base name) is matched by content, else added.
    """
    spec = get_format(format)
    project = get_project_by_id(state.ws, project_id)
    name = file.filename or f"annotations{(spec.extensions or ('',))[0]}"
    tmp = make_staging_dir(state.ws, "import-")
    try:
        upload = tmp / "upload"
        size = save_upload(file.file, upload, name, _archive_limit(state))
        zipped = is_zip_file(upload)
        if not zipped and size > state.settings.max_upload_bytes:
            limit = state.settings.max_upload_bytes
            raise UploadRefused(
                413, f"file {name!r} is too large (over the limit of {limit} bytes)"
            )
        uploaded_root = None
        if images:
            uploaded_root = tmp / "images"
            uploaded_root.mkdir()
            _stage_images(state, images, uploaded_root)
        if zipped:
            located = _unpack(state, spec, project, upload, tmp / "unpacked", name)
            source, image_root = located.source, uploaded_root or located.image_root
            shown = {
                str(source): f"{spec.title} {source.relative_to(tmp / 'unpacked').as_posix()!r} "
                f"in {name!r}",
                str(image_root): f"the images of {name!r}",
            }
        elif spec.kind == "folder":
            hint = _FOLDER_HINTS.get(format, "upload a zip of the folder")
            raise UploadRefused(422, f"{spec.title} is a folder: {hint}")
        else:
            source = upload.rename(tmp / f"annotations{(spec.extensions or ('',))[0]}")
            image_root = uploaded_root or tmp / "no-images"
            shown = {str(source): f"{spec.title} file {name!r}", str(image_root): "the upload"}
        if uploaded_root is not None:
            shown[str(uploaded_root)] = "the uploaded images"
        shown[str(tmp)] = "the upload"
        options = {"missing_media": missing_media, "existing": existing, "author_id": user.id}
        report = _import(state, project, dataset, source, spec, image_root, shown, name, options)
    finally:
        remove_tree(tmp)
    return ImportReportOut.model_validate(report)


#: What to upload for a folder format (the browser sends a folder as a zip).
_FOLDER_HINTS = {
    "deeplabcut": "upload a zip of the project folder (config.yaml and labeled-data/ with "
    "its CollectedData_*.csv or .h5 and the frames)",
    "supervisely": "upload a zip of the project folder (meta.json and <dataset>/ann/, "
    "<dataset>/img/)",
}


def _archive_limit(state: State) -> int:
    """An uploaded zip may hold the images too: as large as a full image upload."""
    settings = state.settings
    return settings.max_upload_bytes * max(1, min(settings.max_files, 16))


def _unpack(
    state: State, spec: Any, project: Any, upload: Path, folder: Path, name: str
) -> LocatedDataset:
    """Unpack an uploaded zip, find the format's file and its images, check the images."""
    settings = state.settings
    try:
        root = unpack_archive(
            upload, folder, max_members=2 * settings.max_files + 64,
            max_member_bytes=settings.max_upload_bytes, max_total_bytes=_archive_limit(state),
        )  # fmt: skip
        located = locate_dataset(root, spec.name, lambda path: _image_names(spec, path, project))
    except ArchiveError as exc:
        raise UploadRefused(422, f"{name!r}: {exc}") from None
    except (ValueError, StoreError) as exc:
        message = str(exc).replace(str(folder) + "/", "").replace(str(folder), name)
        raise UploadRefused(422, f"{name!r}: {message}") from None
    for path in sorted(located.image_root.rglob("*")):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            shown = f"{name}:{path.relative_to(folder.parent).as_posix()}"
            check_image_file(path, shown.replace(":unpacked/", ":"), settings.max_pixels)
    return located


def _image_names(spec: Any, path: Path, project: Any) -> list[str]:
    return [labeled.image.file_name for labeled in spec.read(path, project.template).images]


def _import(
    state: State, project: Any, dataset: str, source: Path, spec: Any, image_root: Path,
    shown: dict[str, str], name: str, options: dict[str, Any],
) -> ImportReport:  # fmt: skip
    """``import_dataset``, with its errors as 422 naming the upload, not the staging paths."""
    from posekit.store.imports import MissingMediaError, import_dataset

    try:
        if image_root.is_dir():
            # Images uploaded as photo.jpg for a file naming upload/18/photo.jpg.
            link_by_base_name(image_root, _image_names(spec, source, project))
        return import_dataset(
            state.ws, project, dataset, source, format=spec.name, image_root=image_root,
            **options,
        )  # fmt: skip
    except RecursionError:
        raise UploadRefused(422, f"{spec.title} file {name!r} is nested too deeply") from None
    except MissingMediaError as exc:
        message = exc.describe(
            "upload them with the file (or in its zip), upload them into the dataset first, "
            "or import the annotations without the images (missing_media=register)"
        )
        raise UploadRefused(422, _shown(message, shown)) from None
    except (ValueError, StoreError) as exc:
        if "integer string conversion" in str(exc) and source.is_file():
            raise UploadRefused(422, _huge_integer_message(source, spec.title, name)) from None
        raise UploadRefused(422, _shown(str(exc), shown)) from None


def _shown(message: str, shown: dict[str, str]) -> str:
    """``message`` with the staging paths in it replaced by what the user uploaded."""
    for path, words in sorted(shown.items(), key=lambda kv: -len(kv[0])):
        message = message.replace(path, words)
    return message


def _huge_integer_message(path: Path, title: str, name: str) -> str:
    """Name the element of an integer too long for Python's ``int()`` (JSON files)."""
    from fastapi import HTTPException

    from posekit.server.deps import parse_json_body

    prefix = f"{title} file {name!r}"
    try:
        parse_json_body(path.read_bytes())
    except HTTPException as exc:
        return f"{prefix}: {str(exc.detail).removeprefix('body.')}"
    except (ValueError, OSError):
        pass
    return f"{prefix}: an integer has more than 4300 digits"


def _download_name(project_name: str, suffix: str) -> str:
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", project_name).strip("._") or "project") + suffix


@router.get(
    "/{project_id}/export",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/json": {}, "application/zip": {}},
            "description": "The file of a file format (COCO: JSON), or a zip of a folder "
            "format (YOLO: the dataset with data.yaml)",
        },
        **errors(404, 422),
    },
    dependencies=[allow(Permission.MANAGE)],
)
def export_project(
    project_id: DatabaseId,
    state: State,
    format: Annotated[
        WritableFormat, Query(description="a writable format (GET /api/formats)")
    ] = "coco",
    status: Annotated[
        list[InstanceStatus] | None,
        Query(
            description="only instances with these review statuses (repeat the parameter); "
            "default: the format's default_statuses (GET /api/formats)",
        ),
    ] = None,
    dataset: str | None = Query(None, description="only this dataset"),
    val_fraction: float = Query(
        0.0,
        ge=0.0,
        lt=1.0,
        description="YOLO: fraction of the images put in a separate val split "
        "(deterministic by name); 0 uses the train images for val",
    ),
    with_authors: bool = Query(
        False,
        description='COCO: write "author": "<username>" on each annotation (who wrote its '
        "current version; left out where unknown)",
    ),
) -> FileResponse:
    """Download a project's annotations in a writable format (a folder format as a zip)."""
    from posekit.store.exports import export

    spec = get_format(format)
    project = get_project_by_id(state.ws, project_id)
    statuses = list(status) if status else None  # None: the format's default_statuses
    writer_options = {"val_fraction": val_fraction} if format == "yolo" else {}
    tmp = make_staging_dir(state.ws, "export-")
    cleanup = BackgroundTask(remove_tree, tmp)
    try:
        if spec.kind == "file":
            extension = (spec.extensions or ("",))[0]
            out = tmp / f"{format}{extension}"
            export(
                state.ws, project, out, format=format, dataset=dataset, statuses=statuses,
                with_authors=with_authors,
            )  # fmt: skip
            return FileResponse(
                out,
                media_type=_MEDIA_TYPES.get(extension, "application/octet-stream"),
                filename=_download_name(project.name, f"-{format}{extension}"),
                background=cleanup,
            )
        # The folder goes out as a zip, so its images are copies, not links.
        folder = tmp / format
        export(
            state.ws, project, folder, format=format, dataset=dataset, statuses=statuses,
            link=False, with_authors=with_authors, **writer_options,
        )  # fmt: skip
        archive = shutil.make_archive(str(folder), "zip", root_dir=folder)
        return FileResponse(
            archive,
            media_type="application/zip",
            filename=_download_name(project.name, f"-{format}.zip"),
            background=cleanup,
        )
    except BaseException:
        remove_tree(tmp)
        raise


_MEDIA_TYPES = {".json": "application/json", ".zip": "application/zip", ".txt": "text/plain"}
