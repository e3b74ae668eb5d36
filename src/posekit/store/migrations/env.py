"""Alembic environment of the posekit database.

:func:`posekit.store.schema.upgrade_database` runs it with an open connection in
``config.attributes["connection"]``; nobody needs an ``alembic.ini``. For the
alembic command line, ``sqlalchemy.url`` in the config is used instead.

``render_as_batch`` makes ALTERs work on SQLite (which cannot alter most
columns: the table is copied) and changes nothing on PostgreSQL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from posekit.store.tables import Base

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if context.is_offline_mode():  # ``alembic upgrade --sql``: print the SQL script
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
elif connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
