"""stage_hourly backfilled from the last 7 days of run_history

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 21:40:00

The Status page reads ``stage_hourly`` (0007), which the keeper adds to from its first
commit after the upgrade. A hall upgraded with history would show empty Status windows
until then: the inferences of the 7 days before (the Status page's longest window) are
added here, up to the first hour the keeper already counted. Read in id chunks; a few
minutes for ePIC's 1.9 million inferences a week.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

from hydra_common.stagestats import hour_of, hourly_rows

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WINDOW = timedelta(days=7)
CHUNK = 20_000


def upgrade() -> None:
    from hydra_common.db.schema import RunHistory, StageHourly, utcnow

    bind = op.get_bind()
    rh = RunHistory.__table__
    sh = StageHourly.__table__
    first_counted = bind.execute(sa.select(sa.func.min(sh.c.hour))).scalar()
    since = hour_of(utcnow() - WINDOW)
    window = rh.c.created_at >= since
    if first_counted is not None:
        window = sa.and_(window, rh.c.created_at < first_counted)
    acc: dict[tuple[Any, ...], list[float]] = {}
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(rh.c.id, rh.c.created_at, rh.c.run_number, rh.c.stage_seconds)
            .where(window, rh.c.id > last_id)
            .order_by(rh.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        last_id = rows[-1][0]
        for row in hourly_rows((r[1], r[2], r[3] or {}) for r in rows):
            key = (row["hour"], row["run_number"], row["stage"], row["bin"])
            cell = acc.setdefault(key, [0, 0.0])
            cell[0] += row["count"]
            cell[1] += row["seconds_sum"]
    out = [
        {"hour": h, "run_number": r, "stage": s, "bin": b, "count": int(n), "seconds_sum": t}
        for (h, r, s, b), (n, t) in acc.items()
    ]
    for i in range(0, len(out), 5000):
        bind.execute(sa.insert(sh), out[i : i + 5000])


def downgrade() -> None:
    # The backfilled rows cannot be told from the keeper's; 0007's downgrade drops them all.
    pass
