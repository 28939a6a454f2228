"""The catalog's change log: one row per change a reader of a model cares about, numbered by a store-wide
sequence, written in the same transaction as the change (so a change is in the log exactly when it happened).

What is logged (`Change.kind`):

- `version_added`, `version_deleted` (`version` set): an upload; a delete, or the retention rule pruning an
  older version to make room (also in the upload's transaction).
- `alias_set` (`version`: where it points now; only when it was created or moved, not for a PUT that leaves it
  where it was), `alias_deleted` (`version`: where it pointed).

No operation deletes a model (its row outlives its versions), so the last `version_deleted` is how a reader
learns that nothing is left.

Sequence numbers come from the counter row `change_log.last_seq`, incremented in the writing transaction (as
`models.next_version` is). They therefore appear in commit order: a reader that has seen N can never later find a
committed change numbered below N. (An auto-increment column alone would not promise that on a database with
concurrent writers, such as PostgreSQL; SQLite's single writer makes either safe.) The log keeps the newest
`keep` rows: every TRIM_EVERY changes, the older ones are deleted and `trimmed_through` remembers the highest
number deleted, so a reader whose cursor is older than that learns it missed changes (the API answers 410).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, update

from .catalog_schema import change_log as counter
from .catalog_schema import changes
from .records import Change, now

# Rows kept: at the default cap of 50 versions per model, the changes of 200 full models.
DEFAULT_KEEP = 10_000
TRIM_EVERY = 64  # trim when the sequence reaches a multiple of this: one DELETE per 64 writes, not per write

VERSION_ADDED = "version_added"
VERSION_DELETED = "version_deleted"
ALIAS_SET = "alias_set"
ALIAS_DELETED = "alias_deleted"

_COLUMNS = tuple(changes.c[name] for name in ("seq", "model", "kind", "version", "alias", "at"))


@dataclass(frozen=True)
class Page:
    """What a reader gets: `changes` after its cursor (oldest first, at most `limit`), the newest sequence
    number at the time of the read (`latest`), and the highest one trimmed from the log (`trimmed_through`)."""

    changes: list[Change]
    latest: int
    trimmed_through: int


def record(
    db: Connection,
    model: str,
    kind: str,
    version: int | None = None,
    alias: str | None = None,
    keep: int = DEFAULT_KEEP,
) -> int:
    """Inside an open write transaction: log one change; returns its sequence number.

    The UPDATE of the counter row locks it until COMMIT (PostgreSQL: a row lock; SQLite: the writer lock is
    already held), so the next writer numbers its change only after this one is visible."""
    # all(): a RETURNING statement must run to its end before the transaction commits.
    ((seq,),) = db.execute(
        update(counter)
        .where(counter.c.id == 1)
        .values(last_seq=counter.c.last_seq + 1)
        .returning(counter.c.last_seq)
    ).all()
    db.execute(
        changes.insert().values(seq=seq, model=model, kind=kind, version=version, alias=alias, at=now())
    )
    if seq % TRIM_EVERY == 0 and seq > keep:
        db.execute(delete(changes).where(changes.c.seq <= seq - keep))
        db.execute(update(counter).where(counter.c.id == 1).values(trimmed_through=seq - keep))
    return seq


def read_after(db: Connection, after: int, limit: int) -> Page:
    """The changes numbered above `after` (two indexed reads, no scan). `db` must give one snapshot to both
    reads: Catalog.changes_after opens it so (SQLite: a WAL read transaction; PostgreSQL: REPEATABLE READ)."""
    latest_seq, trimmed = db.execute(
        select(counter.c.last_seq, counter.c.trimmed_through).where(counter.c.id == 1)
    ).one()
    rows = db.execute(
        select(*_COLUMNS).where(changes.c.seq > after).order_by(changes.c.seq).limit(limit)
    ).all()
    return Page([Change(*row) for row in rows], latest_seq, trimmed)


def latest(db: Connection) -> int:
    """The newest sequence number (0 before the first change): one row by its primary key."""
    return db.execute(select(counter.c.last_seq).where(counter.c.id == 1)).scalar_one()
