"""the pruner's memory of which name folders of a store it listed, and when

- ``gc_scan``: one row per (store, artifact-name folder) with the time the
  orphan scan last listed it; a pass over a large remote store lists a
  bounded number of folders, those listed longest ago first.

Revision ID: 0007_gc_scan
Revises: 0006_team
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_gc_scan"
down_revision = "0006_team"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gc_scan",
        sa.Column("store_id", _ID, sa.ForeignKey("store.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("prefix", sa.String(1024), primary_key=True),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gc_scan")
