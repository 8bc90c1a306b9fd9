"""The keeper's periodic background loops (drift, retention): a pass every interval, the
first after a start-up delay, and a failed pass reported without ending the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn

sleep = asyncio.sleep  # what the loops wait with (a test records the waits)


async def every(
    interval_seconds: float,
    first_delay_seconds: float,
    one_pass: Callable[[], Awaitable[object]],
    on_error: Callable[[Exception], None],
) -> NoReturn:
    """Run ``one_pass`` every ``interval_seconds`` until cancelled.

    The first pass waits ``first_delay_seconds`` (the interval when that is shorter), so a
    keeper started for a moment (a test, a drill) does no work. A pass that raises is
    handed to ``on_error`` (to log and count it), and the next pass runs at its time.
    """
    await sleep(min(interval_seconds, first_delay_seconds))
    while True:
        try:
            await one_pass()
        except Exception as exc:
            on_error(exc)
        await sleep(interval_seconds)
