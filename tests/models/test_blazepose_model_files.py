"""BlazePose model files from the mediapipe wheel, without installing mediapipe."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from posekit.models.base import ModelError
from posekit.models.blazepose import model_files, runtime


def _wheel(path: Path, contents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in contents.items():
            archive.writestr(member, data)
    return path


def test_a_file_with_another_hash_is_refused(tmp_path: Path) -> None:
    members = {member: b"not the model" for member, _ in model_files.MODEL_FILES.values()}
    wheel = _wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", members)
    with pytest.raises(ModelError, match="SHA-256"):
        model_files.extract_model_files(wheel, tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.tflite"))


def test_files_from_the_wheel_are_found_through_the_cache(tmp_path: Path, monkeypatch) -> None:
    try:
        installed = runtime.find_model_dir()
    except ModelError:
        pytest.skip("no BlazePose model files here to build a wheel from")
    members = {}
    for path in installed:
        member, expected = model_files.MODEL_FILES[path.name]
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == expected
        members[member] = data
    wheel = _wheel(tmp_path / "mediapipe-0.10.21-py3-none-any.whl", members)
    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(runtime.ENV_MODEL_DIR, raising=False)
    # a wheel with only the pose files: extracting just those (as an older cache holds)
    folder = model_files.extract_model_files(
        wheel, model_files.cache_dir(), model_files.MODEL_FILES
    )
    det, lmk = runtime.find_model_dir()
    assert det.parent == lmk.parent == folder
    assert model_files.fetch_model_files(names=model_files.MODEL_FILES) == folder  # no download
    with pytest.raises(ModelError, match=r"does not contain .*face_landmark"):
        model_files.extract_model_files(wheel, tmp_path / "other")  # all files by default
    assert not list((tmp_path / "other").glob("*.tflite"))


def test_offline_without_files_names_the_command(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    monkeypatch.setenv("POSEKIT_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("POSEKIT_OFFLINE", "1")
    monkeypatch.delenv(runtime.ENV_MODEL_DIR, raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError, match="posekit models fetch blazepose"):
        runtime.find_model_dir()
