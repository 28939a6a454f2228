"""The catalog's SQLite schema, its migrations, and the row <-> record mapping of its two wide tables.

The schema's version is SQLite's `user_version`. Migrations run in one write transaction (BEGIN IMMEDIATE),
each at most once, so workers starting together, and stores created before a migration existed, all end on the
same schema. Version 0 is a store from before migrations were numbered: its tables are those of migration 1.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .records import TokenRecord, VersionRecord

_BASE = (
    """CREATE TABLE IF NOT EXISTS models (
        name          TEXT PRIMARY KEY,
        next_version  INTEGER NOT NULL,
        created_at    TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS versions (
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
    )""",
    """CREATE UNIQUE INDEX IF NOT EXISTS versions_idempotency
        ON versions (model, idempotency_key) WHERE idempotency_key IS NOT NULL""",
    """CREATE TABLE IF NOT EXISTS aliases (
        model       TEXT NOT NULL REFERENCES models(name),
        alias       TEXT NOT NULL,
        version     INTEGER NOT NULL,
        updated_at  TEXT NOT NULL,
        PRIMARY KEY (model, alias),
        FOREIGN KEY (model, version) REFERENCES versions(model, version)
    )""",
    """CREATE TABLE IF NOT EXISTS tokens (
        id             TEXT PRIMARY KEY,
        secret_sha256  TEXT NOT NULL,
        models         TEXT NOT NULL,
        rights         TEXT NOT NULL,
        description    TEXT NOT NULL,
        created_at     TEXT NOT NULL,
        revoked_at     TEXT
    )""",
)

# Tenancy: models' owning namespaces and other namespaces' grants (neither needs the model to exist yet: the
# operator claims a name before the first training), the namespace and metadata of tokens, and the attribution
# of versions. Existing models keep no owner (tenancy.py says what that means); existing versions' attribution
# is derived from their uploader column.
_TENANCY = (
    """CREATE TABLE owners (
        model       TEXT PRIMARY KEY,
        namespace   TEXT NOT NULL,
        claimed_at  TEXT NOT NULL,
        claimed_by  TEXT NOT NULL
    )""",
    "CREATE INDEX owners_namespace ON owners (namespace)",
    """CREATE TABLE grants (
        model       TEXT NOT NULL,
        namespace   TEXT NOT NULL,
        rights      TEXT NOT NULL,
        granted_at  TEXT NOT NULL,
        PRIMARY KEY (model, namespace)
    )""",
    "ALTER TABLE tokens ADD COLUMN namespace TEXT",
    "ALTER TABLE tokens ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}'",
    "ALTER TABLE versions ADD COLUMN written_by TEXT",
)

# The change log (change_log.py): a store-wide sequence of what happened to versions and aliases, for readers
# that follow the store instead of polling each model. One counter row holds the sequence and how much of the log
# was trimmed. A store migrated from version 2 starts with an empty log at 0: nothing before the migration is
# replayed, readers list the models once (as they do when they start) and follow from there.
_CHANGES = (
    """CREATE TABLE changes (
        seq      INTEGER PRIMARY KEY,
        model    TEXT NOT NULL,
        kind     TEXT NOT NULL,
        version  INTEGER,
        alias    TEXT,
        at       TEXT NOT NULL
    )""",
    """CREATE TABLE change_log (
        id               INTEGER PRIMARY KEY CHECK (id = 1),
        last_seq         INTEGER NOT NULL,
        trimmed_through  INTEGER NOT NULL
    )""",
    "INSERT INTO change_log (id, last_seq, trimmed_through) VALUES (1, 0, 0)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_BASE, _TENANCY, _CHANGES)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it was at. Refuses a newer schema."""
    db.execute("BEGIN IMMEDIATE")
    try:
        (found,) = db.execute("PRAGMA user_version").fetchone()
        if found > SCHEMA_VERSION:
            raise RuntimeError(
                f"the catalog's schema is version {found}, newer than this server's {SCHEMA_VERSION}: "
                "run a newer iris-server"
            )
        for statements in MIGRATIONS[found:]:
            for statement in statements:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found


# Column lists in the order version_from_row and token_from_row read them.
VERSION_COLUMNS = "model, version, format, sha256, size, created_at, uploader, metadata, blob_key, written_by"
TOKEN_COLUMNS = "id, secret_sha256, models, rights, description, created_at, revoked_at, namespace, metadata"
ALIASED_VERSION_COLUMNS = ", ".join(f"v.{column.strip()}" for column in VERSION_COLUMNS.split(","))
VERSION_PLACEHOLDERS = ", ".join("?" * (len(VERSION_COLUMNS.split(",")) + 1))  # + idempotency_key
TOKEN_PLACEHOLDERS = ", ".join("?" * len(TOKEN_COLUMNS.split(",")))


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
        _json(record.metadata),
        record.blob_key,
        _json(record.written_by),
        idempotency_key,
    )


def version_from_row(row: tuple) -> VersionRecord:
    model, version, fmt, sha256, size, created_at, uploader, metadata, blob_key, written_by = row
    return VersionRecord(
        model,
        version,
        fmt,
        sha256,
        size,
        created_at,
        uploader,
        json.loads(metadata),
        blob_key,
        json.loads(written_by) if written_by else legacy_attribution(uploader),
    )


def legacy_attribution(uploader: str) -> dict[str, Any]:
    """`written_by` of a version stored before attribution was recorded: what its uploader column says."""
    token_id, _, rest = uploader.partition(" (")
    return {"token_id": token_id, "namespace": None, "description": rest.removesuffix(")"), "metadata": {}}


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
        record.namespace,
        _json(record.metadata),
    )


def token_from_row(row: tuple) -> TokenRecord:
    token_id, secret_sha256, models, rights, description, created_at, revoked_at, namespace, metadata = row
    return TokenRecord(
        token_id,
        secret_sha256,
        json.loads(models),
        json.loads(rights),
        description,
        created_at,
        revoked_at,
        namespace,
        json.loads(metadata),
    )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
