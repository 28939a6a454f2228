"""The catalog: models, versions, aliases and tokens in SQLite (WAL mode, synchronous=FULL).

Version numbers are allocated inside a write transaction (BEGIN IMMEDIATE takes SQLite's single writer lock),
so concurrent uploads, across threads and across uvicorn worker processes alike, always get distinct numbers.
Numbers are never reused after a delete: a function pinned to version 3 can never be handed other bytes under
that number.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, UTC
from pathlib import Path
from typing import Any

from .names import VersionRef

_SCHEMA = """
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

_VERSION_COLUMNS = "model, version, format, sha256, size, created_at, uploader, metadata, blob_key"
_TOKEN_COLUMNS = "id, secret_sha256, models, rights, description, created_at, revoked_at"
_ALIASED_VERSION_COLUMNS = ", ".join(f"v.{column.strip()}" for column in _VERSION_COLUMNS.split(","))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class VersionRecord:
    model: str
    version: int
    format: str
    sha256: str
    size: int
    created_at: str
    uploader: str
    metadata: dict[str, Any]
    blob_key: str

    @property
    def etag(self) -> str:
        # The version is part of the tag: "latest" moving to a new version with the same bytes is a change.
        return f'"{self.version}-{self.sha256}"'

    def public(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "format": self.format,
            "sha256": self.sha256,
            "size": self.size,
            "created_at": self.created_at,
            "uploader": self.uploader,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class NewVersion:
    model: str
    format: str
    sha256: str
    size: int
    uploader: str
    metadata: dict[str, Any]
    blob_key: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    id: str
    secret_sha256: str
    models: list[str]
    rights: list[str]
    description: str
    created_at: str
    revoked_at: str | None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "models": self.models,
            "rights": self.rights,
            "description": self.description,
            "created_at": self.created_at,
            "revoked": self.revoked_at is not None,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class AddResult:
    record: VersionRecord
    created: bool  # False: an earlier attempt with the same idempotency key had already created it


@dataclass
class ModelSummary:
    name: str
    created_at: str
    latest_version: int | None
    version_count: int
    aliases: dict[str, int] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "created_at": self.created_at,
            "latest_version": self.latest_version,
            "version_count": self.version_count,
            "aliases": self.aliases,
        }


class Conflict(Exception):
    """The request contradicts the stored state (HTTP 409)."""


class Missing(Exception):
    """No such model, version, alias or token (HTTP 404)."""


class Catalog:
    """One per process; each thread gets its own SQLite connection (sqlite3 connections are not shareable)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        # Every statement is IF NOT EXISTS, so workers starting together may all run it.
        self._connection().executescript(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=True)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "PRAGMA synchronous=FULL"
            )  # a commit is on disk when it returns: acknowledged means kept
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def ping(self) -> None:
        self._connection().execute("SELECT 1 FROM models LIMIT 1").fetchall()

    # -- versions
    # -------------------------------------------------------------------------------------------------

    def add_version(self, new: NewVersion) -> AddResult:
        try:
            with self._write() as db:
                row = db.execute("SELECT next_version FROM models WHERE name = ?", (new.model,)).fetchone()
                if row is None:
                    number = 1
                    db.execute(
                        "INSERT INTO models (name, next_version, created_at) VALUES (?, 2, ?)",
                        (new.model, now()),
                    )
                else:
                    number = row[0]
                    db.execute("UPDATE models SET next_version = ? WHERE name = ?", (number + 1, new.model))
                record = VersionRecord(
                    model=new.model,
                    version=number,
                    format=new.format,
                    sha256=new.sha256,
                    size=new.size,
                    created_at=now(),
                    uploader=new.uploader,
                    metadata=new.metadata,
                    blob_key=new.blob_key,
                )
                db.execute(
                    f"INSERT INTO versions ({_VERSION_COLUMNS}, idempotency_key) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.model,
                        record.version,
                        record.format,
                        record.sha256,
                        record.size,
                        record.created_at,
                        record.uploader,
                        json.dumps(record.metadata, separators=(",", ":")),
                        record.blob_key,
                        new.idempotency_key,
                    ),
                )
            return AddResult(record, created=True)
        except sqlite3.IntegrityError:
            if new.idempotency_key is None:
                raise
            existing = self.find_idempotent(new.model, new.idempotency_key)
            if existing is None:
                raise
            return AddResult(existing, created=False)

    def find_idempotent(self, model: str, key: str) -> VersionRecord | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE model = ? AND idempotency_key = ?",
                (model, key),
            )
            .fetchone()
        )
        return _version(row) if row else None

    def resolve(self, model: str, ref: VersionRef) -> VersionRecord:
        db = self._connection()
        if ref.number is not None:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE model = ? AND version = ?",
                (model, ref.number),
            ).fetchone()
        elif ref.alias is not None:
            row = db.execute(
                f"SELECT {_ALIASED_VERSION_COLUMNS} FROM aliases a "
                "JOIN versions v ON v.model = a.model AND v.version = a.version "
                "WHERE a.model = ? AND a.alias = ?",
                (model, ref.alias),
            ).fetchone()
        else:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE model = ? ORDER BY version DESC LIMIT 1",
                (model,),
            ).fetchone()
        if row is None:
            raise Missing(_missing_message(db, model, ref))
        return _version(row)

    def list_versions(self, model: str) -> list[VersionRecord]:
        db = self._connection()
        if db.execute("SELECT 1 FROM models WHERE name = ?", (model,)).fetchone() is None:
            raise Missing(f"model {model!r} does not exist")
        rows = db.execute(
            f"SELECT {_VERSION_COLUMNS} FROM versions WHERE model = ? ORDER BY version", (model,)
        ).fetchall()
        return [_version(row) for row in rows]

    def delete_version(self, model: str, version: int) -> VersionRecord:
        with self._write() as db:
            row = db.execute(
                f"SELECT {_VERSION_COLUMNS} FROM versions WHERE model = ? AND version = ?", (model, version)
            ).fetchone()
            if row is None:
                raise Missing(f"model {model!r} has no version {version}")
            aliases = db.execute(
                "SELECT alias FROM aliases WHERE model = ? AND version = ? ORDER BY alias", (model, version)
            )
            pinned = [alias for (alias,) in aliases]
            if pinned:
                raise Conflict(
                    f"version {version} of {model!r} is the target of alias(es) {', '.join(pinned)}: "
                    "move or delete them first"
                )
            db.execute("DELETE FROM versions WHERE model = ? AND version = ?", (model, version))
        return _version(row)

    def blob_keys(self) -> set[str]:
        return {key for (key,) in self._connection().execute("SELECT blob_key FROM versions")}

    def all_versions(self) -> list[VersionRecord]:
        rows = self._connection().execute(f"SELECT {_VERSION_COLUMNS} FROM versions").fetchall()
        return [_version(row) for row in rows]

    # -- models and aliases
    # ---------------------------------------------------------------------------------------

    def list_models(self, only: str | None = None) -> list[ModelSummary]:
        """Every model, or just the one named `only` (an empty list if it does not exist)."""
        db = self._connection()
        where, args = ("WHERE m.name = ?", (only,)) if only else ("", ())
        summaries = {
            name: ModelSummary(name, created_at, latest, count)
            for name, created_at, latest, count in db.execute(
                "SELECT m.name, m.created_at, MAX(v.version), COUNT(v.version) FROM models m "
                f"LEFT JOIN versions v ON v.model = m.name {where} GROUP BY m.name ORDER BY m.name",
                args,
            )
        }
        where = "WHERE model = ?" if only else ""
        for model, alias, version in db.execute(
            f"SELECT model, alias, version FROM aliases {where} ORDER BY alias", args
        ):
            summaries[model].aliases[alias] = version
        return list(summaries.values())

    def get_model(self, model: str) -> ModelSummary:
        found = self.list_models(only=model)
        if not found:
            raise Missing(f"model {model!r} does not exist")
        return found[0]

    def aliases(self, model: str) -> dict[str, int]:
        return self.get_model(model).aliases

    def set_alias(self, model: str, alias: str, version: int) -> None:
        with self._write() as db:
            exists = db.execute(
                "SELECT 1 FROM versions WHERE model = ? AND version = ?", (model, version)
            ).fetchone()
            if exists is None:
                raise Missing(f"model {model!r} has no version {version}")
            db.execute(
                "INSERT INTO aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (model, alias) "
                "DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
                (model, alias, version, now()),
            )

    def delete_alias(self, model: str, alias: str) -> None:
        with self._write() as db:
            deleted = db.execute("DELETE FROM aliases WHERE model = ? AND alias = ?", (model, alias)).rowcount
            if not deleted:
                raise Missing(f"model {model!r} has no alias {alias!r}")

    # -- tokens
    # ---------------------------------------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO tokens (id, secret_sha256, models, rights, description, created_at, revoked_at) "
                "VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    record.id,
                    record.secret_sha256,
                    json.dumps(record.models),
                    json.dumps(record.rights),
                    record.description,
                    record.created_at,
                ),
            )

    def get_token(self, token_id: str) -> TokenRecord | None:
        row = (
            self._connection()
            .execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE id = ?",
                (token_id,),
            )
            .fetchone()
        )
        return _token(row) if row else None

    def list_tokens(self) -> list[TokenRecord]:
        rows = (
            self._connection()
            .execute(f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id")
            .fetchall()
        )
        return [_token(row) for row in rows]

    def revoke_token(self, token_id: str) -> None:
        with self._write() as db:
            row = db.execute("SELECT revoked_at FROM tokens WHERE id = ?", (token_id,)).fetchone()
            if row is None:
                raise Missing(f"token {token_id!r} does not exist")
            if row[0] is None:
                db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (now(), token_id))


def _version(row: tuple) -> VersionRecord:
    model, version, fmt, sha256, size, created_at, uploader, metadata, blob_key = row
    return VersionRecord(
        model, version, fmt, sha256, size, created_at, uploader, json.loads(metadata), blob_key
    )


def _token(row: tuple) -> TokenRecord:
    token_id, secret_sha256, models, rights, description, created_at, revoked_at = row
    return TokenRecord(
        token_id, secret_sha256, json.loads(models), json.loads(rights), description, created_at, revoked_at
    )


def _missing_message(db: sqlite3.Connection, model: str, ref: VersionRef) -> str:
    if db.execute("SELECT 1 FROM models WHERE name = ?", (model,)).fetchone() is None:
        return f"model {model!r} does not exist"
    if ref.alias is not None:
        return f"model {model!r} has no alias {ref.alias!r}"
    if ref.number is not None:
        return f"model {model!r} has no version {ref.number}"
    return f"model {model!r} has no versions"
