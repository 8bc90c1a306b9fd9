"""Run-page latency: keeper commit → the ``runtime`` event an SSE client of the API receives.

A real keeper (gRPC server) and the real API (its own entry point, uvicorn) run as local
processes (a ``LocalStack`` of just those two) on a fresh MariaDB database with 40 plot types,
each with a model and thresholds. One ``Record`` stream, as a predictor holds, sends reports
one at a time at a steady rate (30 per second by default), the plot types in a fixed shuffled
cycle so that each one gets a report every ~1.3 s, with a hall's mix of verdicts
(mostly confirmed Good, some unconfirmed, 20 % confirmed Bad). Meanwhile four SSE clients
(``httpx``; four Run pages open) read ``GET /api/events`` as the Run page does and note when
each order id arrives in a change event; every (client, report) pair is one sample.

*Commit time* is when the keeper's acknowledgement of the report reaches the sender: the
keeper acknowledges only after the transaction committed, so the ack time is later than
the commit by the loopback gRPC hop and the two processes' event-loop turns; latency measured
from it can understate the true figure by that much, never overstate it. That is usually a
millisecond or two, but on a busy machine an ack now and then lags by tens of milliseconds
(then ``runpage_min_s`` goes negative: the event came before the ack). The database holds
no commit timestamp: ``run_time.updated_at`` (which every event item carries as ``time``)
is taken when the keeper *starts* writing a batch, before its statements and the commit, so
latency from it overstates by the batch's write time; it is reported too, as an upper bound
(``runpage_from_write_p95_s``). Both clocks are this machine's wall clock, read in this one
process (ack and event) or in the keeper (``updated_at``).

How the API learns of commits: the keeper sends a notice on its ``WatchCommits`` stream
after each commit, to which the API subscribes (``HYDRA_KEEPER_ADDRESS``); the notice wakes
the API's one reader task, which reads the changed ``run_time`` rows with one query for all
clients (``hydra_api.events``). The latency is that gRPC hop, the query and the JSON; the
``HYDRA_SSE_POLL_SECONDS`` poll (5 s) is only the fallback for a missed notice. (Before the
push, the API polled every 0.25 s: p95 0.25-0.3 s.)

A report whose event never comes is counted in ``runpage_missed``: the Run page shows only
the latest verdict per plot type, so a report superseded by a newer one of its plot type
before the API looked is legitimately never sent; with this spacing there should be none.

Three rounds of 12 s on one stack; each figure is the median of the rounds, with its spread.

    python -m bench.runpage_bench [--seconds 12] [--repeats 3] [--rate 30] [--clients 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from hydra.v1 import keeper_pb2, keeper_pb2_grpc, order_pb2, report_pb2

from bench.results import median_spread, record
from hydra_common.db.engine import make_engine
from hydra_common.grpcserver import channel
from hydra_common.ids import uuid7
from hydra_common.launcher import LocalStack
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database
from hydra_testsupport.seeding import add_plot_type_with_model, stamped_at
from hydra_testsupport.stacks import Site, running_stack

PLOT_TYPES = 40
CLIENTS = 4  # Run pages open at once (browsers in the counting house)
LABELS = ["Good", "Bad", "NoData"]
DRAIN_SECONDS = 3.0  # after the last ack, how long events may still come
REPEATS = 3  # rounds; each figure is their median


async def seed(url: str, n: int) -> list[tuple[str, int]]:
    """``n`` plot types with a model and thresholds each; returns (name, model id)."""
    engine = make_engine(url)
    out = []
    try:
        async with engine.begin() as conn:
            for i in range(n):
                name = f"runpage_{i:03d}"
                _, mid = await add_plot_type_with_model(
                    conn,
                    name,
                    {"Good": 0.7, "Bad": 0.6, "NoData": 0.8},
                    labels=LABELS,
                    detector=("FTOF", "ECAL", "DC", "RF")[i % 4],
                )
                out.append((name, mid))
    finally:
        await engine.dispose()
    return out


def make_report(name: str, model_id: int, i: int, rng: random.Random) -> report_pb2.Report:
    """A metadata-only report (no image) as a predictor sends it, stamped now."""
    draw = rng.random()
    if draw < 0.70:
        weights = [0.95, 0.03, 0.02]  # confirmed Good
    elif draw < 0.80:
        weights = [0.55, 0.35, 0.10]  # unconfirmed Good
    else:
        weights = [0.05, 0.92, 0.03]  # confirmed Bad
    now = time.time_ns()
    order = order_pb2.InferenceOrder(
        order_id=uuid7(),
        plot_type=name,
        run_period="RunPeriod-2026-01",
        run_number=7000,
        chunk=i,
        source_path=f"RunPeriod-2026-01/Run7000/{name}_{i:06d}.png",
        stages=stamped_at(now),
    )
    return report_pb2.Report(
        order=order,
        status=report_pb2.REPORT_STATUS_OK,
        model_id=model_id,
        model_name=name,
        model_version=1,
        labels=LABELS,
        weights=weights,
        predictor_id="runpage-bench",
    )


class EventClient:
    """Reads the API's event stream; notes when each order id first arrives in a change."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.received: dict[str, float] = {}  # order id -> arrival (time.time())
        self.written: dict[str, float] = {}  # order id -> run_time.updated_at (epoch s)
        self.events = 0
        self.snapshot = asyncio.Event()

    async def run(self) -> None:
        """Read until cancelled."""
        async with (
            httpx.AsyncClient(base_url=self.base_url, timeout=None) as client,
            client.stream("GET", "/api/events") as resp,
        ):
            resp.raise_for_status()
            event = ""
            async for line in resp.aiter_lines():
                arrived = time.time()
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "runtime":
                    self._runtime(json.loads(line[5:]), arrived)

    def _runtime(self, data: dict[str, Any], arrived: float) -> None:
        if data["full"]:
            self.snapshot.set()
            return
        self.events += 1
        for item in data["items"]:
            oid = item["order_id"]
            if oid not in self.received:
                self.received[oid] = arrived
                self.written[oid] = datetime.fromisoformat(item["time"]).timestamp()


async def send(
    address: str, plot_types: list[tuple[str, int]], rate: float, seconds: float, seed: int
) -> dict[str, float]:
    """Send reports on one Record stream at ``rate``/s for ``seconds``; ack time per order id."""
    rng = random.Random(seed)
    acked: dict[str, float] = {}
    async with channel(address) as ch:
        call = keeper_pb2_grpc.KeeperServiceStub(ch).Record()

        async def read_acks() -> None:
            async for response in call:
                now = time.time()
                for oid in response.order_ids:
                    acked[oid] = now

        reader = asyncio.create_task(read_acks())
        order = list(plot_types)
        rng.shuffle(order)  # once: a fixed cycle keeps every plot type's reports evenly apart
        n = int(rate * seconds)
        start = time.monotonic()
        for i in range(n):
            name, mid = order[i % len(order)]
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await call.write(keeper_pb2.RecordRequest(reports=[make_report(name, mid, i, rng)]))
        await call.done_writing()
        await asyncio.wait_for(reader, 30)
    assert len(acked) == n, f"{len(acked)} of {n} reports acknowledged"
    return acked


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank, q in 0..100) of non-empty values."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


async def measure_stack(
    stack: LocalStack,
    plot_types: list[tuple[str, int]],
    rate: float,
    seconds: float,
    clients: int = 1,
) -> dict[str, float]:
    """Run the sender and ``clients`` SSE clients against a started stack; the figures."""
    readers = [EventClient(f"http://127.0.0.1:{stack.ports.api}") for _ in range(clients)]
    tasks = [asyncio.create_task(c.run()) for c in readers]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.snapshot.wait() for c in readers)), 30)
        acked = await send(f"127.0.0.1:{stack.ports.keeper}", plot_types, rate, seconds, 1)
        for _ in range(round(DRAIN_SECONDS / 0.1)):  # the last events, if still due
            if all(set(acked) <= set(c.received) for c in readers):
                break
            await asyncio.sleep(0.1)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latency: list[float] = []
    from_write: list[float] = []
    for c in readers:
        for oid, arrived in c.received.items():
            if oid in acked:
                latency.append(arrived - acked[oid])
                from_write.append(arrived - c.written[oid])
    if not latency:
        raise RuntimeError("no report reached an SSE client")
    return {
        "runpage_p95_s": round(percentile(latency, 95), 4),
        "runpage_p50_s": round(percentile(latency, 50), 4),
        "runpage_max_s": round(max(latency), 4),
        "runpage_min_s": round(min(latency), 4),
        "runpage_from_write_p95_s": round(percentile(from_write, 95), 4),
        "runpage_count": len(latency),
        "runpage_missed": len(acked) * clients - len(latency),
        "runpage_events": sum(c.events for c in readers),
        "runpage_reports_per_s": rate,
        "runpage_seconds": seconds,
        "runpage_plot_types": len(plot_types),
        "runpage_sse_clients": clients,
    }


def run(
    seconds: float,
    rate: float,
    plot_types: int = PLOT_TYPES,
    clients: int = CLIENTS,
    repeats: int = REPEATS,
) -> dict[str, Any]:
    """Fresh database, keeper + API processes, ``repeats`` rounds, clean-up; median figures."""
    url = create_mysql_database("hydra_runpage")
    try:
        types = asyncio.run(seed(url, plot_types))
        with (
            tempfile.TemporaryDirectory(prefix="hydra-runpage-") as tmp,
            running_stack(
                Site(url, Path(tmp)),
                ("keeper", "api"),
                60,
                HYDRA_PUBLIC_READ="true",  # the SSE client needs no login
                HYDRA_ADMIN_PASSWORD="runpage-bench-password",
                HYDRA_LOG_LEVEL="WARNING",
            ) as stack,
        ):
            rounds = [
                asyncio.run(measure_stack(stack, types, rate, seconds, clients))
                for _ in range(repeats)
            ]
    finally:
        drop_mysql_database(url)
    figures: dict[str, Any] = {}
    for key in ("runpage_p95_s", "runpage_p50_s", "runpage_max_s", "runpage_from_write_p95_s"):
        figures.update(median_spread(key, [r[key] for r in rounds], 4))
    figures.update({k: v for k, v in rounds[0].items() if k not in figures})
    figures["runpage_min_s"] = min(r["runpage_min_s"] for r in rounds)
    figures["runpage_count"] = sum(r["runpage_count"] for r in rounds)
    figures["runpage_missed"] = sum(r["runpage_missed"] for r in rounds)
    figures["runpage_events"] = sum(r["runpage_events"] for r in rounds)
    figures["runpage_repeats"] = repeats
    return figures


def measure(quick: bool = False) -> dict[str, Any]:
    """The Run page's figures for ``make bench``: 3 rounds of 12 s (quick: 1 of 6 s)."""
    return run(6.0, 30.0, repeats=1) if quick else run(12.0, 30.0)


def main() -> None:
    """Parse arguments, run, print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="of each round")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--rate", type=float, default=30.0, help="reports per second")
    parser.add_argument("--plot-types", type=int, default=PLOT_TYPES)
    parser.add_argument("--clients", type=int, default=CLIENTS, help="SSE clients")
    args = parser.parse_args()
    figures = run(args.seconds, args.rate, args.plot_types, args.clients, args.repeats)
    for key, value in figures.items():
        print(f"{key:28} {value}")
    print(f"written to {record('runpage', figures)}")


if __name__ == "__main__":
    main()
