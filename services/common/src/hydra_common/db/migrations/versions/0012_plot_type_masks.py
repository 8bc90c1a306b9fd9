"""plot_type_masks: regions of a plot type's image where a known problem is accepted

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 22:05:00

- ``plot_type_masks``: image-relative rectangles (0..1) with a reason and an expiry (a run
  number, a date, or both); while one is in force, a confirmed Bad whose Grad-CAM mass lies
  mostly inside the masks is recorded ``Accepted`` instead of alarming.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hydra_common.db.schema

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plot_type_masks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plot_type_id", sa.Integer(), nullable=False),
        sa.Column("x0", sa.Double(), nullable=False),
        sa.Column("y0", sa.Double(), nullable=False),
        sa.Column("x1", sa.Double(), nullable=False),
        sa.Column("y1", sa.Double(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.Column("until_run", sa.BigInteger(), nullable=True),
        sa.Column("until_time", hydra_common.db.schema.UtcDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", hydra_common.db.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plot_type_id"],
            ["plot_types.id"],
            name=op.f("fk_plot_type_masks_plot_type_id_plot_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plot_type_masks")),
    )
    op.create_index(
        op.f("ix_plot_type_masks_plot_type_id"), "plot_type_masks", ["plot_type_id"], unique=False
    )


def downgrade() -> None:
    # Dropping the table drops its index (MySQL refuses to drop an index a foreign key uses).
    op.drop_table("plot_type_masks")
