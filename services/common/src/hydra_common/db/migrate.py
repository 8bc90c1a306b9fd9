"""Run Alembic migrations programmatically (``hydra db upgrade``), never ``create_all()``."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from hydra_common.db.engine import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


class _PrimaryKeyNameNote(logging.Filter):
    """MySQL names every primary key PRIMARY and says so once per table: not worth a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "ignored for PRIMARY key" not in record.getMessage()


logging.getLogger("asyncmy").addFilter(_PrimaryKeyNameNote())


def alembic_config(url: str) -> Config:
    """An Alembic config for Hydra's migrations on the given database URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _in_thread(fn: object, *args: object) -> None:
    # env.py calls asyncio.run(); inside a running loop it must run in a worker thread.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        fn(*args)  # type: ignore[operator]
        return
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        ex.submit(fn, *args).result()  # type: ignore[arg-type]


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database up to ``revision``."""
    if url.startswith("sqlite"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    _in_thread(command.upgrade, alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database down to ``revision``."""
    _in_thread(command.downgrade, alembic_config(url), revision)


async def wait_for_database(url: str, wait_seconds: float = 60.0) -> None:
    """Wait until the database answers (the pre-start step of a deployment)."""
    deadline = time.monotonic() + wait_seconds
    engine = make_engine(url)
    try:
        while True:
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)
    finally:
        await engine.dispose()
