"""Catalog tests on a real SQLite file: version allocation, idempotency, aliases, tokens."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest

from iris_server.catalog import Catalog
from iris_server.records import Conflict, Missing, NewVersion, TokenRecord, now
from iris_server.names import parse_version_ref


def _new(model: str = "iris", key: str | None = None, n: int = 0, sha: str = "a" * 64) -> NewVersion:
    return NewVersion(
        model=model,
        format="onnx",
        sha256=sha,
        size=10,
        uploader="t",
        metadata={"n": n},
        blob_key=f"{model}/{key or 'blob'}-{n}.onnx",
        idempotency_key=key,
    )


@pytest.fixture
def catalog(tmp_path) -> Catalog:
    return Catalog(tmp_path / "catalog.sqlite3")


def test_versions_count_up_per_model_and_resolve(catalog):
    assert [catalog.add_version(_new(n=i)).record.version for i in range(3)] == [1, 2, 3]
    assert catalog.add_version(_new("wine")).record.version == 1
    assert catalog.resolve("iris", parse_version_ref("latest")).metadata == {"n": 2}
    assert catalog.resolve("iris", parse_version_ref("2")).metadata == {"n": 1}


def test_deleted_numbers_are_never_reused(catalog):
    for i in range(3):
        catalog.add_version(_new(n=i))
    catalog.delete_version("iris", 3)
    assert catalog.add_version(_new(n=9)).record.version == 4
    with pytest.raises(Missing, match="no version 3"):
        catalog.resolve("iris", parse_version_ref("3"))


def test_same_idempotency_key_returns_the_first_version(catalog):
    first = catalog.add_version(_new(key="k1", n=1))
    again = catalog.add_version(_new(key="k1", n=2))
    assert first.created and not again.created
    assert again.record == first.record
    assert [v.version for v in catalog.list_versions("iris")] == [1]


def test_threads_get_distinct_versions(catalog):
    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(lambda i: catalog.add_version(_new(n=i)).record.version, range(40)))
    assert sorted(numbers) == list(range(1, 41))


def _add_many(path: str, start: int, count: int, queue) -> None:
    catalog = Catalog(path)
    queue.put([catalog.add_version(_new(n=start + i)).record.version for i in range(count)])


def test_processes_get_distinct_versions(tmp_path):
    """As uvicorn workers would: separate processes, one database file."""
    path = str(tmp_path / "catalog.sqlite3")
    Catalog(path)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_add_many, args=(path, 100 * w, 15, queue)) for w in range(4)]
    for worker in workers:
        worker.start()
    numbers = [n for _ in workers for n in queue.get(timeout=60)]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert sorted(numbers) == list(range(1, 61))


def test_aliases_move_and_protect_their_target(catalog):
    for i in range(3):
        catalog.add_version(_new(n=i))
    catalog.set_alias("iris", "production", 2)
    assert catalog.resolve("iris", parse_version_ref("production")).version == 2
    with pytest.raises(Conflict, match="production"):
        catalog.delete_version("iris", 2)
    catalog.set_alias("iris", "production", 3)  # rollforward; the old target is free to go
    catalog.delete_version("iris", 2)
    assert catalog.aliases("iris") == {"production": 3}
    with pytest.raises(Missing, match="no version 7"):
        catalog.set_alias("iris", "production", 7)
    catalog.delete_alias("iris", "production")
    with pytest.raises(Missing, match="no alias"):
        catalog.resolve("iris", parse_version_ref("production"))


def test_missing_things_say_what_is_missing(catalog):
    with pytest.raises(Missing, match="model 'nope' does not exist"):
        catalog.resolve("nope", parse_version_ref("latest"))
    with pytest.raises(Missing, match="does not exist"):
        catalog.list_versions("nope")
    catalog.add_version(_new())
    catalog.delete_version("iris", 1)
    with pytest.raises(Missing, match="has no versions"):
        catalog.resolve("iris", parse_version_ref("latest"))
    assert catalog.list_versions("iris") == []


def test_tokens_are_listed_and_revoked(catalog):
    record = TokenRecord("0123456789abcdef", "f" * 64, ["iris"], ["read"], "reader", now(), None)
    catalog.add_token(record)
    assert catalog.get_token(record.id) == record
    catalog.revoke_token(record.id)
    catalog.revoke_token(record.id)  # twice is fine
    assert catalog.get_token(record.id).revoked_at is not None
    assert [t.public()["revoked"] for t in catalog.list_tokens()] == [True]
    with pytest.raises(Missing):
        catalog.revoke_token("ffffffffffffffff")
