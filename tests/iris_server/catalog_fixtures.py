"""The catalog databases tests run on: SQLite files, and one real PostgreSQL cluster for the session
(mlfunctions_harness.postgres, Debian's packages) with a fresh database per test or per store.

`catalog_target` is what Catalog() takes (a SQLite path or a PostgreSQL URL), once per kind in CATALOGS. Stores
started as processes get theirs through `PostgresCatalogs.url_for(data_dir)`: one database per data dir, so a
restart, or a second replica given the same data dir's database, finds the same catalog.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mlfunctions_harness.postgres import PostgresServer

CATALOGS = ["sqlite", "postgresql"]


class PostgresCatalogs:
    """The session's PostgreSQL and the databases made in it."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._made: set[str] = set()

    def url_for(self, data_dir: Path) -> str:
        """The database of the store with this data dir (created on first use)."""
        name = "store_" + hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:16]
        if name not in self._made:
            self.server.create_database(name)
            self._made.add(name)
        return self.server.url(name)

    def fresh(self) -> str:
        return self.server.create_database()


@pytest.fixture(scope="session")
def postgres() -> PostgresCatalogs:
    """One real PostgreSQL for the session (about 3 s to initdb and start; see hack/README.md)."""
    server = PostgresServer().start()
    yield PostgresCatalogs(server)
    server.remove()


@pytest.fixture(params=CATALOGS)
def catalog_target(request, tmp_path) -> str | Path:
    """A new, empty catalog database of each kind: a SQLite file path, or a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "catalog.sqlite3"
    return request.getfixturevalue("postgres").fresh()
