"""The catalog's SQLite schema, and the row <-> record mapping of its two wide tables.

Every statement is IF NOT EXISTS, so workers starting together may all run it."""

from __future__ import annotations

import json

from .records import TokenRecord, VersionRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name          TEXT PRIMARY KEY,
    next_version  INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS versions (
    model            TEXT NOT NULL REFERENCES models(name),
    version          INTEGER NOT NULL,
    format           TEXT NOT NULL,
    sha256           TEXT NOT NULL,
    size             INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    uploader         TEXT NOT NULL,
    metadata         TEXT NOT NULL,
    blob_key         TEXT NOT NULL UNIQUE,
    idempotency_key  TEXT,
    PRIMARY KEY (model, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS versions_idempotency
    ON versions (model, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS aliases (
    model       TEXT NOT NULL REFERENCES models(name),
    alias       TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
);
CREATE TABLE IF NOT EXISTS tokens (
    id             TEXT PRIMARY KEY,
    secret_sha256  TEXT NOT NULL,
    models         TEXT NOT NULL,
    rights         TEXT NOT NULL,
    description    TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    revoked_at     TEXT
);
"""

# Column lists in the order version_from_row and token_from_row read them.
VERSION_COLUMNS = "model, version, format, sha256, size, created_at, uploader, metadata, blob_key"
TOKEN_COLUMNS = "id, secret_sha256, models, rights, description, created_at, revoked_at"
ALIASED_VERSION_COLUMNS = ", ".join(f"v.{column.strip()}" for column in VERSION_COLUMNS.split(","))


def version_row(record: VersionRecord, idempotency_key: str | None) -> tuple:
    """The values of an INSERT INTO versions (VERSION_COLUMNS, idempotency_key)."""
    return (
        record.model,
        record.version,
        record.format,
        record.sha256,
        record.size,
        record.created_at,
        record.uploader,
        json.dumps(record.metadata, separators=(",", ":")),
        record.blob_key,
        idempotency_key,
    )


def version_from_row(row: tuple) -> VersionRecord:
    model, version, fmt, sha256, size, created_at, uploader, metadata, blob_key = row
    return VersionRecord(
        model, version, fmt, sha256, size, created_at, uploader, json.loads(metadata), blob_key
    )


def token_row(record: TokenRecord) -> tuple:
    """The values of an INSERT INTO tokens (TOKEN_COLUMNS)."""
    return (
        record.id,
        record.secret_sha256,
        json.dumps(record.models),
        json.dumps(record.rights),
        record.description,
        record.created_at,
        record.revoked_at,
    )


def token_from_row(row: tuple) -> TokenRecord:
    token_id, secret_sha256, models, rights, description, created_at, revoked_at = row
    return TokenRecord(
        token_id, secret_sha256, json.loads(models), json.loads(rights), description, created_at, revoked_at
    )
