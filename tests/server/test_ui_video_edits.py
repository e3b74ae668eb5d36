"""Edge cases of editing on video frames (static/video_edit.js), in real Chromium
against the real server, every result checked in the store:

* undo of "copy the previous frame" (C) onto a frame where the track is outside sets
  the outside mark again (redo takes it away again);
* overwriting a keyframe (C onto a keyframe's frame, undo, redo; C onto a keyframe
  just saved from an interpolated frame) sends the stored version it read, and no
  save meets a 409 on the way;
* an edit of an interpolated frame expects nothing stored there: a keyframe someone
  stored meanwhile is a conflict (take theirs, keep mine), not silently overwritten;
* reject (X) on video frames: the selected prediction, then every prediction of the
  frame, stored as ``rejected`` and no longer shown; undo takes the rejection back.

Each test has its own frame-folder video of a square walking right (``video_fakes``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from video_fakes import square_pose_keypoints

from .conftest import LiveServer, checked_page, log_in, require_browser, walker, walker_videos
from .test_ui_video import _on_page, _seek, _state, _until, _wait_frame, pose_body

FRAMES = 24
VIDEOS = ("outside", "overwrite", "reject", "expect")


class Server:
    """LiveServer plus the ids of this module's project and videos."""

    def __init__(self, live: LiveServer, root: Path, project_id: int, videos: dict) -> None:
        self.live, self.root, self.project_id, self.videos = live, root, project_id, videos
        self.url, self.app = live.url, live.app

    def call(self, method: str, path: str, body: Any = None) -> Any:
        return self.live.call(method, path, body)

    def track(self, vid: int, track_id: int) -> dict[str, Any]:
        tracks = self.call("GET", f"/api/videos/{vid}/tracks")
        return next(t for t in tracks if t["track_id"] == track_id)

    def shown(self, vid: int, frame: int, track_id: int) -> list[dict[str, Any]]:
        instances = self.call("GET", f"/api/videos/{vid}/frames/{frame}/instances")
        return [i for i in instances if i["track_id"] == track_id]

    def stored_status(self, instance_id: int) -> tuple[str, int]:
        from posekit.store import Workspace

        with Workspace(self.root / "ws") as ws:
            record = ws.get_instance(instance_id)
        return record.instance.status, record.version


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_browser()
    from posekit import Instance
    from posekit.store import Workspace

    root = tmp_path_factory.mktemp("ui-video-edits")
    project_id, videos = walker_videos(root, VIDEOS, FRAMES)
    # Model predictions of track 1 on every frame of "reject" (status predicted),
    # and of a second track 2 (shifted down) on frame 6.
    preds = {
        f: [
            Instance(
                square_pose_keypoints(*walker(f)),
                np.full(17, 2),
                score=0.8,
                source="model:squares",
                status="predicted",
                track_id=1,
            )
        ]
        for f in range(FRAMES)
    }
    preds[6].append(
        Instance(
            square_pose_keypoints(walker(6)[0], 60),
            np.full(17, 2),
            score=0.7,
            source="model:squares",
            status="predicted",
            track_id=2,
        )
    )
    with Workspace(root / "ws") as ws:
        ws.write_frame_predictions(videos["reject"], preds)
    with LiveServer(root / "ws") as live:
        yield Server(live, root, project_id, videos)


@pytest.fixture()
def page(browser: Any, server: Server) -> Iterator[Any]:
    """The standard page (conftest), also collecting the responses with status 409."""
    with checked_page(browser) as page:
        page.conflicts = []
        page.on(
            "response",
            lambda r: (
                page.conflicts.append(f"{r.request.method} {r.url}") if r.status == 409 else None
            ),
        )
        log_in(page, server)
        yield page


def _open(page: Any, server: Server, video: str, frame: int) -> int:
    vid = server.videos[video]
    page.goto(f"{server.url}/#/projects/{server.project_id}/videos/{vid}?frame={frame}")
    page.wait_for_selector("body[data-page=video]")
    _wait_frame(page, frame)
    return vid


def _new_track(server: Server, vid: int, keyframes: dict[int, tuple[float, float]]) -> int:
    base = f"/api/videos/{vid}"
    track = server.call("POST", f"{base}/tracks", {"label": "t"})["track_id"]
    for frame, (x, y) in keyframes.items():
        server.call("PUT", f"{base}/tracks/{track}/keyframes/{frame}", pose_body(x, y))
    return track


def _select_track(page: Any, track: int) -> None:
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    page.wait_for_function(f"window.posekit.state().selectedTrack === {track}")


def _saved(page: Any) -> None:
    page.wait_for_selector("#vv-save[data-state=saved]")


# ---------------------------------------------------------------- tests
def test_undo_of_copy_onto_an_outside_frame_restores_the_outside_mark(
    page: Any, server: Server
) -> None:
    vid = server.videos["outside"]
    track = _new_track(server, vid, {8: (10, 20), 12: (30, 40)})
    server.call("PUT", f"/api/videos/{vid}/tracks/{track}/outside/14", {"outside": True})
    _open(page, server, "outside", 14)
    _select_track(page, track)
    assert not [i for i in _state(page)["instances"] if i["track_id"] == track]

    page.keyboard.press("c")  # frame 13 holds keyframe 12's pose: copied onto 14
    _until(lambda: server.track(vid, track)["keyframes"] == [8, 12, 14], "the copy")
    assert 14 not in server.track(vid, track)["outside"]
    (stored,) = server.shown(vid, 14, track)
    np.testing.assert_allclose(stored["keypoints"], square_pose_keypoints(30, 40), atol=1e-4)
    _saved(page)

    page.keyboard.press("Control+z")
    after = _until(
        lambda: (
            (t := server.track(vid, track))["keyframes"] == [8, 12] and 14 in t["outside"] and t
        ),
        "the outside mark back after undo",
    )
    assert after["outside"] == [14]
    assert server.shown(vid, 14, track) == []  # the frame shows nothing again
    _saved(page)
    assert not [i for i in _state(page)["instances"] if i["track_id"] == track]

    page.keyboard.press("Control+Shift+z")  # redo: the keyframe again, no outside mark
    _until(
        lambda: (t := server.track(vid, track))["keyframes"] == [8, 12, 14] and not t["outside"],
        "the copy redone",
    )
    _saved(page)
    page.keyboard.press("Control+z")
    _until(lambda: server.track(vid, track)["outside"] == [14], "undone again")
    _saved(page)
    assert page.conflicts == []


def test_overwriting_a_keyframe_sends_its_version_and_meets_no_conflict(
    page: Any, server: Server
) -> None:
    vid = server.videos["overwrite"]
    track = _new_track(server, vid, {4: (10, 20), 8: (30, 40)})
    _open(page, server, "overwrite", 8)
    _select_track(page, track)
    key = _on_page(page, track)
    assert key["keyframe"] and key["version"] == 1

    # C onto keyframe 8: frame 7 shows 3/4 of the way from 4 to 8.
    page.keyboard.press("c")
    stored = _until(
        lambda: (s := server.shown(vid, 8, track)[0])["version"] == 2 and s, "overwritten"
    )
    np.testing.assert_allclose(stored["keypoints"], square_pose_keypoints(25, 35), atol=1e-4)
    assert stored["keyframe"] and server.track(vid, track)["keyframes"] == [4, 8]
    _saved(page)

    # Undo and redo overwrite it again, each with the version the last save returned.
    page.keyboard.press("Control+z")
    stored = _until(lambda: (s := server.shown(vid, 8, track)[0])["version"] == 3 and s, "undo")
    np.testing.assert_allclose(stored["keypoints"], square_pose_keypoints(30, 40), atol=1e-4)
    _saved(page)
    page.keyboard.press("Control+Shift+z")
    stored = _until(lambda: (s := server.shown(vid, 8, track)[0])["version"] == 4 and s, "redo")
    np.testing.assert_allclose(stored["keypoints"], square_pose_keypoints(25, 35), atol=1e-4)
    _saved(page)

    # A keyframe saved from an interpolated frame, then edited again: its new version.
    _seek(page, 6)
    assert _on_page(page, track)["interpolated"]
    page.keyboard.press("c")  # frame 5's interpolation onto 6
    _until(lambda: server.track(vid, track)["keyframes"] == [4, 6, 8], "keyframe 6")
    _saved(page)
    page.keyboard.press("c")  # the same again onto the now stored keyframe
    _until(lambda: server.shown(vid, 6, track)[0]["version"] == 2, "keyframe 6 overwritten")
    _saved(page)
    mine = _on_page(page, track)
    assert mine["version"] == 2 and mine["conflict"] is None and not mine["dirty"]
    assert page.conflicts == []


def test_reject_predictions_on_video_frames_and_undo(page: Any, server: Server) -> None:
    vid = server.videos["reject"]
    _open(page, server, "reject", 5)
    _select_track(page, 1)
    shown = _on_page(page, 1)
    assert shown["status"] == "predicted" and shown["id"] is not None
    pred_id = shown["id"]

    # X with the prediction selected: stored as rejected; the frame no longer shows it
    # (the track has no keyframes to interpolate from).
    page.evaluate(f"window.posekit.view.select({shown['key']}, [])")
    page.keyboard.press("x")
    _until(lambda: server.stored_status(pred_id) == ("rejected", 2), "the rejection")
    assert server.shown(vid, 5, 1) == []
    _saved(page)
    assert not [i for i in _state(page)["instances"] if i["track_id"] == 1]

    # Undo: the prediction is back, as it was.
    page.keyboard.press("Control+z")
    _until(lambda: server.stored_status(pred_id) == ("predicted", 3), "rejection undone")
    (back,) = server.shown(vid, 5, 1)
    assert back["status"] == "predicted" and not back["keyframe"]
    np.testing.assert_allclose(back["keypoints"], square_pose_keypoints(*walker(5)))
    _saved(page)
    assert _on_page(page, 1)["status"] == "predicted"

    # Nothing selected on frame 6: every prediction of the frame (both tracks) rejected;
    # frame 5's prediction is left alone.
    _seek(page, 6)
    page.keyboard.press("Escape")
    ids = {i["track_id"]: i["id"] for i in _state(page)["instances"]}
    assert set(ids) == {1, 2}
    page.click("#vv-reject")  # the toolbar button does the same
    _until(
        lambda: all(server.stored_status(i)[0] == "rejected" for i in ids.values()),
        "both rejected",
    )
    _saved(page)
    assert server.shown(vid, 6, 1) == [] and server.shown(vid, 6, 2) == []
    assert server.stored_status(pred_id)[0] == "predicted"
    # Leaving the frame and coming back shows nothing there, and undo still works.
    _seek(page, 7)
    _seek(page, 6)
    assert _state(page)["instances"] == []
    page.keyboard.press("Control+z")
    _until(
        lambda: all(server.stored_status(i)[0] == "predicted" for i in ids.values()),
        "both back",
    )
    _saved(page)
    page.wait_for_function("window.posekit.state().instances.length === 2")
    assert page.conflicts == []


def test_an_interpolated_frame_edit_meets_a_keyframe_stored_meanwhile(
    page: Any, server: Server
) -> None:
    vid = server.videos["expect"]
    base = f"/api/videos/{vid}/tracks"
    track = _new_track(server, vid, {2: (10, 20), 6: (30, 40)})
    _open(page, server, "expect", 4)
    _select_track(page, track)
    assert _on_page(page, track)["interpolated"]
    # Someone else stores a keyframe on frame 4 after this page showed it interpolated.
    server.call("PUT", f"{base}/{track}/keyframes/4", pose_body(50, 30))
    page.keyboard.press("c")  # C sends "nothing stored expected": refused, theirs kept
    page.wait_for_selector("#vv-save[data-state=conflict]")
    page.wait_for_selector("#vv-panel .conflict")
    (theirs,) = server.shown(vid, 4, track)
    assert theirs["version"] == 1
    np.testing.assert_allclose(theirs["keypoints"], square_pose_keypoints(50, 30))
    assert len(page.conflicts) == 1 and "/keyframes/4" in page.conflicts[0]
    page.click("#vv-panel .conflict .take-theirs")
    _saved(page)
    mine = _on_page(page, track)
    assert mine["id"] == theirs["id"] and mine["version"] == 1 and not mine["dirty"]
    np.testing.assert_allclose(mine["keypoints"], square_pose_keypoints(50, 30))
    # Taken over, it is this page's to delete: the frame is interpolated again.
    page.evaluate(f"window.posekit.view.select({mine['key']}, [])")
    page.keyboard.press("Delete")
    _until(lambda: server.track(vid, track)["keyframes"] == [2, 6], "theirs deleted")
    _saved(page)

    # The same on frame 5, and "keep mine" stores mine over theirs, with its version.
    _seek(page, 5)
    assert _on_page(page, track)["interpolated"]
    server.call("PUT", f"{base}/{track}/keyframes/5", pose_body(50, 30))
    # Frame 4 now interpolates 2/3 of the way from keyframe 2 to theirs on frame 5.
    page.keyboard.press("c")
    page.wait_for_selector("#vv-panel .conflict")
    page.click("#vv-panel .conflict .keep-mine")
    stored = _until(
        lambda: (s := server.shown(vid, 5, track)[0])["version"] == 2 and s, "keep mine"
    )
    wanted = square_pose_keypoints(10 + 40 * 2 / 3, 20 + 10 * 2 / 3)
    np.testing.assert_allclose(stored["keypoints"], wanted, atol=1e-3)
    _saved(page)
    assert len(page.conflicts) == 2
