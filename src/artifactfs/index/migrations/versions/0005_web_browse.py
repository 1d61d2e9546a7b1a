"""browsing: indexes the web view's keyset pages and metadata search walk

Revision ID: 0005_web_browse
Revises: 0004
"""

from alembic import op

revision = "0005_web_browse"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "key=value" search: the versions holding a key, newest first, without
    # reading every metadata row.
    op.create_index("ix_metadata_key", "metadata", ["key", "version_id"])
    # A pipeline's runs, newest first, one keyset page at a time.
    op.create_index("ix_pipeline_run_newest", "pipeline_run", ["pipeline_id", "id"])
    # A tag's versions, newest first.
    op.create_index("ix_version_tag_newest", "version_tag", ["tag_id", "version_id"])


def downgrade() -> None:
    op.drop_index("ix_version_tag_newest", "version_tag")
    op.drop_index("ix_pipeline_run_newest", "pipeline_run")
    op.drop_index("ix_metadata_key", "metadata")
