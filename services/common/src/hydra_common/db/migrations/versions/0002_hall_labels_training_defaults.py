"""plot-type training defaults, cancelled training runs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 17:50:00

- ``plot_types.default_architecture`` / ``default_sampling``: the hall's training defaults
  per plot type (NULL: Hydra's own, ``hydra_common.training``).
- ``training_runs.status`` gains ``cancelled`` (a queued or running run someone stopped).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = ("queued", "running", "succeeded", "failed")
NEW_STATUSES = (*OLD_STATUSES, "cancelled")
CHECK = "ck_training_runs_training_run_status"


def _status_type(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(
        *values,
        name="training_run_status",
        native_enum=False,
        create_constraint=True,
        length=24,
    )


def _set_statuses(old: Sequence[str], new: Sequence[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite cannot alter a CHECK: batch mode copies the table with the new type.
        with op.batch_alter_table("training_runs", recreate="always") as batch_op:
            batch_op.alter_column(
                "status", existing_type=_status_type(old), type_=_status_type(new)
            )
        return
    listed = ", ".join(f"'{v}'" for v in new)
    op.execute(f"ALTER TABLE training_runs DROP CONSTRAINT {CHECK}")
    op.execute(f"ALTER TABLE training_runs ADD CONSTRAINT {CHECK} CHECK (status IN ({listed}))")


def upgrade() -> None:
    with op.batch_alter_table("plot_types", schema=None) as batch_op:
        batch_op.add_column(sa.Column("default_architecture", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("default_sampling", sa.String(length=32), nullable=True))
    _set_statuses(OLD_STATUSES, NEW_STATUSES)


def downgrade() -> None:
    op.execute("UPDATE training_runs SET status = 'failed' WHERE status = 'cancelled'")
    _set_statuses(NEW_STATUSES, OLD_STATUSES)
    with op.batch_alter_table("plot_types", schema=None) as batch_op:
        batch_op.drop_column("default_sampling")
        batch_op.drop_column("default_architecture")
