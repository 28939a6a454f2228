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

import sqlite3
from dataclasses import dataclass

from .records import Change, now

# Rows kept: at the default cap of 50 versions per model, the changes of 200 full models.
DEFAULT_KEEP = 10_000
TRIM_EVERY = 64  # trim when the sequence reaches a multiple of this: one DELETE per 64 writes, not per write

VERSION_ADDED = "version_added"
VERSION_DELETED = "version_deleted"
ALIAS_SET = "alias_set"
ALIAS_DELETED = "alias_deleted"

_COLUMNS = "seq, model, kind, version, alias, at"


@dataclass(frozen=True)
class Page:
    """What a reader gets: `changes` after its cursor (oldest first, at most `limit`), the newest sequence
    number at the time of the read (`latest`), and the highest one trimmed from the log (`trimmed_through`)."""

    changes: list[Change]
    latest: int
    trimmed_through: int


def record(
    db: sqlite3.Connection,
    model: str,
    kind: str,
    version: int | None = None,
    alias: str | None = None,
    keep: int = DEFAULT_KEEP,
) -> int:
    """Inside an open write transaction: log one change; returns its sequence number."""
    # fetchall: a RETURNING statement must run to its end before the transaction commits.
    ((seq,),) = db.execute(
        "UPDATE change_log SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq"
    ).fetchall()
    db.execute(
        f"INSERT INTO changes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
        (seq, model, kind, version, alias, now()),
    )
    if seq % TRIM_EVERY == 0 and seq > keep:
        db.execute("DELETE FROM changes WHERE seq <= ?", (seq - keep,))
        db.execute("UPDATE change_log SET trimmed_through = ? WHERE id = 1", (seq - keep,))
    return seq


def read_after(db: sqlite3.Connection, after: int, limit: int) -> Page:
    """The changes numbered above `after`, from one snapshot of the log (two indexed reads, no scan)."""
    db.execute("BEGIN")  # deferred: a read snapshot in WAL mode, never waiting for a writer
    try:
        latest, trimmed = db.execute(
            "SELECT last_seq, trimmed_through FROM change_log WHERE id = 1"
        ).fetchone()
        rows = db.execute(
            f"SELECT {_COLUMNS} FROM changes WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
        ).fetchall()
    finally:
        db.execute("COMMIT")
    return Page([Change(*row) for row in rows], latest, trimmed)


def latest(db: sqlite3.Connection) -> int:
    """The newest sequence number (0 before the first change): one row by its primary key."""
    return db.execute("SELECT last_seq FROM change_log WHERE id = 1").fetchone()[0]
