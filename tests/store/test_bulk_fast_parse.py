"""The bulk COCO import with the fast parse of
:func:`posekit.formats.coco_json.prepare_coco_file` gives the same database rows as
with the usual parse and as the general path,
and the same errors; and :func:`posekit.store.bulk.bulk_insert_columns` stores the
same values whether it writes a shared value as an SQL literal or binds it.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    event,
    insert,
    text,
)

from posekit import get_preset
from posekit.formats import coco_json
from posekit.formats.coco import CocoFormatError
from posekit.store import Workspace, import_coco
from posekit.store import imports as imports_module
from posekit.store.bulk import bulk_insert_columns

from .store_factories import COCO_JSON, need_data
from .test_bulk_coco import _state

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from helpers_coco import make_coco


def _count_fast_parses(patch: pytest.MonkeyPatch) -> list[int]:
    """A list that gets an entry per fast parse that applied (store/imports.py reads
    COCO files through prepare_coco_file)."""
    taken: list[int] = []
    real = coco_json.fast_parse

    def counted(raw: bytes) -> Any:
        result = real(raw)
        if result is not None:
            taken.append(1)
        return result

    patch.setattr(coco_json, "fast_parse", counted)
    return taken


def _parse(patch: pytest.MonkeyPatch, how: str) -> list[int]:
    """``fast``: as shipped (counted); ``usual``/``general``: the fast parse off."""
    if how == "fast":
        return _count_fast_parses(patch)
    patch.setattr(coco_json, "fast_parse", lambda raw: None)
    return []


def _import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: Path, how: str) -> Workspace:
    ws = Workspace(tmp_path / f"ws-{how}")
    ws.create_project("p", get_preset("coco17"))
    with monkeypatch.context() as patch:
        taken = _parse(patch, how)
        if how == "general":
            patch.setattr(imports_module, "streamable", lambda *args: False)
        import_coco(ws, "p", "all", path, copy_media=False)
        if how == "fast":
            assert taken == [1]
    return ws


def _varied(seed: int) -> dict[str, Any]:
    """A file the fast parse takes (standard fields only, integer keypoints)."""
    data = make_coco(60, 500, seed=seed, crowd_fraction=0.05)
    for a, ann in enumerate(data["annotations"]):
        if a % 11 == 0:
            ann["posekit"] = {"status": "predicted", "source": "model:rtm",
                              "keypoint_scores": [0.5] * 17}  # fmt: skip
            ann["score"] = 0.75
        if a % 17 == 2:
            ann["num_keypoints"] += 1
        if a % 19 == 3:
            ann["keypoints"][2] = 0  # a not-labeled point with coordinates
        if a % 29 == 5:
            ann["iscrowd"] = False
        if a % 37 == 7:
            ann["track_id"] = a
    data["annotations"].reverse()
    return data


@pytest.mark.parametrize("seed", [1, 2])
def test_fast_parse_import_gives_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    path = tmp_path / "gen.json"
    path.write_text(json.dumps(_varied(seed)))
    states = {}
    for how in ("fast", "usual", "general"):
        ws = _import(tmp_path, monkeypatch, path, how)
        states[how] = _state(ws)
        ws.close()
    assert states["fast"] == states["usual"] == states["general"]


def test_fast_parse_import_of_the_coco_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_data()
    states = {}
    for how in ("fast", "usual"):
        ws = _import(tmp_path, monkeypatch, COCO_JSON, how)
        states[how] = _state(ws)
        ws.close()
    assert states["fast"] == states["usual"]


@pytest.mark.parametrize("bad", ["visibility", "length", "score"])
def test_malformed_file_raises_the_same_error_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    data = _varied(3)
    ann = data["annotations"][300]
    if bad == "visibility":
        ann["keypoints"][5] = 4
    elif bad == "length":
        ann["keypoints"].append(1)
    else:
        ann["score"] = "high"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    messages = []
    for how in ("fast", "usual"):
        ws = Workspace(tmp_path / f"ws-{how}")
        ws.create_project("p", get_preset("coco17"))
        with monkeypatch.context() as patch:
            taken = _parse(patch, how)
            with pytest.raises(CocoFormatError) as caught:
                import_coco(ws, "p", "all", path, copy_media=False)
        messages.append(str(caught.value))
        assert taken == ([1] if how == "fast" else [])
        assert ws.row_counts()["instances"] == 0
        ws.close()
    assert messages[0] == messages[1]
    assert "annotations[300]" in messages[0]


# ---- literals in bulk_insert_columns

_METADATA = MetaData()
_TABLE = Table(
    "literal_check",
    _METADATA,
    Column("id", Integer, primary_key=True),
    Column("number", Integer),
    Column("label", String(50)),
    Column("flag", Boolean),
    Column("stamp", DateTime),
    Column("mixed", Integer),
    Column("note", String(50)),
)


def _stored(conn: Any) -> list[tuple[Any, ...]]:
    columns = [c.name for c in _TABLE.columns if c.name != "id"]
    select = ", ".join(f"typeof({c}), quote({c})" for c in columns)
    return [tuple(r) for r in conn.execute(text(f"SELECT {select} FROM literal_check ORDER BY id"))]


@pytest.mark.sqlite_only(reason="literals are written on SQLite only (typeof, quote)")
def test_literals_store_what_binding_stores(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    stamp = datetime(2026, 12, 2, 16, 1, 2, 345)
    count = 450  # more than one multi-row statement, and a remainder
    columns = {
        "number": [7] * count,  # all the same: written as a literal on SQLite
        "label": ["it's; VALUES (1)"] * count,
        "flag": [False] * count,
        "note": [None] * count,
        "mixed": [1, True] * (count // 2),  # equal, not the same type: bound
    }
    constants = {"stamp": stamp}
    expected_rows = [
        {key: values[i] for key, values in columns.items()} | constants for i in range(count)
    ]
    statements: list[str] = []
    with ws.engine.begin() as conn:
        _METADATA.create_all(conn)
        event.listen(conn, "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert bulk_insert_columns(conn, _TABLE, columns, constants) == count
        assert "'it''s; VALUES (1)'" in statements[-1]  # the shared values: literals
        assert "'2026-12-02 16:01:02.000345'" in statements[-1]
        got = _stored(conn)
        conn.execute(text("DELETE FROM literal_check"))
        conn.execute(insert(_TABLE), expected_rows)  # SQLAlchemy's own binding
        expected = _stored(conn)
        _METADATA.drop_all(conn)
    assert got == expected
    assert got[0][:2] == ("integer", "7") and got[0][4:6] == ("integer", "0")
    ws.close()
