"""monitoring_log indexed by plot type and time

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 21:40:00

- ``ix_monitoring_log_type_created`` (plot_type_id, created_at): the Log page counts a
  window's entries per plot type from this index alone, and reads a detector's page from
  its plot types' ranges, instead of sorting the whole window by detector (30 days of ePIC:
  327,000 entries, 1.6 s a page).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("monitoring_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_monitoring_log_type_created", ["plot_type_id", "created_at"], unique=False
        )


# MariaDB drops a foreign key's own index once another index can serve the key (this one
# can): the downgrade gives it back before dropping this one.
FK_INDEX = "fk_monitoring_log_plot_type_id_plot_types"


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "mysql":
        names = {ix["name"] for ix in sa.inspect(bind).get_indexes("monitoring_log")}
        if FK_INDEX not in names:
            op.create_index(FK_INDEX, "monitoring_log", ["plot_type_id"], unique=False)
    with op.batch_alter_table("monitoring_log", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_log_type_created")
