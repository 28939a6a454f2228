"""A store from before ownership (catalog schema of iris-server 0.1: no owners, no namespaces, write meaning
everything) is upgraded in place. Its models, versions and tokens keep working; its models have no owner, so
no namespaced token may use them (or claim them by uploading) until the admin claims or grants them; that
claim is the migration."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from conftest import Tenant, Store
from iris_client import Forbidden
from iris_server.schema_upgrade import head
from mlfunctions_harness.model_store import onnx_model, start_iris_server, stop_iris_server

pytestmark = pytest.mark.server

# The catalog as iris-server 0.1 created it (PRAGMA user_version 0), verbatim.
SCHEMA_0_1 = """
CREATE TABLE models (name TEXT PRIMARY KEY, next_version INTEGER NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE versions (
    model TEXT NOT NULL REFERENCES models(name), version INTEGER NOT NULL, format TEXT NOT NULL,
    sha256 TEXT NOT NULL, size INTEGER NOT NULL, created_at TEXT NOT NULL, uploader TEXT NOT NULL,
    metadata TEXT NOT NULL, blob_key TEXT NOT NULL UNIQUE, idempotency_key TEXT, PRIMARY KEY (model, version)
);
CREATE UNIQUE INDEX versions_idempotency
    ON versions (model, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE aliases (
    model TEXT NOT NULL REFERENCES models(name), alias TEXT NOT NULL, version INTEGER NOT NULL,
    updated_at TEXT NOT NULL, PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE tokens (
    id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, models TEXT NOT NULL, rights TEXT NOT NULL,
    description TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT
);
"""
OLD_TOKEN_ID = "0123456789abcdef"
OLD_SECRET = "an-old-secret-from-before-ownership-0123456789"
NOW = "2026-01-01T00:00:00.000Z"


@pytest.fixture
def legacy(tmp_path):
    data_dir = tmp_path / "store"
    artifact = onnx_model(seed=1)
    (data_dir / "artifacts" / "legacy").mkdir(parents=True)
    (data_dir / "artifacts" / "legacy" / "v1.onnx").write_bytes(artifact)
    db = sqlite3.connect(data_dir / "catalog.sqlite3")
    db.executescript(SCHEMA_0_1)
    db.execute("INSERT INTO models VALUES ('legacy', 2, ?)", (NOW,))
    db.execute(
        "INSERT INTO versions VALUES ('legacy', 1, 'onnx', ?, ?, ?, ?, '{}', 'legacy/v1.onnx', NULL)",
        (hashlib.sha256(artifact).hexdigest(), len(artifact), NOW, f"{OLD_TOKEN_ID} (old trainer)"),
    )
    db.execute("INSERT INTO aliases VALUES ('legacy', 'production', 1, ?)", (NOW,))
    db.execute(
        "INSERT INTO tokens VALUES (?, ?, '[\"legacy\"]', '[\"read\", \"write\"]', 'old trainer', ?, NULL)",
        (OLD_TOKEN_ID, hashlib.sha256(OLD_SECRET.encode()).hexdigest(), NOW),
    )
    db.commit()
    db.close()
    admin_token = "admin-legacy-0123456789abcdef"
    url, process = start_iris_server(data_dir, admin_token)
    yield Store(data_dir=data_dir, admin_token=admin_token, url=url, process=process)
    stop_iris_server(process)


def test_an_old_store_keeps_its_versions_and_tokens(legacy):
    old = legacy.client(f"iris_{OLD_TOKEN_ID}_{OLD_SECRET}", retries=0)
    version = old.get_version("legacy", "production")
    assert version.version == 1
    assert version.written_by == {
        "token_id": OLD_TOKEN_ID,
        "namespace": None,
        "description": "old trainer",
        "metadata": {},
    }
    assert old.download("legacy").data == onnx_model(seed=1)
    # A store-wide token: ownership is not consulted.
    assert old.upload("legacy", onnx_model(seed=2)).version == 2
    with pytest.raises(Forbidden, match="no delete right"):  # but write no longer implies delete
        old.delete_version("legacy", 2)
    db = sqlite3.connect(legacy.data_dir / "catalog.sqlite3")
    # Upgraded through every Alembic revision; user_version follows, so a server from before Alembic refuses it.
    assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(head(),)]
    assert db.execute("PRAGMA user_version").fetchone() == (int(head()),)


def test_an_unowned_model_with_versions_is_nobodys_until_the_admin_claims_it(legacy):
    ownership = {entry["model"]: entry for entry in legacy.admin.ownership()}
    assert ownership["legacy"]["owner"] is None and ownership["legacy"]["exists"] is True
    with pytest.raises(Forbidden) as refused:
        legacy.admin.create_token(["legacy"], ["read"], namespace="eve")
    assert refused.value.owner is None and "no owner yet" in refused.value.message
    squatter = Tenant(legacy, "eve").mint("squat", ["legacy*"], ["read", "write"])
    with pytest.raises(Forbidden):  # the first upload claims only a model nobody ever used
        squatter.upload("legacy", onnx_model(seed=3))
    assert legacy.admin.owner("legacy") is None

    claimed = legacy.admin.claim("legacy", "data-science")
    assert (claimed["owner"], claimed["claimed_by"]) == ("data-science", "admin")
    reader = Tenant(legacy, "data-science").mint("predict", ["legacy"], ["read"])
    assert reader.get_version("legacy", "production").version == 1
    with pytest.raises(Forbidden) as refused:
        squatter.get_version("legacy")
    assert refused.value.owner == "data-science"
