"""The catalog: models, versions, aliases and tokens in SQLite (WAL mode, synchronous=FULL). The queries live
here (those of ownership and grants in ownership.py); the schema, its migrations and the row mapping in
catalog_schema.py, the records in records.py.

Version numbers are allocated inside a write transaction (BEGIN IMMEDIATE takes SQLite's single writer lock),
so concurrent uploads, across threads and across uvicorn worker processes alike, always get distinct numbers.
Numbers are never reused after a delete: a function pinned to version 3 can never be handed other bytes under
that number. The same transaction checks, through the caller's guard, that the writer may still write (its
namespace's claim on the model cannot be lost in between), and applies the retention rule (retention.py).
Every change to versions and aliases is logged in its own transaction (change_log.py), for readers that follow
the store.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from . import change_log, retention
from .catalog_schema import (
    ALIASED_VERSION_COLUMNS,
    TOKEN_COLUMNS,
    TOKEN_PLACEHOLDERS,
    VERSION_COLUMNS,
    VERSION_PLACEHOLDERS,
    migrate,
    token_from_row,
    token_row,
    version_from_row,
    version_row,
)
from .names import VersionRef
from .records import (
    AddResult,
    Conflict,
    Missing,
    ModelSummary,
    NewVersion,
    TokenRecord,
    VersionCapReached,
    VersionRecord,
    now,
)

# Runs inside the write transaction that adds a version, before the row is written; raises to refuse it.
WriteGuard = Callable[[sqlite3.Connection], None]


class Catalog:
    """One per process; each thread gets its own SQLite connection (sqlite3 connections are not shareable)."""

    def __init__(self, path: Path, change_log_keep: int = change_log.DEFAULT_KEEP) -> None:
        self.path = path
        self.change_log_keep = change_log_keep
        # Called (in the writing thread) after a transaction that logged a change commits: wakes the readers
        # of this process at once (change_feed.py); readers in other processes find the change by polling the log.
        self.on_change: list[Callable[[], None]] = []
        self._local = threading.local()
        migrate(self.connection())

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (for reads; ownership.py shares it)."""
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
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE (the single writer lock), then COMMIT, or ROLLBACK."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        self._local.logged = False
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if self._local.logged:
            for listener in self.on_change:
                listener()

    def ping(self) -> None:
        self.connection().execute("SELECT 1 FROM models LIMIT 1").fetchall()

    # -- versions
    # -------------------------------------------------------------------------------------------------

    def add_version(
        self, new: NewVersion, *, guard: WriteGuard | None = None, max_versions: int | None = None
    ) -> AddResult:
        """Record a new version (numbered here). `guard` may refuse it; `max_versions` prunes older ones."""
        try:
            with self.write() as db:
                if guard is not None:
                    guard(db)
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
                    written_by=new.written_by,
                )
                db.execute(
                    f"INSERT INTO versions ({VERSION_COLUMNS}, idempotency_key) "
                    f"VALUES ({VERSION_PLACEHOLDERS})",
                    version_row(record, new.idempotency_key),
                )
                self._log(db, new.model, change_log.VERSION_ADDED, number)
                pruned = _apply_cap(db, new.model, max_versions) if max_versions else ()
                for old in pruned:
                    self._log(db, new.model, change_log.VERSION_DELETED, old.version)
            return AddResult(record, created=True, pruned=pruned)
        except sqlite3.IntegrityError:
            if new.idempotency_key is None:
                raise
            existing = self.find_idempotent(new.model, new.idempotency_key)
            if existing is None:
                raise
            return AddResult(existing, created=False)

    def find_idempotent(self, model: str, key: str) -> VersionRecord | None:
        row = (
            self.connection()
            .execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE model = ? AND idempotency_key = ?",
                (model, key),
            )
            .fetchone()
        )
        return version_from_row(row) if row else None

    def resolve(self, model: str, ref: VersionRef) -> VersionRecord:
        db = self.connection()
        if ref.number is not None:
            row = db.execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE model = ? AND version = ?",
                (model, ref.number),
            ).fetchone()
        elif ref.alias is not None:
            row = db.execute(
                f"SELECT {ALIASED_VERSION_COLUMNS} FROM aliases a "
                "JOIN versions v ON v.model = a.model AND v.version = a.version "
                "WHERE a.model = ? AND a.alias = ?",
                (model, ref.alias),
            ).fetchone()
        else:
            row = db.execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE model = ? ORDER BY version DESC LIMIT 1",
                (model,),
            ).fetchone()
        if row is None:
            raise Missing(_missing_message(db, model, ref))
        return version_from_row(row)

    def list_versions(self, model: str) -> list[VersionRecord]:
        db = self.connection()
        if db.execute("SELECT 1 FROM models WHERE name = ?", (model,)).fetchone() is None:
            raise Missing(f"model {model!r} does not exist")
        rows = db.execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE model = ? ORDER BY version", (model,)
        ).fetchall()
        return [version_from_row(row) for row in rows]

    def delete_version(self, model: str, version: int) -> VersionRecord:
        with self.write() as db:
            row = db.execute(
                f"SELECT {VERSION_COLUMNS} FROM versions WHERE model = ? AND version = ?", (model, version)
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
            self._log(db, model, change_log.VERSION_DELETED, version)
        return version_from_row(row)

    def blob_keys(self) -> set[str]:
        return {key for (key,) in self.connection().execute("SELECT blob_key FROM versions")}

    def stored_totals(self) -> tuple[int, int]:
        """(models with at least one stored version, bytes of their artifacts): one pass over `versions`."""
        models, size = self.connection().execute(
            "SELECT COUNT(DISTINCT model), COALESCE(SUM(size), 0) FROM versions"
        ).fetchone()
        return models, size

    def all_versions(self) -> list[VersionRecord]:
        rows = self.connection().execute(f"SELECT {VERSION_COLUMNS} FROM versions").fetchall()
        return [version_from_row(row) for row in rows]

    # -- models and aliases
    # ---------------------------------------------------------------------------------------

    def list_models(self, only: str | None = None) -> list[ModelSummary]:
        """Every model, or just the one named `only` (an empty list if it does not exist)."""
        db = self.connection()
        where, args = ("WHERE m.name = ?", (only,)) if only else ("", ())
        summaries = {
            name: ModelSummary(name, created_at, latest, count, owner=owner)
            for name, created_at, latest, count, owner in db.execute(
                "SELECT m.name, m.created_at, MAX(v.version), COUNT(v.version), o.namespace FROM models m "
                "LEFT JOIN versions v ON v.model = m.name LEFT JOIN owners o ON o.model = m.name "
                f"{where} GROUP BY m.name ORDER BY m.name",
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
        with self.write() as db:
            exists = db.execute(
                "SELECT 1 FROM versions WHERE model = ? AND version = ?", (model, version)
            ).fetchone()
            if exists is None:
                raise Missing(f"model {model!r} has no version {version}")
            current = db.execute(
                "SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, alias)
            ).fetchone()
            if current == (version,):
                return  # already there: a reconcile's repeated PUT is no change (and wakes no reader)
            db.execute(
                "INSERT INTO aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (model, alias) "
                "DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
                (model, alias, version, now()),
            )
            self._log(db, model, change_log.ALIAS_SET, version, alias)

    def delete_alias(self, model: str, alias: str) -> None:
        with self.write() as db:
            rows = db.execute(  # fetchall: a RETURNING statement must run to its end before COMMIT
                "DELETE FROM aliases WHERE model = ? AND alias = ? RETURNING version", (model, alias)
            ).fetchall()
            if not rows:
                raise Missing(f"model {model!r} has no alias {alias!r}")
            self._log(db, model, change_log.ALIAS_DELETED, rows[0][0], alias)

    # -- the change log
    # -------------------------------------------------------------------------------------------

    def changes_after(self, after: int, limit: int) -> change_log.Page:
        """Changes numbered above `after` (oldest first, at most `limit`), the newest number, the trimmed one."""
        return change_log.read_after(self.connection(), after, limit)

    def latest_change(self) -> int:
        return change_log.latest(self.connection())

    def _log(
        self, db: sqlite3.Connection, model: str, kind: str, version: int | None, alias: str | None = None
    ) -> None:
        change_log.record(db, model, kind, version, alias, keep=self.change_log_keep)
        self._local.logged = True

    # -- tokens
    # ---------------------------------------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        with self.write() as db:
            db.execute(
                f"INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ({TOKEN_PLACEHOLDERS})", token_row(record)
            )

    def get_token(self, token_id: str) -> TokenRecord | None:
        row = (
            self.connection()
            .execute(
                f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = ?",
                (token_id,),
            )
            .fetchone()
        )
        return token_from_row(row) if row else None

    def list_tokens(self, namespace: str | None = None) -> list[TokenRecord]:
        """Every token, or those acting for `namespace`."""
        where, args = ("WHERE namespace = ?", (namespace,)) if namespace else ("", ())
        rows = (
            self.connection()
            .execute(f"SELECT {TOKEN_COLUMNS} FROM tokens {where} ORDER BY created_at, id", args)
            .fetchall()
        )
        return [token_from_row(row) for row in rows]

    def revoke_token(self, token_id: str) -> None:
        with self.write() as db:
            row = db.execute("SELECT revoked_at FROM tokens WHERE id = ?", (token_id,)).fetchone()
            if row is None:
                raise Missing(f"token {token_id!r} does not exist")
            if row[0] is None:
                db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ?", (now(), token_id))


def _apply_cap(db: sqlite3.Connection, model: str, cap: int) -> tuple[VersionRecord, ...]:
    """Delete what the retention rule removes for `model` to keep at most `cap` versions; returns them."""
    numbers = [
        number
        for (number,) in db.execute("SELECT version FROM versions WHERE model = ? ORDER BY version", (model,))
    ]
    aliased = {number for (number,) in db.execute("SELECT version FROM aliases WHERE model = ?", (model,))}
    try:
        doomed = retention.to_prune(numbers, aliased, cap)
    except retention.CapReached as error:
        raise VersionCapReached(
            f"model {model!r} is at its cap of {cap} versions and nothing older may go ({error}): "
            "delete versions or move aliases first"
        ) from error
    pruned = []
    for number in doomed:
        row = db.execute(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE model = ? AND version = ?", (model, number)
        ).fetchone()
        db.execute("DELETE FROM versions WHERE model = ? AND version = ?", (model, number))
        pruned.append(version_from_row(row))
    return tuple(pruned)


def _missing_message(db: sqlite3.Connection, model: str, ref: VersionRef) -> str:
    if db.execute("SELECT 1 FROM models WHERE name = ?", (model,)).fetchone() is None:
        return f"model {model!r} does not exist"
    if ref.alias is not None:
        return f"model {model!r} has no alias {ref.alias!r}"
    if ref.number is not None:
        return f"model {model!r} has no version {ref.number}"
    return f"model {model!r} has no versions"
