"""runs record their process, step runs their logs

- ``pipeline_run.holder``: the process running the run, in the one holder
  format (``index.holders``); ``pipeline_run.heartbeat_at``: when it last
  said it still runs, on the index's clock. A run marked running whose
  process is gone is shown as crashed (``index.liveness``); NULL for runs
  recorded before (they cannot be told).
- ``ix_pipeline_run_status``: the running runs, found without a scan.
- ``step_log``: what each step run wrote to stdout, stderr and logging
  while it ran, bounded (``pipelines.logs``).

Revision ID: 0011_web2_runs
Revises: 0010_run_config
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_web2_runs"
down_revision = "0010_run_config"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pipeline_run", sa.Column("holder", sa.String(255)))
    op.add_column("pipeline_run", sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
    op.create_index("ix_pipeline_run_status", "pipeline_run", ["status"])
    op.create_table(
        "step_log",
        sa.Column("step_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  sa.ForeignKey("step_run.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("total_chars", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("cut_chars", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("step_log")
    op.drop_index("ix_pipeline_run_status", "pipeline_run")
    with op.batch_alter_table("pipeline_run") as batch:
        batch.drop_column("heartbeat_at")
        batch.drop_column("holder")
