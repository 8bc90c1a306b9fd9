"""run_verdicts: the Summary page's run-history figures, pre-aggregated by the keeper

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 03:30:00

- ``run_verdicts``: inferences per run and verdict, added to at every keeper commit and
  subtracted from by retention, so it always equals ``run_history`` counted per run and
  verdict. The Summary page counted the whole run history on its first visit (31 s on 30
  days of ePIC, 8 million rows); it now reads these few thousand rows.

Back-filled here from the whole run history with one ``INSERT ... SELECT ... GROUP BY``
(a full read of run_history: tens of seconds on a hall's 30 days), before any keeper of
this version adds to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_verdicts = op.create_table(
        "run_verdicts",
        sa.Column("run_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("verdict", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("run_number", "verdict", name=op.f("pk_run_verdicts")),
    )
    # The history's columns as this revision knows them (not the code's current model).
    history = sa.table(
        "run_history", sa.column("run_number", sa.BigInteger()), sa.column("verdict", sa.String())
    )
    op.execute(
        sa.insert(run_verdicts).from_select(
            ["run_number", "verdict", "count"],
            sa.select(history.c.run_number, history.c.verdict, sa.func.count()).group_by(
                history.c.run_number, history.c.verdict
            ),
        )
    )


def downgrade() -> None:
    op.drop_table("run_verdicts")
