"""Bring a catalog database to the newest schema (the Alembic revisions in migrations/), safely when several
processes start together: uvicorn workers on one SQLite file, or replicas on one PostgreSQL database.

Every process runs `upgrade` at start-up, inside one write transaction that first takes a lock: on PostgreSQL a
transaction-level advisory lock (held to COMMIT; its DDL is transactional, so a migration is all or nothing), on
SQLite BEGIN IMMEDIATE (the single writer lock). The first process migrates; the others wait for its COMMIT,
then find the schema current and do nothing.

A SQLite catalog from before Alembic recorded its schema in `PRAGMA user_version` (the hand-written migrations
1-3 are revisions 0001-0003, unchanged); it is stamped at the matching revision, then upgraded. SQLite catalogs
keep `user_version` at the revision's number, so an iris-server from before Alembic refuses a newer schema
rather than running on it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select

from .database import Database, lock_key

log = logging.getLogger("iris_server.schema")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


class SchemaTooNew(RuntimeError):
    pass


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(database: Database) -> str | None:
    """Migrate to the newest revision; returns the revision the database was at (None: it was empty)."""
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    with database.write() as connection:
        if database.is_postgresql:
            connection.execute(select(func.pg_advisory_xact_lock(lock_key("schema"))))
        context = MigrationContext.configure(connection)
        found = context.get_current_revision()
        stamp = found is None
        if stamp:
            found = _pre_alembic_revision(connection)
        newest = script.get_current_head()
        if found is not None and found not in {revision.revision for revision in script.walk_revisions()}:
            raise SchemaTooNew(
                f"the catalog's schema is at revision {found}, newer than this server's {newest}: "
                "run a newer iris-server"
            )
        if stamp and found is not None:
            context.stamp(script, found)
        if found != newest:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            log.info(
                "catalog schema migrated",
                extra={"from": found, "to": newest, "database": database.description},
            )
        if not database.is_postgresql:
            connection.exec_driver_sql(f"PRAGMA user_version = {int(newest)}")
    return found


def _pre_alembic_revision(connection: Connection) -> str | None:
    """The revision a SQLite catalog made before Alembic is at (None: an empty database)."""
    if connection.dialect.name != "sqlite":
        return None
    (user_version,) = connection.exec_driver_sql("PRAGMA user_version").fetchone()
    if user_version == 0:
        # Before migrations were numbered the tables were those of the first one; or there are none yet.
        return "0001" if inspect(connection).has_table("models") else None
    return f"{user_version:04d}"


def main() -> int:
    """`python -m iris_server.schema_upgrade`: migrate the database IRIS_DATABASE_URL (or IRIS_DATA_DIR) names."""
    from .config import DatabaseSettings

    logging.basicConfig(level=logging.INFO)
    database = Database(DatabaseSettings().database_target())
    found = upgrade(database)
    print(f"catalog at revision {head()} (was {found or 'empty'}): {database.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
