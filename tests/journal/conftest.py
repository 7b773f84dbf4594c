"""Fixtures: the same journal tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.journal.pgserver import REQUIRE_ENV, PgServer, unavailable_reason


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{REQUIRE_ENV} is set but {reason}")
        pytest.skip(reason)
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database: each test sees only its own journal and locks."""
    return pg_server.url(pg_server.create_database())


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def target(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str | Path:
    """Where the journal under test lives: a SQLite file or a PostgreSQL database URL."""
    if backend == "sqlite":
        return tmp_path / "journal.db"
    return str(request.getfixturevalue("pg_url"))
