"""The sender alone, against a fake balancer on loopback: a broken stream is opened again and
every pending order re-sent, its bytes read again from disk; a file changed since it was fed
ends its order unsent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from hydra.v1 import balancer_pb2, balancer_pb2_grpc
from hydra.v1.order_pb2 import InferenceOrder
from prometheus_client import CollectorRegistry

from hydra_common.db.engine import make_engine
from hydra_feeder.done import DoneFlusher
from hydra_feeder.ledger import Ledger, LedgerEntry
from hydra_feeder.metrics import FeederMetrics
from hydra_feeder.naming import make_parser, parse_hydra
from hydra_feeder.orders import PendingOrders, make_order
from hydra_feeder.scanner import FileStat
from hydra_feeder.sender import Sender
from hydra_feeder.settings import FeederSettings
from hydra_testsupport import eventually_async as eventually


class FlakyBalancer(balancer_pb2_grpc.BalancerServiceServicer):
    """Accepts the first stream's orders, then breaks it; reports later orders done."""

    def __init__(self) -> None:
        self.streams: list[list[InferenceOrder]] = []

    async def Submit(
        self,
        request_iterator: AsyncIterator[balancer_pb2.SubmitRequest],
        context: grpc.aio.ServicerContext[balancer_pb2.SubmitRequest, balancer_pb2.SubmitResponse],
    ) -> AsyncIterator[balancer_pb2.SubmitResponse]:
        received: list[InferenceOrder] = []
        self.streams.append(received)
        async for request in request_iterator:
            received.extend(request.orders)
            ids = [o.order_id for o in request.orders]
            if len(self.streams) == 1:
                yield balancer_pb2.SubmitResponse(accepted=ids)
                await context.abort(grpc.StatusCode.UNAVAILABLE, "balancer restarting")
            yield balancer_pb2.SubmitResponse(done=ids)


async def test_a_broken_stream_is_reopened_and_pending_orders_resent(
    tmp_path: Path, sqlite_url: str
) -> None:
    balancer = FlakyBalancer()
    server = grpc.aio.server()
    balancer_pb2_grpc.add_BalancerServiceServicer_to_server(balancer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    settings = FeederSettings(
        database_url=sqlite_url, data_dir=tmp_path, balancer_address=f"127.0.0.1:{port}"
    )
    root = settings.input_root
    (root / "Run1").mkdir(parents=True)
    (root / "Run1" / "P.png").write_bytes(b"on disk")
    (root / "Run1" / "Q.png").write_bytes(b"rewritten since it was fed")
    parsed = parse_hydra("Run1/P.png")
    assert parsed is not None
    stat = FileStat(len(b"on disk"), (root / "Run1" / "P.png").stat().st_mtime_ns)
    pending = PendingOrders(settings.feeder_window)
    pending.restore([LedgerEntry("Run1/Q.png", 1, 1, "changed")])
    entry = LedgerEntry("Run1/P.png", stat.size, stat.mtime_ns, "fed")
    pending.add([(entry, make_order("fed", "Run1/P.png", parsed, stat, b"held"))])
    metrics = FeederMetrics(CollectorRegistry())
    ledger = Ledger(make_engine(sqlite_url))
    done = DoneFlusher(ledger, pending, metrics.orders_done)
    forgotten: list[str] = []
    sender = Sender(
        settings,
        make_parser(),
        pending,
        done,
        forgotten.append,
        metrics.rejected.labels("vanished"),
    )
    task = asyncio.create_task(sender.run())
    try:
        await eventually(lambda: not pending.orders and sender.connections == 2)
        first, second = balancer.streams[:2]
        assert [o.image for o in first] == [b"held"]  # the bytes the intake read
        assert [o.image for o in second] == [b"on disk"]  # read again for the new stream
        assert {o.order_id for o in first + second} == {"fed"}
        assert forgotten == ["Run1/Q.png"]  # the scan feeds the new version
        assert done.unwritten == 2  # "changed" ended unsent, "fed" reported done
        assert metrics.orders_done._value.get() == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await server.stop(None)
        await ledger.engine.dispose()
