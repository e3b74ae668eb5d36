"""``posekit --database-url`` / ``POSEKIT_DATABASE_URL``: every command that opens a
workspace uses that database; a bad URL or an unreachable server is one clear error
naming the option, with the password hidden, and exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from posekit.cli import main
from posekit.cli.parser import build_parser
from posekit.store import Workspace

REFUSED = "postgresql://bob:s3cr3t@127.0.0.1:1/posekit"


def test_an_unreachable_database_is_one_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--workspace", str(tmp_path / "ws"), "--database-url", REFUSED, "init", "p"])
    err = capsys.readouterr().err
    assert code == 2
    assert "posekit init: error: cannot connect to the database" in err
    assert "postgresql+psycopg://bob:***@127.0.0.1:1/posekit" in err
    assert "--database-url" in err and "s3cr3t" not in err


@pytest.mark.parametrize(
    ("url", "says"),
    [("not a url", "database URL is not valid"), ("mysql://a:pw@h/x", "'mysql' is not supported")],
)
def test_a_bad_url_from_the_environment_names_the_option(
    url: str,
    says: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("POSEKIT_DATABASE_URL", url)
    assert main(["--workspace", str(tmp_path / "ws"), "init", "p"]) == 2
    err = capsys.readouterr().err
    assert says in err and "--database-url or $POSEKIT_DATABASE_URL" in err
    assert ":pw@" not in err


def test_serve_takes_the_option_too() -> None:
    parser = build_parser()
    assert parser.parse_args(["serve", "--database-url", "sqlite:///x.db"]).database_url == (
        "sqlite:///x.db"
    )
    args = parser.parse_args(["--database-url", "sqlite:///y.db", "serve"])
    assert args.database_url == "sqlite:///y.db"


def test_commands_use_the_database_of_the_url(
    postgres_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ws"
    assert main(["--workspace", str(folder), "--database-url", postgres_database,
                 "init", "people"]) == 0  # fmt: skip
    monkeypatch.setenv("POSEKIT_DATABASE_URL", postgres_database)
    assert main(["--workspace", str(folder), "init", "hands", "--template", "hand21"]) == 0
    with Workspace(folder, database_url=postgres_database) as ws:
        assert [p.name for p in ws.list_projects()] == ["hands", "people"]
    assert not (folder / "posekit.db").exists()  # not SQLite in the folder
