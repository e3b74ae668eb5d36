"""Authorization, route by route: a (route, role) -> allowed table generated from the
app's own routes and :data:`posekit.server.authz.ROLE_PERMISSIONS`.

Every ``APIRoute`` must declare its permission (``dependencies=[allow(...)]``); a
route without one fails :func:`test_every_route_declares_one_permission`. Each route is
then called by a logged-in user of each role (none: a member of nothing; viewer,
annotator, reviewer, manager of the project; a workspace admin) with real ids of a
small project, and must answer 403 exactly when the role lacks the permission.
Bodies are left out (a route that lets the role in answers 422 or does its work;
anything but 403 counts as allowed), and objects a call removed are made again.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="needs the [server] extra")

from fastapi.testclient import TestClient
from PIL import Image

from posekit.server import Settings, create_app
from posekit.server.authz import Permission, role_allows

from .auth_helpers import (
    DEFAULT_BASE_URL,
    api_routes,
    make_user,
    route_permission,
    session_token,
    set_session,
)

ROLES = (None, "viewer", "annotator", "reviewer", "manager", "admin")
# Path parameters that name nothing the project fixture makes.
FIXED_PARAMETERS = {
    "frame_index": 0,
    "version": 1,
    "name": "coco17",
    "format": "coco",
    "token_id": 999_999,
    "user": "nobody-at-all",
}


def _png(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (shade, 40, 90)).save(out, "PNG")
    return out.getvalue()


class World:
    """A small project (two images, an instance on each, a short video with a track,
    a finished job, a comment) and one user per role; the annotator is assigned the
    first image only."""

    def __init__(self, app: Any, root: Path) -> None:
        self.app = app
        self.ws = app.state.posekit.ws
        self.root = root
        self.users: dict[str | None, Any] = {}
        self.build()

    def build(self) -> None:
        from posekit.skeleton import get_preset
        from posekit.store import import_images
        from posekit.store.jobs import record_job
        from posekit.store.video_imports import import_video
        from video_fakes import square_frames, write_frame_folder

        ws = self.ws
        n = len(list(self.root.glob("build-*")))
        folder = self.root / f"build-{n}"
        (folder / "img").mkdir(parents=True)
        for k in range(2):
            (folder / "img" / f"im{k}.png").write_bytes(_png(60 + 100 * k + n))
        project = ws.create_project(f"authz-{n}", get_preset("coco17"))
        ws.get_or_create_dataset(project, "default")
        import_images(ws, project, "default", [folder / "img"])
        self.project_id = project.id
        self.dataset_id = ws.get_dataset(project, "default").id
        items = sorted(ws.list_items(project), key=lambda i: i.file_name)
        self.item_id, self.other_item_id = items[0].id, items[1].id
        self.instance_id = self._instance(self.item_id)
        self.other_instance_id = self._instance(self.other_item_id)
        frames = write_frame_folder(folder / "walk", square_frames(3, [lambda f: (6 + f, 20)]))
        self.video_id = import_video(
            ws, project, "clips", frames, frames_folder=True, fps=5
        ).video.id
        self.track_id = ws.create_track(self.video_id).track_id
        self.job_id = record_job(ws, project.id, "autolabel", {}, status="done")
        if not self.users:
            for role in ROLES:
                label = role or "nobody"
                user, _ = make_user(ws, f"{label}-authz", admin=role == "admin", password=None)
                self.users[role] = user
        for role in ("viewer", "annotator", "reviewer", "manager"):
            ws.set_member(project.id, self.users[role].id, role)
        manager = self.users["manager"].id
        ws.assign_items(project, [self.item_id], self.users["annotator"].id, by=manager)
        self.comment_id = ws.add_comment(self.item_id, manager, "check the left wrist").id

    def _instance(self, item_id: int) -> int:
        import numpy as np

        from posekit.core import Instance

        instance = Instance(
            keypoints=np.array([[4.0 + k, 5.0 + k] for k in range(17)], dtype=np.float32),
            visibility=np.full(17, 2, dtype=np.uint8),
        )
        return self.ws.add_instance(item_id, instance).instance.id

    def intact(self) -> bool:
        try:
            for kind, object_id in (
                ("project", self.project_id),
                ("item", self.item_id),
                ("item", self.other_item_id),
                ("instance", self.instance_id),
                ("instance", self.other_instance_id),
                ("video", self.video_id),
                ("comment", self.comment_id),
            ):
                self.ws.project_id_of(kind, object_id)
        except Exception:
            return False
        item = self.ws.get_item(self.item_id)
        other = self.ws.get_item(self.other_item_id).assignee_id
        # A submit moves the item to review, where annotators may no longer edit it.
        return (
            item.assignee_id == self.users["annotator"].id
            and item.stage == "annotation"
            and other is None
        )

    def parameters(self, *, assigned: bool = True) -> dict[str, Any]:
        values = {
            "project_id": self.project_id,
            "item_id": self.item_id if assigned else self.other_item_id,
            "instance_id": self.instance_id if assigned else self.other_instance_id,
            "video_id": self.video_id,
            "track_id": self.track_id,
            "job_id": self.job_id,
            "comment_id": self.comment_id,
            "dataset_id": self.dataset_id,
            "user_id": self.users[None].id,
            **FIXED_PARAMETERS,
        }
        return values

    def call(self, route: Any, method: str, role: str | None, **kw: Any) -> Any:
        client = TestClient(self.app, base_url=DEFAULT_BASE_URL, follow_redirects=False)
        # A new session per call: a logout route must not log the next call out.
        set_session(client, session_token(self.ws, self.users[role]))
        values = self.parameters(**kw)
        names = re.findall(r"{(\w+)(?::\w+)?}", route.path)
        missing = [n for n in names if n not in values]
        assert not missing, f"{route.path}: give the test a value for path parameter {missing}"
        path = route.path
        for name in names:
            path = re.sub("{" + name + r"(?::\w+)?}", str(values[name]), path)
        # project_id for routes that take it as a query parameter (GET /api/videos);
        # version: a DELETE of an instance stays a stale no-op (409).
        query = {"project_id": self.project_id, "version": 999_999}
        return client.request(method, path, params=query)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("authz")
    app = create_app(Settings(workspace=root / "ws", rate_limit_per_second=0))
    with TestClient(app, base_url=DEFAULT_BASE_URL):  # lifespan: closed at the end
        yield World(app, root)


def _routes() -> list[tuple[str, str, Any]]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        app = create_app(Settings(workspace=Path(folder) / "ws"))
        routes = [
            (method, route.path, route)
            for route in api_routes(app)
            for method in sorted(route.methods - {"HEAD"})
        ]
        app.state.posekit.close()
    return routes


ROUTES = _routes()


def test_every_route_declares_one_permission() -> None:
    missing = [f"{m} {p}" for m, p, r in ROUTES if route_permission(r) is None]
    assert not missing, (
        "routes without dependencies=[allow(Permission.X)] (exactly one): " + ", ".join(missing)
    )
    assert len(ROUTES) > 50


def _expected_allowed(permission: Permission, role: str | None) -> bool:
    if role == "admin":
        return True
    if permission is Permission.ADMIN:
        return False
    return role_allows(role, permission)


@pytest.mark.parametrize(
    ("method", "path"), [(m, p) for m, p, _ in ROUTES], ids=[f"{m} {p}" for m, p, _ in ROUTES]
)
def test_route_answers_403_exactly_when_the_role_lacks_its_permission(
    world: World, method: str, path: str
) -> None:
    route = next(r for m, p, r in ROUTES if (m, p) == (method, path))
    permission = route_permission(route)
    assert permission is not None, f"{method} {path} declares no permission"
    live = next(r for r in api_routes(world.app) if r.path == path and method in r.methods)
    wrong = []
    # Refused roles first: a role that is let in may change or remove things.
    for role in sorted(ROLES, key=lambda r: _expected_allowed(permission, r)):
        if not world.intact():
            world.build()
        response = world.call(live, method, role)
        allowed = _expected_allowed(permission, role)
        if response.status_code == 401 or (response.status_code == 403) == allowed:
            wrong.append(f"{role or 'no role'}: {response.status_code} {response.text[:200]}")
        elif response.status_code == 403 and permission is not Permission.ADMIN:
            detail = response.json()["detail"]
            assert f"{permission.value} needs the role" in detail, detail
    assert not wrong, f"{method} {path} ({permission.value}): " + "; ".join(wrong)


ANNOTATE_ON_ITEMS = [
    (m, p)
    for m, p, r in ROUTES
    if route_permission(r) is Permission.ANNOTATE and ("{item_id}" in p or "{instance_id}" in p)
]


def test_there_are_annotate_routes_on_items() -> None:
    assert ("POST", "/api/items/{item_id}/instances") in ANNOTATE_ON_ITEMS
    assert ("PUT", "/api/instances/{instance_id}") in ANNOTATE_ON_ITEMS


@pytest.mark.parametrize(("method", "path"), ANNOTATE_ON_ITEMS)
def test_annotators_edit_only_items_assigned_to_them(world: World, method: str, path: str) -> None:
    if not world.intact():
        world.build()
    live = next(r for r in api_routes(world.app) if r.path == path and method in r.methods)
    response = world.call(live, method, "annotator", assigned=False)
    assert response.status_code == 403, response.text
    assert f"item {world.other_item_id} is not assigned to you" in response.json()["detail"]
    # The manager may edit it (not assigned to anybody).
    assert world.call(live, method, "manager", assigned=False).status_code != 403


def test_forbidden_message_names_the_permission_roles_and_your_role(world: World) -> None:
    route = next(r for r in api_routes(world.app) if r.path == "/api/instances/{instance_id}")
    response = world.call(route, "PUT", "viewer")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"annotate needs the role annotator or manager in project {world.project_id}; "
        "you are viewer"
    )
    outsider = world.call(route, "PUT", None).json()["detail"]
    assert f"you are not a member of project {world.project_id}" in outsider


def test_objects_that_do_not_exist_are_404_for_members(world: World) -> None:
    client = TestClient(world.app, base_url=DEFAULT_BASE_URL)
    set_session(client, session_token(world.ws, world.users["viewer"]))
    for path in ("/api/items/987654", "/api/projects/987654", "/api/videos/987654"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.text)


def test_project_list_shows_only_your_projects(world: World) -> None:
    client = TestClient(world.app, base_url=DEFAULT_BASE_URL)
    set_session(client, session_token(world.ws, world.users[None]))
    assert client.get("/api/projects").json() == []
    set_session(client, session_token(world.ws, world.users["viewer"]))
    names = {p["id"] for p in client.get("/api/projects").json()}
    assert world.project_id in names
    set_session(client, session_token(world.ws, world.users["admin"]))
    every = {p["id"] for p in client.get("/api/projects").json()}
    assert names <= every and len(every) >= len(names)
