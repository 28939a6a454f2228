"""The catalog: models, versions, aliases and tokens, in SQLite (embedded, the default) or PostgreSQL (replicas
sharing one database), through one set of SQLAlchemy Core queries. The queries live here (those of ownership
and grants in ownership.py, of the change log in change_log.py); the tables and the row mapping in
catalog_schema.py, the connection and its transactions in database.py, the migrations in schema_upgrade.py, the
records in records.py.

Version numbers are allocated inside a write transaction that holds the model's write lock (SQLite: BEGIN
IMMEDIATE, its single writer lock; PostgreSQL: an advisory lock on the model's name, see database.py), so
concurrent uploads, across threads, uvicorn worker processes and replicas alike, always get distinct numbers,
and a refused upload (rolled back) uses none: numbers have no gaps but those deletes leave. Numbers are never
reused after a delete: a function pinned to version 3 can never be handed other bytes under that number. The
same transaction checks, through the caller's guard, that the writer may still write (its namespace's claim on
the model cannot be lost in between), and applies the retention rule (retention.py). Every change to versions
and aliases is logged in its own transaction (change_log.py), for readers that follow the store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, delete, distinct, exists, false, func, select, update
from sqlalchemy.exc import IntegrityError

from . import change_log, retention
from .catalog_schema import (
    TOKEN_COLUMNS,
    VERSION_COLUMNS,
    aliases,
    models,
    owners,
    token_from_row,
    token_row,
    tokens,
    version_from_row,
    version_row,
    versions,
)
from .database import Database
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
from .schema_upgrade import upgrade

# Version numbers are counted up from 1, so none beyond the columns' range (PostgreSQL's INTEGER) can exist: a
# caller naming one is told it does not exist, without asking the database (which would refuse the parameter).
MAX_VERSION = 2**31 - 1

# Runs inside the write transaction that adds a version, before the row is written; raises to refuse it.
WriteGuard = Callable[[Connection], None]


class Catalog:
    """One per process (its connection pool is shared by the threads). `target`: a SQLAlchemy URL or the path
    of a SQLite file. The schema is migrated when it is opened (schema_upgrade.py)."""

    def __init__(
        self,
        target: str | Path,
        change_log_keep: int = change_log.DEFAULT_KEEP,
        *,
        pool_size: int = 5,
        max_overflow: int = 10,
    ) -> None:
        self.database = Database(target, pool_size=pool_size, max_overflow=max_overflow)
        self.change_log_keep = change_log_keep
        # Called (from the writing thread) after each commit that logged a change: wakes this process's waiting
        # followers at once (change_feed.py); other processes' writes are noticed by polling the log.
        self.on_change: list[Callable[[], None]] = []
        upgrade(self.database)

    @property
    def description(self) -> str:
        """Which database this is, for messages: "PostgreSQL at host:port", "SQLite at /path"."""
        return self.database.description

    def read(self):
        """A connection for reads (ownership.py shares it): `with catalog.read() as db: ...`."""
        return self.database.read()

    def write(self, model: str | None = None):
        """One write transaction, holding `model`'s lock if given (database.py)."""
        return self.database.write(model)

    def ping(self) -> None:
        with self.read() as db:
            db.execute(select(models.c.name).limit(1)).all()

    def close(self) -> None:
        self.database.dispose()

    # -- versions
    # -------------------------------------------------------------------------------------------------

    def add_version(
        self, new: NewVersion, *, guard: WriteGuard | None = None, max_versions: int | None = None
    ) -> AddResult:
        """Record a new version (numbered here). `guard` may refuse it; `max_versions` prunes older ones."""
        try:
            with self.write(new.model) as db:
                if guard is not None:
                    guard(db)
                number = db.execute(
                    select(models.c.next_version).where(models.c.name == new.model)
                ).scalar_one_or_none()
                if number is None:
                    number = 1
                    db.execute(models.insert().values(name=new.model, next_version=2, created_at=now()))
                else:
                    db.execute(
                        update(models).where(models.c.name == new.model).values(next_version=number + 1)
                    )
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
                db.execute(versions.insert().values(version_row(record, new.idempotency_key)))
                self._log(db, new.model, change_log.VERSION_ADDED, number)
                pruned = _apply_cap(db, new.model, max_versions) if max_versions else ()
                for old in pruned:
                    self._log(db, new.model, change_log.VERSION_DELETED, old.version)
            self._changed()
            return AddResult(record, created=True, pruned=pruned)
        except IntegrityError:
            if new.idempotency_key is None:
                raise
            existing = self.find_idempotent(new.model, new.idempotency_key)
            if existing is None:
                raise
            return AddResult(existing, created=False)

    def find_idempotent(self, model: str, key: str) -> VersionRecord | None:
        with self.read() as db:
            row = db.execute(
                select(*VERSION_COLUMNS).where(versions.c.model == model, versions.c.idempotency_key == key)
            ).first()
        return version_from_row(row) if row else None

    def resolve(self, model: str, ref: VersionRef) -> VersionRecord:
        query = select(*VERSION_COLUMNS).where(versions.c.model == model)
        if ref.number is not None and ref.number > MAX_VERSION:
            query = query.where(false())
        elif ref.number is not None:
            query = query.where(versions.c.version == ref.number)
        elif ref.alias is not None:
            query = query.join(
                aliases, (aliases.c.model == versions.c.model) & (aliases.c.version == versions.c.version)
            ).where(aliases.c.alias == ref.alias)
        else:
            query = query.order_by(versions.c.version.desc()).limit(1)
        with self.read() as db:
            row = db.execute(query).first()
            if row is None:
                raise Missing(_missing_message(db, model, ref))
        return version_from_row(row)

    def list_versions(self, model: str) -> list[VersionRecord]:
        with self.read() as db:
            if not _model_exists(db, model):
                raise Missing(f"model {model!r} does not exist")
            rows = db.execute(
                select(*VERSION_COLUMNS).where(versions.c.model == model).order_by(versions.c.version)
            ).all()
        return [version_from_row(row) for row in rows]

    def delete_version(self, model: str, version: int) -> VersionRecord:
        if version > MAX_VERSION:
            raise Missing(f"model {model!r} has no version {version}")
        with self.write(model) as db:
            row = db.execute(
                select(*VERSION_COLUMNS).where(versions.c.model == model, versions.c.version == version)
            ).first()
            if row is None:
                raise Missing(f"model {model!r} has no version {version}")
            pinned = db.scalars(
                select(aliases.c.alias)
                .where(aliases.c.model == model, aliases.c.version == version)
                .order_by(aliases.c.alias)
            ).all()
            if pinned:
                raise Conflict(
                    f"version {version} of {model!r} is the target of alias(es) {', '.join(pinned)}: "
                    "move or delete them first"
                )
            db.execute(delete(versions).where(versions.c.model == model, versions.c.version == version))
            self._log(db, model, change_log.VERSION_DELETED, version)
        self._changed()
        return version_from_row(row)

    def blob_keys(self) -> set[str]:
        with self.read() as db:
            return set(db.scalars(select(versions.c.blob_key)))

    def stored_totals(self) -> tuple[int, int]:
        """(models with at least one stored version, bytes of their artifacts): one pass over `versions`."""
        with self.read() as db:
            models_count, size = db.execute(
                select(func.count(distinct(versions.c.model)), func.coalesce(func.sum(versions.c.size), 0))
            ).one()
        return models_count, int(size)

    def all_versions(self) -> list[VersionRecord]:
        with self.read() as db:
            return [version_from_row(row) for row in db.execute(select(*VERSION_COLUMNS))]

    # -- models and aliases
    # ---------------------------------------------------------------------------------------

    def list_models(self, only: str | None = None) -> list[ModelSummary]:
        """Every model, or just the one named `only` (an empty list if it does not exist)."""
        summary = (
            select(
                models.c.name,
                models.c.created_at,
                func.max(versions.c.version),
                func.count(versions.c.version),
                owners.c.namespace,
            )
            .select_from(models)
            .outerjoin(versions, versions.c.model == models.c.name)
            .outerjoin(owners, owners.c.model == models.c.name)
            .group_by(models.c.name, models.c.created_at, owners.c.namespace)
            .order_by(models.c.name)
        )
        targets = select(aliases.c.model, aliases.c.alias, aliases.c.version).order_by(aliases.c.alias)
        if only:
            summary = summary.where(models.c.name == only)
            targets = targets.where(aliases.c.model == only)
        with self.database.read(snapshot=True) as db:
            summaries = {
                name: ModelSummary(name, created_at, latest, count, owner=owner)
                for name, created_at, latest, count, owner in db.execute(summary)
            }
            for model, alias, version in db.execute(targets):
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
        if version > MAX_VERSION:
            raise Missing(f"model {model!r} has no version {version}")
        with self.write(model) as db:
            found = db.execute(
                select(versions.c.version).where(versions.c.model == model, versions.c.version == version)
            ).first()
            if found is None:
                raise Missing(f"model {model!r} has no version {version}")
            current = db.execute(
                select(aliases.c.version).where(aliases.c.model == model, aliases.c.alias == alias)
            ).scalar_one_or_none()
            if current == version:
                return  # already there: a reconcile's repeated PUT is no change (and wakes no reader)
            upsert = self.database.insert(aliases).values(
                model=model, alias=alias, version=version, updated_at=now()
            )
            db.execute(
                upsert.on_conflict_do_update(
                    index_elements=[aliases.c.model, aliases.c.alias],
                    set_={"version": upsert.excluded.version, "updated_at": upsert.excluded.updated_at},
                )
            )
            self._log(db, model, change_log.ALIAS_SET, version, alias)
        self._changed()

    def delete_alias(self, model: str, alias: str) -> None:
        with self.write(model) as db:
            rows = db.execute(  # all(): a RETURNING statement must run to its end before COMMIT
                delete(aliases)
                .where(aliases.c.model == model, aliases.c.alias == alias)
                .returning(aliases.c.version)
            ).all()
            if not rows:
                raise Missing(f"model {model!r} has no alias {alias!r}")
            self._log(db, model, change_log.ALIAS_DELETED, rows[0][0], alias)
        self._changed()

    # -- the change log
    # -------------------------------------------------------------------------------------------

    def changes_after(self, after: int, limit: int) -> change_log.Page:
        """Changes numbered above `after` (oldest first, at most `limit`), the newest number, the trimmed one."""
        with self.database.read(snapshot=True) as db:
            return change_log.read_after(db, after, limit)

    def latest_change(self) -> int:
        with self.read() as db:
            return change_log.latest(db)

    def _log(
        self, db: Connection, model: str, kind: str, version: int | None, alias: str | None = None
    ) -> None:
        change_log.record(db, model, kind, version, alias, keep=self.change_log_keep)

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    # -- tokens
    # ---------------------------------------------------------------------------------------------------

    def add_token(self, record: TokenRecord) -> None:
        with self.write() as db:
            db.execute(tokens.insert().values(token_row(record)))

    def get_token(self, token_id: str) -> TokenRecord | None:
        with self.read() as db:
            row = db.execute(select(*TOKEN_COLUMNS).where(tokens.c.id == token_id)).first()
        return token_from_row(row) if row else None

    def list_tokens(self, namespace: str | None = None) -> list[TokenRecord]:
        """Every token, or those acting for `namespace`."""
        query = select(*TOKEN_COLUMNS).order_by(tokens.c.created_at, tokens.c.id)
        if namespace:
            query = query.where(tokens.c.namespace == namespace)
        with self.read() as db:
            return [token_from_row(row) for row in db.execute(query)]

    def revoke_token(self, token_id: str) -> None:
        with self.write() as db:
            revoked = db.execute(
                update(tokens)
                .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
                .values(revoked_at=now())
            ).rowcount
            if not revoked and not db.execute(select(exists().where(tokens.c.id == token_id))).scalar():
                raise Missing(f"token {token_id!r} does not exist")


def _apply_cap(db: Connection, model: str, cap: int) -> tuple[VersionRecord, ...]:
    """Delete what the retention rule removes for `model` to keep at most `cap` versions; returns them."""
    numbers = db.scalars(
        select(versions.c.version).where(versions.c.model == model).order_by(versions.c.version)
    ).all()
    aliased = set(db.scalars(select(aliases.c.version).where(aliases.c.model == model)))
    try:
        doomed = retention.to_prune(numbers, aliased, cap)
    except retention.CapReached as error:
        raise VersionCapReached(
            f"model {model!r} is at its cap of {cap} versions and nothing older may go ({error}): "
            "delete versions or move aliases first"
        ) from error
    if not doomed:
        return ()
    which = (versions.c.model == model) & versions.c.version.in_(doomed)
    pruned = [version_from_row(row) for row in db.execute(select(*VERSION_COLUMNS).where(which))]
    db.execute(delete(versions).where(which))
    return tuple(sorted(pruned, key=lambda record: record.version))


def _model_exists(db: Connection, model: str) -> bool:
    return db.execute(select(exists().where(models.c.name == model))).scalar()


def _missing_message(db: Connection, model: str, ref: VersionRef) -> str:
    if not _model_exists(db, model):
        return f"model {model!r} does not exist"
    if ref.alias is not None:
        return f"model {model!r} has no alias {ref.alias!r}"
    if ref.number is not None:
        return f"model {model!r} has no version {ref.number}"
    return f"model {model!r} has no versions"
