"""The catalog's change log on each catalog database (SQLite, PostgreSQL): what each write logs, in its own transaction, in commit order;
trimming; the migration of a store from before the log."""

from __future__ import annotations

import multiprocessing

import legacy_catalogs
import pytest

from iris_server import change_log
from iris_server.catalog import Catalog
from iris_server.schema_upgrade import head
from iris_server.records import Conflict, NewVersion, VersionCapReached


def _new(model: str = "iris", n: int = 0) -> NewVersion:
    return NewVersion(
        model=model,
        format="onnx",
        sha256="a" * 64,
        size=10,
        uploader="t",
        metadata={},
        blob_key=f"{model}/blob-{n}.onnx",
    )


def _log(catalog: Catalog, after: int = 0) -> list[tuple]:
    return [(c.seq, c.model, c.kind, c.version, c.alias) for c in catalog.changes_after(after, 1000).changes]


@pytest.fixture
def catalog(catalog_target) -> Catalog:
    catalog = Catalog(catalog_target)
    yield catalog
    catalog.close()


def test_every_write_logs_what_it_changed_in_order(catalog):
    assert catalog.latest_change() == 0
    catalog.add_version(_new(n=1))
    catalog.add_version(_new(n=2))
    catalog.set_alias("iris", "production", 1)
    catalog.set_alias("iris", "production", 1)  # no move: nothing to tell
    catalog.set_alias("iris", "production", 2)
    catalog.delete_alias("iris", "production")
    catalog.delete_version("iris", 1)
    catalog.add_version(_new("wine", n=1))
    assert _log(catalog) == [
        (1, "iris", "version_added", 1, None),
        (2, "iris", "version_added", 2, None),
        (3, "iris", "alias_set", 1, "production"),
        (4, "iris", "alias_set", 2, "production"),
        (5, "iris", "alias_deleted", 2, "production"),
        (6, "iris", "version_deleted", 1, None),
        (7, "wine", "version_added", 1, None),
    ]
    assert _log(catalog, after=5) == _log(catalog)[5:]
    page = catalog.changes_after(0, 2)
    assert [c.seq for c in page.changes] == [1, 2] and page.latest == 7 and page.trimmed_through == 0


def test_pruning_is_logged_with_the_upload_and_refusals_log_nothing(catalog):
    for n in range(3):
        catalog.add_version(_new(n=n), max_versions=2)
    assert _log(catalog)[-2:] == [
        (3, "iris", "version_added", 3, None),
        (4, "iris", "version_deleted", 1, None),
    ]
    catalog.set_alias("iris", "a", 2)
    catalog.set_alias("iris", "b", 3)
    before = catalog.latest_change()
    with pytest.raises(VersionCapReached):
        catalog.add_version(_new(n=9), max_versions=2)
    with pytest.raises(Conflict):
        catalog.delete_version("iris", 2)  # aliased: refused
    assert catalog.latest_change() == before  # the refused upload's entry was rolled back with it


def test_the_log_is_trimmed_to_what_it_keeps_and_says_how_far(catalog_target):
    catalog = Catalog(catalog_target, change_log_keep=100)
    for n in range(300):
        catalog.add_version(_new(n=n))
    page = catalog.changes_after(0, 1000)
    assert page.latest == 300
    assert page.trimmed_through == 256 - 100  # the last trim ran at 256, a multiple of TRIM_EVERY
    assert page.changes[0].seq == page.trimmed_through + 1 and page.changes[-1].seq == 300
    assert len(page.changes) <= 100 + change_log.TRIM_EVERY


def _upload_many(path: str, model: str, count: int) -> None:
    catalog = Catalog(path)
    for n in range(count):
        catalog.add_version(_new(model, n))


def test_writers_in_several_processes_get_one_gapless_sequence(catalog_target):
    path = str(catalog_target)
    Catalog(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_upload_many, args=(path, f"m{i}", 25)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    changes = Catalog(path).changes_after(0, 1000).changes
    assert [c.seq for c in changes] == list(range(1, 101))
    for i in range(4):  # each writer's own changes stay in its order
        assert [c.version for c in changes if c.model == f"m{i}"] == list(range(1, 26))


def test_a_store_from_before_the_log_is_migrated_with_its_versions_and_an_empty_log(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    db = legacy_catalogs.make(path, schema_version=2)
    db.execute("INSERT INTO models (name, next_version, created_at) VALUES ('iris', 2, 'x')")
    db.execute(
        "INSERT INTO versions (model, version, format, sha256, size, created_at, uploader, metadata, blob_key) "
        "VALUES ('iris', 1, 'onnx', ?, 1, 'x', 'admin', '{}', 'iris/1.onnx')",
        ("a" * 64,),
    )
    db.close()
    catalog = Catalog(path)
    with catalog.read() as db:
        assert db.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [(head(),)]
    assert catalog.latest_change() == 0 and _log(catalog) == []
    catalog.add_version(_new(n=5))
    assert _log(catalog) == [(1, "iris", "version_added", 2, None)]
