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


def downgrade() -> None:
    with op.batch_alter_table("monitoring_log", schema=None) as batch_op:
        batch_op.drop_index("ix_monitoring_log_type_created")
