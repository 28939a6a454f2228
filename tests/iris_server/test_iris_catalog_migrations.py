"""The catalog's schema migrations (Alembic, iris_server/migrations) on real databases: what they build matches the
tables the queries use, processes starting together on an empty database migrate it once, and SQLite catalogs
made by the code before Alembic upgrade in place with their data."""

from __future__ import annotations

import multiprocessing
import sqlite3

import legacy_catalogs
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from iris_server.catalog import Catalog
from iris_server.catalog_schema import metadata
from iris_server.names import parse_version_ref
from iris_server.records import NewVersion
from iris_server.schema_upgrade import SchemaTooNew, head
from sqlalchemy import create_engine

NOW = "2026-01-01T00:00:00.000Z"


def _new(n: int) -> NewVersion:
    return NewVersion("iris", "onnx", "b" * 64, 10, "t", {"n": n}, f"iris/new-{n}.onnx")


def _revision(catalog: Catalog) -> list[tuple]:
    with catalog.read() as db:
        return db.exec_driver_sql("SELECT version_num FROM alembic_version").all()


def test_the_migrated_schema_is_the_schema_the_queries_use(catalog_target):
    catalog = Catalog(catalog_target)
    with catalog.read() as db:
        differences = compare_metadata(MigrationContext.configure(db), metadata)
    # Alembic's autogenerate compare: tables, columns, types, nullability, indexes, constraints.
    assert differences == []
    assert _revision(catalog) == [(head(),)]


def _open(target: str, queue) -> None:
    try:
        Catalog(target).close()
        queue.put("ok")
    except Exception as error:  # noqa: BLE001 (any failure is reported to the test, which names it)
        queue.put(f"{type(error).__name__}: {error}")


def test_processes_starting_together_on_an_empty_database_migrate_it_once(catalog_target):
    """As three replicas (or workers) starting at the same moment: all come up, the schema is built once."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    starters = [context.Process(target=_open, args=(str(catalog_target), queue)) for _ in range(3)]
    for starter in starters:
        starter.start()
    outcomes = [queue.get(timeout=120) for _ in starters]
    for starter in starters:
        starter.join(30)
    assert outcomes == ["ok"] * 3
    catalog = Catalog(catalog_target)
    assert _revision(catalog) == [(head(),)]
    with catalog.read() as db:  # the counter row the change log needs was inserted once, not three times
        assert db.exec_driver_sql("SELECT COUNT(*) FROM change_log").scalar() == 1
    assert catalog.add_version(_new(1)).record.version == 1


def _fill_legacy(db: sqlite3.Connection, schema_version: int) -> None:
    """What a store at `schema_version` holds: a model with two versions (one deleted), an alias, a token."""
    db.execute("INSERT INTO models VALUES ('iris', 3, ?)", (NOW,))
    db.execute(
        "INSERT INTO versions (model, version, format, sha256, size, created_at, uploader, metadata, blob_key) "
        "VALUES ('iris', 1, 'onnx', ?, 5, ?, 'abc (trainer)', '{\"n\": 1}', 'iris/1.onnx')",
        ("a" * 64, NOW),
    )
    db.execute("INSERT INTO aliases VALUES ('iris', 'production', 1, ?)", (NOW,))
    db.execute(
        "INSERT INTO tokens (id, secret_sha256, models, rights, description, created_at) "
        "VALUES ('0123456789abcdef', ?, '[\"iris\"]', '[\"read\"]', 'reader', ?)",
        ("f" * 64, NOW),
    )
    if schema_version >= 2:
        db.execute("INSERT INTO owners VALUES ('iris', 'ds', ?, 'admin')", (NOW,))


@pytest.mark.parametrize("schema_version", [0, 1, 2, 3])
def test_a_sqlite_catalog_from_before_alembic_upgrades_in_place(tmp_path, schema_version):
    """Version 0 is a store from before migrations were numbered (the tables of the first, user_version 0)."""
    path = tmp_path / "catalog.sqlite3"
    db = legacy_catalogs.make(path, schema_version=max(schema_version, 1))
    if schema_version == 0:
        db.execute("PRAGMA user_version = 0")
    _fill_legacy(db, schema_version)
    db.close()

    catalog = Catalog(path)
    assert _revision(catalog) == [(head(),)]
    with catalog.read() as check:
        assert check.exec_driver_sql("PRAGMA user_version").scalar() == int(head())
    old = catalog.resolve("iris", parse_version_ref("production"))
    assert (old.version, old.metadata, old.written_by["description"]) == (1, {"n": 1}, "trainer")
    assert catalog.get_token("0123456789abcdef").namespace is None
    assert catalog.get_model("iris").owner == ("ds" if schema_version >= 2 else None)
    # The counter survived: version 2 was used (and deleted) before the upgrade, so the next is 3.
    assert catalog.add_version(_new(3)).record.version == 3
    assert [change.kind for change in catalog.changes_after(0, 10).changes] == ["version_added"]


def test_a_schema_newer_than_the_server_is_refused(catalog_target):
    catalog = Catalog(catalog_target)
    with catalog.write() as db:
        db.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaTooNew, match="revision 9999, newer than this server's"):
        Catalog(catalog_target)


def test_a_server_from_before_alembic_refuses_the_upgraded_sqlite_catalog(tmp_path):
    """It compared user_version with its own schema version (at most 3) and stopped on a newer one."""
    path = tmp_path / "catalog.sqlite3"
    Catalog(path)
    engine = create_engine(f"sqlite:///{path}")
    with engine.connect() as db:
        assert db.exec_driver_sql("PRAGMA user_version").scalar() >= len(legacy_catalogs.MIGRATIONS)
    engine.dispose()
