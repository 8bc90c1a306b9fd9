"""alarms that do not cry wolf, beam state from EPICS

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 20:45:00

- ``alarm_states``: per plot type, the K-of-N window of recent alarm verdicts, whether the
  alarm is raised, acknowledged (by whom) or clear, and when it last beeped.
- ``beam_state``: the beam current, run number and run type the keeper reads from EPICS.
- ``monitoring_log.event`` / ``actor``: the log records an alarm's raise, acknowledge and
  clear; an acknowledgement is no inference, so ``run_history_id`` may be NULL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

import hydra_common.db.schema

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Json = sa.JSON().with_variant(mysql.JSON(), "mysql")
HISTORY_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alarm_states",
        sa.Column("plot_type_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("recent", Json, nullable=False),
        sa.Column("last_order_id", sa.String(length=36), nullable=False),
        sa.Column("run_number", sa.BigInteger(), nullable=False),
        sa.Column("raised_at", hydra_common.db.schema.UtcDateTime(), nullable=True),
        sa.Column("raised_order_id", sa.String(length=36), nullable=False),
        sa.Column("last_beep_at", hydra_common.db.schema.UtcDateTime(), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=False),
        sa.Column("acknowledged_at", hydra_common.db.schema.UtcDateTime(), nullable=True),
        sa.Column("cleared_at", hydra_common.db.schema.UtcDateTime(), nullable=True),
        sa.Column("updated_at", hydra_common.db.schema.UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plot_type_id"],
            ["plot_types.id"],
            name=op.f("fk_alarm_states_plot_type_id_plot_types"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("plot_type_id", name=op.f("pk_alarm_states")),
    )
    op.create_table(
        "beam_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.Column("beam_current", sa.Double(), nullable=True),
        sa.Column("run_number", sa.BigInteger(), nullable=True),
        sa.Column("run_type", sa.String(length=64), nullable=False),
        sa.Column("updated_at", hydra_common.db.schema.UtcDateTime(), nullable=True),
        sa.Column("written_at", hydra_common.db.schema.UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_beam_state")),
    )
    with op.batch_alter_table("monitoring_log", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("event", sa.String(length=16), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("actor", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.alter_column("run_history_id", existing_type=HISTORY_ID, nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM monitoring_log WHERE run_history_id IS NULL")
    with op.batch_alter_table("monitoring_log", schema=None) as batch_op:
        batch_op.alter_column("run_history_id", existing_type=HISTORY_ID, nullable=False)
        batch_op.drop_column("actor")
        batch_op.drop_column("event")
    op.drop_table("beam_state")
    op.drop_table("alarm_states")
