"""a team on one index: the change clock off the hot row, removed stores

- PostgreSQL: sequence ``index_generation``, the change clock that writers
  bump without a row lock (``index_state.generation`` stays SQLite's clock);
  it starts where the row's counter stood, so readings keep growing.
- ``store.removed_at``: a store removed with ``--force`` while versions
  were recorded in it keeps its row (renamed ``<name>~<id>``, a name no user
  can register) so that those versions, now ``lost``, still say where they were.

Revision ID: 0006_team
Revises: 0005_web_browse
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_team"
down_revision = "0005_web_browse"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE IF NOT EXISTS index_generation AS BIGINT")
        op.execute("SELECT setval('index_generation', GREATEST(generation, 1), generation > 0) FROM index_state")
    op.add_column("store", sa.Column("removed_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.execute("ALTER TABLE store DROP COLUMN removed_at")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE index_state SET generation = (SELECT last_value FROM index_generation)")
        op.execute("DROP SEQUENCE index_generation")
