"""write intents, index identity, per-host stores, hash algorithms, artifact types and tags

- ``write_intent``: a save records its payload folder here (with the
  database's clock) before writing a byte, and clears it in the commit; the
  pruner never touches a folder whose intent is younger than a hard floor.
- ``index_state.index_uuid``: the identity of this index, written into the
  marker object of every store root it owns; an index sweeps orphans only in
  stores whose marker names it.
- ``store.host_id``: the machine a local store belongs to (NULL: any host).
- ``artifact_version.hash_algorithm``: the algorithm of ``content_hash`` and
  of every manifest digest (rows before this migration: sha256);
  ``version_file.sha256`` becomes ``digest``.
- ``artifact_version.artifact_type`` (ZenML's ArtifactType values) and
  ``artifact_tag`` (tags on an artifact, not on one version).

Revision ID: 0004
Revises: 0003
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "write_intent",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("store_id", _ID, sa.ForeignKey("store.id", ondelete="CASCADE"), nullable=False),
        sa.Column("folder", sa.String(2048), nullable=False),
        sa.Column("holder", sa.String(255)),
        sa.Column("started_at", _TS, server_default=sa.func.now(), nullable=False),
    )
    op.create_index("ix_write_intent_store", "write_intent", ["store_id", "started_at"])

    op.add_column("index_state", sa.Column("index_uuid", sa.String(36)))
    op.execute(sa.text("UPDATE index_state SET index_uuid = :u").bindparams(u=str(uuid.uuid4())))

    op.add_column("store", sa.Column("host_id", sa.String(64)))

    op.add_column("artifact_version", sa.Column("hash_algorithm", sa.String(16), nullable=False,
                                                server_default="sha256"))
    op.add_column("artifact_version", sa.Column("artifact_type", sa.String(32), nullable=False,
                                                server_default="DataArtifact"))
    # A plain RENAME COLUMN (SQLite >= 3.25, PostgreSQL): a batch copy of the
    # table would drop SQLite's AUTOINCREMENT, and ids must never be reused.
    op.alter_column("version_file", "sha256", new_column_name="digest")

    op.create_table(
        "artifact_tag",
        sa.Column("artifact_id", _ID, sa.ForeignKey("artifact.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag_id", _ID, sa.ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("artifact_tag")
    op.alter_column("version_file", "digest", new_column_name="sha256")
    # Plain DROP COLUMN (SQLite >= 3.35): a batch copy cannot drop tables
    # that others reference, and would lose AUTOINCREMENT.
    for table, column in (("artifact_version", "artifact_type"), ("artifact_version", "hash_algorithm"),
                          ("store", "host_id"), ("index_state", "index_uuid")):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    op.drop_index("ix_write_intent_store", "write_intent")
    op.drop_table("write_intent")
