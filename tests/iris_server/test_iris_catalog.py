"""Catalog tests on each catalog database (a real SQLite file, a real PostgreSQL): version allocation,
idempotency, aliases, tokens, ownership."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import pytest

from iris_server.auth import write_guard
from iris_server.catalog import Catalog
from iris_server.schema_upgrade import head
from iris_server.names import parse_version_ref
from iris_server.ownership import Ownership
from iris_server.records import Conflict, Missing, NewVersion, Owned, TokenRecord, VersionCapReached, now
from iris_server.tenancy import Denied
from iris_server.tokens import Principal


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
def catalog(catalog_target) -> Catalog:
    catalog = Catalog(catalog_target)
    yield catalog
    catalog.close()


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


def _add_many(target: str, start: int, count: int, queue) -> None:
    catalog = Catalog(target)
    queue.put([catalog.add_version(_new(n=start + i)).record.version for i in range(count)])


def test_processes_get_distinct_versions(catalog_target):
    """As uvicorn workers (one SQLite file) or replicas (one PostgreSQL database) would: separate processes."""
    target = str(catalog_target)
    Catalog(target).close()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_add_many, args=(target, 100 * w, 15, queue)) for w in range(4)]
    for worker in workers:
        worker.start()
    numbers = [n for _ in workers for n in queue.get(timeout=60)]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert sorted(numbers) == list(range(1, 61))


def test_numbers_beyond_any_allocated_are_missing_not_errors(catalog):
    """PostgreSQL's INTEGER ends at 2**31 - 1: a larger number names no version, it is not a bad query."""
    catalog.add_version(_new())
    huge = 167_718_536_512
    for attempt in (
        lambda: catalog.resolve("iris", parse_version_ref(str(huge))),
        lambda: catalog.delete_version("iris", huge),
        lambda: catalog.set_alias("iris", "production", huge),
    ):
        with pytest.raises(Missing, match=f"no version {huge}"):
            attempt()


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


def test_tokens_keep_their_namespace_and_metadata(catalog):
    record = TokenRecord(
        "00000000000000aa", "f" * 64, ["iris"], ["read"], "", now(), None, "ds", {"mlfunction": "ds/p"}
    )
    catalog.add_token(record)
    assert catalog.get_token(record.id) == record
    assert catalog.list_tokens("ds") == [record] and catalog.list_tokens("eve") == []


def test_the_schema_is_migrated_once_to_the_current_version(catalog_target):
    Catalog(catalog_target).add_version(_new())
    again = Catalog(catalog_target)  # a second worker, or a restart: nothing to do, nothing lost
    with again.read() as db:
        assert db.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [(head(),)]
    assert [v.version for v in again.list_versions("iris")] == [1]


def test_the_cap_prunes_in_the_same_transaction_and_refuses_when_all_are_protected(catalog):
    for i in range(3):
        catalog.add_version(_new(n=i), max_versions=3)
    catalog.set_alias("iris", "production", 1)
    result = catalog.add_version(_new(n=3), max_versions=3)
    assert [old.version for old in result.pruned] == [2]
    assert [v.version for v in catalog.list_versions("iris")] == [1, 3, 4]
    catalog.set_alias("iris", "canary", 3)
    catalog.set_alias("iris", "next", 4)
    with pytest.raises(VersionCapReached, match="cap of 3 versions"):
        catalog.add_version(_new(n=4), max_versions=3)
    assert [v.version for v in catalog.list_versions("iris")] == [1, 3, 4]
    assert catalog.add_version(_new(n=5)).record.version == 5  # the refused one used no number


def test_claims_conflict_and_release(catalog):
    ownership = Ownership(catalog)
    claim, created = ownership.claim("iris", "ds")
    assert created and claim.claimed_by == "admin"
    assert ownership.claim("iris", "ds") == (claim, False)
    with pytest.raises(Owned) as refused:
        ownership.claim("iris", "eve")
    assert refused.value.owner == "ds"
    ownership.grant("iris", "analytics", ["read", "read"])
    assert ownership.grants("iris") == {"analytics": ["read"]}
    assert ownership.release("iris") == claim
    assert ownership.describe("iris").claim is None and ownership.grants("iris") == {"analytics": ["read"]}
    with pytest.raises(Missing):
        ownership.release("iris")


def test_an_upload_loses_the_model_if_another_namespace_claimed_it_meanwhile(catalog):
    """Both writers were allowed when their uploads started; the one that commits second is refused in the
    transaction and leaves no version."""
    ownership = Ownership(catalog)
    eve = Principal(id="e", models=("*",), rights=frozenset({"write"}), namespace="eve")
    ds = Principal(id="d", models=("*",), rights=frozenset({"write"}), namespace="ds")
    guards = [write_guard(principal, "new", ownership) for principal in (ds, eve)]
    catalog.add_version(_new("new", n=1), guard=guards[0])
    with pytest.raises(Denied) as refused:
        catalog.add_version(_new("new", n=2), guard=guards[1])
    assert refused.value.denial.owner == "ds"
    assert ownership.describe("new").claim.claimed_by == "d"
    assert [v.metadata for v in catalog.list_versions("new")] == [{"n": 1}]
