"""The video view in real Chromium against the real server: open a video from the
project page, play, step, edit an interpolated frame (it becomes a keyframe, stored),
conflicts (keep mine / take theirs), visibility, mirror, undo/redo across frames with
autosave, copying the previous frame's skeleton, split and merge from the track list,
"track forward" with a fake pose model, and frame cards in the project grid. Every
result is checked in the store, through the API.

Each test has its own video (a PNG frame folder of a bright square walking right,
``video_fakes``), so every position is exact and no test's tracks lie under another's
points; the fake pose model ``squares`` follows the square.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from video_fakes import SquarePose, square_pose_keypoints

from .conftest import CLIENT_HEADERS, LiveServer, require_browser, walker, walker_videos

FRAMES = 24
VIDEOS = ("play", "edit", "tools", "copy", "split", "propagate", "grid")


def pose_body(x: float, y: float, **extra: Any) -> dict[str, Any]:
    return {"keypoints": square_pose_keypoints(x, y).tolist(), "visibility": [2] * 17, **extra}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_browser()
    from posekit.models import registry

    root = tmp_path_factory.mktemp("ui-video")
    project_id, videos = walker_videos(root, VIDEOS, FRAMES)
    previous = registry.POSE_ESTIMATORS.get("squares")
    registry.POSE_ESTIMATORS["squares"] = lambda arg, **options: SquarePose()
    try:
        with LiveServer(root / "ws", headers=CLIENT_HEADERS) as live:
            live.project_id, live.videos = project_id, videos
            yield live
    finally:
        if previous is None:
            registry.POSE_ESTIMATORS.pop("squares", None)
        else:
            registry.POSE_ESTIMATORS["squares"] = previous


# The browser and page fixtures: tests/server/conftest.py.


# ---------------------------------------------------------------- helpers
def _state(page: Any) -> dict[str, Any]:
    return page.evaluate("window.posekit.state()")


def _open(page: Any, server: LiveServer, video: str, frame: int | None = None) -> int:
    vid = server.videos[video]
    if frame is None:
        # From the project page's video list.
        page.goto(f"{server.url}/#/projects/{server.project_id}")
        page.click(f"#video-list a[data-video-id='{vid}']")
    else:
        page.goto(f"{server.url}/#/projects/{server.project_id}/videos/{vid}?frame={frame}")
    page.wait_for_selector("body[data-page=video]")
    return vid


def _wait_frame(page: Any, frame: int) -> None:
    page.wait_for_function(f"window.posekit.state() && window.posekit.state().frame === {frame}")


def _seek(page: Any, frame: int) -> None:
    page.fill("#vv-frame", str(frame))
    page.press("#vv-frame", "Enter")
    _wait_frame(page, frame)


def _until(check: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy (the stored result)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _track(server: LiveServer, vid: int, track_id: int) -> dict[str, Any] | None:
    tracks = server.call("GET", f"/api/videos/{vid}/tracks")
    return next((t for t in tracks if t["track_id"] == track_id), None)


def _shown(server: LiveServer, vid: int, frame: int, track_id: int) -> dict[str, Any]:
    """What the store shows for a track on a frame (stored or interpolated)."""
    instances = server.call("GET", f"/api/videos/{vid}/frames/{frame}/instances")
    (found,) = [i for i in instances if i["track_id"] == track_id]
    return found


def _stored(server: LiveServer, vid: int, frame: int, track_id: int) -> dict[str, Any] | None:
    """The track's stored instance on a frame, or None."""
    instances = server.call("GET", f"/api/videos/{vid}/frames/{frame}/instances")
    return next((i for i in instances if i["track_id"] == track_id and not i["interpolated"]), None)


def _on_page(page: Any, track_id: int) -> dict[str, Any]:
    (found,) = [i for i in _state(page)["instances"] if i["track_id"] == track_id]
    return found


def _drag(page: Any, track_id: int, k: int, dx: float, dy: float) -> None:
    start = page.evaluate(f"window.posekit.clientPoint({track_id}, {k})")
    page.mouse.move(start["x"], start["y"])
    page.mouse.down()
    page.mouse.move(start["x"] + dx, start["y"] + dy, steps=4)
    page.mouse.up()


def _click_point(page: Any, track_id: int, k: int) -> None:
    point = page.evaluate(f"window.posekit.clientPoint({track_id}, {k})")
    page.mouse.click(point["x"], point["y"])


def _new_track(server: LiveServer, vid: int, label: str, keyframes: dict[int, Any]) -> int:
    base = f"/api/videos/{vid}"
    track = server.call("POST", f"{base}/tracks", {"label": label})["track_id"]
    for frame, (x, y) in keyframes.items():
        server.call("PUT", f"{base}/tracks/{track}/keyframes/{frame}", pose_body(x, y))
    return track


# ---------------------------------------------------------------- tests
def test_open_play_pause_and_step(page: Any, server: LiveServer) -> None:
    _open(page, server, "play")
    state = _state(page)
    assert state["kind"] == "video" and state["frame"] == 0 and not state["playing"]
    assert "frame 0 / 23" in page.inner_text("#vv-info")
    page.wait_for_function("document.querySelector('#tl-strip').naturalWidth > 0")

    page.click("#vv-play")
    page.wait_for_function("window.posekit.state().frame >= 4")
    page.keyboard.press("Space")  # pause
    assert not _state(page)["playing"]
    paused_at = _state(page)["frame"]
    time.sleep(0.3)
    assert _state(page)["frame"] == paused_at

    page.keyboard.press("Home")
    _wait_frame(page, 0)
    page.keyboard.press(".")
    _wait_frame(page, 1)
    page.keyboard.press("Shift+ArrowRight")
    _wait_frame(page, 2)
    page.keyboard.press(",")
    _wait_frame(page, 1)
    page.click("#vv-next")
    _wait_frame(page, 2)
    _seek(page, 17)
    assert "frame 17 / 23" in page.inner_text("#vv-info")
    # Clicking the timeline seeks: its right end is the last frame.
    box = page.locator("#timeline").bounding_box()
    page.mouse.click(box["x"] + box["width"] - 1, box["y"] + 10)
    _wait_frame(page, FRAMES - 1)

    # The prefetcher has every frame of this short video once it is idle.
    page.wait_for_function("window.posekit.state().frames.idle")
    assert _state(page)["frames"]["cached"] == FRAMES
    for frame in np.random.default_rng(0).permutation(FRAMES)[:12]:
        _seek(page, int(frame))
    ms = np.array(_state(page)["requestMs"])
    p50, p95 = np.percentile(ms, [50, 95])
    print(f"\nvideo view seek: n={len(ms)} p50={p50:.1f} ms p95={p95:.1f} ms")


def test_interpolate_keyframe_edit_and_conflicts(page: Any, server: LiveServer) -> None:
    vid = server.videos["edit"]
    base = f"/api/videos/{vid}"
    track = _new_track(server, vid, "walker", {2: (10, 20), 6: (30, 40)})
    _open(page, server, "edit", frame=4)
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    page.wait_for_selector(f"#tl-rows .tl-row[data-track-id='{track}'] .tl-key[data-frame='6']")

    # Frames between the keyframes show the interpolated positions the API computes.
    for frame, (x, y) in {3: (15, 25), 4: (20, 30), 5: (25, 35)}.items():
        _seek(page, frame)
        shown = _on_page(page, track)
        assert shown["interpolated"] and not shown["keyframe"]
        np.testing.assert_allclose(shown["keypoints"], square_pose_keypoints(x, y), atol=1e-4)

    # Drag keypoint 0 on interpolated frame 4: autosaved as a keyframe.
    _seek(page, 4)
    scale = page.evaluate("window.posekit.view.scale")
    _drag(page, track, 0, 15, 6)
    _until(lambda: _track(server, vid, track)["keyframes"] == [2, 4, 6], "the keyframe")
    stored = _shown(server, vid, 4, track)
    assert stored["keyframe"] and not stored["interpolated"] and stored["version"] == 1
    assert stored["keypoints"][0] == pytest.approx([20 + 15 / scale, 30 + 6 / scale], abs=0.05)
    assert stored["keypoints"][1] == pytest.approx(square_pose_keypoints(20, 30)[1].tolist())
    page.wait_for_selector("#vv-save[data-state=saved]")
    page.wait_for_selector(f"#tl-rows .tl-row[data-track-id='{track}'] .tl-key[data-frame='4']")

    # Someone else changes the frame: the next edit here conflicts (409); yours stays,
    # "Take theirs" shows theirs and sends nothing.
    server.call("PUT", f"{base}/tracks/{track}/keyframes/4", pose_body(21, 30, version=1))
    _drag(page, track, 5, 9, 0)
    page.wait_for_selector("#vv-save[data-state=conflict]")
    page.wait_for_selector("#vv-panel .conflict")
    assert _state(page)["instances"][0]["conflict"]["version"] == 2
    page.click("#vv-panel .conflict .take-theirs")
    page.wait_for_selector("#vv-save[data-state=saved]")
    mine = _on_page(page, track)
    assert mine["version"] == 2 and mine["conflict"] is None and not mine["dirty"]
    np.testing.assert_allclose(mine["keypoints"], square_pose_keypoints(21, 30))
    assert _shown(server, vid, 4, track)["version"] == 2

    # Again, and "Keep mine" overwrites theirs with yours.
    server.call("PUT", f"{base}/tracks/{track}/keyframes/4", pose_body(22, 30, version=2))
    _drag(page, track, 5, 6, 3)
    page.wait_for_selector("#vv-panel .conflict")
    wanted = _on_page(page, track)["keypoints"]
    page.click("#vv-panel .conflict .keep-mine")
    stored = _until(
        lambda: (s := _shown(server, vid, 4, track))["version"] == 4 and s, "keep mine saved"
    )
    np.testing.assert_allclose(stored["keypoints"], wanted, atol=1e-3)
    # Point 5 of the pose at (21, 30) (theirs, taken), then moved by this drag.
    assert stored["keypoints"][5] == pytest.approx([25 + 6 / scale, 34 + 3 / scale], abs=0.05)
    page.wait_for_selector("#vv-save[data-state=saved]")


def test_visibility_mirror_undo_redo_autosave(page: Any, server: LiveServer) -> None:
    vid = server.videos["tools"]
    track = _new_track(server, vid, "tools", {2: (40, 30), 6: (60, 30)})
    _open(page, server, "tools", frame=4)
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    interpolated = square_pose_keypoints(50, 30)
    left, right = 5, 6  # left/right shoulder: a flip pair of COCO-17

    # V on a selected point of an interpolated frame: stored as a keyframe, occluded.
    _click_point(page, track, left)
    assert _state(page)["selected"] == [[_on_page(page, track)["key"], [left]]]
    page.keyboard.press("v")

    def stored_vis(k: int, v: int) -> Any:
        shown = _shown(server, vid, 4, track)
        return not shown["interpolated"] and shown["visibility"][k] == v and shown

    stored = _until(lambda: stored_vis(left, 1), "occluded")
    np.testing.assert_allclose(stored["keypoints"], interpolated, atol=1e-4)
    assert _track(server, vid, track)["keyframes"] == [2, 4, 6]

    # The side panel's badge cycles on: occluded -> not labeled.
    page.click(f"#vv-keypoints button[data-k='{left}']")
    _until(lambda: stored_vis(left, 0), "not labeled")

    # M mirrors: the left/right data swap.
    page.keyboard.press("m")
    stored = _until(lambda: stored_vis(right, 0), "mirrored")
    assert stored["visibility"][left] == 2
    np.testing.assert_allclose(stored["keypoints"][left], interpolated[right], atol=1e-4)

    # Undo from the toolbar: mirror undone.
    page.click("#vv-undo")
    _until(lambda: stored_vis(left, 0), "mirror undone")
    # Undo from another frame goes back to frame 4 first.
    _seek(page, 10)
    page.keyboard.press("Control+z")
    _wait_frame(page, 4)
    _until(lambda: stored_vis(left, 1), "visibility undone")
    # Undoing the first edit makes the frame interpolated again: the keyframe is gone.
    page.keyboard.press("Control+z")
    _until(lambda: _track(server, vid, track)["keyframes"] == [2, 6], "keyframe removed")
    assert _shown(server, vid, 4, track)["interpolated"]
    assert _state(page)["undo"] == 0 and _state(page)["redo"] == 3
    # Redo twice: the keyframe comes back with its edits.
    page.keyboard.press("Control+Shift+z")
    _until(lambda: stored_vis(left, 1), "redo occluded")
    page.keyboard.press("Control+y")
    _until(lambda: stored_vis(left, 0), "redo not labeled")
    assert _track(server, vid, track)["keyframes"] == [2, 4, 6]
    page.wait_for_selector("#vv-save[data-state=saved]")

    # Arrow keys nudge the selected point by one pixel; leaving the view at once still
    # saves the edit (the autosave delay has not passed).
    _click_point(page, track, 0)
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.click(".page-head a")
    page.wait_for_selector("body[data-page=project]")
    _until(
        lambda: (
            _shown(server, vid, 4, track)["keypoints"][0]
            == pytest.approx((interpolated[0] + 1).tolist())
        ),
        "nudged",
    )


def test_copy_previous_frame(page: Any, server: LiveServer) -> None:
    vid = server.videos["copy"]
    track = _new_track(server, vid, "copy", {8: (10, 20), 12: (30, 40)})
    _open(page, server, "copy", frame=10)
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    # Frame 9 shows 1/4 of the way from keyframe 8 to 12; C copies it onto frame 10.
    page.keyboard.press("c")
    stored = _until(lambda: _stored(server, vid, 10, track), "the copied keyframe")
    np.testing.assert_allclose(stored["keypoints"], square_pose_keypoints(15, 25), atol=1e-4)
    assert stored["keyframe"] and stored["status"] == "accepted"
    assert _track(server, vid, track)["keyframes"] == [8, 10, 12]
    page.wait_for_selector(f"#tl-rows .tl-row[data-track-id='{track}'] .tl-key[data-frame='10']")

    # Past the track's end (an outside mark), C brings the track back on that frame.
    server.call("PUT", f"/api/videos/{vid}/tracks/{track}/outside/14", {"outside": True})
    _seek(page, 13)
    _seek(page, 14)
    assert not [i for i in _state(page)["instances"] if i["track_id"] == track]
    page.click("#vv-copy")
    stored = _until(lambda: _stored(server, vid, 14, track), "copied onto the outside frame")
    np.testing.assert_allclose(stored["keypoints"], square_pose_keypoints(30, 40), atol=1e-4)
    track_now = _track(server, vid, track)
    assert track_now["keyframes"] == [8, 10, 12, 14] and 14 not in track_now["outside"]
    # ... and undo takes it away again.
    page.keyboard.press("Control+z")
    _until(lambda: _track(server, vid, track)["keyframes"] == [8, 10, 12], "copy undone")


def test_split_and_merge_tracks(page: Any, server: LiveServer) -> None:
    vid = server.videos["split"]
    track = _new_track(server, vid, "split", {2: (10, 20), 5: (20, 30), 9: (40, 30)})
    _open(page, server, "split", frame=5)
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    page.click("#vv-split")
    page.wait_for_selector("#vv-status[data-state=saved]")
    tracks = server.call("GET", f"/api/videos/{vid}/tracks")
    (new,) = [t for t in tracks if t["track_id"] != track]
    old = _track(server, vid, track)
    assert old["keyframes"] == [2] and old["outside"] == [5]
    assert new["keyframes"] == [5, 9]
    assert f"track #{new['track_id']}" in page.inner_text("#vv-status")
    # The timeline has a row per track; the new one is selected.
    new_row = f"#tl-rows .tl-row[data-track-id='{new['track_id']}']"
    page.wait_for_selector(f"{new_row} .tl-key[data-frame='9']")
    assert page.locator(f"#tl-rows .tl-row[data-track-id='{track}'] .tl-key").count() == 1
    assert _state(page)["selectedTrack"] == new["track_id"]
    assert _on_page(page, new["track_id"])["keyframe"]

    # Merge the new track back into the old one.
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    page.select_option("#vv-merge-with", str(new["track_id"]))
    page.click("#vv-merge")
    page.wait_for_function("window.posekit.state().tracks.length === 1")
    merged = server.call("GET", f"/api/videos/{vid}/tracks")
    assert [t["track_id"] for t in merged] == [track]
    assert merged[0]["keyframes"] == [2, 5, 9] and merged[0]["outside"] == []
    page.wait_for_selector(new_row, state="detached")
    assert page.locator(f"#tl-rows .tl-row[data-track-id='{track}'] .tl-key").count() == 3
    assert _on_page(page, track)["keyframe"]


def test_propagate_forward(page: Any, server: LiveServer) -> None:
    vid = server.videos["propagate"]
    track = _new_track(server, vid, "tracked", {10: walker(10)})
    _open(page, server, "propagate", frame=10)
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    page.fill("#vv-count", "4")
    page.fill("#vv-model", "squares")
    page.click("#vv-propagate")
    page.wait_for_selector("#vv-status[data-state=saved]")
    assert "4 frame(s)" in page.inner_text("#vv-status")
    assert _track(server, vid, track)["frames"] == [10, 11, 12, 13, 14]
    _seek(page, 13)
    shown = _on_page(page, track)
    assert shown["status"] == "predicted" and not shown["interpolated"]
    np.testing.assert_array_equal(shown["keypoints"], square_pose_keypoints(*walker(13)))
    # Y accepts the prediction: stored as a keyframe.
    page.keyboard.press("y")
    _until(lambda: _shown(server, vid, 13, track)["status"] == "accepted", "accepted")
    assert 13 in _track(server, vid, track)["keyframes"]
    # Delete removes the prediction on frame 12: the frame is interpolated from 11 to 13.
    _seek(page, 12)
    page.click(f"#vv-tracks li[data-track-id='{track}']")
    page.keyboard.press("Delete")
    _until(lambda: _track(server, vid, track)["frames"] == [10, 11, 13, 14], "deleted")
    _seek(page, 11)
    _seek(page, 12)
    assert _on_page(page, track)["interpolated"]


def test_frame_items_link_to_the_video_view(page: Any, server: LiveServer) -> None:
    """Frame items (made by keyframe edits) show in the grid as frame cards, with the
    video's name and the frame index, that open the video view at their frame."""
    vid = server.videos["grid"]
    _new_track(server, vid, "grid", {20: walker(20)})
    page.goto(f"{server.url}/#/projects/{server.project_id}")
    card = page.locator(f".card[data-video-id='{vid}'][data-frame='20']")
    card.wait_for()
    assert card.locator(".card-name").inner_text() == "grid"
    assert "frame 20" in card.locator(".card-meta").inner_text()
    card.scroll_into_view_if_needed()
    picture = card.locator("img")
    picture.evaluate("(i) => i.complete || new Promise((r) => i.addEventListener('load', r))")
    assert picture.evaluate("(i) => i.naturalWidth") > 0
    card.click()
    page.wait_for_selector("body[data-page=video]")
    _wait_frame(page, 20)
    assert page.inner_text("#video-name") == "grid"
