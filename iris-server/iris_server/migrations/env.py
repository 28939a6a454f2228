"""Alembic's environment for the catalog: migrations run on the connection schema_upgrade.upgrade() passes in
(inside its locked transaction), never on one of their own. Use `python -m iris_server.schema_upgrade`
(or just start the store) to migrate a database."""

from alembic import context

from iris_server.catalog_schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the catalog's migrations run through iris_server.schema_upgrade (python -m iris_server.schema_upgrade), "
        "which holds the lock that keeps replicas starting together from migrating at once"
    )
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():  # the caller's transaction (Alembic joins it): all or nothing
    context.run_migrations()
