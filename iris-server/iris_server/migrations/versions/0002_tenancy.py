"""Tenancy: models' owning namespaces and other namespaces' grants (neither needs the model to exist yet: the
operator claims a name before the first training), the namespace and metadata of tokens, and the attribution of
versions. Existing models keep no owner (tenancy.py says what that means); existing versions' attribution is
derived from their uploader column (catalog_schema.legacy_attribution).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("claimed_at", sa.Text, nullable=False),
        sa.Column("claimed_by", sa.Text, nullable=False),
    )
    op.create_index("owners_namespace", "owners", ["namespace"])
    op.create_table(
        "grants",
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("namespace", sa.Text, nullable=False),
        sa.Column("rights", sa.Text, nullable=False),
        sa.Column("granted_at", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("model", "namespace"),
    )
    # Plain ADD COLUMNs (no table rebuild on SQLite): each is a nullable column or has a default.
    op.add_column("tokens", sa.Column("namespace", sa.Text))
    op.add_column("tokens", sa.Column("metadata", sa.Text, nullable=False, server_default="{}"))
    op.add_column("versions", sa.Column("written_by", sa.Text))
