"""What the trainer's commands share: settings and logging, one database transaction per
command, the user a change is recorded for, audit rows, and domain errors as one line.

Each command parses its options, calls the domain function that owns the rule and prints;
the parts every command needs are written once here.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import typer
from rich.console import Console
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_common.db.schema import AuditLog
from hydra_common.errors import HydraError, InvalidInput
from hydra_common.logs import setup_logging
from hydra_trainer.settings import TrainerSettings

T = TypeVar("T")
console = Console(stderr=False)


def fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn domain errors into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (HydraError, ValueError, FileExistsError) as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None

    return wrapper


def load_settings() -> TrainerSettings:
    """The trainer's settings, with logging set up as they say."""
    settings = TrainerSettings()
    setup_logging("trainer", settings.log_level, settings.log_format)
    return settings


async def _with_session(
    settings: TrainerSettings, work: Callable[[AsyncSession], Awaitable[T]]
) -> T:
    from hydra_common.db.engine import make_engine, make_sessionmaker

    engine = make_engine(settings.db_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def in_session(settings: TrainerSettings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run WORK in one transaction on an engine of its own, which is disposed of after."""
    return asyncio.run(_with_session(settings, work))


def acting_user(settings: TrainerSettings) -> str:
    """Who a promotion or rollback is recorded for: the trainer_user setting, else the OS user."""
    return settings.trainer_user or getpass.getuser()


def audit(
    session: AsyncSession,
    action: str,
    entity: str,
    entity_id: object,
    after: dict[str, Any],
    before: dict[str, Any] | None = None,
) -> None:
    """Record a change made from the command line in the audit log."""
    session.add(
        AuditLog(
            username="cli",
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=before or {},
            after=after,
        )
    )


def check_choice(value: str | None, allowed: Sequence[str], what: str) -> None:
    """Refuse a VALUE outside ALLOWED (None means not given, and passes)."""
    if value is not None and value not in allowed:
        raise InvalidInput(f"unknown {what} {value!r} ({', '.join(allowed)})")


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up and export chatter out of the command's output."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # SavedModel export logs every assets folder at INFO; keep the command's output readable.
    logging.getLogger("tensorflow").setLevel(logging.WARNING)
