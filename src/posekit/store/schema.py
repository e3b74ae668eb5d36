"""The database schema version: create, back up and upgrade with Alembic.

The migrations ship inside the package (``posekit/store/migrations``) and run
programmatically; no ``alembic.ini`` is needed. :func:`upgrade_database` is what
:class:`posekit.store.Workspace` calls when it opens a database:

* an empty database is created at the newest revision (``upgrade head``);
* a database written by posekit 0.1.0 (the tables but no ``alembic_version``)
  is backed up, stamped with revision ``0001`` (exactly the 0.1.0 schema) and
  upgraded in place;
* an older versioned database is backed up and upgraded;
* a database of a newer posekit (a revision this code does not know) raises
  :class:`~posekit.store.errors.SchemaVersionError` and is left untouched.

SQLite databases are backed up next to the file
(``posekit.db.backup-<revision>-<UTC time>``, with SQLite's online backup, so
the copy is consistent); the path is logged. Other databases are not copied:
the log says to back them up before upgrading.

Example:
    >>> from posekit.store.schema import head_revision
    >>> head_revision()  # doctest: +SKIP
    '0002'
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, inspect, pool

from posekit.store.errors import SchemaVersionError, StoreError

__all__ = [
    "BASELINE_REVISION",
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "head_revision",
    "upgrade_database",
]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The revision that is exactly the schema of posekit 0.1.0 (unversioned databases).
BASELINE_REVISION = "0001"
#: PostgreSQL advisory lock key held while upgrading (any constant; "posekit" in ASCII).
_UPGRADE_LOCK_KEY = 0x706F73656B6974
#: Tables every posekit database has had since 0.1.0.
_TABLES_0_1_0 = frozenset({"projects", "datasets", "items", "instances"})


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Any:
    """An Alembic ``Config`` for the packaged migrations (no ini file).

    Args:
        connection: Run the migrations on this connection.
        url: Or connect to this SQLAlchemy URL.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@lru_cache(maxsize=1)
def _scripts() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this code knows."""
    head = _scripts().get_current_head()
    if head is None:
        raise StoreError(f"no schema migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision stamped in a database, or None if it is unversioned."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _known(revision: str) -> bool:
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False


def _backup_sqlite(db_path: Path, revision: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = db_path.with_name(f"{db_path.name}.backup-{revision}-{stamp}")
    source = sqlite3.connect(db_path)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    finally:
        source.close()
    return target


def upgrade_database(url: str, db_path: Path | None = None) -> Path | None:
    """Bring the database at ``url`` to the newest schema revision.

    Args:
        url: SQLAlchemy URL.
        db_path: The SQLite file (backed up before an upgrade), None for other
            databases.

    Returns:
        The backup file written, or None (new or current database, or not SQLite).

    Raises:
        SchemaVersionError: The database has a revision this code does not know
            (written by a newer posekit), or tables but not posekit's.
    """
    from alembic import command

    head = head_revision()
    # A plain engine: no foreign-key enforcement during migrations, so that
    # SQLite batch operations (copy, drop, rename a table) do not cascade.
    is_sqlite = url.startswith("sqlite")
    # The driver leaves transactions to us on SQLite (isolation_level=None), so that
    # all DDL of an upgrade runs in one transaction: one commit instead of one per
    # statement, and a failed upgrade leaves the old schema.
    engine = create_engine(
        url,
        poolclass=pool.NullPool,
        connect_args={"isolation_level": None, "timeout": 30.0} if is_sqlite else {},
    )
    backup: Path | None = None
    try:
        with engine.connect() as conn:  # the common case, without taking a lock
            if current_revision(conn) == head:
                return None
        with engine.begin() as conn:
            # The write lock first, then look again: two processes opening the
            # same old workspace (or the same new PostgreSQL database) upgrade it once.
            if is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif conn.dialect.name == "postgresql":
                # Held until the upgrade commits (PostgreSQL's DDL is transactional).
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK_KEY})")
            current = current_revision(conn)
            tables = set(inspect(conn).get_table_names()) - {"alembic_version"}
            if current == head:
                return None
            _check_upgradable(url, db_path, current, tables, head)
            if current is not None or tables:
                backup = _announce_upgrade(url, db_path, current or "0.1.0", head)
            config = alembic_config(conn)
            if current is None and tables:
                command.stamp(config, BASELINE_REVISION)
            command.upgrade(config, "head")
    except SchemaVersionError:
        raise
    except Exception as exc:
        hint = f" (the database before the upgrade is in {backup})" if backup else ""
        raise StoreError(f"{_shown(url, db_path)}: schema upgrade failed: {exc}{hint}") from exc
    finally:
        engine.dispose()
    return backup


def _check_upgradable(
    url: str, db_path: Path | None, current: str | None, tables: set[str], head: str
) -> None:
    if current is not None and not _known(current):
        raise SchemaVersionError(
            f"{_shown(url, db_path)}: database schema revision {current!r} is newer than "
            f"this posekit knows (newest: {head!r}); upgrade posekit to open it"
        )
    if current is None and tables and not tables >= _TABLES_0_1_0:
        raise SchemaVersionError(
            f"{_shown(url, db_path)}: not a posekit database (tables: {', '.join(sorted(tables))})"
        )


def _announce_upgrade(url: str, db_path: Path | None, label: str, head: str) -> Path | None:
    """Back up a SQLite database (others: say to back it up) and log the upgrade."""
    if db_path is None:
        log.warning(
            "upgrading %s from schema %s to %s in place (no automatic backup for this "
            "database; back it up first)",
            _shown(url, db_path), label, head,
        )  # fmt: skip
        return None
    backup = _backup_sqlite(db_path, label)
    log.warning(
        "upgrading %s from schema %s to %s; backup of the old database: %s",
        db_path, label, head, backup,
    )  # fmt: skip
    return backup


def _shown(url: str, db_path: Path | None) -> str:
    if db_path is not None:
        return str(db_path)
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
