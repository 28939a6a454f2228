"""The catalog's tables (SQLAlchemy Core, one definition for SQLite and PostgreSQL) and the row <-> record
mapping of its two wide tables. How a database gets to this schema is in migrations/ (Alembic revisions) and
schema_upgrade.py; a change here needs a new revision there.

Timestamps are ISO 8601 text (records.now()) and structured values JSON text, on both databases: the records
read back are the same whichever database holds them.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
)

from .records import TokenRecord, VersionRecord

metadata = MetaData()

models = Table(
    "models",
    metadata,
    Column("name", Text, primary_key=True),
    Column("next_version", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("model", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("format", Text, nullable=False),
    Column("sha256", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("uploader", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("blob_key", Text, nullable=False, unique=True),
    Column("idempotency_key", Text),
    Column("written_by", Text),  # JSON; NULL for versions stored before attribution (legacy_attribution)
    PrimaryKeyConstraint("model", "version"),
    ForeignKeyConstraint(["model"], ["models.name"]),
    Index(
        "versions_idempotency",
        "model",
        "idempotency_key",
        unique=True,
        sqlite_where="idempotency_key IS NOT NULL",
        postgresql_where="idempotency_key IS NOT NULL",
    ),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model", Text, primary_key=True),
    Column("alias", Text, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", Text, nullable=False),
    ForeignKeyConstraint(["model"], ["models.name"]),
    ForeignKeyConstraint(["model", "version"], ["versions.model", "versions.version"]),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("secret_sha256", Text, nullable=False),
    Column("models", Text, nullable=False),
    Column("rights", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("revoked_at", Text),
    Column("namespace", Text),
    Column("metadata", Text, nullable=False, server_default="{}"),
)

# Tenancy: neither needs the model to exist yet (the operator claims a name before the first training).
owners = Table(
    "owners",
    metadata,
    Column("model", Text, primary_key=True),
    Column("namespace", Text, nullable=False),
    Column("claimed_at", Text, nullable=False),
    Column("claimed_by", Text, nullable=False),
    Index("owners_namespace", "namespace"),
)

grants = Table(
    "grants",
    metadata,
    Column("model", Text, primary_key=True),
    Column("namespace", Text, primary_key=True),
    Column("rights", Text, nullable=False),
    Column("granted_at", Text, nullable=False),
)

# The change log (change_log.py): what happened to versions and aliases, numbered store-wide by the counter
# row `change_log` (id 1), which the writing transaction increments.
changes = Table(
    "changes",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("model", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("version", Integer),
    Column("alias", Text),
    Column("at", Text, nullable=False),
)

change_log = Table(
    "change_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("trimmed_through", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="change_log_one_row"),
)

# Columns in the order version_from_row and token_from_row read them.
VERSION_COLUMNS = tuple(
    versions.c[name]
    for name in (
        "model",
        "version",
        "format",
        "sha256",
        "size",
        "created_at",
        "uploader",
        "metadata",
        "blob_key",
        "written_by",
    )
)
TOKEN_COLUMNS = tuple(
    tokens.c[name]
    for name in (
        "id",
        "secret_sha256",
        "models",
        "rights",
        "description",
        "created_at",
        "revoked_at",
        "namespace",
        "metadata",
    )
)


def version_row(record: VersionRecord, idempotency_key: str | None) -> dict[str, Any]:
    """The values of an INSERT INTO versions."""
    return {
        "model": record.model,
        "version": record.version,
        "format": record.format,
        "sha256": record.sha256,
        "size": record.size,
        "created_at": record.created_at,
        "uploader": record.uploader,
        "metadata": _json(record.metadata),
        "blob_key": record.blob_key,
        "written_by": _json(record.written_by),
        "idempotency_key": idempotency_key,
    }


def version_from_row(row) -> VersionRecord:
    model, version, fmt, sha256, size, created_at, uploader, metadata_, blob_key, written_by = row
    return VersionRecord(
        model,
        version,
        fmt,
        sha256,
        size,
        created_at,
        uploader,
        json.loads(metadata_),
        blob_key,
        json.loads(written_by) if written_by else legacy_attribution(uploader),
    )


def legacy_attribution(uploader: str) -> dict[str, Any]:
    """`written_by` of a version stored before attribution was recorded: what its uploader column says."""
    token_id, _, rest = uploader.partition(" (")
    return {"token_id": token_id, "namespace": None, "description": rest.removesuffix(")"), "metadata": {}}


def token_row(record: TokenRecord) -> dict[str, Any]:
    """The values of an INSERT INTO tokens."""
    return {
        "id": record.id,
        "secret_sha256": record.secret_sha256,
        "models": json.dumps(record.models),
        "rights": json.dumps(record.rights),
        "description": record.description,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
        "namespace": record.namespace,
        "metadata": _json(record.metadata),
    }


def token_from_row(row) -> TokenRecord:
    token_id, secret_sha256, models_, rights, description, created_at, revoked_at, namespace, metadata_ = row
    return TokenRecord(
        token_id,
        secret_sha256,
        json.loads(models_),
        json.loads(rights),
        description,
        created_at,
        revoked_at,
        namespace,
        json.loads(metadata_),
    )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
