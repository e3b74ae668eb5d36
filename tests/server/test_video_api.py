"""The video API for the editor: metadata, frames, thumbnails, tracks, frame
instances (stored and interpolated), keyframe/outside edits, split/merge, propagate."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")
from fastapi.testclient import TestClient

from posekit import get_preset
from posekit.server import Settings, create_app
from posekit.store import Workspace
from posekit.store.video_imports import import_video
from video_fakes import SquarePose, square_frames, square_pose_keypoints, write_frame_folder

from .auth_helpers import login_admin


def walker(f: int) -> tuple[int, int]:
    return 6 + 2 * f, 30


def pose_body(x: float, y: float, **extra) -> dict:
    return {
        "keypoints": square_pose_keypoints(x, y).tolist(),
        "visibility": [2] * 17,
        **extra,
    }


@pytest.fixture
def setup(tmp_path: Path, monkeypatch) -> Iterator[tuple[TestClient, int, int]]:
    from posekit.models import registry

    monkeypatch.setitem(registry.POSE_ESTIMATORS, "squares", lambda arg, **o: SquarePose())
    folder = write_frame_folder(tmp_path / "walk", square_frames(12, [walker]))
    with Workspace(tmp_path / "ws") as ws:
        project = ws.create_project("people", get_preset("coco17"))
        video = import_video(ws, project, "clips", folder, frames_folder=True, fps=12).video
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        login_admin(client)
        yield client, project.id, video.id


def test_metadata_frames_and_thumbnails(setup) -> None:
    from PIL import Image

    client, pid, vid = setup
    (listed,) = client.get("/api/videos", params={"project_id": pid}).json()
    assert listed["id"] == vid and listed["frame_count"] == 12 and listed["timestamps"] is None
    meta = client.get(f"/api/videos/{vid}", params={"timestamps": True}).json()
    assert (meta["width"], meta["height"], meta["fps"]) == (160, 96, 12.0)
    assert meta["timestamps"][6] == pytest.approx(0.5)

    response = client.get(f"/api/videos/{vid}/frames/5")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = np.asarray(Image.open(io.BytesIO(response.content)))
    x, y = walker(5)
    assert (
        image.shape == (96, 160, 3) and image[y + 8, x + 8, 0] > 200 and image[y + 8, x - 4, 0] < 50
    )
    again = client.get(
        f"/api/videos/{vid}/frames/5", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304
    assert client.get(f"/api/videos/{vid}/frames/12").status_code == 422
    assert client.get("/api/videos/999").status_code == 404

    strip = client.get(f"/api/videos/{vid}/thumbnails", params={"count": 4, "height": 24})
    assert strip.status_code == 200 and strip.headers["x-frame-indices"] == "0,4,7,11"
    assert Image.open(io.BytesIO(strip.content)).size == (4 * 40, 24)


def test_keyframes_interpolation_outside_split_merge(setup) -> None:
    client, _, vid = setup
    base = f"/api/videos/{vid}"
    track = client.post(f"{base}/tracks", json={"label": "runner"}).json()
    assert track["track_id"] == 1 and track["label"] == "runner"
    first = client.put(f"{base}/tracks/1/keyframes/2", json=pose_body(10, 20))
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 1 and first.json()["track_id"] == 1
    assert client.put(f"{base}/tracks/1/keyframes/6", json=pose_body(30, 40)).status_code == 200

    (shown,) = client.get(f"{base}/frames/3/instances").json()
    assert shown["interpolated"] and not shown["keyframe"] and shown["id"] is None
    assert (shown["previous_keyframe"], shown["next_keyframe"]) == (2, 6)
    np.testing.assert_allclose(shown["keypoints"], square_pose_keypoints(15, 25))

    # Editing the interpolated frame makes it a keyframe; stale versions conflict.
    edited = client.put(f"{base}/tracks/1/keyframes/3", json=pose_body(16, 25)).json()
    stale = client.put(
        f"{base}/tracks/1/keyframes/3", json={**pose_body(17, 25), "version": edited["version"] + 5}
    )
    assert stale.status_code == 409 and stale.json()["current"]["id"] == edited["id"]
    (tracks,) = client.get(f"{base}/tracks").json()
    assert tracks["keyframes"] == [2, 3, 6]

    out = client.put(f"{base}/tracks/1/outside/8", json={"outside": True}).json()
    assert out["outside"] == [8] and client.get(f"{base}/frames/9/instances").json() == []

    new = client.post(f"{base}/tracks/1/split", json={"frame_index": 5}).json()
    assert new["track_id"] == 2 and new["keyframes"] == [5, 6] and new["outside"] == [8]
    merged = client.post(f"{base}/tracks/1/merge", json={"other_track_id": 2}).json()
    assert merged["keyframes"] == [2, 3, 5, 6] and merged["outside"] == [8]
    assert client.put(f"{base}/tracks/4/keyframes/2", json=pose_body(1, 1)).status_code == 200
    clash = client.post(f"{base}/tracks/1/merge", json={"other_track_id": 4})
    assert clash.status_code == 422 and "frame(s) 2" in clash.json()["detail"]

    # version 0: "the frame showed nothing stored"; a second such edit conflicts.
    url = f"{base}/tracks/4/keyframes/9"
    made = client.put(url, json={**pose_body(18, 25), "version": 0})
    assert made.status_code == 200 and made.json()["version"] == 1
    late = client.put(url, json={**pose_body(19, 25), "version": 0})
    assert late.status_code == 409 and late.json()["current"]["id"] == made.json()["id"]
    assert client.put(url, json={**pose_body(1, 1), "version": -1}).status_code == 422
    track4 = [t for t in client.get(f"{base}/tracks").json() if t["track_id"] == 4]
    assert track4[0]["keyframes"] == [2, 9]


def test_propagate_forward(setup) -> None:
    client, _, vid = setup
    base = f"/api/videos/{vid}"
    x, y = walker(1)
    assert client.put(f"{base}/tracks/3/keyframes/1", json=pose_body(x, y)).status_code == 200
    response = client.post(
        f"{base}/tracks/3/propagate", json={"from_frame": 1, "count": 4, "model": "squares"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["frames"] == [2, 3, 4, 5]
    for shown in body["instances"]:
        f = shown["frame_index"]
        assert shown["track_id"] == 3 and shown["status"] == "predicted" and not shown["keyframe"]
        np.testing.assert_array_equal(shown["keypoints"], square_pose_keypoints(*walker(f)))
    track = client.get(f"{base}/tracks").json()[0]
    assert track["frames"] == [1, 2, 3, 4, 5] and track["keyframes"] == [1]
    missing = client.post(f"{base}/tracks/3/propagate", json={"from_frame": 0, "model": "squares"})
    assert missing.status_code == 422


def test_frames_scaled_for_the_view_with_server_timing(setup) -> None:
    from PIL import Image

    client, _, vid = setup
    response = client.get(f"/api/videos/{vid}/frames/5", params={"max_side": 64})
    assert response.status_code == 200
    # The largest whole factor that keeps the longer side at least 64 px: 160 // 64 = 2.
    assert Image.open(io.BytesIO(response.content)).size == (80, 48)
    timing = response.headers["server-timing"]
    assert "decode;dur=" in timing and "encode;dur=" in timing
    again = client.get(f"/api/videos/{vid}/frames/5", params={"max_side": 64})
    assert again.headers["server-timing"] == "cache;desc=hit" and again.content == response.content
    assert again.headers["etag"] != client.get(f"/api/videos/{vid}/frames/5").headers["etag"]
    assert client.get(f"/api/videos/{vid}/frames/5", params={"max_side": 8}).status_code == 422


def test_thumbnails_of_a_video_file_are_keyframes(tmp_path: Path) -> None:
    pytest.importorskip("av", reason="needs the [video] extra (PyAV)")
    from posekit.render.video import write_video

    clip = tmp_path / "clip.mp4"
    frames = [np.full((48, 64, 3), 8 * i, np.uint8) for i in range(20)]
    write_video(clip, frames, 10, gop=5, options={"bf": "0", "sc_threshold": "0"})
    with Workspace(tmp_path / "ws") as ws:
        project = ws.create_project("clips", get_preset("coco17"))
        video = import_video(ws, project, "clips", clip).video
        keyframes = set(video.decode_index["keyframes"])
    app = create_app(Settings(workspace=tmp_path / "ws"))
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        login_admin(client)
        strip = client.get(f"/api/videos/{video.id}/thumbnails", params={"count": 8})
    assert strip.status_code == 200
    shown = [int(i) for i in strip.headers["x-frame-indices"].split(",")]
    assert len(shown) == 8 and set(shown) <= keyframes and shown == sorted(shown)
