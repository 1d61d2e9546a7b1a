"""lineage: pipelines, runs, steps, artifacts, versions, manifests, tags, metadata

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)
# Integer keys become inode numbers in the mount: SQLite must never reuse them.
_NEVER_REUSE = {"sqlite_autoincrement": True}


def _pk():
    return sa.Column("id", _ID, primary_key=True)


def _fk(name, target, ondelete, nullable=False):
    return sa.Column(name, _ID, sa.ForeignKey(target, ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "pipeline",
        _pk(),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        **_NEVER_REUSE,
    )
    op.create_table(
        "pipeline_run",
        _pk(),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        _fk("pipeline_id", "pipeline.id", "CASCADE"),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("start_time", _TS, nullable=False),
        sa.Column("end_time", _TS),
        **_NEVER_REUSE,
    )
    op.create_index("ix_pipeline_run_pipeline", "pipeline_run", ["pipeline_id", "name"])
    op.create_table(
        "step_run",
        _pk(),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        _fk("run_id", "pipeline_run.id", "CASCADE"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("code_hash", sa.String(64)),
        sa.Column("cache_key", sa.String(64)),
        sa.Column("parameters", sa.JSON(), nullable=False),
        _fk("original_step_run_id", "step_run.id", "SET NULL", nullable=True),
        sa.Column("start_time", _TS, nullable=False),
        sa.Column("end_time", _TS),
        sa.UniqueConstraint("run_id", "name"),
        **_NEVER_REUSE,
    )
    op.create_index("ix_step_run_cache_key", "step_run", ["cache_key", "status"])
    op.create_table(
        "artifact",
        _pk(),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        **_NEVER_REUSE,
    )
    op.create_table(
        "artifact_version",
        _pk(),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        _fk("artifact_id", "artifact.id", "CASCADE"),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("version_number", _ID),
        _fk("store_id", "store.id", "NO ACTION"),
        sa.Column("uri", sa.String(2048), nullable=False, unique=True),
        sa.Column("payload_kind", sa.String(16), nullable=False),
        sa.Column("materializer", sa.String(512)),
        sa.Column("data_type", sa.String(512)),
        sa.Column("content_hash", sa.String(64)),
        sa.Column("size", _ID, nullable=False),
        sa.Column("file_count", _ID, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("save_type", sa.String(16), nullable=False),
        sa.Column("visualizations", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("condemned_at", _TS),
        sa.UniqueConstraint("artifact_id", "version"),
        **_NEVER_REUSE,
    )
    op.create_index("ix_version_newest", "artifact_version", ["artifact_id", "state", "id"])
    op.create_index("ix_version_number", "artifact_version", ["artifact_id", "version_number"])
    op.create_index("ix_version_state", "artifact_version", ["state", "created_at"])
    op.create_table(
        "version_file",
        _pk(),
        _fk("version_id", "artifact_version.id", "CASCADE"),
        sa.Column("path", sa.String(4096), nullable=False),
        sa.Column("size", _ID, nullable=False),
        sa.Column("mode", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.UniqueConstraint("version_id", "path"),
        **_NEVER_REUSE,
    )
    op.create_table(
        "step_io",
        _pk(),
        _fk("step_run_id", "step_run.id", "CASCADE"),
        _fk("version_id", "artifact_version.id", "RESTRICT"),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.UniqueConstraint("step_run_id", "direction", "name"),
        **_NEVER_REUSE,
    )
    op.create_index("ix_step_io_version", "step_io", ["version_id"])
    op.create_table(
        "tag",
        _pk(),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        **_NEVER_REUSE,
    )
    op.create_table(
        "version_tag",
        sa.Column("version_id", _ID, sa.ForeignKey("artifact_version.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag_id", _ID, sa.ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_version_tag_tag_id", "version_tag", ["tag_id"])
    op.create_table(
        "metadata",
        _pk(),
        _fk("version_id", "artifact_version.id", "CASCADE", nullable=True),
        _fk("run_id", "pipeline_run.id", "CASCADE", nullable=True),
        _fk("step_run_id", "step_run.id", "CASCADE", nullable=True),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        **_NEVER_REUSE,
    )
    op.create_index("ix_metadata_version", "metadata", ["version_id"])
    op.create_index("ix_metadata_run", "metadata", ["run_id"])
    op.create_index("ix_metadata_step_run", "metadata", ["step_run_id"])


def downgrade() -> None:
    for table in ("metadata", "version_tag", "tag", "step_io", "version_file", "artifact_version",
                  "artifact", "step_run", "pipeline_run", "pipeline"):
        op.drop_table(table)
