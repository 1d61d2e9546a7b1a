"""the index's clock on SQLite: the latest time any writer has seen

- ``index_state.clock_mark``: the high-water mark of the clocks of the
  index's writers (``index.clock``), advanced at every commit; a SQLite
  prune pass whose clock is far ahead of it, or behind it, prunes nothing.
  Started at the latest time the index already holds.

Revision ID: 0008_index_clock
Revises: 0007_gc_scan
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_index_clock"
down_revision = "0007_gc_scan"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("index_state", sa.Column("clock_mark", sa.DateTime(timezone=True)))
    op.execute(sa.text(
        "UPDATE index_state SET clock_mark = (SELECT max(t) FROM ("
        " SELECT max(created_at) AS t FROM artifact_version"
        " UNION ALL SELECT max(start_time) FROM pipeline_run"
        " UNION ALL SELECT max(started_at) FROM write_intent) AS seen)"
    ))


def downgrade() -> None:
    with op.batch_alter_table("index_state") as batch:
        batch.drop_column("clock_mark")
