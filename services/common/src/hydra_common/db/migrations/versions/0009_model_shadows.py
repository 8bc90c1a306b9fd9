"""model_shadows, shadow_history: a candidate model evaluated in shadow on the live stream

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 21:45:00

- ``model_shadows``: the model each plot type runs in shadow (at most one), who started it,
  and the optional promotion rule (``min_images``, ``min_agreement``).
- ``shadow_history``: the shadow model's verdict on each image beside the active model's,
  its cost per image, and the image when the two disagree; unique by (order, model) so a
  replayed report changes nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import hydra_common.db.schema

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "model_shadows",
        sa.Column("plot_type_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.String(length=128), nullable=False),
        sa.Column("started_at", hydra_common.db.schema.UtcDateTime(), nullable=False),
        sa.Column("min_images", sa.Integer(), nullable=True),
        sa.Column("min_agreement", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_shadows_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plot_type_id"],
            ["plot_types.id"],
            name=op.f("fk_model_shadows_plot_type_id_plot_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plot_type_id", name=op.f("pk_model_shadows")),
        sa.UniqueConstraint("model_id", name=op.f("uq_model_shadows_model_id")),
    )
    op.create_table(
        "shadow_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("plot_type_id", sa.Integer(), nullable=False),
        sa.Column("active_model_id", sa.Integer(), nullable=True),
        sa.Column("run_number", sa.BigInteger(), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("weights", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=False),
        sa.Column("active_verdict", sa.String(length=32), nullable=False),
        sa.Column("agrees", sa.Boolean(), nullable=True),
        sa.Column("seconds_per_image", sa.Double(), nullable=False),
        sa.Column("active_seconds_per_image", sa.Double(), nullable=False),
        sa.Column("error", sa.String(length=1024), nullable=False),
        sa.Column("image_path", sa.String(length=512), nullable=True),
        sa.Column("created_at", hydra_common.db.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["active_model_id"],
            ["models.id"],
            name=op.f("fk_shadow_history_active_model_id_models"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_shadow_history_model_id_models"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plot_type_id"],
            ["plot_types.id"],
            name=op.f("fk_shadow_history_plot_type_id_plot_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_history")),
        sa.UniqueConstraint("order_id", "model_id", name="uq_shadow_history_order_model"),
    )
    op.create_index(
        "ix_shadow_history_model_time", "shadow_history", ["model_id", "created_at"], unique=False
    )


def downgrade() -> None:
    # Dropping the table drops its index (MySQL keeps it for the model_id foreign key).
    op.drop_table("shadow_history")
    op.drop_table("model_shadows")
