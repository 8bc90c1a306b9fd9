"""``eventually``: the first truthy value, or an error that names what never happened."""

from __future__ import annotations

import itertools

import pytest

from hydra_testsupport import eventually, eventually_async


def test_eventually_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert eventually(lambda: (n := next(counter)) >= 3 and n, every=0) == 3


def test_eventually_names_what_never_happened() -> None:
    with pytest.raises(AssertionError, match="the queue to drain not met"):
        eventually(lambda: None, within=0, every=0, what="the queue to drain")


async def test_eventually_async_takes_plain_and_awaitable_checks() -> None:
    seen: list[int] = []

    async def grows() -> bool:
        seen.append(1)
        return len(seen) >= 3

    await eventually_async(grows, "three calls", every=0)
    assert len(seen) == 3
    await eventually_async(lambda: len(seen) == 3, "a plain check")
    with pytest.raises(AssertionError, match="never true not met"):
        await eventually_async(lambda: False, "never true", within=0, every=0)
