"""Commit notices (``WatchCommits``): the push behind the API's Run page."""

from __future__ import annotations

import asyncio
from typing import Any

from hydra.v1 import keeper_pb2, keeper_pb2_grpc

from hydra_common.grpcserver import channel
from hydra_keeper.notify import CommitNotifier
from hydra_testsupport.polling import eventually_async


async def test_notices_pile_up_into_one_and_close_ends_the_stream() -> None:
    notifier = CommitNotifier()
    notifier.publish(["nobody_listens"], 3)  # no subscriber: nothing kept
    stream = notifier.stream()
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # let the stream subscribe
    assert notifier.subscribers == 1
    notifier.publish(["a", "b"], 2)
    notifier.publish(["b", "c"], 1)  # before the reader ran: merged with the first
    notice = await first
    assert list(notice.plot_types) == ["a", "b", "c"] and notice.reports == 3
    notifier.publish(["d"], 0)  # nothing recorded (duplicates only): no notice
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert not pending.done()
    notifier.close()
    try:
        await pending
        raise AssertionError("the stream should have ended")
    except StopAsyncIteration:
        pass
    assert notifier.subscribers == 0


async def test_a_watcher_hears_of_each_commit(
    keeper_factory: Any, mysql_url: str, kit: Any
) -> None:
    world = await kit.make_world(mysql_url)
    service, client = await keeper_factory(mysql_url)
    async with channel(f"127.0.0.1:{service.port}") as ch:
        call = keeper_pb2_grpc.KeeperServiceStub(ch).WatchCommits(keeper_pb2.WatchCommitsRequest())
        await eventually_async(lambda: service.notifier.subscribers == 1, "a watcher")
        await client.record([kit.make_report(world)])
        notice = await asyncio.wait_for(anext(aiter(call)), 30)
        assert world.plot_type in notice.plot_types and notice.reports == 1
        service.notifier.close()  # as stop() does first: the stream ends, no grace wait
        rest = [n async for n in call]
        assert rest == []
