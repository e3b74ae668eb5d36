"""``Settings.database_url`` (env ``POSEKIT_DATABASE_URL``): the app's workspace uses
that database; the URL, which may hold a password, is not in the settings' repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from posekit import get_preset
from posekit.server import Settings, create_app
from posekit.store import Workspace
from posekit.store.database import DatabaseUnavailableError


def test_settings_read_the_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSEKIT_DATABASE_URL", "postgresql://bob:s3cr3t@db.example/pk")
    settings = Settings()
    assert settings.database_url == "postgresql://bob:s3cr3t@db.example/pk"
    assert "s3cr3t" not in repr(settings)
    monkeypatch.delenv("POSEKIT_DATABASE_URL")
    assert Settings().database_url is None


def test_the_app_opens_its_workspace_on_the_url(postgres_database: str, tmp_path: Path) -> None:
    with Workspace(tmp_path / "ws", database_url=postgres_database) as ws:
        ws.create_project("people", get_preset("coco17"))
    app = create_app(Settings(workspace=tmp_path / "ws", database_url=postgres_database))
    try:
        ws = app.state.posekit.ws
        assert ws.database_url == postgres_database and ws.db_path is None
        assert [p.name for p in ws.list_projects()] == ["people"]
    finally:
        app.state.posekit.close()


def test_an_unreachable_database_fails_at_start(tmp_path: Path) -> None:
    url = "postgresql://bob:s3cr3t@127.0.0.1:1/pk"
    with pytest.raises(DatabaseUnavailableError, match=r"bob:\*\*\*@127\.0\.0\.1:1") as info:
        create_app(Settings(workspace=tmp_path / "ws", database_url=url))
    assert "s3cr3t" not in str(info.value)
