"""Tests for posekit.media.image: EXIF orientation, bad files, size limits, folders."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from posekit.media import ImageError, find_images, image_size, load_image
from posekit.media import image as image_module


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0"))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    assert image_size(path) == (20, 40)
    loaded = load_image(path)
    assert loaded.shape == (40, 20, 3) and loaded.dtype == np.uint8
    # After a clockwise turn the former left half is on top.
    assert loaded[5, 10, 0] > 200 and loaded[35, 10, 0] < 60


def test_truncated_and_fake_images_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    fake = tmp_path / "fake.jpg"
    fake.write_text("not an image")
    for path in (truncated, fake):
        with pytest.raises(ImageError, match=path.name):
            load_image(path)
    with pytest.raises(ImageError, match="file not found"):
        load_image(tmp_path / "missing.jpg")


def test_huge_images_are_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header_only(30_000, 30_000))
    with pytest.raises(ImageError, match="too large"):
        image_size(bomb)
    small = tmp_path / "small.png"
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(small)
    monkeypatch.setattr(image_module, "MAX_PIXELS", 9_999)
    with pytest.raises(ImageError, match=r"too large \(100x100"):
        load_image(small)


def test_animated_gif_gives_its_first_frame(shared_data: Path) -> None:
    gif = shared_data / "videos" / "skeleton_demo_39f.gif"
    frame = load_image(gif)
    assert frame.shape == (180, 320, 3)
    with Image.open(gif) as im:
        assert getattr(im, "n_frames", 1) == 39
        first = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(frame, first)


def test_find_images_recurses_sorts_and_rejects_missing_paths(tmp_path: Path) -> None:
    for name in ("b/2.png", "a/1.JPG", "a/notes.txt", "c.webp"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in find_images([tmp_path])]
    assert found == ["a/1.JPG", "b/2.png", "c.webp"]
    assert find_images([tmp_path, tmp_path / "c.webp"]) == find_images([tmp_path])
    with pytest.raises(ImageError, match="no such file or folder"):
        find_images([tmp_path / "nope"])
