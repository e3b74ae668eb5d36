"""Getting the BlazePose ``.tflite`` files without installing mediapipe.

The files ship only inside the ``mediapipe==0.10.21`` wheel, whose dependencies
(jax, jaxlib, matplotlib, sounddevice, and a numpy < 2 pin) posekit does not
need. :func:`fetch_model_files` downloads that one wheel with
``python -m pip download --no-deps`` into a temporary folder, extracts only the
model files (the pose detector and landmark model, :data:`MODEL_FILES`, and the
face landmark model that refines the face points, :data:`FACE_MODEL_FILES`),
checks them against pinned SHA-256 hashes and keeps them in the posekit cache
(``$POSEKIT_CACHE``, default ``~/.cache/posekit``); the wheel is deleted.
``posekit models fetch blazepose`` runs it, and the first BlazePose model created
runs it too unless ``POSEKIT_OFFLINE=1`` (a cache filled before the face model was
added gets it the same way, on first use or with that command).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path

from posekit.models.base import ModelError

__all__ = [
    "ALL_MODEL_FILES",
    "FACE_MODEL_FILES",
    "MEDIAPIPE_RELEASE",
    "MODEL_FILES",
    "cached_model_files",
    "fetch_model_files",
]

log = logging.getLogger(__name__)

#: The mediapipe release whose wheel carries the model files.
MEDIAPIPE_RELEASE = "0.10.21"
#: File name -> (path inside the wheel, SHA-256 of the file).
MODEL_FILES: dict[str, tuple[str, str]] = {
    "pose_detection.tflite": (
        "mediapipe/modules/pose_detection/pose_detection.tflite",
        "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c",
    ),
    "pose_landmark_full.tflite": (
        "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
        "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
    ),
}
#: The face landmark model (face mesh) that refines the face points
#: (:mod:`posekit.models.blazepose.face`), same form as :data:`MODEL_FILES`.
FACE_MODEL_FILES: dict[str, tuple[str, str]] = {
    "face_landmark.tflite": (
        "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
    ),
}
#: Everything :func:`fetch_model_files` keeps by default.
ALL_MODEL_FILES: dict[str, tuple[str, str]] = {**MODEL_FILES, **FACE_MODEL_FILES}


def cache_dir() -> Path:
    """Where the model files are kept: ``$POSEKIT_CACHE/blazepose-<release>``."""
    root = os.environ.get("POSEKIT_CACHE") or Path.home() / ".cache" / "posekit"
    return Path(root) / f"blazepose-{MEDIAPIPE_RELEASE}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def cached_model_files(
    folder: Path | None = None, names: Mapping[str, tuple[str, str]] = MODEL_FILES
) -> Path | None:
    """The cache folder if it holds the files of ``names`` (by default the two pose
    files; checked by name), else None."""
    folder = cache_dir() if folder is None else folder
    if all((folder / name).is_file() for name in names):
        return folder
    return None


def extract_model_files(
    wheel: Path, folder: Path, names: Mapping[str, tuple[str, str]] = ALL_MODEL_FILES
) -> Path:
    """Copy the model files of ``names`` (file name -> (member, SHA-256)) out of a
    mediapipe wheel into ``folder``, checking every hash before writing any file;
    returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{wheel}: not a readable wheel: {exc}") from None
    contents = {}
    with archive:
        for name, (member, expected) in names.items():
            try:
                data = archive.read(member)
            except KeyError:
                raise ModelError(f"{wheel} does not contain {member}") from None
            if _sha256(data) != expected:
                raise ModelError(
                    f"{member} in {wheel} has SHA-256 {_sha256(data)}, expected {expected}"
                )
            contents[name] = data
    for name, data in contents.items():
        temp = folder / f".{name}.part"
        temp.write_bytes(data)
        os.replace(temp, folder / name)
    return folder


def fetch_model_files(
    folder: Path | None = None,
    *,
    timeout_s: float = 600.0,
    names: Mapping[str, tuple[str, str]] = ALL_MODEL_FILES,
) -> Path:
    """Download the mediapipe wheel (no dependencies) unless ``folder`` already holds
    every file of ``names``, and keep the model files (all of :data:`ALL_MODEL_FILES`).

    Returns:
        The folder holding ``pose_detection.tflite``, ``pose_landmark_full.tflite`` and
        ``face_landmark.tflite``.

    Raises:
        ModelError: pip failed (offline, no wheel for this platform) or a hash differs.
    """
    folder = cache_dir() if folder is None else folder
    if cached_model_files(folder, names) is not None:
        return folder
    log.warning(
        "downloading the BlazePose model files (mediapipe %s wheel, ~36 MB, once) into %s",
        MEDIAPIPE_RELEASE,
        folder,
    )
    with tempfile.TemporaryDirectory(prefix="posekit-mediapipe-") as temp:
        command = [
            sys.executable, "-m", "pip", "download", f"mediapipe=={MEDIAPIPE_RELEASE}",
            "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "-q",
            "-d", temp,
        ]  # fmt: skip
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelError(f"could not run pip to fetch the BlazePose models: {exc}") from None
        wheels = sorted(Path(temp).glob("mediapipe-*.whl"))
        if result.returncode != 0 or not wheels:
            detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise ModelError(
                f"could not download mediapipe=={MEDIAPIPE_RELEASE} to get the BlazePose model "
                f"files ({detail[0]}); on a machine without internet, copy "
                f"{', '.join(ALL_MODEL_FILES)} into {folder} or set POSEKIT_BLAZEPOSE_DIR"
            )
        return extract_model_files(wheels[0], folder, {**ALL_MODEL_FILES, **names})
