"""a step run may link several versions under one name

- ``step_io``'s unique key becomes (step_run_id, direction, name,
  version_id): a step that calls ``save_artifact(x, name="manual")`` three
  times has three outputs named ``manual`` (ZenML's outputs are lists);
  the same version is still linked once per name and direction.

Revision ID: 0011_zenml2_step_io_many
Revises: 0010_run_config
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_zenml2_step_io_many"
down_revision = "0010_run_config"
branch_labels = None
depends_on = None

NEW = "uq_step_io_link"
OLD_COLUMNS = ["step_run_id", "direction", "name"]
# SQLite's key has no name (0002 made it unnamed): batch mode names it by this convention to drop it.
_SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_name() -> str:
    if op.get_bind().dialect.name == "sqlite":
        return "uq_step_io_step_run_id"
    found = [c["name"] for c in sa.inspect(op.get_bind()).get_unique_constraints("step_io")
             if c["column_names"] == OLD_COLUMNS]
    return found[0]


def upgrade() -> None:
    old = _old_name()
    with op.batch_alter_table("step_io", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(old, type_="unique")
        batch.create_unique_constraint(NEW, [*OLD_COLUMNS, "version_id"])


def downgrade() -> None:
    # Several versions under one name cannot go back: keep the first of each.
    op.execute("DELETE FROM step_io WHERE id NOT IN "
               "(SELECT min(id) FROM step_io GROUP BY step_run_id, direction, name)")
    with op.batch_alter_table("step_io", naming_convention=_SQLITE_NAMES) as batch:
        batch.drop_constraint(NEW, type_="unique")
        batch.create_unique_constraint("uq_step_io_step_run_id", OLD_COLUMNS)
