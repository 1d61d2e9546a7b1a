"""pruner: a lease row so one pruner works per index, and swept_at on versions

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # When the pruner deleted a condemned version's payload (--only-artifact
    # keeps the row, condemned and hidden, with this set).
    op.add_column("artifact_version", sa.Column("swept_at", _TS))
    lease = op.create_table(
        "gc_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(255)),
        sa.Column("acquired_at", _TS),
        sa.Column("heartbeat_at", _TS),
        sa.Column("expires_at", _TS),
    )
    op.bulk_insert(lease, [{"name": "pruner"}])


def downgrade() -> None:
    op.drop_table("gc_lease")
    with op.batch_alter_table("artifact_version") as batch:
        batch.drop_column("swept_at")
