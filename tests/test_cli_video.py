"""The CLI on videos: import (file, GIF, frame folder), tracked predict with render,
every-n and smoothing, autolabel, export (COCO with PoseTrack fields, csv-tracks),
eval --tracking; errors name the flag or file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from posekit.cli import main
from video_fakes import SquareDetector, SquarePose, square_frames, write_frame_folder

pytest.importorskip("av")


def walker(f: int) -> tuple[int, int]:
    return 8 + 2 * f, 30


@pytest.fixture
def square_models(monkeypatch):
    from posekit.models import registry

    monkeypatch.setitem(registry.DETECTORS, "squares", lambda arg, **o: SquareDetector())
    monkeypatch.setitem(registry.POSE_ESTIMATORS, "squares", lambda arg, **o: SquarePose())
    return ["--detector", "squares", "--pose", "squares"]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    from posekit.render.video import write_video

    path = tmp_path / "walk.mp4"
    write_video(path, square_frames(10, [walker]), 10, crf=0)
    return path


def test_predict_video_writes_tracks_and_renders(clip, tmp_path, capsys, square_models) -> None:
    out, rendered = tmp_path / "pred.json", tmp_path / "tracked.mp4"
    args = ["-q", "predict", str(clip), "-o", str(out), "--render", str(rendered), *square_models]
    assert main([*args, "--every", "2", "--smooth", "one-euro"]) == 0
    err = capsys.readouterr().err
    assert "10 frames, 1 tracks" in err and "rendered 10 frames" in err
    data = json.loads(out.read_text())
    assert len(data["images"]) == 10
    assert {im["vid_id"] for im in data["images"]} == {"walk.mp4"}
    assert [im["nframes"] for im in data["images"]] == [10] * 10
    assert {a["track_id"] for a in data["annotations"]} == {1}
    from posekit.media.video import open_video

    with open_video(rendered) as video:
        assert video.frame_count == 10

    # Ground truth scored against itself: keypoint MOTA 1.0.
    assert main(["eval", str(out), str(out), "--tracking", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert (
        scores["total"]["mota"] == pytest.approx(1.0) and scores["num_frames"] == 9
    )  # 9: past the last sample


def test_explicit_gif_and_frame_folder_are_videos(tmp_path, capsys, square_models) -> None:
    from PIL import Image

    frames = square_frames(6, [walker])
    gif = tmp_path / "walk.gif"
    images = [Image.fromarray(f) for f in frames]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=100, loop=0)
    out = tmp_path / "gif.json"
    assert main(["-q", "predict", str(gif), "-o", str(out), *square_models]) == 0
    assert len(json.loads(out.read_text())["images"]) == 6  # not only the first frame

    folder = write_frame_folder(tmp_path / "frames", frames)
    out2 = tmp_path / "folder.json"
    cmd = ["-q", "predict", "-o", str(out2), "--frames-folder", str(folder), *square_models]
    assert main(cmd) == 2
    err = capsys.readouterr().err
    assert "--frames-folder" in err and "--fps" in err
    assert main([*cmd, "--fps", "5"]) == 0
    assert len(json.loads(out2.read_text())["images"]) == 6


def test_project_video_workflow(clip, tmp_path, capsys, square_models) -> None:
    common = ["-q", "--workspace", str(tmp_path / "ws")]
    assert main([*common, "init", "demo"]) == 0
    assert main([*common, "import", "demo", str(clip), "--dataset", "clips"]) == 0
    assert "10 frames" in capsys.readouterr().err
    assert main([*common, "import", "demo", "--fps", "5"]) == 2
    assert "--fps" in capsys.readouterr().err
    folder = write_frame_folder(tmp_path / "frames", square_frames(4, [walker]))
    assert main([*common, "import", "demo", "--frames-folder", str(folder)]) == 2
    assert "--frames-folder" in capsys.readouterr().err
    assert main([*common, "import", "demo", "--frames-folder", str(folder), "--fps", "4"]) == 0

    assert main([*common, "autolabel", "demo", *square_models]) == 0
    assert "14 items labeled" in capsys.readouterr().err  # 10 + 4 frames

    coco = tmp_path / "labels.json"
    export = [*common, "export", "demo", "--status", "predicted"]
    assert main([*export, "--format", "coco", "-o", str(coco)]) == 0
    data = json.loads(coco.read_text())
    assert {im["vid_id"] for im in data["images"]} == {"walk.mp4", "frames"}
    assert {a["track_id"] for a in data["annotations"]} == {1}

    table = tmp_path / "tracks.csv"
    assert main([*export, "--format", "csv-tracks", "-o", str(table)]) == 0
    rows = list(csv.DictReader(table.open()))
    assert list(rows[0]) == [
        "video",
        "frame",
        "time",
        "track",
        "joint",
        "x",
        "y",
        "visibility",
        "score",
    ]
    assert len(rows) == 14 * 17
    nose = [r for r in rows if r["video"] == "frames" and r["joint"] == "nose"]
    assert [float(r["x"]) for r in nose] == [float(walker(f)[0]) for f in range(4)]
    assert [float(r["time"]) for r in nose] == [0.0, 0.25, 0.5, 0.75]
    assert np.all([r["track"] == "1" for r in rows])


def test_unreadable_video_names_the_file(tmp_path, capsys, square_models) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all")
    assert main(["-q", "predict", str(bad), "-o", str(tmp_path / "x.json"), *square_models]) == 2
    assert "broken.mp4" in capsys.readouterr().err


def test_import_builds_the_seek_proxy_unless_no_proxy(tmp_path, capsys, monkeypatch) -> None:
    """`posekit import` builds a video's seek proxy right away (so the editor seeks fast
    from its first opening); `--no-proxy` leaves it to the server."""
    from media.test_video import numbered_frame, read_number, write_numbered
    from posekit.store import Workspace
    from posekit.store.video_proxies import open_video_proxy, proxy_info

    monkeypatch.setenv("POSEKIT_VIDEO_PROXY_SIDE", "160")  # the 320 px clips need a proxy
    clips = {
        name: write_numbered(
            tmp_path / f"{name}.mp4",
            12,
            frames=[numbered_frame(i + offset, 320, 192) for i in range(12)],
        )
        for name, offset in (("later", 0), ("now", 20))
    }
    common = ["--workspace", str(tmp_path / "ws")]
    assert main([*common, "-q", "init", "demo"]) == 0
    later = [*common, "import", "demo", str(clips["later"]), "--dataset", "a", "--no-proxy"]
    assert main(later) == 0
    assert "seek proxy" not in capsys.readouterr().err
    assert main([*common, "import", "demo", str(clips["now"]), "--dataset", "b"]) == 0
    assert "seek proxy:" in capsys.readouterr().err
    with Workspace(tmp_path / "ws") as ws:
        (skipped,) = ws.list_videos("demo", dataset="a")
        (built,) = ws.list_videos("demo", dataset="b")
        assert not proxy_info(ws, skipped, 160).ready
        assert proxy_info(ws, built, 160).ready
        with open_video_proxy(ws, built, 160) as proxy:
            assert proxy.frame_count == 12
            assert read_number(np.repeat(np.repeat(proxy.frame(7), 2, 0), 2, 1)) == 27


def test_a_bad_proxy_side_is_refused_before_anything_is_imported(
    clip, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("POSEKIT_VIDEO_PROXY_SIDE", "abc")
    common = ["--workspace", str(tmp_path / "ws")]
    assert main([*common, "-q", "init", "demo"]) == 0
    assert main([*common, "import", "demo", str(clip)]) == 2
    assert "POSEKIT_VIDEO_PROXY_SIDE='abc'" in capsys.readouterr().err
    from posekit.store import Workspace

    with Workspace(tmp_path / "ws") as ws:
        assert ws.list_videos("demo") == []
    assert main([*common, "import", "demo", str(clip), "--no-proxy"]) == 0  # not read then
