"""Tests for posekit.server.uploads: names, sizes and image checks of uploads."""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
from PIL import Image

from posekit.server.uploads import (
    UploadRefused,
    check_image_file,
    remove_tree,
    safe_upload_name,
    save_upload,
    stored_name,
)


def _image_file(path: Path, fmt: str, size: tuple[int, int] = (32, 24)) -> Path:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def _refused(call, status: int) -> UploadRefused:
    with pytest.raises(UploadRefused) as info:
        call()
    assert info.value.status == status
    return info.value


# ------------------------------------------------------------------ names
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.jpg", "a.jpg"),
        ("folder/sub/a.jpg", "folder/sub/a.jpg"),
        ("folder\\a.jpg", "folder/a.jpg"),
    ],
)
def test_safe_upload_name_keeps_relative_folders(raw, expected):
    assert safe_upload_name(raw) == PurePosixPath(expected)


@pytest.mark.parametrize(
    "raw",
    [None, "", "   ", "../a.jpg", "a/../../b.jpg", "/etc/passwd", "C:\\x.jpg", "a\x00.jpg",
     "a\nb.jpg", "x" * 1001],
)  # fmt: skip
def test_safe_upload_name_refuses_unsafe_names_with_422(raw):
    error = _refused(lambda: safe_upload_name(raw), 422)
    assert str(error) == error.message


# ------------------------------------------------------------------ sizes
def test_save_upload_copies_and_creates_folders(tmp_path):
    target = tmp_path / "deep" / "folder" / "a.bin"
    data = b"x" * (3 * 1024 * 1024 + 5)  # over one copy chunk
    assert save_upload(io.BytesIO(data), target, "a.bin", max_bytes=len(data)) == len(data)
    assert target.read_bytes() == data


def test_save_upload_refuses_over_the_limit_with_413(tmp_path):
    error = _refused(
        lambda: save_upload(io.BytesIO(b"x" * 101), tmp_path / "a.bin", "a.bin", max_bytes=100),
        413,
    )
    assert "'a.bin'" in str(error) and "100" in str(error)


# ------------------------------------------------------------------ images
@pytest.mark.parametrize(("fmt", "extension"), [("JPEG", ".jpg"), ("PNG", ".png"), ("BMP", ".bmp")])
def test_check_image_file_returns_the_extension_by_content(tmp_path, fmt, extension):
    path = _image_file(tmp_path / "no_extension", fmt)
    assert check_image_file(path, "no_extension", max_pixels=10_000) == extension


def test_check_image_file_refuses_non_images_and_other_formats_with_415(tmp_path):
    text = tmp_path / "a.jpg"
    text.write_text("not an image")
    assert "not an image" in str(_refused(lambda: check_image_file(text, "a.jpg", 10_000), 415))
    gif = _image_file(tmp_path / "b.gif", "GIF")
    assert "GIF" in str(_refused(lambda: check_image_file(gif, "b.gif", 10_000), 415))


def test_check_image_file_refuses_too_many_pixels_with_413(tmp_path):
    path = _image_file(tmp_path / "big.png", "PNG", size=(40, 30))
    error = _refused(lambda: check_image_file(path, "big.png", max_pixels=40 * 30 - 1), 413)
    assert "'big.png'" in str(error)
    assert check_image_file(path, "big.png", max_pixels=40 * 30) == ".png"


def test_check_image_file_refuses_truncated_images_with_422(tmp_path):
    path = _image_file(tmp_path / "cut.jpg", "JPEG", size=(64, 64))
    path.write_bytes(path.read_bytes()[:300])
    assert "'cut.jpg'" in str(_refused(lambda: check_image_file(path, "cut.jpg", 10_000), 422))


def test_stored_name_adds_the_extension_only_when_missing():
    assert stored_name(PurePosixPath("a/b.JPG"), ".jpg") == PurePosixPath("a/b.JPG")
    assert stored_name(PurePosixPath("a/b"), ".png") == PurePosixPath("a/b.png")
    assert stored_name(PurePosixPath("a/b.txt"), ".jpg") == PurePosixPath("a/b.txt.jpg")


def test_remove_tree_removes_and_ignores_missing(tmp_path):
    folder = tmp_path / "t"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "f").write_text("x")
    remove_tree(folder)
    assert not folder.exists()
    remove_tree(folder)  # already gone: no error
