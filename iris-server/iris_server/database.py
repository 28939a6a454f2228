"""The catalog's database connection: one SQLAlchemy engine for SQLite (the embedded default) or PostgreSQL
(several replicas sharing one database), its transactions, and what to call it when it is down.

Transactions, and why they look the way they do:

- SQLite: the driver's own implicit transactions are switched off (isolation_level=None) and this module
  emits BEGIN itself: `BEGIN IMMEDIATE` for a write (SQLite's single writer lock, taken before the first
  read, so a read-then-write cannot be overtaken), plain `BEGIN` for a read (a WAL snapshot; never waits).
  WAL mode, synchronous=FULL (a commit is on disk when it returns: acknowledged means kept), foreign keys on.
- PostgreSQL: READ COMMITTED. A write that concerns one model first takes a transaction-level advisory lock on
  that model's name (`model_lock`): writes to one model, across every process and replica, then run one after
  the other, including the first upload to a model that has no row yet to lock. Locks are released at commit.
  A read that must see one snapshot across several statements asks for REPEATABLE READ (`read(snapshot=True)`).

The PostgreSQL connection pool checks a connection before handing it out (pre-ping), so after the database
restarts the next request reconnects: the store recovers without a restart of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, create_engine, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

_BEGIN = "iris_begin"  # execution option: the BEGIN statement SQLite runs for this connection's transaction

# What "the database is unreachable or refused to work" raises (a lock wait past its timeout included).
UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
POSTGRES_CONNECT_TIMEOUT_SECONDS = 5


def sqlite_url(path: Path | str) -> str:
    return f"sqlite:///{Path(path)}"


def with_driver(url: URL) -> URL:
    """A plain postgresql:// (or postgres://) URL, as PostgreSQL tools and operators write it, on psycopg 3:
    SQLAlchemy's default driver for it (psycopg2) is not installed."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg")
    return url


class Database:
    """One per process. `target` is a SQLAlchemy URL, or the path of a SQLite file."""

    def __init__(self, target: str | Path, *, pool_size: int = 5, max_overflow: int = 10) -> None:
        url = with_driver(make_url(str(target) if "://" in str(target) else sqlite_url(target)))
        self.dialect = url.get_backend_name()
        if self.dialect == "sqlite":
            self.description = f"SQLite at {url.database}"
            # A file does not drop connections (no pre-ping), and they are cheap: no bound beyond the threads
            # that hold one (max_overflow -1), as when each thread had its own.
            self.engine = create_engine(
                url,
                pool_size=pool_size,
                max_overflow=-1,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            event.listen(self.engine, "connect", _sqlite_connected)
            event.listen(self.engine, "begin", _sqlite_begin)
        elif self.dialect == "postgresql":
            self.description = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
            self.engine = create_engine(
                url,
                pool_pre_ping=True,
                pool_size=pool_size,
                max_overflow=max_overflow,
                connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_SECONDS},
            )
        else:
            raise ValueError(
                f"unsupported catalog database {url.get_backend_name()!r}: use sqlite or postgresql"
            )

    @property
    def is_postgresql(self) -> bool:
        return self.dialect == "postgresql"

    def unavailable_message(self, error: BaseException | None = None) -> str:
        """What a 503 says when the database cannot be used: which database, and the driver's reason."""
        message = f"the catalog database ({self.description}) is unavailable"
        if error is None:
            return message
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()
        return f"{message}: {reason[0] if reason else type(error).__name__}"

    @contextmanager
    def write(self, model: str | None = None) -> Iterator[Connection]:
        """One write transaction, committed at the end of the block or rolled back by an exception. With
        `model`, the transaction holds that model's lock (see the module docstring)."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(**{_BEGIN: "BEGIN IMMEDIATE"})
            with connection.begin():
                if model is not None:
                    model_lock(connection, model)
                yield connection

    @contextmanager
    def read(self, snapshot: bool = False) -> Iterator[Connection]:
        """A connection for reads; with `snapshot`, every statement in the block sees the same data."""
        with self.engine.connect() as connection:
            if snapshot and self.is_postgresql:
                connection = connection.execution_options(isolation_level="REPEATABLE READ")
            with connection.begin():
                yield connection

    def insert(self, table):
        """The dialect's INSERT, which has on_conflict_do_nothing / on_conflict_do_update (upserts)."""
        return (postgresql.insert if self.is_postgresql else sqlite.insert)(table)

    def dispose(self) -> None:
        self.engine.dispose()


def model_lock(connection: Connection, model: str) -> None:
    """PostgreSQL: hold `model`'s advisory lock until this transaction ends. SQLite's BEGIN IMMEDIATE already
    serialises every write, so there it is nothing."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(lock_key(f"model:{model}"))))


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for `name` (the same in every process, unlike hash())."""
    return int.from_bytes(hashlib.sha256(f"iris-server:{name}".encode()).digest()[:8], "big", signed=True)


def _sqlite_connected(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # no implicit transactions: _sqlite_begin says when one starts
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get(_BEGIN, "BEGIN"))
