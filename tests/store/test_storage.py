"""The media storage interface: LocalStorage, and a second (in-memory) backend that a
workspace and the web app use without any route knowing (issue 12, media for a team)."""

from __future__ import annotations

import io
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest
from PIL import Image

from posekit.skeleton import get_preset
from posekit.store import NotFoundError, StoreError, Workspace, import_images
from posekit.store.storage import (
    INCOMING_PREFIX,
    LocalStorage,
    MediaStorage,
    StagedMedia,
    check_key,
    content_key,
)


class MemoryStorage(MediaStorage):
    """Objects in a dict, no local files: what an object store looks like to posekit."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.staged: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def stage(self, source: BinaryIO, folder: str, suffix: str = "") -> StagedMedia:
        import hashlib
        import uuid

        data = source.read()
        sha = hashlib.sha256(data).hexdigest()
        token = f"{folder}/{INCOMING_PREFIX}{os.getpid()}-{uuid.uuid4().hex}"
        with self._lock:
            self.staged[token] = (data, time.time())
        return StagedMedia(check_key(content_key(folder, sha, suffix)), sha, len(data), token)

    def publish(self, staged: StagedMedia) -> bool:
        with self._lock:
            data, _ = self.staged.pop(staged.token)
            created = staged.key not in self.objects
            self.objects[staged.key] = data
        return created

    def discard(self, staged: StagedMedia) -> None:
        with self._lock:
            self.staged.pop(staged.token, None)

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(check_key(key), None)

    def delete_prefix(self, prefix: str) -> int:
        doomed = list(self.keys(prefix))
        for key in doomed:
            self.delete(key)
        return len(doomed)

    def sweep_staging(self, is_stale: Callable[[str, float], bool]) -> int:
        with self._lock:
            stale = [t for t, (_, m) in self.staged.items() if is_stale(t.rsplit("/", 1)[-1], m)]
            for token in stale:
                del self.staged[token]
        return len(stale)

    def open(self, key: str) -> BinaryIO:
        try:
            return io.BytesIO(self.objects[check_key(key)])
        except KeyError:
            raise NotFoundError(f"media {key!r} is not stored") from None

    def exists(self, key: str) -> bool:
        return check_key(key) in self.objects

    def size(self, key: str) -> int:
        return len(self.read(key))

    def keys(self, prefix: str = "") -> Iterator[str]:
        start = f"{check_key(prefix)}/" if prefix else ""
        yield from sorted(k for k in list(self.objects) if k.startswith(start))


def _jpeg(color: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


# ------------------------------------------------------------------ LocalStorage
def test_local_storage_put_read_keys_delete(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    stored = storage.put(b"hello", "1/2", ".jpg")
    assert stored.key == f"1/2/{stored.sha256[:2]}/{stored.sha256}.jpg" and stored.size == 5
    assert storage.read(stored.key) == b"hello" and storage.size(stored.key) == 5
    assert storage.exists(stored.key)
    assert storage.local_path(stored.key) == (tmp_path / "media" / stored.key).resolve()
    source = tmp_path / "photo.PNG"
    source.write_bytes(b"png bytes")
    other = storage.put_file(source, "1/3")
    assert other.key.endswith(".png") and storage.read(other.key) == b"png bytes"
    assert list(storage.keys()) == sorted([stored.key, other.key])
    assert list(storage.keys("1/2")) == [stored.key]
    # the same content again: the same key, not a second object
    assert storage.put(b"hello", "1/2", ".jpg").key == stored.key
    assert len(list(storage.keys())) == 2
    storage.delete(stored.key)
    assert not storage.exists(stored.key)
    assert not (tmp_path / "media" / "1" / "2").exists()  # empty folders pruned
    with pytest.raises(NotFoundError, match="is not in"):
        storage.read(stored.key)
    with pytest.raises(NotFoundError):
        storage.size(stored.key)
    storage.delete(stored.key)  # missing: nothing happens
    assert storage.delete_prefix("1") == 1
    assert list(storage.keys()) == [] and (tmp_path / "media").is_dir()


@pytest.mark.parametrize("key", ["../outside.jpg", "/etc/passwd", "C:/x.jpg", "a/../../b", ""])
def test_local_storage_refuses_keys_outside(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "media")
    for call in (storage.open, storage.exists, storage.delete, storage.local_path):
        with pytest.raises(StoreError, match="refusing a media"):
            call(key)
    assert not (tmp_path / "outside.jpg").exists()


def test_local_storage_refuses_a_symlink_out_for_writes(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "media" / "9").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="outside"):
        storage.put(b"x", "9/1", ".jpg")
    assert list((tmp_path / "elsewhere").rglob("*")) == []


def test_staging_is_invisible_until_published_and_discard_leaves_nothing(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    staged = storage.stage(io.BytesIO(b"abc"), "4/5", ".png")
    assert Path(staged.token).name.startswith(INCOMING_PREFIX)
    assert not storage.exists(staged.key) and list(storage.keys()) == []
    assert storage.publish(staged) is True
    assert storage.read(staged.key) == b"abc" and not Path(staged.token).exists()
    again = storage.stage(io.BytesIO(b"abc"), "4/5", ".png")
    assert storage.publish(again) is False  # same content: existed already
    dropped = storage.stage(io.BytesIO(b"zzz"), "4/6", ".png")
    storage.discard(dropped)
    assert not (tmp_path / "media" / "4" / "6").exists()
    assert [p.name for p in (tmp_path / "media").rglob("*") if p.is_file()] == [
        Path(staged.key).name
    ]


def test_sweep_removes_only_stale_staging(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "media")
    keep = storage.stage(io.BytesIO(b"fresh"), "1/1")
    gone = storage.stage(io.BytesIO(b"old"), "1/1")
    old = time.time() - 10_000
    os.utime(gone.token, (old, old))
    removed = storage.sweep_staging(lambda name, mtime: mtime < time.time() - 3600)
    assert removed == 1 and Path(keep.token).exists() and not Path(gone.token).exists()


def test_a_killed_import_leaves_nothing_after_reopening(tmp_path: Path) -> None:
    """Staging of a process that is gone is swept when the workspace opens (any backend)."""
    memory = MemoryStorage()
    Workspace(tmp_path / "ws", storage=memory).close()
    memory.staged["1/1/.incoming-999999999-" + "0" * 32] = (b"x", time.time())
    memory.staged[f"1/1/.incoming-{os.getpid()}-" + "1" * 32] = (b"y", time.time())
    Workspace(tmp_path / "ws", storage=memory).close()
    assert list(memory.staged) == [f"1/1/.incoming-{os.getpid()}-" + "1" * 32]


# ------------------------------------------------------------------ a workspace on another backend
@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, color in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        (folder / f"p{index}.jpg").write_bytes(_jpeg(color))
    return folder


def test_workspace_on_memory_storage_imports_and_deletes(tmp_path: Path, photos: Path) -> None:
    memory = MemoryStorage()
    with Workspace(tmp_path / "ws", storage=memory) as ws:
        project = ws.create_project("people", get_preset("coco17"))
        report = import_images(ws, project, "train", [photos])
        assert report.added == 3
        items = ws.list_items(project)
        assert all(item.path is None and item.media_path in memory.objects for item in items)
        assert memory.read(items[0].media_path) == (photos / items[0].file_name).read_bytes()
        assert not any(p.is_file() for p in (tmp_path / "ws" / "media").rglob("*"))
        assert memory.staged == {}
        # A failing import rolls its objects back.
        (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really")
        before = set(memory.objects)
        import_images(ws, project, "other", [photos])
        assert set(memory.objects) - before <= {i.media_path for i in ws.list_items(project)}
        ws.delete_project(project)
        assert memory.objects == {}


def _app_client(tmp_path: Path, storage: MediaStorage):
    from fastapi.testclient import TestClient

    from posekit.server import create_app
    from posekit.server.settings import Settings
    from server.auth_helpers import login_admin

    app = create_app(Settings(workspace=tmp_path / "ws"), storage=storage)
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    return client, login_admin


def test_routes_do_not_care_where_media_live(tmp_path: Path, photos: Path) -> None:
    pytest.importorskip("fastapi")
    memory = MemoryStorage()
    client, login_admin = _app_client(tmp_path, memory)
    with client:
        login_admin(client)
        pid = client.post("/api/projects", json={"name": "people", "template": "coco17"})
        assert pid.status_code == 201, pid.text
        pid = pid.json()["id"]
        files = [
            ("files", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted(photos.iterdir())
        ]
        response = client.post(f"/api/projects/{pid}/upload", files=files)
        assert response.status_code == 200, response.text
        assert response.json()["added"] == 3
        assert len(memory.objects) == 3 and memory.staged == {}
        assert not any(p.is_file() for p in (tmp_path / "ws" / "media").rglob("*"))
        items = client.get(f"/api/projects/{pid}/items").json()["items"]
        by_name = {item["file_name"]: item["id"] for item in items}
        image = client.get(f"/api/items/{by_name['p0.jpg']}/image")
        assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
        assert image.content == (photos / "p0.jpg").read_bytes()
        assert (
            client.get(
                f"/api/items/{by_name['p0.jpg']}/image",
                headers={"If-None-Match": image.headers["etag"]},
            ).status_code
            == 304
        )
        thumb = client.get(f"/api/items/{by_name['p1.jpg']}/thumbnail", params={"size": 32})
        assert thumb.status_code == 200
        pixels = np.asarray(Image.open(io.BytesIO(thumb.content)).convert("RGB"))
        assert max(pixels.shape[:2]) == 32 and pixels[..., 1].mean() > 150  # the green one
        keypoints = [[10.0 + i, 10.0 + i] for i in range(17)]
        for item_id in by_name.values():
            created = client.post(
                f"/api/items/{item_id}/instances",
                json={"keypoints": keypoints, "visibility": [2] * 17, "status": "accepted"},
            )
            assert created.status_code == 201, created.text
        export = client.get(f"/api/projects/{pid}/export", params={"format": "yolo"})
        assert export.status_code == 200, export.text
        archive = zipfile.ZipFile(io.BytesIO(export.content))
        images = sorted(n for n in archive.namelist() if n.startswith("images/") and "." in n)
        assert len(images) == 3
        contents = {archive.read(name) for name in images}
        assert contents == {p.read_bytes() for p in photos.iterdir()}
        # staging of the export (its media copies too) is gone
        staging = tmp_path / "ws" / ".staging"
        assert not staging.exists() or list(staging.iterdir()) == []
        # an item whose object is gone is a clear 404, not a 500
        memory.delete(memory_key := next(iter(memory.objects)))
        state = client.app.state.posekit
        gone = next(i for i in by_name.values() if state.ws.get_item(i).media_path == memory_key)
        state._media.clear()
        assert client.get(f"/api/items/{gone}/image").status_code == 404
