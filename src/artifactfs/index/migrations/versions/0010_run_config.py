"""a pipeline run keeps its configuration

- ``pipeline_run.config``: what the run was configured with that is not a
  parameter, as ZenML's ``run.config`` tells it: the substitutions its
  names were filled with (``date``, ``time`` and custom ones) and whether
  caching was on. NULL for runs recorded before.

Revision ID: 0010_run_config
Revises: 0009_intent_number
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_run_config"
down_revision = "0009_intent_number"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("pipeline_run", sa.Column("config", sa.JSON()))


def downgrade() -> None:
    with op.batch_alter_table("pipeline_run") as batch:
        batch.drop_column("config")
