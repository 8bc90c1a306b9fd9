"""The keeper's upsert: one statement per table and column set, built once, still upserting."""

from __future__ import annotations

import sqlalchemy as sa

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import ServiceStatus, utcnow
from hydra_keeper.dbutil import _upsert_statement, upsert

service_status_t = ServiceStatus.__table__


def _row(instance: str, state: str) -> dict[str, object]:
    return {
        "service": "upsert-test",
        "instance": instance,
        "state": state,
        "details": {},
        "last_seen": utcnow(),
    }


async def test_upsert_reuses_its_statement_and_replaces_rows(db_url: str) -> None:
    engine = make_engine(db_url)
    keys = ["service", "instance"]
    try:
        async with engine.begin() as conn:
            await upsert(
                conn, service_status_t, [_row("a", "starting"), _row("b", "starting")], keys
            )
            hits = _upsert_statement.cache_info().hits
            await upsert(conn, service_status_t, [_row("a", "serving")], keys)
            # Building the statement costs more than running it: the second call reuses it.
            assert _upsert_statement.cache_info().hits == hits + 1
            rows = await conn.execute(
                sa.select(service_status_t.c.instance, service_status_t.c.state).where(
                    service_status_t.c.service == "upsert-test"
                )
            )
            assert {i: s for i, s in rows} == {"a": "serving", "b": "starting"}
    finally:
        async with engine.begin() as conn:
            await conn.execute(
                sa.delete(service_status_t).where(service_status_t.c.service == "upsert-test")
            )
        await engine.dispose()
