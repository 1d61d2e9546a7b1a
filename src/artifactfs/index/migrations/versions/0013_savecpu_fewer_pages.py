"""fewer pages written by every save

Every small save records a write intent and deletes it in its commit; the
commit also inserts a version's metadata rows. Each index a row goes into
is one more page SQLite writes to its log (and, for the commit, makes
durable):

- ``write_intent`` has no ``ix_write_intent_store`` any more, and on
  SQLite is a ``WITHOUT ROWID`` table keyed by its uuid: the insert and the
  delete each touch one page instead of three. The table holds the saves in
  flight (and those crashed until the pruner clears them): its readers
  (``index.intents``, the numbering in ``index.artifacts``) scan a few rows.
- ``ix_metadata_run`` and ``ix_metadata_step_run`` hold only the rows
  whose column is set (partial indexes): a version's metadata rows, the
  ones every save writes, are in neither. Every query on those columns
  (``=``, ``IN``, a join, the cascades) compares them, which implies ``IS
  NOT NULL``, so SQLite and PostgreSQL still use the indexes.

Revision ID: 0013_savecpu_fewer_pages
Revises: 0012_zenml2_outputs_tags
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_savecpu_fewer_pages"
down_revision = "0012_zenml2_outputs_tags"
branch_labels = None
depends_on = None

_PARTIAL = ("run_id", "step_run_id")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    if _sqlite():
        with op.batch_alter_table("write_intent", recreate="always", table_kwargs={"sqlite_with_rowid": False}) as batch:
            batch.drop_index("ix_write_intent_store")
    else:
        op.drop_index("ix_write_intent_store", table_name="write_intent")
    for column in _PARTIAL:
        where = sa.text(f"{column} IS NOT NULL")
        op.drop_index(f"ix_metadata_{column.removesuffix('_id')}", table_name="metadata")
        op.create_index(f"ix_metadata_{column.removesuffix('_id')}", "metadata", [column],
                        sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for column in _PARTIAL:
        op.drop_index(f"ix_metadata_{column.removesuffix('_id')}", table_name="metadata")
        op.create_index(f"ix_metadata_{column.removesuffix('_id')}", "metadata", [column])
    if _sqlite():
        with op.batch_alter_table("write_intent", recreate="always", table_kwargs={"sqlite_with_rowid": True}) as batch:
            batch.create_index("ix_write_intent_store", ["store_id", "started_at"])
    else:
        op.create_index("ix_write_intent_store", "write_intent", ["store_id", "started_at"])
