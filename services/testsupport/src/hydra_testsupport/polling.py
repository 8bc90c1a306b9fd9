"""Waiting for a condition with a deadline: tests poll, they never guess a duration.

The deadlines are generous (the machine may be busy): they bound a hang, they measure
nothing. A test that fails here names what it waited for.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    probe: Callable[[], T | None],
    within: float = 60.0,
    every: float = 0.2,
    what: str = "condition",
) -> T:
    """The first truthy value ``probe()`` returns, polling every ``every`` seconds; an
    AssertionError naming ``what`` once ``within`` seconds passed."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met in {within:.0f}s"
        time.sleep(every)


async def eventually_async(
    check: Callable[[], Awaitable[bool] | bool],
    what: str = "condition",
    within: float = 60.0,
    every: float = 0.02,
) -> None:
    """Poll ``check()`` (plain or awaitable) on the event loop until it holds; an
    AssertionError naming ``what`` once ``within`` seconds passed."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"{what} not met in {within:.0f}s"
        await asyncio.sleep(every)
