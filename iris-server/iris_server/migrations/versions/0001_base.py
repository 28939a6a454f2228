"""The first catalog: models (with their version counter), versions, aliases, tokens.

A SQLite catalog from before Alembic at `PRAGMA user_version` 1, or 0 with these tables (a store from before
migrations were numbered), is stamped at this revision instead of running it (schema_upgrade.py).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("next_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("model", sa.Text, sa.ForeignKey("models.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("sha256", sa.Text, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("uploader", sa.Text, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("blob_key", sa.Text, nullable=False, unique=True),
        sa.Column("idempotency_key", sa.Text),
        sa.PrimaryKeyConstraint("model", "version"),
    )
    op.create_index(
        "versions_idempotency",
        "versions",
        ["model", "idempotency_key"],
        unique=True,
        sqlite_where=sa.text("idempotency_key IS NOT NULL"),
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.create_table(
        "aliases",
        sa.Column("model", sa.Text, sa.ForeignKey("models.name"), nullable=False),
        sa.Column("alias", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model", "alias"),
        sa.ForeignKeyConstraint(["model", "version"], ["versions.model", "versions.version"]),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("secret_sha256", sa.Text, nullable=False),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("rights", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.Text),
    )
