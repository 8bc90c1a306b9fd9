"""stage_hourly: the Status page's figures, pre-aggregated by the keeper

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 21:05:00

- ``stage_hourly``: stage-time histograms per hour and run (count and seconds summed per
  log-spaced bin, ``hydra_common.stagestats``), added to at every keeper commit. The Status
  page drew its distributions from the most recent 20,000 inferences, which on ePIC's
  270,000 a day covered the last two hours of a 24-hour window; it now reads these rows and
  covers the whole window.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hydra_common.db.schema

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "stage_hourly",
        sa.Column("hour", hydra_common.db.schema.UtcDateTime(), nullable=False),
        sa.Column("run_number", sa.BigInteger(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("bin", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("seconds_sum", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("hour", "run_number", "stage", "bin", name=op.f("pk_stage_hourly")),
    )


def downgrade() -> None:
    op.drop_table("stage_hourly")
