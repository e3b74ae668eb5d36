"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from db_backends import close_server, configure, database_backend, postgres_database

__all__ = ["database_backend", "postgres_database"]  # fixtures: every test, on request

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared sample-data folder (``../shared/data`` next to the repo); tests that
    use it are skipped with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA.resolve()}")
    return SHARED_DATA.resolve()


def pytest_configure(config: pytest.Config) -> None:
    configure(config)
    # Argon2 at its production cost takes ~0.2 s a hash; tests log in hundreds of
    # times. Cheap parameters keep the same code path (tests/store/test_users.py
    # checks the production parameters separately).
    from posekit.store.passwords import configure_hashing

    configure_hashing(time_cost=1, memory_cost=1024, parallelism=1)


def pytest_sessionfinish(session: pytest.Session) -> None:
    close_server()
