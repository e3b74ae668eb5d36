"""The team workflow of issue 12 in real Chromium, two users in two browser contexts.

``lead`` (manager: assigns and reviews) and ``ann`` (annotator) log in with one-time
links. The manager assigns items; the annotator labels one and submits it; the
reviewer rejects one keypoint with a comment; the annotator sees the comment marked
on that keypoint, fixes it and resubmits; the reviewer accepts. The instance's
history then lists all four versions with their author.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .auth_helpers import make_user
from .conftest import LiveServer, image_project, new_page, require_browser

LEFT_WRIST = 9


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A live server: project ``team`` (COCO-17) with three 400x300 images."""
    require_browser()
    from PIL import Image, ImageDraw

    root = tmp_path_factory.mktemp("ui-teams")
    images = root / "images"
    images.mkdir()
    for index in range(3):
        image = Image.new("RGB", (400, 300), (30 + 60 * index, 90, 140))
        ImageDraw.Draw(image).ellipse((150, 60, 250, 260), fill=(220, 200, 180))
        image.save(images / f"person{index}.png")
    project_id = image_project(root / "ws", "team", [images])
    with LiveServer(root / "ws") as live:
        live.project_id = project_id
        yield live


class Person:
    """One user in their own browser context."""

    def __init__(self, browser: Any, server: LiveServer, user: Any) -> None:
        self.user = user
        page = new_page(browser, server, user=user, viewport=(1400, 800), record_dialogs=True)
        self.page, self.context = page, page.context
        self.errors: list[str] = page.errors
        self.dialogs: list[str] = page.dialogs
        self.page.wait_for_selector("body[data-page=projects]")

    def state(self) -> dict[str, Any]:
        return self.page.evaluate("window.posekit.state()")

    def live(self) -> list[dict[str, Any]]:
        return [inst for inst in self.state()["instances"] if not inst["deleted"]]

    def saved(self, version: int) -> dict[str, Any]:
        """Wait until the one instance is saved at ``version``; returns it."""
        self.page.wait_for_function(
            "v => { const s = window.posekit.state(); const i = s && s.instances.filter(r => "
            "!r.deleted); return s && s.saveState === 'saved' && i.length === 1 && "
            "i[0].version === v; }",
            arg=version,
        )
        (inst,) = self.live()
        return inst

    def drag(self, start: dict[str, float], end: dict[str, float]) -> None:
        mouse = self.page.mouse
        mouse.move(start["x"], start["y"])
        mouse.down()
        mouse.move(end["x"], end["y"], steps=6)
        mouse.up()

    def open_project(self, server: LiveServer) -> None:
        self.page.goto(f"{server.url}/#/projects/{server.project_id}?t=1")
        self.page.wait_for_selector("body[data-page=project] #workflow-bar")
        self.page.wait_for_selector(".card")

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], f"JavaScript errors of {self.user.username}: {self.errors}"
        assert self.dialogs == [], f"unexpected dialogs: {self.dialogs}"


def test_assign_label_reject_fix_accept_with_history(browser: Any, server: LiveServer) -> None:
    pid = server.project_id
    lead_user, _ = make_user(server.app, "lead", role="manager", project_id=pid)
    ann_user, _ = make_user(server.app, "ann", role="annotator", project_id=pid)
    ids = sorted(i["id"] for i in server.get(f"/api/projects/{pid}/items")["items"])
    lead = Person(browser, server, lead_user)
    ann = Person(browser, server, ann_user)
    try:
        # The manager selects two items in the grid and assigns them to ann.
        lead.open_project(server)
        for item_id in ids[:2]:
            lead.page.check(f".card-select[data-item-id='{item_id}']")
        lead.page.click("#assign-button")
        lead.page.select_option("#assign-mode", "selected")
        lead.page.select_option("#assign-user", "ann")
        lead.page.click("#assign-ok")
        lead.page.wait_for_selector(f".card[data-item-id='{ids[0]}'] .card-assignee")
        assert lead.page.text_content(f".card[data-item-id='{ids[0]}'] .card-assignee") == " @ann"
        items = {i["id"]: i for i in server.get(f"/api/projects/{pid}/items")["items"]}
        assert [items[i]["assignee"] for i in ids] == ["ann", "ann", None]

        # The annotator's queue opens their first item; they label it in three saves.
        page = ann.page
        ann.open_project(server)
        assert "mine: 2" in page.text_content("#workflow-counts")
        page.click("#next-item")
        page.wait_for_selector("body[data-page=annotate] #submit-button")
        assert ann.state()["itemId"] == ids[0]
        assert page.text_content("#stage-badge") == "annotation"
        page.keyboard.press("b")
        corner = page.evaluate("window.posekit.clientFromImage(120, 40)")
        opposite = page.evaluate("window.posekit.clientFromImage(280, 280)")
        ann.drag(corner, opposite)
        inst = ann.saved(1)  # v1: the box
        page.keyboard.press("t")
        inst = ann.saved(2)  # v2: the template's keypoints
        page.keyboard.press("y")
        inst = ann.saved(3)  # v3: accepted
        assert inst["status"] == "accepted"
        wrong_wrist = inst["keypoints"][LEFT_WRIST]
        page.click("#submit-button")
        # Submitting moves on to the next item of the queue.
        page.wait_for_function(
            f"window.posekit.state() && window.posekit.state().itemId === {ids[1]}"
        )
        assert server.get(f"/api/items/{ids[0]}")["item"]["stage"] == "review"

        # The reviewer takes it, clicks the left wrist and rejects it with a comment.
        lead.open_project(server)
        lead.page.click("#next-review")
        lead.page.wait_for_selector("body[data-page=annotate] #reject-item")
        assert lead.state()["itemId"] == ids[0]
        key = lead.live()[0]["key"]
        wrist = lead.page.evaluate(f"window.posekit.clientPoint({key}, {LEFT_WRIST})")
        lead.page.mouse.click(wrist["x"], wrist["y"])
        lead.page.click("#reject-item")
        assert lead.page.get_attribute("#comment-target", "data-keypoint") == str(LEFT_WRIST)
        assert "left_wrist" in lead.page.text_content("#comment-target")
        lead.page.fill("#comment-body", "The left wrist is on the elbow.")
        lead.page.click("#comment-send")
        lead.page.wait_for_selector("body[data-page=project]")  # nothing else to review
        detail = server.get(f"/api/items/{ids[0]}")["item"]
        assert (detail["stage"], detail["open_comments"]) == ("annotation", 1)
        (thread,) = server.get(f"/api/items/{ids[0]}/comments")
        assert (thread["keypoint"], thread["instance_id"], thread["author"]) == (
            LEFT_WRIST,
            inst["id"],
            "lead",
        )

        # The annotator sees it: first in the queue, marked on the keypoint.
        ann.open_project(server)
        assert "1 to fix" in page.text_content("#workflow-counts")
        page.click("#next-item")
        page.wait_for_selector(f"#comment-threads .thread.open[data-keypoint='{LEFT_WRIST}']")
        assert ann.state()["itemId"] == ids[0]
        text = page.text_content("#comment-threads .thread")
        assert "The left wrist is on the elbow." in text and "lead" in text
        assert "left_wrist" in text
        marks = page.evaluate("window.posekit.view.commentMarks()")
        assert [(m["keypoint"], m["instanceId"]) for m in marks] == [(LEFT_WRIST, inst["id"])]
        key = ann.live()[0]["key"]
        wrist = page.evaluate(f"window.posekit.clientPoint({key}, {LEFT_WRIST})")
        ann.drag(wrist, {"x": wrist["x"] + 30, "y": wrist["y"] + 25})
        fixed = ann.saved(4)  # v4: the fix
        assert fixed["keypoints"][LEFT_WRIST] != wrong_wrist
        page.fill("#comment-threads .reply-body", "Moved it to the wrist.")
        page.click("#comment-threads .reply-send")
        page.wait_for_selector("#comment-threads .replies .comment")
        page.click("#submit-button")
        page.wait_for_function(
            f"window.posekit.state() && window.posekit.state().itemId === {ids[1]}"
        )

        # The reviewer accepts the fixed item: done, its thread resolved.
        lead.open_project(server)
        lead.page.click("#next-review")
        lead.page.wait_for_selector("body[data-page=annotate] #accept-item")
        assert lead.state()["itemId"] == ids[0]
        replies = lead.page.text_content("#comment-threads .replies")
        assert "Moved it to the wrist." in replies
        lead.page.click("#accept-item")
        lead.page.wait_for_selector("body[data-page=project]")
        detail = server.get(f"/api/items/{ids[0]}")["item"]
        assert (detail["stage"], detail["open_comments"], detail["reviewer"]) == ("done", 0, "lead")
        lead.page.select_option("#stage-filter", "done")
        lead.page.wait_for_function(
            f"document.querySelectorAll('.card').length === 1 && "
            f"document.querySelector(\".card[data-item-id='{ids[0]}']\") !== null"
        )

        # History: the four versions of the instance, each by the annotator, in the
        # editor's history panel and through the API.
        lead.page.click(f".card[data-item-id='{ids[0]}'] img")
        lead.page.wait_for_selector("body[data-page=annotate] .inst")
        assert lead.page.text_content("#stage-badge") == "done"
        lead.page.click(".inst")
        lead.page.click("#history-panel summary")
        lead.page.wait_for_function("document.querySelectorAll('.history-version').length === 4")
        heads = lead.page.locator(".history-version .history-head").all_text_contents()
        assert heads == ["v4 ann", "v3 ann", "v2 ann", "v1 ann"]
        history = server.get(f"/api/instances/{inst['id']}/history")
        versions = history["versions"]
        assert [v["version"] for v in versions] == [1, 2, 3, 4]
        assert [v["author"] for v in versions] == ["ann"] * 4
        assert versions[-1]["current"] and versions[-1]["keypoints"][LEFT_WRIST] == pytest.approx(
            fixed["keypoints"][LEFT_WRIST], abs=1e-3
        )
    finally:
        lead.close()
        ann.close()
