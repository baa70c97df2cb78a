"""History tests run against both backends: ``history_target`` is a SQLite file or a fresh
schema on a real PostgreSQL server the session starts itself (see ``tests/pgserver.py``).

Where the server binaries are missing the PostgreSQL half is skipped with the reason, unless
``KSPEC_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) makes that an error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_kspec.history import HistoryStore
from tests.e2e.conftest import cluster
from tests.pgserver import PostgresServer, PostgresUnavailable

__all__ = ["cluster"]

PASSWORD_ENV = "KSPEC_TEST_PG_PASSWORD"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server on a loopback port for the whole session."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as e:
        if os.environ.get("KSPEC_REQUIRE_POSTGRES") == "1":
            pytest.fail(str(e))
        pytest.skip(str(e))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@dataclass
class Backend:
    """Where a test's history lives and how to open it again (also from a subprocess)."""

    name: str
    target: str
    password: str | None = None

    def open(self, **kwargs: Any) -> HistoryStore:
        return HistoryStore(self.target, password=self.password, **kwargs)

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that opens ``target`` (libpq reads PGPASSWORD)."""
        return {"PGPASSWORD": self.password} if self.password else {}

    def cli(self) -> list[str]:
        return ["--history", self.target]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "history.db"))
    server: PostgresServer = request.getfixturevalue("postgres")
    monkeypatch.setenv("PGPASSWORD", server.password)  # what `kspec drift history` reads
    return Backend("postgres", server.url(), server.password)
