"""The pending orders alone: the window, ending orders, and what a new stream sends."""

from __future__ import annotations

import asyncio

from hydra.v1.order_pb2 import InferenceOrder

from hydra_feeder.ledger import LedgerEntry
from hydra_feeder.naming import parse_hydra
from hydra_feeder.orders import PendingOrders, make_order
from hydra_feeder.scanner import FileStat


def fed(oid: str) -> tuple[LedgerEntry, InferenceOrder]:
    parsed = parse_hydra("Run1/P.png")
    assert parsed is not None
    return LedgerEntry(f"Run1/P_{oid}.png", 1, 1, oid), make_order(
        oid, "Run1/P.png", parsed, FileStat(1, 1), b"x"
    )


async def test_the_window_fills_and_an_ended_order_makes_room() -> None:
    pending = PendingOrders(window=2)
    pending.restore([LedgerEntry("Run1/P_0.png", 1, 1, "restored")])
    pending.add([fed("a")])
    assert pending.room() == 0 and list(pending.orders) == ["restored", "a"]
    assert pending.orders["restored"].order is None  # its bytes are read when it is sent
    waiter = asyncio.create_task(pending.wait_for_room())
    await asyncio.sleep(0)
    assert not waiter.done()
    assert pending.end(["unknown", "restored"]) == ["restored"]
    await waiter
    assert pending.room() == 1


async def test_a_new_stream_sends_every_pending_order_oldest_first() -> None:
    pending = PendingOrders(window=10)
    pending.add([fed("a"), fed("b"), fed("c")])
    assert pending.take_unsent(2) == ["a", "b"]
    pending.end(["a"])
    pending.send_all_again()
    assert pending.take_unsent(5) == ["b", "c"]
    assert pending.take_unsent(5) == []
    waiter = asyncio.create_task(pending.wait_for_unsent())
    await asyncio.sleep(0)
    assert not waiter.done()
    pending.add([fed("d")])
    await waiter
    assert pending.take_unsent(5) == ["d"]
