"""The database behind a workspace: URLs, engines, write transactions and retries.

posekit runs on SQLite (the embedded default: ``<workspace>/posekit.db``) and on
PostgreSQL (``postgresql+psycopg://user:password@host:5432/dbname``, the
``postgres`` extra: psycopg 3), with the same tables and migrations.

Isolation of writes (:func:`write_transaction`):

* **SQLite**: ``BEGIN IMMEDIATE`` takes the database's write lock up front, so
  write transactions run one after the other (readers are never blocked: WAL).
* **PostgreSQL**: write transactions run at ``READ COMMITTED`` with row locks and
  conditional updates, so that concurrent writers queue on the rows they share, as
  SQLite's writers queue on the database: a versioned write is one ``UPDATE ...
  WHERE version = :expected`` (re-checked on the newest row once its lock is
  granted: a stale version writes nothing); rows copied before a write are locked
  first (``SELECT ... FOR UPDATE``); a decision made from rows that other writers
  change without a row in common (settling an item's status from its instances)
  locks the shared row first (:func:`lock_rows`), and every statement after the lock
  sees what the previous holder committed; the listing counters (migration 0004)
  are updated in place by triggers, waiting for each other. Deadlocks (``40P01``)
  and serialization failures (``40001``) abort a transaction: it is retried as a
  whole operation by :func:`retrying` (every public method of the
  :class:`~posekit.store.Workspace` that opens a write transaction, and the
  module-level write functions such as the imports), with a bounded, jittered
  exponential backoff; after :data:`RETRY_ATTEMPTS` failed attempts
  :class:`WriteConflictError` is raised. Not ``SERIALIZABLE`` nor ``REPEATABLE
  READ``: with 20 annotators saving at once (``benchmarks/save_latency.py``) the
  first aborted nearly every save (predicate locks per index page), the second
  aborted every writer but one on a shared row (one item's instances, a dataset's
  counter) instead of letting them queue, ten times in a row for some.
  Reads run at ``READ COMMITTED`` too (one consistent snapshot per statement, like
  SQLite's autocommit reads): they never wait for writers.

A version conflict (:class:`~posekit.store.errors.StaleVersionError`) is not a
retry: the retried operation reads the new version and refuses the stale write,
exactly as it does on SQLite.

Passwords in URLs are never logged nor put in error messages
(:func:`shown_url`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from posekit.store.errors import StoreError

__all__ = [
    "DATABASE_URL_ENV",
    "RETRY_ATTEMPTS",
    "DatabaseUnavailableError",
    "WriteConflictError",
    "check_connection",
    "codepoint_order",
    "create_store_engine",
    "is_retryable",
    "lock_rows",
    "parse_database_url",
    "retry_public_methods",
    "retrying",
    "shown_url",
    "starts_with",
    "write_transaction",
]

log = logging.getLogger(__name__)

#: Environment variable naming the database (the CLI's ``--database-url``, the server's
#: ``Settings.database_url``); unset: SQLite in the workspace folder.
DATABASE_URL_ENV = "POSEKIT_DATABASE_URL"
#: Attempts of one operation aborted by serialization failures or deadlocks.
RETRY_ATTEMPTS = 10
#: SQLSTATEs of aborts that succeed when the whole transaction is run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_BACKOFF_FIRST_S = 0.002
_BACKOFF_MAX_S = 0.2
_BUSY_TIMEOUT_S = 30.0
_CONNECT_TIMEOUT_S = 10
_BACKENDS = ("sqlite", "postgresql")

F = TypeVar("F", bound=Callable[..., Any])


class DatabaseUnavailableError(StoreError):
    """The database URL is invalid, its driver is missing, or the server cannot be
    reached (the message names the URL, without its password)."""


class WriteConflictError(StoreError):
    """A write was aborted by concurrent writers :data:`RETRY_ATTEMPTS` times in a row
    (PostgreSQL serialization failures or deadlocks); trying again later may succeed."""


# ---------------------------------------------------------------- URLs and engines
def shown_url(url: str | URL) -> str:
    """The URL as it may be logged or shown: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


def parse_database_url(url: str | URL) -> URL:
    """Check a database URL; ``postgresql://`` and ``postgres://`` mean psycopg 3.

    Raises:
        DatabaseUnavailableError: Not a URL, or not SQLite or PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise DatabaseUnavailableError(
            "database URL is not valid (expected e.g. "
            "postgresql+psycopg://user:password@host:5432/dbname or sqlite:///path/posekit.db)"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in _BACKENDS:
        raise DatabaseUnavailableError(
            f"database URL {shown_url(parsed)}: backend {parsed.get_backend_name()!r} is not "
            f"supported (posekit runs on {' and '.join(_BACKENDS)})"
        )
    if parsed.get_backend_name() == "postgresql" and not parsed.database:
        raise DatabaseUnavailableError(
            f"database URL {shown_url(parsed)} names no database (…/dbname at the end)"
        )
    return parsed


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
        # NORMAL is safe against corruption in WAL mode; only the last commit
        # may be lost on power failure, which is acceptable for an annotation tool.
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 64 MiB page cache: index updates of 100k-row imports stay in memory.
        cursor.execute("PRAGMA cache_size=-65536")
    finally:
        cursor.close()


def create_store_engine(url: URL, *, echo: bool = False) -> Engine:
    """The engine of a workspace database (``url`` from :func:`parse_database_url`).

    Raises:
        DatabaseUnavailableError: The database driver is not installed.
    """
    if url.get_backend_name() == "sqlite":
        # The store serializes its own transactions; the connection may be
        # used from the thread that got it from the pool, not only its creator.
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(
            url,
            echo=echo,
            # The server's worker threads (40) each may hold a connection.
            pool_size=10,
            max_overflow=30,
            pool_pre_ping=True,  # a restarted database server is reconnected to
            connect_args={"connect_timeout": _CONNECT_TIMEOUT_S, "application_name": "posekit"},
        )
    except (ModuleNotFoundError, NoSuchModuleError) as exc:
        raise DatabaseUnavailableError(
            f"database URL {shown_url(url)}: its driver is not installed ({exc}); "
            "install PostgreSQL support with: pip install 'posekit[postgres]'"
        ) from None


def check_connection(engine: Engine) -> None:
    """Connect once, so that a wrong address or password fails here, clearly.

    Raises:
        DatabaseUnavailableError: The database cannot be reached or refuses the login.
    """
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        password = engine.url.password
        if password:
            reason = reason.replace(str(password), "***")
        raise DatabaseUnavailableError(
            f"cannot connect to the database {shown_url(engine.url)}: {reason}"
        ) from None


# ---------------------------------------------------------------- ordering
class codepoint_order(ColumnElement[Any]):
    """A text column ordered by Unicode code point on every database: SQLite compares
    UTF-8 bytes (``BINARY``), PostgreSQL gets ``COLLATE "C"`` (the same byte order),
    whatever the database's own collation (``en_US`` would sort ``a`` before ``B``).

    Example:
        >>> select(ProjectRow).order_by(codepoint_order(ProjectRow.name))  # doctest: +SKIP
    """

    inherit_cache = True
    _traverse_internals: ClassVar[Any] = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element: Any) -> None:
        self.element = element
        self.type = element.type


@compiles(codepoint_order)
def _codepoint_order_default(element: codepoint_order, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.element, **kw))


@compiles(codepoint_order, "postgresql")
def _codepoint_order_postgresql(element: codepoint_order, compiler: Any, **kw: Any) -> str:
    return f'{compiler.process(element.element, **kw)} COLLATE "C"'


def starts_with(column: Any, prefix: str) -> Any:
    """``column`` begins with ``prefix``, case-sensitive on every database (``LIKE``
    ignores ASCII case on SQLite, not on PostgreSQL; ``%`` and ``_`` are no wildcards)."""
    from sqlalchemy import func

    return func.substr(column, 1, len(prefix)) == prefix


# ---------------------------------------------------------------- transactions
@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed on success and rolled back on any exception,
    isolated as the module docstring says (SQLite ``BEGIN IMMEDIATE``, PostgreSQL
    ``READ COMMITTED`` with row locks)."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def lock_rows(conn: Connection, table: Any, ids: Sequence[int]) -> None:
    """Lock rows of ``table`` by id until the caller's transaction ends, in id order
    (``ids``: at most a few hundred).

    On PostgreSQL ``SELECT ... FOR NO KEY UPDATE``: a transaction locking the same
    rows waits for this one, and its later statements see what this one committed.
    SQLite runs writers one at a time anyway: nothing to do.
    """
    if conn.dialect.name == "sqlite" or not ids:
        return
    table = getattr(table, "__table__", table)
    key = table.c.id
    # FOR NO KEY UPDATE: writers of the rows queue, but inserting rows that refer to
    # them (a foreign key takes FOR KEY SHARE) does not wait, nor deadlock with this.
    locked = select(key).where(key.in_(sorted(ids))).order_by(key)
    conn.execute(locked.with_for_update(key_share=True))


def is_retryable(exc: BaseException) -> bool:
    """True for a serialization failure or deadlock (SQLSTATE 40001 / 40P01), raised
    as it is or as the cause of another error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        original = current.orig if isinstance(current, DBAPIError) else current
        if getattr(original, "sqlstate", None) in RETRYABLE_SQLSTATES:
            return True
        current = current.__cause__ or current.__context__
    return False


_depth = threading.local()


def retrying(operation: F) -> F:
    """Run ``operation`` again, as a whole, when a serialization failure or deadlock
    aborts it (:func:`is_retryable`); at most :data:`RETRY_ATTEMPTS` times, sleeping
    2 ms, 4 ms, ... (at most 200 ms, jittered) in between.

    Only the outermost retrying call on a thread retries, so that an operation
    made of other operations is run again from its start. The operation must not
    leave effects outside the database that a second run would duplicate (files
    written by content hash are fine).

    Raises:
        WriteConflictError: Every attempt was aborted.
    """

    @functools.wraps(operation)
    def run(*args: Any, **kwargs: Any) -> Any:
        depth = getattr(_depth, "value", 0)
        _depth.value = depth + 1
        try:
            if depth:
                return operation(*args, **kwargs)
            for attempt in range(1, RETRY_ATTEMPTS + 1):
                try:
                    return operation(*args, **kwargs)
                except Exception as exc:
                    if not is_retryable(exc):
                        raise
                    if attempt == RETRY_ATTEMPTS:
                        raise WriteConflictError(
                            f"{operation.__name__}: aborted by concurrent writes "
                            f"{RETRY_ATTEMPTS} times in a row; try again"
                        ) from exc
                    pause = min(_BACKOFF_MAX_S, _BACKOFF_FIRST_S * 2 ** (attempt - 1))
                    log.debug(
                        "%s: concurrent write conflict (attempt %d), retrying",
                        operation.__name__, attempt,
                    )  # fmt: skip
                    time.sleep(pause * random.uniform(0.5, 1.5))
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            _depth.value = depth

    run.__posekit_retrying__ = True  # type: ignore[attr-defined]
    return run  # type: ignore[return-value]


def _opens_transaction(code: types.CodeType) -> bool:
    """Whether a function (or one nested in it) uses ``.transaction``."""
    if "transaction" in code.co_names:
        return True
    return any(isinstance(c, types.CodeType) and _opens_transaction(c) for c in code.co_consts)


def retry_public_methods(cls: type) -> type:
    """Class decorator: every public method of ``cls`` (its own and inherited) that
    opens a write transaction (``self.transaction()``) runs under :func:`retrying`.

    Only those: reads never need a retry, and hot helpers (``media_file`` runs once
    per listed item) stay free of the wrapper. A method that writes through another
    one is retried by the inner one. Properties, class and static methods are left
    alone.
    """
    names = {name for klass in cls.__mro__ for name in vars(klass) if not name.startswith("_")}
    for name in sorted(names - {"transaction"}):
        value = inspect.getattr_static(cls, name)
        if (
            isinstance(value, types.FunctionType)
            and not hasattr(value, "__posekit_retrying__")
            and _opens_transaction(value.__code__)
        ):
            setattr(cls, name, retrying(value))
    return cls
