"""uncertain kept images, model drift

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:50:00

- ``plots.kept_reason`` gains ``uncertain``: the keeper keeps an image whose margin (top
  weight minus the runner-up's) is below ``HYDRA_KEEP_MARGIN_BELOW``.
- ``model_drift``: per plot type, the keeper's drift loop's last figures (PSI of the active
  model's top weights and verdict mix against its test split, agreement with later labels,
  whether retraining is suggested, and the evidence).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import hydra_common.db.schema

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_REASONS = ("bad", "unconfirmed", "unbiased", "imported")
NEW_REASONS = (*OLD_REASONS, "uncertain")
CHECK = "ck_plots_kept_reason"


def _reason_type(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(
        *values, name="kept_reason", native_enum=False, create_constraint=True, length=24
    )


def _set_reasons(old: Sequence[str], new: Sequence[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # SQLite cannot alter a CHECK: batch mode copies the table with the new type.
        with op.batch_alter_table("plots", recreate="always") as batch_op:
            batch_op.alter_column(
                "kept_reason", existing_type=_reason_type(old), type_=_reason_type(new)
            )
        return
    listed = ", ".join(f"'{v}'" for v in new)
    op.execute(f"ALTER TABLE plots DROP CONSTRAINT {CHECK}")
    op.execute(f"ALTER TABLE plots ADD CONSTRAINT {CHECK} CHECK (kept_reason IN ({listed}))")


def upgrade() -> None:
    _set_reasons(OLD_REASONS, NEW_REASONS)
    op.create_table(
        "model_drift",
        sa.Column("plot_type_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("window_hours", sa.Double(), nullable=False),
        sa.Column("inferences", sa.Integer(), nullable=False),
        sa.Column("test_images", sa.Integer(), nullable=False),
        sa.Column("psi_top_weight", sa.Double(), nullable=True),
        sa.Column("psi_verdicts", sa.Double(), nullable=True),
        sa.Column("drift_score", sa.Double(), nullable=True),
        sa.Column("labelled", sa.Integer(), nullable=False),
        sa.Column("label_agreement", sa.Double(), nullable=True),
        sa.Column("retrain_suggested", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.JSON().with_variant(mysql.JSON(), "mysql"), nullable=False),
        sa.Column("computed_at", hydra_common.db.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["models.id"],
            name=op.f("fk_model_drift_model_id_models"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["plot_type_id"],
            ["plot_types.id"],
            name=op.f("fk_model_drift_plot_type_id_plot_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plot_type_id", name=op.f("pk_model_drift")),
    )


def downgrade() -> None:
    op.drop_table("model_drift")
    op.execute("UPDATE plots SET kept_reason = 'unconfirmed' WHERE kept_reason = 'uncertain'")
    _set_reasons(NEW_REASONS, OLD_REASONS)
