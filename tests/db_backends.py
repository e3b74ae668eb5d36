"""Running the tests on a second database backend: PostgreSQL.

``POSEKIT_TEST_DATABASE=postgresql python -m pytest tests/store tests/server`` runs
the same tests with every :class:`~posekit.store.Workspace` a test opens without a
``database_url`` placed on a fresh PostgreSQL database of its own (one per
workspace folder, so reopening a folder reopens its database), created by
``CREATE DATABASE ... TEMPLATE`` from a template migrated once per session, and
emptied after the test (rows deleted, sequences restarted: as good as new) for the
next one, or dropped if the test changed its schema revision. The default (``sqlite``,
or unset) changes nothing.

The server is ``POSEKIT_TEST_POSTGRES_URL`` (``.ci/run`` starts a throwaway cluster
and sets it); without it a throwaway cluster is started here from Debian's
``/usr/lib/postgresql/*/bin`` (as the ``postgres`` user when running as root).
When no server can be reached or started, the PostgreSQL tests skip, saying why.

The test databases use an ICU ``en-US`` collation where the server has ICU (Debian's
has), unlike the byte order of SQLite and of a ``C`` cluster: an ordering by name
that is not explicit about its collation shows up as a failure.

Tests that are about the SQLite file itself (its backups, an upgraded 0.1.0 file,
its pragmas) carry ``@pytest.mark.sqlite_only(reason=...)`` and skip on PostgreSQL.
:func:`postgres_database` gives a test (``tests/store/test_postgres.py``) a fresh
PostgreSQL database whatever the backend of the run.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BACKEND_ENV = "POSEKIT_TEST_DATABASE"
SERVER_ENV = "POSEKIT_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")


def backend() -> str:
    """The backend of this run: ``sqlite`` (default) or ``postgresql``."""
    value = (os.environ.get(BACKEND_ENV) or "sqlite").strip().lower()
    if value in ("postgres", "pg"):
        value = "postgresql"
    if value not in BACKENDS:
        raise pytest.UsageError(f"{BACKEND_ENV}={value!r} is not one of {', '.join(BACKENDS)}")
    return value


class PostgresServer:
    """A PostgreSQL server for the tests: databases created and dropped on demand."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url

        self.admin_url = make_url(admin_url)
        self.engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT", pool_size=1)
        self._lock = threading.Lock()
        self._template: str | None = None
        self._prefix = f"posekit_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self._count = 0
        self._free: list[str] = []  # emptied databases at the newest revision, for reuse
        self._tables: list[str] | None = None  # the tables of the newest revision
        with self.engine.connect() as conn:
            self.has_icu = bool(
                conn.exec_driver_sql(
                    "SELECT 1 FROM pg_collation WHERE collprovider = 'i' LIMIT 1"
                ).first()
            )

    def url(self, database: str) -> str:
        """The URL of one database on this server (password included)."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql(sql)

    def _new_name(self) -> str:
        with self._lock:
            self._count += 1
            return f"{self._prefix}_{self._count}"

    def create_database(self, *, migrated: bool = True) -> str:
        """An empty database (``migrated``: at the newest schema revision); its URL.

        Migrated ones are reused (:meth:`release`): ``CREATE DATABASE`` costs 0.2-1 s on
        a busy disk, emptying one a few milliseconds.
        """
        if migrated:
            with self._lock:
                if self._free:
                    return self.url(self._free.pop())
        name = self._new_name()
        if migrated:
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template()}"')
        else:
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE template0{self._collation()}')
        return self.url(name)

    def release(self, url: str) -> None:
        """Give back a database of :meth:`create_database`: emptied (rows deleted, ids
        restarting at 1: like a new one) for reuse if still at the newest revision,
        else dropped."""
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.engine import make_url
        from sqlalchemy.pool import NullPool

        from posekit.store.schema import current_revision, head_revision

        name = str(make_url(url).database)
        # Connections the test left open (workspaces not closed) would hold locks.
        self._execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.begin() as conn:
                reusable = current_revision(conn) == head_revision()
                if reusable:
                    if self._tables is None:
                        names = inspect(conn).get_table_names()
                        self._tables = [t for t in names if t != "alembic_version"]
                    # DELETE beats TRUNCATE on a few rows (no new files); "replica" skips
                    # the foreign keys and the counting triggers, any table order is fine.
                    # One round trip.
                    conn.exec_driver_sql(
                        "SET LOCAL session_replication_role = replica; "
                        + "".join(f'DELETE FROM "{table}"; ' for table in self._tables)
                        + "SELECT setval(c.oid, 1, false) FROM pg_class c WHERE c.relkind = 'S'"
                    )
        except Exception:
            reusable = False
        finally:
            engine.dispose()
        if reusable:
            with self._lock:
                self._free.append(name)
        else:
            self.drop_database(url)

    def _collation(self) -> str:
        return " LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'" if self.has_icu else ""

    def template(self) -> str:
        """The migrated template database, created on first use."""
        with self._lock:
            if self._template is None:
                from posekit.store.schema import upgrade_database

                name = f"{self._prefix}_template"
                self._execute(f'CREATE DATABASE "{name}" TEMPLATE template0{self._collation()}')
                upgrade_database(self.url(name))
                self._template = name
            return self._template

    def drop_database(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        for name in self._free:
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._free.clear()
        if self._template is not None:
            self._execute(f'DROP DATABASE IF EXISTS "{self._template}" WITH (FORCE)')
        self.engine.dispose()


_server: PostgresServer | None = None
_server_error: str | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_cluster() -> str:
    """Start a throwaway cluster (initdb refuses root: run as ``postgres`` then)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(f"{SERVER_ENV} is not set and no /usr/lib/postgresql/*/bin/initdb")
    bin_dir = Path(found[-1]).parent
    scratch = Path(tempfile.mkdtemp(prefix="posekit-pg-"))
    data, log_file = scratch / "data", scratch / "pg.log"
    data.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            raise RuntimeError("running as root without runuser: cannot start PostgreSQL")
        scratch.chmod(0o755)
        shutil.chown(data, "postgres")
        shutil.chown(scratch, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run: Any = lambda *args: subprocess.run(  # noqa: E731
        [*prefix, *args], check=True, capture_output=True, text=True, timeout=120
    )
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        options = f"-p {port} -k {scratch} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log_file), "-w", "-o", options,
            "start")  # fmt: skip
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        shutil.rmtree(scratch, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL from {bin_dir}: {exc} {detail}") from None

    def stop() -> None:
        subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(scratch, ignore_errors=True)

    atexit.register(stop)
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"


def postgres_server() -> PostgresServer:
    """The session's PostgreSQL server; skips the test (with the reason) if none."""
    global _server, _server_error
    if _server is None and _server_error is None:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            _server_error = "psycopg is not installed (pip install 'posekit[postgres]')"
        else:
            url = os.environ.get(SERVER_ENV)
            try:
                _server = PostgresServer(url or _start_cluster())
            except Exception as exc:
                where = f"at {url.split('@')[-1]}" if url else "(none started)"
                _server_error = f"no PostgreSQL server {where}: {exc}"
    if _server is None:
        pytest.skip(f"PostgreSQL tests skipped: {_server_error}")
    return _server


def close_server() -> None:
    global _server
    if _server is not None:
        _server.close()
        _server = None


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """The URL of a fresh, empty (unmigrated) PostgreSQL database, dropped afterwards."""
    server = postgres_server()
    url = server.create_database(migrated=False)
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture(autouse=True)
def database_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    """On the ``postgresql`` run: each workspace folder of the test gets its own fresh
    PostgreSQL database; ``sqlite_only`` tests skip."""
    if backend() != "postgresql":
        yield "sqlite"
        return
    marker = request.node.get_closest_marker("sqlite_only")
    if marker is not None:
        pytest.skip(f"SQLite only: {marker.kwargs.get('reason', 'about the SQLite file')}")
    server = postgres_server()
    from posekit.store import workspace as workspace_module

    original = workspace_module.Workspace.__init__
    databases: dict[Path, str] = {}

    def init(self: Any, path: Any = None, *, database_url: str | None = None, **kw: Any) -> None:
        if database_url is None:
            folder = path or os.environ.get(workspace_module.WORKSPACE_ENV)
            key = Path(folder or workspace_module.DEFAULT_WORKSPACE).expanduser().resolve()
            if key not in databases:
                databases[key] = server.create_database()
            database_url = databases[key]
        original(self, path, database_url=database_url, **kw)

    monkeypatch.setattr(workspace_module.Workspace, "__init__", init)
    try:
        yield "postgresql"
    finally:
        monkeypatch.undo()
        for url in databases.values():
            server.release(url)


def configure(config: pytest.Config) -> None:
    """Register the marker (called from ``tests/conftest.py``)."""
    config.addinivalue_line(
        "markers",
        "sqlite_only(reason): about the SQLite file itself; skipped on the PostgreSQL run",
    )
