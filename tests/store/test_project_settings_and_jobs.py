"""Migration 0005 (projects.template_version, projects.settings, jobs): the upgrade
from 0004 keeps every project, and the store functions over the new columns."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from posekit import get_preset
from posekit.store import StoreError, Workspace
from posekit.store.jobs import finish_job, get_job_record, list_job_records, record_job
from posekit.store.project_settings import update_project_settings
from posekit.store.schema import alembic_config, head_revision


def test_upgrade_from_0004_adds_the_columns_and_the_jobs_table(tmp_path: Path) -> None:
    from alembic import command

    ws = Workspace(tmp_path / "ws")
    ws.create_project("people", get_preset("coco17"))
    ws.create_dataset("people", "train")
    with ws.engine.begin() as conn:
        config = alembic_config(conn)
        command.downgrade(config, "0004")
        assert "jobs" not in inspect(conn).get_table_names()
        columns = {c["name"] for c in inspect(conn).get_columns("projects")}
        assert not {"template_version", "settings"} & columns
        # The project and its dataset survived the downgrade (no table rebuild).
        assert conn.execute(text("SELECT count(*) FROM datasets")).scalar_one() == 1
        command.upgrade(config, "head")
    try:
        assert head_revision() >= "0005"
        project = ws.get_project("people")
        assert project.template_version == 1 and project.settings == {}
        assert [d.name for d in ws.list_datasets(project)] == ["train"]
        assert list_job_records(ws) == []
    finally:
        ws.close()


def test_settings_and_job_records(tmp_path: Path) -> None:
    with Workspace(tmp_path / "ws") as ws:
        project = ws.create_project("people", get_preset("coco17"))
        updated = update_project_settings(ws, project, {"assist_model": " vitpose:x "})
        assert updated.settings == {"assist_model": "vitpose:x"}
        layout = {"nose": [0.5, 0.1]}
        updated = update_project_settings(ws, project, {"template_layout": layout})
        assert updated.settings == {"assist_model": "vitpose:x", "template_layout": layout}
        assert update_project_settings(ws, project, {"assist_model": None}).settings == {
            "template_layout": layout
        }
        with pytest.raises(StoreError, match="unknown project setting 'colour'"):
            update_project_settings(ws, project, {"colour": 1})
        with pytest.raises(StoreError, match="autolabel: unknown auto-label option"):
            update_project_settings(ws, project, {"autolabel": {"nope": 1}})

        job_id = record_job(ws, project.id, "autolabel", {"pose": "vitpose:x"})
        assert get_job_record(ws, job_id).status == "queued"
        finish_job(ws, job_id, status="failed", error="x" * 5000, failures=[("a.jpg", "bad")])
        record = get_job_record(ws, job_id)
        assert record.status == "failed" and len(record.error) == 4000
        assert record.options == {"pose": "vitpose:x"} and record.failures == [("a.jpg", "bad")]
        assert record.finished_at is not None
        ws.delete_project(project)
        assert list_job_records(ws) == []
