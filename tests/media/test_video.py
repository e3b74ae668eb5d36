"""Tests for posekit.media.video: exact seeking, containers, GIF/WebP, folders, limits, damage.

Test videos are generated here with the frame number written into each frame's pixels
as a row of big black/white blocks (one bit each), so that any decoded frame says which
frame it is, whatever the codec's losses.
"""

from __future__ import annotations

import itertools
import json
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

av = pytest.importorskip("av", reason="PyAV is not installed (pip install 'posekit[video]')")

from posekit.media.video import (  # noqa: E402
    FrameIndexError,
    VideoError,
    VideoIndex,
    VideoLimitError,
    VideoLimits,
    apply_orientation,
    build_video_index,
    open_frame_folder,
    open_video,
    orientation_from_display_matrix,
)

WIDTH, HEIGHT = 160, 96
BITS = 10  # up to 1023 frames
BLOCK = 16


def numbered_frame(number: int, width: int = WIDTH, height: int = HEIGHT) -> np.ndarray:
    """An RGB frame with a moving gradient and ``number`` as BITS blocks on the top row."""
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = ((x + 3 * number) % 128 + 64).astype(np.uint8)
    frame[..., 1] = ((y + 2 * number) % 128 + 64).astype(np.uint8)
    frame[..., 2] = 96
    for bit in range(BITS):
        row, col = divmod(bit, width // BLOCK)
        value = 255 if number >> bit & 1 else 0
        frame[row * BLOCK : (row + 1) * BLOCK, col * BLOCK : (col + 1) * BLOCK] = value
    return frame


def read_number(frame: np.ndarray) -> int:
    number = 0
    width = frame.shape[1]
    for bit in range(BITS):
        row, col = divmod(bit, width // BLOCK)
        center = frame[row * BLOCK + BLOCK // 2, col * BLOCK + BLOCK // 2]
        if int(center.mean()) > 127:
            number |= 1 << bit
    return number


def write_numbered(
    path: Path,
    count: int,
    *,
    codec: str = "libx264",
    fps: int = 25,
    options: dict[str, str] | None = None,
    container_options: dict[str, str] | None = None,
    pts: list[int] | None = None,
    time_base: Fraction | None = None,
    rotation: float | None = None,
    hflip: bool = False,
    frames: list[np.ndarray] | None = None,
) -> Path:
    container = av.open(str(path), "w", options=container_options or {})
    stream = container.add_stream(codec, rate=fps, options=options or {})
    first = frames[0] if frames is not None else numbered_frame(0)
    stream.width, stream.height = first.shape[1], first.shape[0]
    stream.pix_fmt = "yuv420p"
    if time_base is not None:
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
    if rotation is not None:
        stream.set_display_rotation(rotation, hflip=hflip)
    for i in range(count):
        image = frames[i] if frames is not None else numbered_frame(i)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if pts is not None:
            frame.pts = pts[i]
            frame.time_base = time_base
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


@pytest.fixture(scope="module")
def h264(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """75 frames of H.264 with B-frames (x264 defaults), a keyframe every 12 frames."""
    path = tmp_path_factory.mktemp("video") / "numbered.mp4"
    return write_numbered(path, 75, options={"g": "12", "bf": "3"})


def sequential(video) -> list[np.ndarray]:
    return [frame.copy() for frame in video.frames()]


# ------------------------------------------------------------------ exact access
def test_test_video_has_b_frames(h264: Path) -> None:
    with av.open(str(h264)) as container:
        stamps = [p.pts for p in container.demux(video=0) if p.size]
    assert stamps != sorted(stamps), "packets are not reordered: the test needs B-frames"


def test_random_access_equals_sequential_decode(h264: Path) -> None:
    with open_video(h264) as video:
        assert video.frame_count == 75
        frames = sequential(video)
        assert [read_number(f) for f in frames] == list(range(75))
        order = np.random.default_rng(7).permutation(75)
        for i in order:
            image = video.frame(int(i))
            assert image.shape == (HEIGHT, WIDTH, 3) and image.dtype == np.uint8
            assert read_number(image) == i
            np.testing.assert_array_equal(image, frames[i], err_msg=f"frame {i}")
        assert video.seek_count > 1


def test_seeking_after_a_fresh_open_equals_sequential(h264: Path) -> None:
    with open_video(h264) as first:
        frames = sequential(first)
    for i in (74, 13, 12, 11, 0, 40):
        with open_video(h264, cache_frames=0) as video:
            np.testing.assert_array_equal(video.frame(i), frames[i], err_msg=f"frame {i}")


def test_sequential_frame_calls_do_not_seek_again(h264: Path) -> None:
    with open_video(h264, cache_frames=0) as video:
        for i in range(30, 75):
            assert read_number(video.frame(i)) == i
        assert video.seek_count == 1
        video.frame(31)  # backwards: needs a seek
        assert video.seek_count == 2
        video.frame(33)  # same GOP ahead: decodes on
        assert video.seek_count == 2


def test_cache_returns_read_only_frames(h264: Path) -> None:
    with open_video(h264, cache_frames=2) as video:
        first = video.frame(5)
        assert video.frame(5) is first
        assert not first.flags.writeable
        video.frame(6), video.frame(7)
        assert video.frame(5) is not first  # evicted (LRU of 2)
        np.testing.assert_array_equal(video.frame(5), first)


def test_frames_streams_ranges_and_steps(h264: Path) -> None:
    with open_video(h264) as video:
        assert [read_number(f) for f in video.frames(10, 20)] == list(range(10, 20))
        assert [read_number(f) for f in video.frames(3, None, 25)] == [3, 28, 53]
        assert [read_number(f) for f in video.frames(70, 500)] == list(range(70, 75))
        assert list(video.frames(80)) == []
        assert read_number(video[-1]) == 74
        with pytest.raises(ValueError, match="step"):
            video.frames(step=0)


def test_metadata_keyframes_and_timestamps(h264: Path) -> None:
    with open_video(h264) as video:
        assert (video.width, video.height, video.rotation) == (WIDTH, HEIGHT, 0)
        assert video.fps == pytest.approx(25.0)
        assert video.duration == pytest.approx(3.0)
        np.testing.assert_allclose(video.timestamps, np.arange(75) / 25.0)
        assert video.keyframes[0] == 0
        assert np.all(np.diff(video.keyframes) <= 12)
        assert len(video.keyframes) >= 7


def test_out_of_range_and_closed(h264: Path) -> None:
    video = open_video(h264)
    with pytest.raises(FrameIndexError, match=r"numbered\.mp4.*frame 75 out of range"):
        video.frame(75)
    with pytest.raises(IndexError):
        video.frame(-76)
    with pytest.raises(TypeError):
        video.frame(1.5)  # type: ignore[arg-type]
    video.close()
    with pytest.raises(VideoError, match="closed"):
        video.frame(0)


def test_index_round_trips_and_is_reused(h264: Path, caplog: pytest.LogCaptureFixture) -> None:
    index = build_video_index(h264)
    data = json.loads(json.dumps(index.to_dict()))
    again = VideoIndex.from_dict(data)
    np.testing.assert_array_equal(again.pts, index.pts)
    np.testing.assert_array_equal(again.keyframes, index.keyframes)
    assert again.time_base == index.time_base and again.mode == index.mode
    with open_video(h264) as direct, open_video(h264, index=data) as reused:
        assert reused.index is not None and reused.index.to_dict() == data
        for i in (60, 3, 33):
            np.testing.assert_array_equal(reused.frame(i), direct.frame(i))
    stale = dict(data, file_size=data["file_size"] + 1)
    with caplog.at_level(logging.WARNING), open_video(h264, index=stale) as video:
        assert video.frame_count == 75
    assert "rebuilding" in caplog.text


def test_malformed_index_is_refused() -> None:
    with pytest.raises(VideoError, match="version"):
        VideoIndex.from_dict({"version": 99})
    with pytest.raises(VideoError, match="malformed"):
        VideoIndex.from_dict({"version": 1, "pts": [0, 1]})
    with pytest.raises(VideoError, match="increasing"):
        VideoIndex(pts=[0, 2, 1], keyframes=[0], keyframe_seek=[0], time_base=Fraction(1, 25))


def test_variable_frame_rate_timestamps(tmp_path: Path) -> None:
    stamps = [0, 40, 100, 120, 200, 210, 300, 400, 433, 500, 580, 600]
    path = write_numbered(
        tmp_path / "vfr.mkv",
        len(stamps),
        pts=stamps,
        time_base=Fraction(1, 1000),
        options={"bf": "2"},
    )
    with open_video(path) as video:
        assert video.frame_count == len(stamps)
        np.testing.assert_allclose(video.timestamps, np.asarray(stamps) / 1000.0)
        frames = sequential(video)
        assert [read_number(f) for f in frames] == list(range(len(stamps)))
        for i in (11, 4, 0, 7):
            np.testing.assert_array_equal(video.frame(i), frames[i])


# ------------------------------------------------------------------ containers
@pytest.mark.parametrize(
    ("name", "codec", "options", "mode"),
    [
        ("clip.mkv", "libx264", {"g": "12"}, "pts"),
        ("clip.mov", "libx264", {"g": "12"}, "pts"),
        ("clip.webm", "libvpx-vp9", {"g": "12"}, "pts"),
        ("clip.avi", "mpeg4", {"g": "12", "bf": "2", "b": "2000000"}, "pts"),
        # AVI keeps decode-order timestamps: B-frames there are counted, not matched by PTS
        ("clip_h264.avi", "libx264", {"g": "12"}, "decode_order"),
    ],
)
def test_containers(tmp_path: Path, name: str, codec: str, options: dict, mode: str) -> None:
    path = write_numbered(tmp_path / name, 40, codec=codec, options=options)
    with open_video(path) as video:
        assert video.frame_count == 40 and video.index is not None
        assert video.index.mode == mode
        frames = sequential(video)
        assert [read_number(f) for f in frames] == list(range(40))
        for i in np.random.default_rng(1).permutation(40):
            np.testing.assert_array_equal(video.frame(int(i)), frames[i], err_msg=f"frame {i}")


def test_generated_gif_frame_by_frame(tmp_path: Path) -> None:
    durations = [100, 120, 40, 200, 100, 60, 80, 100, 100, 50]
    images = [Image.fromarray(numbered_frame(i)) for i in range(len(durations))]
    path = tmp_path / "numbered.gif"
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    with open_video(path) as video:
        assert video.frame_count == len(durations)
        np.testing.assert_allclose(video.timestamps, np.cumsum([0, *durations[:-1]]) / 1000)
        assert video.duration == pytest.approx(sum(durations) / 1000)
        frames = sequential(video)
        assert [read_number(f) for f in frames] == list(range(len(durations)))
        for i in (9, 2, 5, 0):
            np.testing.assert_array_equal(video.frame(i), frames[i])


def test_animated_webp(tmp_path: Path) -> None:
    images = [Image.fromarray(numbered_frame(i)) for i in range(8)]
    path = tmp_path / "numbered.webp"
    images[0].save(path, save_all=True, append_images=images[1:], duration=125, lossless=True)
    with open_video(path) as video:
        assert (video.frame_count, video.width, video.height) == (8, WIDTH, HEIGHT)
        assert video.fps == pytest.approx(8.0)
        assert [read_number(f) for f in video.frames()] == list(range(8))
        assert read_number(video.frame(6)) == 6


# ------------------------------------------------------------------ shared sample files
def test_shared_gif_is_read_frame_by_frame(shared_data: Path) -> None:
    with open_video(shared_data / "videos" / "skeleton_demo_39f.gif") as video:
        assert (video.frame_count, video.width, video.height) == (39, 320, 180)
        frames = sequential(video)
        assert len(frames) == 39
        assert sum(not np.array_equal(a, b) for a, b in itertools.pairwise(frames)) >= 30
        for i in (38, 20, 1):
            np.testing.assert_array_equal(video.frame(i), frames[i])


def test_shared_street_mp4(shared_data: Path) -> None:
    with open_video(shared_data / "videos" / "street_pedestrians_5f.mp4") as video:
        assert (video.frame_count, video.width, video.height) == (5, 960, 540)
        assert video.fps == pytest.approx(5.0)
        frames = sequential(video)
        for i in (4, 0, 2):
            np.testing.assert_array_equal(video.frame(i), frames[i])


def test_shared_dance_mp4(shared_data: Path) -> None:
    with open_video(shared_data / "formats" / "sleap" / "dance.mp4") as video:
        assert (video.frame_count, video.width, video.height) == (450, 406, 720)
        assert video.fps == pytest.approx(30.0)
        assert video.duration == pytest.approx(15.0)
        reference = {i: f.copy() for i, f in zip(range(440, 450), video.frames(440))}
        np.testing.assert_array_equal(video.frame(445), reference[445])
        np.testing.assert_array_equal(video.frame(441), reference[441])


# ------------------------------------------------------------------ frame folders
def test_frame_folder_natural_order(tmp_path: Path) -> None:
    for i in range(12):
        Image.fromarray(numbered_frame(i)).save(tmp_path / f"frame_{i + 1}.png")
    (tmp_path / "notes.txt").write_text("not a frame")
    with open_frame_folder(tmp_path, fps=12.5) as video:
        assert video.frame_count == 12 and (video.width, video.height) == (WIDTH, HEIGHT)
        assert video.fps == pytest.approx(12.5)
        np.testing.assert_allclose(video.timestamps, np.arange(12) / 12.5)
        assert [read_number(f) for f in video.frames()] == list(range(12))
        assert read_number(video.frame(9)) == 9  # frame_10.png, after frame_9.png
        assert video.index is None


def test_frame_folder_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VideoError, match=r"empty: no frames"):
        open_frame_folder(empty, fps=25)
    unnumbered = tmp_path / "unnumbered"
    unnumbered.mkdir()
    for name in ("a.png", "b.png", "c1.png"):
        Image.fromarray(numbered_frame(0)).save(unnumbered / name)
    with pytest.raises(VideoError, match=r"unnumbered: frame names must be numbered.*a\.png"):
        open_frame_folder(unnumbered, fps=25)
    with pytest.raises(VideoError, match="not a folder"):
        open_frame_folder(tmp_path / "missing", fps=25)
    with pytest.raises(VideoError, match="fps"):
        open_frame_folder(unnumbered, fps=0)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    Image.fromarray(numbered_frame(0)).save(mixed / "1.png")
    Image.fromarray(numbered_frame(1, width=64, height=48)).save(mixed / "2.png")
    with open_frame_folder(mixed, fps=25) as video, pytest.raises(VideoError, match=r"2\.png"):
        video.frame(1)


# ------------------------------------------------------------------ limits
def test_limits_name_the_file(h264: Path, tmp_path: Path) -> None:
    with pytest.raises(VideoLimitError, match=r"numbered\.mp4.*pixels"):
        open_video(h264, limits=VideoLimits(max_pixels=WIDTH * HEIGHT - 1))
    with pytest.raises(VideoLimitError, match=r"numbered\.mp4.*74 frames|numbered\.mp4.*frames"):
        open_video(h264, limits=VideoLimits(max_frames=74))
    with pytest.raises(VideoLimitError, match=r"numbered\.mp4.*lasts"):
        open_video(h264, limits=VideoLimits(max_duration_s=2.5))
    index = build_video_index(h264)
    with pytest.raises(VideoLimitError, match="frames"):
        open_video(h264, index=index, limits=VideoLimits(max_frames=10))
    for i in range(5):
        Image.fromarray(numbered_frame(i)).save(tmp_path / f"{i}.png")
    with pytest.raises(VideoLimitError, match="frames"):
        open_frame_folder(tmp_path, fps=25, limits=VideoLimits(max_frames=4))
    with pytest.raises(VideoLimitError, match="pixels"):
        open_frame_folder(tmp_path, fps=25, limits=VideoLimits(max_pixels=100))


# ------------------------------------------------------------------ damaged files
def test_truncated_mp4_keeps_frames_before_the_cut(tmp_path: Path) -> None:
    path = write_numbered(
        tmp_path / "cut.mp4",
        90,
        options={"g": "12"},
        container_options={"movflags": "+faststart"},
    )
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    with open_video(path) as video:
        assert video.index is not None and video.index.damaged
        assert 20 < video.frame_count < 90
        usable = video.frame_count
        assert [read_number(f) for f in video.frames()] == list(range(usable))
        assert read_number(video.frame(usable - 1)) == usable - 1
        assert read_number(video.frame(3)) == 3
        with pytest.raises(VideoError, match=r"cut\.mp4.*frame 80.*damaged"):
            video.frame(80)


def test_truncated_mp4_without_index_at_the_front(tmp_path: Path) -> None:
    path = write_numbered(tmp_path / "tail.mp4", 30)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"tail\.mp4: not a readable video"):
        open_video(path)


def test_garbage_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x01not a video at all" * 100)
    with pytest.raises(VideoError, match=r"garbage\.mp4"):
        open_video(garbage)
    with pytest.raises(VideoError, match="open_frame_folder"):
        open_video(tmp_path)
    with pytest.raises(VideoError, match=r"nothing\.mp4: file not found"):
        open_video(tmp_path / "nothing.mp4")
    playlist = tmp_path / "playlist.mp4"  # an HLS playlist in disguise is not followed
    playlist.write_text("#EXTM3U\n#EXTINF:1,\nhttp://example.invalid/a.ts\n#EXT-X-ENDLIST\n")
    with pytest.raises(VideoError, match=r"playlist\.mp4"):
        open_video(playlist)


# ------------------------------------------------------------------ rotation
@pytest.mark.skipif(
    not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
    reason="this PyAV cannot write a display matrix (no VideoStream.set_display_rotation)",
)
def test_rotation_side_data_is_applied(tmp_path: Path) -> None:
    plain = write_numbered(tmp_path / "plain.mp4", 6, options={"g": "3"})
    # FFmpeg's display rotation is counter-clockwise: 90 -> show turned 90 ccw
    turned = write_numbered(tmp_path / "turned.mp4", 6, options={"g": "3"}, rotation=90)
    mirrored = write_numbered(
        tmp_path / "mirrored.mp4", 6, options={"g": "3"}, rotation=90, hflip=True
    )
    with open_video(plain) as a, open_video(turned) as b, open_video(mirrored) as c:
        assert (b.rotation, b.width, b.height) == (270, HEIGHT, WIDTH)
        assert c.index is not None and c.index.hflip
        for i in (0, 4):
            np.testing.assert_array_equal(b.frame(i), np.rot90(a.frame(i), k=1))
            np.testing.assert_array_equal(c.frame(i), np.rot90(a.frame(i), k=1)[:, ::-1])


def _dihedral_matrices() -> list[tuple[np.ndarray, str]]:
    one = 65536
    matrices = []
    for turns in range(4):
        for flip in (False, True):
            angle = np.radians(90 * turns)
            cos, sin = round(np.cos(angle)), round(np.sin(angle))
            linear = np.array([[cos, -sin], [sin, cos]])  # av_display_rotation_set layout
            if flip:
                linear = linear * np.array([-1, 1])  # av_display_matrix_flip: column 0
            matrices.append((linear, f"{90 * turns} ccw, hflip={flip}"))
    return [(np.array([*(m[0] * one), 0, *(m[1] * one), 0, 0, 0, 1 << 30]), n) for m, n in matrices]


@pytest.mark.parametrize(("matrix", "name"), _dihedral_matrices())
def test_orientation_from_synthetic_display_matrix(matrix: np.ndarray, name: str) -> None:
    """The decoded orientation maps each pixel where the matrix maps its point."""
    height, width = 3, 5
    source = np.arange(height * width * 3, dtype=np.int32).reshape(height, width, 3)
    rotation, hflip = orientation_from_display_matrix(matrix.tolist())
    shown = apply_orientation(source, rotation, hflip)
    a, b, c, d = matrix[0] / 65536, matrix[1] / 65536, matrix[3] / 65536, matrix[4] / 65536
    # pixel centres (p, q) -> (a p + c q, b p + d q), then shifted to start at 0
    q, p = np.mgrid[0:height, 0:width]
    x = a * p + c * q
    y = b * p + d * q
    x, y = (x - x.min()).astype(int), (y - y.min()).astype(int)
    expected = np.zeros((y.max() + 1, x.max() + 1, 3), dtype=np.int32)
    expected[y, x] = source[q, p]
    np.testing.assert_array_equal(shown, expected, err_msg=name)


def test_orientation_rounds_odd_angles_and_checks_input() -> None:
    angle = np.radians(-88.0)  # nearly 90 degrees clockwise
    m = [
        round(np.cos(angle) * 65536),
        round(-np.sin(angle) * 65536),
        0,
        round(np.sin(angle) * 65536),
        round(np.cos(angle) * 65536),
        0,
        0,
        0,
        1 << 30,
    ]
    assert orientation_from_display_matrix(m) == (90, False)
    with pytest.raises(VideoError, match="9 values"):
        orientation_from_display_matrix([1, 2, 3])
    with pytest.raises(VideoError, match="multiple of 90"):
        apply_orientation(np.zeros((2, 2, 3), np.uint8), 45)
