"""Frames decoded straight to a view's size (``Video.frame(i, size=...)``) and the
decoder that stays positioned: the same pixels by seek, by continuing, or streamed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is not installed (pip install 'posekit[video]')")

from PIL import Image

from media.test_video import numbered_frame, read_number, write_numbered
from posekit.media.video import open_frame_folder, open_video, scale_rgb

HALF = (160, 96)


def read_half(frame: np.ndarray) -> int:
    """The number of a 320x192 numbered frame shown at half size."""
    return read_number(np.repeat(np.repeat(frame, 2, axis=0), 2, axis=1))


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 frames of 320x192 H.264 with B-frames, a keyframe every 12."""
    path = tmp_path_factory.mktemp("scaled") / "big.mp4"
    frames = [numbered_frame(i, 320, 192) for i in range(60)]
    return write_numbered(path, 60, options={"g": "12", "bf": "3"}, frames=frames)


def test_scaled_seek_equals_scaled_stream_in_random_order(big: Path) -> None:
    with open_video(big, cache_frames=0) as video:
        streamed = [frame.copy() for frame in video.frames(size=HALF)]
        assert len(streamed) == 60 and streamed[0].shape == (96, 160, 3)
        for i in np.random.default_rng(3).permutation(60).tolist():
            frame = video.frame(i, size=HALF)
            np.testing.assert_array_equal(frame, streamed[i])
            assert read_half(frame) == i


def test_scaled_frame_is_close_to_the_full_frame_scaled_afterwards(big: Path) -> None:
    with open_video(big, cache_frames=0) as video:
        for i in (0, 13, 59):
            direct = video.frame(i, size=HALF).astype(np.int16)
            after = scale_rgb(np.asarray(video.frame(i)), HALF).astype(np.int16)
            # swscale's area filter vs Pillow's box filter on the same frame
            assert np.abs(direct - after).mean() < 3


def test_full_size_request_is_the_plain_frame(big: Path) -> None:
    with open_video(big, cache_frames=4) as video:
        np.testing.assert_array_equal(video.frame(7, size=(320, 192)), video.frame(7))
        # full and scaled frames are cached apart
        assert video.frame(7, size=HALF).shape == (96, 160, 3)
        assert video.frame(7).shape == (192, 320, 3)


def test_decoder_continuing_forward_gives_the_pixels_of_a_fresh_seek(big: Path) -> None:
    with open_video(big, cache_frames=0) as video:
        video.frame(14, size=HALF)
        seeks = video.seek_count
        # forward within the GOP: the open decoder goes on, no seek
        continued = {i: video.frame(i, size=HALF).copy() for i in (15, 17, 20, 23)}
        assert video.seek_count == seeks
    for i, frame in continued.items():
        with open_video(big, cache_frames=0) as fresh:
            np.testing.assert_array_equal(fresh.frame(i, size=HALF), frame)
            assert fresh.seek_count == 1


def test_rotated_video_scales_to_the_upright_size(tmp_path: Path) -> None:
    frames = [numbered_frame(i, 320, 192) for i in range(6)]
    path = write_numbered(tmp_path / "rot.mp4", 6, rotation=-90, frames=frames)
    with open_video(path) as video:
        assert (video.width, video.height) == (192, 320)
        frame = video.frame(3, size=(96, 160))
        assert frame.shape == (160, 96, 3)
        upright = np.rot90(frame, 1)  # back to the coded orientation
        assert read_half(np.ascontiguousarray(upright)) == 3


def test_sizes_are_checked(big: Path) -> None:
    with open_video(big) as video:
        with pytest.raises(ValueError, match="640x96 must be between 1x1 and the frame's 320x192"):
            video.frame(0, size=(640, 96))
        with pytest.raises(TypeError, match="size must be"):
            video.frame(0, size=160)
        with pytest.raises(ValueError, match="between 1x1"):
            list(video.frames(size=(0, 10)))


def test_frame_folder_scales_with_pillow(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(numbered_frame(i, 320, 192)).save(folder / f"{i}.png")
    video = open_frame_folder(folder, fps=10)
    for i, frame in enumerate(video.frames(size=HALF)):
        assert frame.shape == (96, 160, 3) and read_half(frame) == i
        np.testing.assert_array_equal(video.frame(i, size=HALF), frame)
