"""several versions under one output name; exclusive tags; run tags

- ``step_io``'s unique key becomes (step_run_id, direction, name,
  version_id): a step that calls ``save_artifact(x, name="manual")`` three
  times has three outputs named ``manual`` (ZenML's outputs are lists);
  the same version is still linked once per name and direction.
- ``tag.exclusive``: an exclusive tag is held by one version of an
  artifact (one run of a pipeline) at a time, as in ZenML.
- ``run_tag``: tags on pipeline runs (``@pipeline(tags=...)``, ``add_tags(run=...)``);
  ``pipeline_tag``: tags on pipelines (``add_tags(pipeline=...)``).

Revision ID: 0012_zenml2_outputs_tags
Revises: 0011_web2_runs
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_zenml2_outputs_tags"
down_revision = "0011_web2_runs"
branch_labels = None
depends_on = None

NEW = "uq_step_io_link"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_COLUMNS = ["step_run_id", "direction", "name"]
# SQLite's key has no name (0002 made it unnamed): batch mode names it by this convention to drop it.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_name() -> str:
    if op.get_bind().dialect.name == "sqlite":
        return "uq_step_io_step_run_id"
    found = [str(c["name"]) for c in sa.inspect(op.get_bind()).get_unique_constraints("step_io")
             if c["column_names"] == OLD_COLUMNS]
    return found[0]


def upgrade() -> None:
    old = _old_name()
    with op.batch_alter_table("step_io", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(old, type_="unique")
        batch.create_unique_constraint(NEW, [*OLD_COLUMNS, "version_id"])
    op.add_column("tag", sa.Column("exclusive", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "run_tag",
        sa.Column("run_id", _ID, sa.ForeignKey("pipeline_run.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag_id", _ID, sa.ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_run_tag_tag_id", "run_tag", ["tag_id"])
    op.create_table(
        "pipeline_tag",
        sa.Column("pipeline_id", _ID, sa.ForeignKey("pipeline.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag_id", _ID, sa.ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_index("ix_pipeline_tag_tag_id", "pipeline_tag", ["tag_id"])


def downgrade() -> None:
    op.drop_table("pipeline_tag")
    op.drop_table("run_tag")
    with op.batch_alter_table("tag") as batch:
        batch.drop_column("exclusive")
    # Several versions under one name cannot go back: keep the first of each.
    op.execute("DELETE FROM step_io WHERE id NOT IN "
               "(SELECT min(id) FROM step_io GROUP BY step_run_id, direction, name)")
    with op.batch_alter_table("step_io", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(NEW, type_="unique")
        batch.create_unique_constraint("uq_step_io_step_run_id", OLD_COLUMNS)
