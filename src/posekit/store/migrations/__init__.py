"""Alembic migrations of the project database, run by :mod:`posekit.store.schema`."""
