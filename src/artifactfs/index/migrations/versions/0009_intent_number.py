"""write intents number their version

- ``write_intent.artifact_id`` and ``write_intent.version`` (with
  ``version_number``): a save numbers its version when it records its
  intent, so the manifest file beside the payload is written once, with
  its number, before the commit. The numbering of later saves counts the
  numbers intents hold (``index.artifacts.reserve_versions``); the commit
  inserts the version under the number its intent holds.

Revision ID: 0009_intent_number
Revises: 0008_index_clock
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_intent_number"
down_revision = "0008_index_clock"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # No foreign key: artifact rows are never deleted, and an intent must
    # never vanish by a cascade while its payload is being written.
    op.add_column("write_intent", sa.Column("artifact_id", _ID))
    op.add_column("write_intent", sa.Column("version", sa.String(255)))
    op.add_column("write_intent", sa.Column("version_number", _ID))


def downgrade() -> None:
    with op.batch_alter_table("write_intent") as batch:
        batch.drop_column("version_number")
        batch.drop_column("version")
        batch.drop_column("artifact_id")
