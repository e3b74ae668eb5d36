"""Tests for posekit.render.video: H.264 writing and drawing instances on video frames.

(Named test_video_writer.py, not test_video.py: tests/media/test_video.py exists and
pytest's default import mode refuses two test modules with the same basename.)
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV is not installed (pip install 'posekit[video]')")

from posekit import Instance, get_preset  # noqa: E402
from posekit.media.video import open_video  # noqa: E402
from posekit.render.draw import RenderError  # noqa: E402
from posekit.render.video import (  # noqa: E402
    draw_track_ids,
    draw_video_frames,
    render_video,
    write_video,
)


def gradient_frames(count: int, width: int = 65, height: int = 47):
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    for i in range(count):
        frame = np.zeros((height, width, 3), np.uint8)
        frame[..., 0] = (x * 3 + i * 5) % 256
        frame[..., 1] = (y * 4) % 256
        frame[..., 2] = 128
        yield frame


def person(x: float, y: float, track_id: int | None = None) -> Instance:
    coco = get_preset("coco17")
    offsets = np.linspace(0, 30, coco.num_keypoints)
    keypoints = np.stack([x + offsets * 0.5, y + offsets], axis=1)
    return Instance(keypoints, np.full(coco.num_keypoints, 2), track_id=track_id)


def test_write_video_h264_even_size_and_streaming(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    written = write_video(out, gradient_frames(20), fps=10, crf=12)
    assert written == 20 and out.is_file()
    assert not list(tmp_path.glob(".*partial*"))
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert (stream.width, stream.height) == (66, 48)  # padded to even
    with open_video(out) as video:
        assert video.frame_count == 20 and video.fps == pytest.approx(10.0)
        for i, original in enumerate(gradient_frames(20)):
            decoded = video.frame(i)[:47, :65].astype(np.int32)
            assert np.abs(decoded - original).mean() < 6.0, f"frame {i}"


def test_write_video_keeps_ntsc_rate(tmp_path: Path) -> None:
    out = tmp_path / "ntsc.mkv"
    write_video(out, gradient_frames(6, 64, 48), fps=Fraction(30000, 1001), gop=3)
    with av.open(str(out)) as container:
        assert container.streams.video[0].average_rate == Fraction(30000, 1001)


def test_write_video_errors_leave_no_file(tmp_path: Path) -> None:
    out = tmp_path / "bad.mp4"
    with pytest.raises(RenderError, match=r"bad\.mp4: no frames"):
        write_video(out, [], fps=10)
    mixed = [np.zeros((48, 64, 3), np.uint8), np.zeros((40, 64, 3), np.uint8)]
    with pytest.raises(RenderError, match=r"bad\.mp4: frame 1 is 64x40"):
        write_video(out, mixed, fps=10)
    with pytest.raises(RenderError, match="uint8 RGB"):
        write_video(out, [np.zeros((48, 64), np.uint8)], fps=10)
    with pytest.raises(RenderError, match="fps"):
        write_video(out, gradient_frames(2), fps=0)
    assert list(tmp_path.iterdir()) == []


def test_draw_video_frames_draws_only_where_instances_are() -> None:
    coco = get_preset("coco17")
    frames = [f.copy() for f in gradient_frames(4, 96, 96)]
    instances = {1: [person(20, 20, track_id=3)], 3: [person(40, 30)]}
    drawn = list(draw_video_frames(iter(frames), instances, coco))
    assert len(drawn) == 4
    np.testing.assert_array_equal(drawn[0], frames[0])
    np.testing.assert_array_equal(drawn[2], frames[2])
    assert not np.array_equal(drawn[1], frames[1])
    assert not np.array_equal(drawn[3], frames[3])
    no_ids = list(draw_video_frames(iter(frames), instances, coco, track_ids=False))
    assert not np.array_equal(no_ids[1], drawn[1])  # the "#3" label
    np.testing.assert_array_equal(no_ids[3], drawn[3])  # no track id: nothing written
    by_call = list(
        draw_video_frames(iter(frames[2:]), lambda i: instances.get(i, []), coco, start=2)
    )
    np.testing.assert_array_equal(by_call[1], drawn[3])


def test_draw_track_ids_skips_unlabeled() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    empty = Instance(np.zeros((17, 2)), np.zeros(17), track_id=1)
    draw_track_ids(image, [empty, person(10, 10)])
    assert not image.any()


def test_render_video_end_to_end(tmp_path: Path) -> None:
    coco = get_preset("coco17")
    source = tmp_path / "source.mp4"
    write_video(source, gradient_frames(12, 128, 96), fps=12, gop=4)
    out = tmp_path / "drawn.mp4"
    with open_video(source) as video:
        count = render_video(
            video, {i: [person(30 + i, 20, track_id=i)] for i in range(12)}, coco, out, step=2
        )
        with pytest.raises(RenderError, match="overwrite"):
            render_video(video, {}, coco, source)
    assert count == 6
    with open_video(out) as drawn:
        assert drawn.frame_count == 6 and drawn.fps == pytest.approx(6.0)
        assert (drawn.width, drawn.height) == (128, 96)
