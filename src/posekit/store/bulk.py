"""Fast multi-row inserts for bulk imports, portable to every SQLAlchemy dialect."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from sqlalchemy import JSON, Connection, Dialect, LargeBinary, insert, literal_column

from posekit.store.codec import encode_json_texts

__all__ = [
    "PreparedInsert",
    "bulk_insert",
    "bulk_insert_columns",
    "execute_prepared",
    "prepare_insert_columns",
]

#: Rows per multi-row INSERT statement in bulk inserts.
_ROWS_PER_STATEMENT = 200


def _bind_processors(dialect: Dialect, table: Any, keys: Sequence[str]) -> dict[str, Any]:
    """``key -> bind processor`` of the columns that have one for the connection's dialect.

    The processors come from the dialect's implementation of each type (e.g.
    SQLite's ``DATETIME`` string formatting, ``JSON`` serialisation, or nothing
    where the driver adapts the value natively), exactly what a Core ``insert``
    would apply.
    """
    processors = {}
    for key in keys:
        column_type = table.c[key].type
        if isinstance(column_type, LargeBinary):
            continue  # bytes go to every DBAPI as they are; wrapping them is pure cost
        processor = column_type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            processors[key] = processor
    return processors


def _all_same(values: Sequence[Any]) -> bool:
    """Whether ``values`` (not empty) are all equal to the first, of its type, and that
    type is one :func:`_sql_literal` may write (tested in C-level passes)."""
    first = values[0]
    if type(first) not in (type(None), bool, int, str):
        return False
    if not isinstance(values, list):
        values = list(values)
    return values.count(first) == len(values) and set(map(type, values)) == {type(first)}


def _sql_literal(value: Any) -> str | None:
    """``value`` (already bind-processed) as a SQLite literal that stores exactly what
    binding it would, or None where that is not certain (then it is bound)."""
    if value is None:
        return "NULL"
    if type(value) is bool:  # bound as the integer 0 or 1
        return str(int(value))
    if type(value) is int:  # not an int subclass with its own str()
        return str(value)
    if type(value) is str and value.isascii() and value.isprintable():
        # A quoted literal is TEXT, as a bound str is; '' is the only escape.
        return "'" + value.replace("'", "''") + "'"
    return None


@dataclass
class PreparedInsert:
    """A bulk insert ready for the driver (:func:`prepare_insert_columns`): run it
    with :func:`execute_prepared`. ``statements`` pairs each SQL text with its
    parameter sets (one ``executemany`` each)."""

    count: int
    statements: list[tuple[str, list[Any]]] = field(default_factory=list)


def bulk_insert_columns(
    conn: Connection,
    table: Any,
    columns: Mapping[str, Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> int:
    """Insert rows given column by column, with one ``executemany``, for any database.

    The statement is compiled once for the connection's dialect (its own
    paramstyle, so the same code runs on SQLite and PostgreSQL) and sent
    straight to the driver inside the caller's transaction: no per-row
    SQLAlchemy parameter bookkeeping. Each column's bind processor is applied
    to its non-NULL values in one pass; ``constants`` (such as the import
    timestamp) are processed once; on SQLite those that are ints, plain text
    (such as SQLite's rendering of a ``DateTime``) or NULL are written into the
    statement as literals instead of being bound on every row (the driver's
    per-value binding is a good part of the insert time), which stores the same
    values (an integer literal is an INTEGER, a quoted one TEXT, as when bound).
    A column whose values are all one such value is treated as a constant
    there too. Elsewhere (PostgreSQL) every value stays a bound parameter.

    Same as ``execute_prepared(conn, prepare_insert_columns(conn.dialect, ...))``:
    a caller with a writer thread prepares on its own thread and leaves only the
    driver calls to the writer.

    Args:
        conn: Connection inside a transaction.
        table: Table or ORM class.
        columns: ``column name -> values`` (all the same length; None is NULL).
        constants: ``column name -> value`` shared by every row.

    Returns:
        The number of rows inserted.
    """
    return execute_prepared(conn, prepare_insert_columns(conn.dialect, table, columns, constants))


def execute_prepared(conn: Connection, prepared: PreparedInsert) -> int:
    """Run a :class:`PreparedInsert` on ``conn`` (inside a transaction); the row count."""
    for sql, params in prepared.statements:
        conn.exec_driver_sql(sql, params)
    return prepared.count


def prepare_insert_columns(
    dialect: Dialect,
    table: Any,
    columns: Mapping[str, Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
) -> PreparedInsert:
    """The statements and parameters of :func:`bulk_insert_columns` for ``dialect``
    (no database access)."""
    constants = dict(constants or {})
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"bulk insert into {table}: columns of different lengths {lengths}")
    count = lengths.pop() if lengths else 0
    if count == 0:
        return PreparedInsert(0)
    table = getattr(table, "__table__", table)
    processors = _bind_processors(dialect, table, [*columns, *constants])
    prepared: dict[str, Sequence[Any]] = {}
    # JSON that the dialect takes as text and serialises with the default
    # ``json.dumps`` (what a Workspace engine uses) is encoded in bulk.
    text_json = (
        getattr(dialect, "_json_serializer", None) is None
        and not dialect.supports_native_json_serialization
    )
    sqlite = dialect.name == "sqlite"
    if sqlite:
        # A column whose values are all the same one (NULL scores, the same source)
        # is a constant too: written once as a literal instead of bound per row.
        columns = dict(columns)
        shared = [
            key
            for key, values in columns.items()
            if _all_same(values)
            # JSON values other than NULL keep their one serialisation path
            and (values[0] is None or not isinstance(table.c[key].type, JSON))
        ]
        for key in shared[: len(columns) - 1]:  # (at least one column stays bound)
            constants[key] = columns.pop(key)[0]
    for key, values in columns.items():
        processor = processors.get(key)
        if processor is None:
            pass
        elif text_json and isinstance(table.c[key].type, JSON):
            values = encode_json_texts(values)
        else:
            values = [None if v is None else processor(v) for v in values]
        prepared[key] = values
    literals: dict[str, Any] = {}
    for key, value in constants.items():
        processor = processors.get(key)
        if processor is not None and value is not None:
            value = processor(value)
        literal = _sql_literal(value) if sqlite else None
        if literal is not None:
            literals[key] = literal_column(literal)
        else:
            prepared[key] = [value] * count
    statement = insert(table).values(literals) if literals else insert(table)
    compiled = statement.compile(dialect=dialect, column_keys=list(prepared))
    if not compiled.positional:
        names = {name: bind.key for name, bind in compiled.binds.items()}
        params = [
            dict(zip(names, values)) for values in zip(*(prepared[k] for k in names.values()))
        ]
        return PreparedInsert(count, [(str(compiled), params)])
    order = [compiled.binds[name].key for name in compiled.positiontup or ()]
    rows: list[Any] = list(zip(*(prepared[key] for key in order)))
    # Positional drivers (SQLite): several rows per statement (multi-row VALUES,
    # standard SQL) cut the per-statement cost of executemany by about a third.
    limit = getattr(dialect, "insertmanyvalues_max_parameters", 32700)
    per_statement = max(1, min(_ROWS_PER_STATEMENT, limit // max(1, len(order))))
    full = len(rows) - len(rows) % per_statement
    out = PreparedInsert(count)
    if full and per_statement > 1:
        sql = str(compiled)
        # The first " VALUES " ends the column list (a literal after it may hold the word).
        head, _, placeholders = sql.partition(" VALUES ")
        multi = head + " VALUES " + ", ".join([placeholders] * per_statement)
        batches = [
            tuple(chain.from_iterable(rows[start : start + per_statement]))
            for start in range(0, full, per_statement)
        ]
        out.statements.append((multi, batches))
        rows = rows[full:]
    if rows:
        out.statements.append((str(compiled), rows))
    return out


def bulk_insert(conn: Connection, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (dicts with the same keys) with one ``executemany``.

    Equivalent to ``conn.execute(insert(table), rows)`` but several times faster
    for 100k rows; see :func:`bulk_insert_columns`. A value shared by every row
    (such as the import timestamp) is bind-processed once.
    """
    if not rows:
        return
    columns: dict[str, list[Any]] = {}
    constants: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        first = values[0]
        if all(v is first for v in values):
            constants[key] = first
        else:
            columns[key] = values
    if not columns:  # every value shared: still one row per input row
        key = next(iter(constants))
        columns[key] = [constants.pop(key)] * len(rows)
    bulk_insert_columns(conn, table, columns, constants)
