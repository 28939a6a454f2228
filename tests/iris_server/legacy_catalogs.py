"""Catalogs as iris-server made them before Alembic: the hand-written migrations of catalog_schema.py (schema
versions 1-3, recorded in SQLite's `PRAGMA user_version`), verbatim, so tests can build a database exactly as an
existing store has it and watch it upgrade in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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


def make(path: Path, schema_version: int = len(MIGRATIONS)) -> sqlite3.Connection:
    """A SQLite catalog at `schema_version` as the old code left it; returns an open connection (autocommit)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statements in MIGRATIONS[:schema_version]:
        for statement in statements:
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {schema_version}")
    return db
