"""The periodic loop (``hydra_keeper.loops``): the start-up delay, the interval, and a failed
pass handed on without ending the loop. The waits are recorded, not waited."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hydra_keeper import loops


class Stop(BaseException):
    """Ends the loop from inside a pass (the loop survives only an ``Exception``)."""


async def test_passes_follow_the_delay_and_the_interval_and_survive_failures(
    monkeypatch: Any,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(loops, "sleep", sleep)
    calls: list[int] = []
    errors: list[Exception] = []

    async def one_pass() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise ValueError("the database is away")
        if len(calls) == 3:
            raise Stop

    with pytest.raises(Stop):
        await loops.every(5.0, 60.0, one_pass, errors.append)
    assert len(calls) == 3  # the failed first pass did not end the loop
    assert [str(e) for e in errors] == ["the database is away"]
    assert waits == [5.0, 5.0, 5.0]  # the delay is at most the interval; then the interval

    waits.clear()
    calls.clear()
    with pytest.raises(Stop):
        await loops.every(600.0, 60.0, one_pass, errors.append)
    assert waits[0] == 60.0  # a long interval: the first pass after the start-up delay
