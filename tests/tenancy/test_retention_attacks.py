"""A writer floods a model with versions to fill the store's volume. The per-model cap holds: the oldest
unaliased versions go, the aliased and the newest stay (bytes intact), the volume holds no more than the cap,
other models are untouched, and when only protected versions are left the upload is refused (409)."""

from __future__ import annotations

import hashlib

import pytest
import requests

from conftest import Tenant
from iris_client import Rejected
from mlfunctions_harness.model_store import onnx_model

pytestmark = pytest.mark.server

CAP = 3


def _pruned_total(store) -> float:
    for line in requests.get(f"{store.url}/metrics", timeout=5).text.splitlines():
        if line.startswith("iris_versions_pruned_total "):
            return float(line.split()[1])
    raise AssertionError("no iris_versions_pruned_total in /metrics")


def test_a_flood_keeps_at_most_the_cap_and_never_an_aliased_or_the_newest_version(store_with):
    store = store_with(max_versions_per_model=CAP)
    store.admin.claim("victim-model", "data-science")
    victim = Tenant(store, "data-science").mint("train", ["victim-model"], ["read", "write"])
    victim.upload("victim-model", onnx_model(seed=1))
    flooder = Tenant(store, "eve").mint("flood", ["eve-model"], ["read", "write"])
    flooder.upload("eve-model", onnx_model(seed=10))
    pinned = flooder.upload("eve-model", onnx_model(seed=11))
    store.admin.set_alias("eve-model", "production", pinned.version)
    pinned_bytes = hashlib.sha256(onnx_model(seed=11)).hexdigest()
    for seed in range(12, 30):
        newest = flooder.upload("eve-model", onnx_model(seed=seed))
        kept = [v.version for v in store.admin.list_versions("eve-model")]
        assert len(kept) <= CAP and pinned.version in kept and newest.version in kept
    assert kept == [pinned.version, newest.version - 1, newest.version]
    assert len(store.blobs("eve-model")) == CAP  # the volume holds what the catalog lists, no more
    assert hashlib.sha256(store.admin.download("eve-model", "production").data).hexdigest() == pinned_bytes
    assert _pruned_total(store) == 20 - CAP
    assert [v.version for v in store.admin.list_versions("victim-model")] == [
        1
    ]  # per model: others untouched


def test_when_only_protected_versions_remain_the_upload_is_refused_and_nothing_changes(store_with):
    store = store_with(max_versions_per_model=CAP)
    writer = Tenant(store, "eve").mint("pinned", ["all-pinned"], ["read", "write", "alias"])
    for seed in range(CAP):
        version = writer.upload("all-pinned", onnx_model(seed=seed))
        writer.set_alias("all-pinned", f"pin-{version.version}", version.version)
    before = [(v.version, v.sha256) for v in store.admin.list_versions("all-pinned")]
    with pytest.raises(Rejected) as refused:
        writer.upload("all-pinned", onnx_model(seed=50))
    assert refused.value.status == 409 and refused.value.code == "version_cap"
    assert f"cap of {CAP} versions" in refused.value.message
    assert [(v.version, v.sha256) for v in store.admin.list_versions("all-pinned")] == before
    assert len(store.blobs("all-pinned")) == CAP and store.staged() == []
    writer.delete_alias("all-pinned", "pin-1")  # unpinning one makes room again
    # The refused upload rolled back whole, its version number included.
    assert writer.upload("all-pinned", onnx_model(seed=51)).version == CAP + 1
    assert [v.version for v in store.admin.list_versions("all-pinned")] == [2, 3, CAP + 1]
