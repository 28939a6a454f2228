"""The change log (change_log.py): a store-wide sequence of what happened to versions and aliases, for readers
that follow the store instead of polling each model. One counter row holds the sequence and how much of the log
was trimmed. A store migrated from 0002 starts with an empty log at 0: nothing before the migration is replayed;
readers list the models once (as they do when they start) and follow from there.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("alias", sa.Text),
        sa.Column("at", sa.Text, nullable=False),
    )
    counter = op.create_table(
        "change_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("trimmed_through", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="change_log_one_row"),
    )
    op.bulk_insert(counter, [{"id": 1, "last_seq": 0, "trimmed_through": 0}])
