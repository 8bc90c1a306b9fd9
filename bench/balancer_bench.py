"""Balancer cost per order in production shape, against the legacy design and bare gRPC.

Every order carries a real PNG, as the feeder sends it: simulated ePIC plots (``hydra
simulate``'s renderer) chosen so that their mean size is ePIC's mean, 4 KiB; a variant with
64 KiB PNGs (random pixels, which PNG cannot shrink). The fake feeder sends 64 orders per
``SubmitRequest`` (the feeder's ``HYDRA_FEEDER_BATCH``) and two fake predictors grant 64
credits each (the predictor's ``HYDRA_CREDITS``) and report every order done as soon as it
arrives, so what is measured is the balancer's own CPU: queueing, dispatching by credits and
routing done notices back. The balancer runs with its defaults.

In the same run, on the same orders:

- **legacy**: the original Hydra's design, a ZeroMQ + JSON round-robin balancer, one order
  a message (``PUSH``/``PULL``; the order as JSON with the image in base64, decoded and
  re-encoded by the balancer to stamp it, done notices routed back the same way);
- **gRPC floor**: a bare grpcio aio server echoing every ``SubmitRequest`` it receives, as
  bytes, back on the same stream: what any Python gRPC process pays to take the orders in
  and send them out once, with no balancer logic (the balancer also sends done ids back).
  Measured at both sizes: ``grpc_floor_us_per_order`` (4 KiB, with its ratio
  ``balancer_vs_grpc_floor``) says how much of ``balancer_us_per_order`` any Python gRPC
  process would pay.

Each variant runs ``REPEATS`` times, alternating, and each figure is the median with its
spread (max/min); a ratio is taken inside one round (ours and the other measured one after
the other), then its median over the rounds.

    python -m bench.balancer_bench [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import multiprocessing as mp
import os
import queue
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np
import psutil

from bench.results import median_spread, record
from hydra_common.grpcserver import CHANNEL_OPTIONS, SERVER_OPTIONS
from hydra_common.ids import uuid7
from hydra_common.launcher import free_port, free_ports

SUBMIT = "/hydra.v1.BalancerService/Submit"
FEEDER_BATCH = 64  # the feeder's HYDRA_FEEDER_BATCH default
CREDITS = 64  # the predictor's HYDRA_CREDITS default
PREDICTORS = 2
MEAN_4K = 4096  # ePIC's mean PNG size
SIZE_64K = 64 * 1024
REPEATS = 3


# --- the images -------------------------------------------------------------------------


def epic_pngs(mean: int = MEAN_4K) -> list[bytes]:
    """Simulated ePIC plots as PNGs, the smallest first until their mean is about ``mean``."""
    from hydra_trainer.catalog import hall_catalog
    from hydra_trainer.plots import make_plot

    rng = np.random.default_rng(0)
    pngs = []
    for spec in hall_catalog("epic")[:200]:
        image, _truth = make_plot(spec, "Good", rng)
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        pngs.append(buf.getvalue())
    pngs.sort(key=len)
    # Drop the biggest until the mean comes down to the target (the renderer's is ~5 KiB).
    while len(pngs) > 20 and sum(map(len, pngs)) / len(pngs) > mean:
        pngs.pop()
    return pngs


def noise_pngs(size: int = SIZE_64K, count: int = 8) -> list[bytes]:
    """PNGs of random pixels (incompressible) of about ``size`` bytes each."""
    from PIL import Image

    rng = np.random.default_rng(1)
    side = int((size / 3) ** 0.5)
    out = []
    for _ in range(count):
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _order_fields(i: int, image: bytes, now: int) -> dict[str, Any]:
    return {
        "order_id": uuid7(),
        "plot_type": f"epic_plot_{i % 568:03d}",
        "run_period": "RunPeriod-2026-02",
        "run_number": 80464,
        "chunk": i // 568,
        "source_path": f"RunPeriod-2026-02/Run80464/epic_plot_{i % 568:03d}_{i // 568:04d}.png",
        "image": image,
        "file_size": len(image),
        "file_ns": now,
        "fed_ns": now,
    }


def grpc_payloads(n: int, images: Sequence[bytes]) -> list[bytes]:
    """``n`` orders as encoded SubmitRequests of ``FEEDER_BATCH`` orders each."""
    from hydra.v1 import balancer_pb2, order_pb2

    now = time.time_ns()
    out = []
    for start in range(0, n, FEEDER_BATCH):
        req = balancer_pb2.SubmitRequest(feeder_id="bench")
        for i in range(start, min(n, start + FEEDER_BATCH)):
            f = _order_fields(i, images[i % len(images)], now)
            stages = order_pb2.StageTimestamps(file_ns=f.pop("file_ns"), fed_ns=f.pop("fed_ns"))
            req.orders.append(order_pb2.InferenceOrder(**f, stages=stages))
        out.append(req.SerializeToString())
    return out


def json_payloads(n: int, images: Sequence[bytes]) -> list[bytes]:
    """``n`` orders as the legacy design's JSON messages, one order each (base64 image)."""
    now = time.time_ns()
    encoded = [base64.b64encode(im).decode() for im in images]
    out = []
    for i in range(n):
        f = _order_fields(i, b"", now)
        f["image"] = encoded[i % len(images)]
        f["file_size"] = len(images[i % len(images)])
        f["stages"] = {"file_ns": f.pop("file_ns"), "fed_ns": f.pop("fed_ns")}
        out.append(json.dumps(f).encode())
    return out


# --- gRPC: the balancer and the floor ---------------------------------------------------


def _grpc_feeder(
    target: str, payloads: list[bytes], n: int, echo: bool, ready: Any, go: Any, result: Any
) -> None:
    """Send every SubmitRequest on one stream; report the time until all n are done."""
    from hydra.v1 import balancer_pb2

    channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    submit = channel.stream_stream(
        SUBMIT,
        request_serializer=lambda b: b,
        response_deserializer=(lambda b: b) if echo else balancer_pb2.SubmitResponse.FromString,
    )
    ready.set()
    go.wait()
    t0 = time.perf_counter()
    done = 0
    for resp in submit(iter(payloads)):
        # The echo server answers each message whole; the balancer with done ids.
        done = done + FEEDER_BATCH if echo else done + len(resp.done)
        if done >= n:
            break
    result.put(time.perf_counter() - t0)
    channel.close()


def _grpc_predictor(target: str, ready: Any) -> None:
    """Grant the predictor's credits; report each order done at once, granting as many."""
    from hydra.v1 import balancer_pb2, balancer_pb2_grpc

    channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    stub = balancer_pb2_grpc.BalancerServiceStub(channel)
    requests: queue.Queue[balancer_pb2.WorkRequest | None] = queue.Queue()
    requests.put(balancer_pb2.WorkRequest(credits=CREDITS, predictor_id=f"bench-{os.getpid()}"))

    def gen() -> Any:
        while (item := requests.get()) is not None:
            yield item

    ready.set()
    try:
        for resp in stub.Work(gen()):
            ids = [o.order_id for o in resp.orders]
            requests.put(balancer_pb2.WorkRequest(credits=len(ids), done=ids))
    except grpc.RpcError:
        pass


def _echo_server(port: int, ready: Any) -> None:
    """The floor: a bare grpcio aio server echoing each Submit message back, as bytes."""

    async def echo(requests: Any, context: Any) -> Any:
        async for message in requests:
            yield message

    async def serve() -> None:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        handler = grpc.stream_stream_rpc_method_handler(echo)  # bytes in, bytes out
        service, method = SUBMIT.rsplit("/", 1)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service.strip("/"), {method: handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    asyncio.run(serve())


def run_grpc(payloads: list[bytes], n: int, echo: bool = False) -> dict[str, float]:
    """The balancer (or, with ``echo``, the floor's echo server) with fake clients."""
    port = free_port()
    target = f"127.0.0.1:{port}"
    ctx = mp.get_context("spawn")
    server: Any
    started = ctx.Event()  # held here: the child unpickles it after start() returns
    if echo:
        server = ctx.Process(target=_echo_server, args=(port, started), daemon=True)
        server.start()
    else:
        env = dict(
            os.environ,
            HYDRA_BALANCER_HOST="127.0.0.1",
            HYDRA_BALANCER_PORT=str(port),
            HYDRA_METRICS_PORT="0",
            HYDRA_LOG_LEVEL="WARNING",
        )
        server = subprocess.Popen([sys.executable, "-m", "hydra_balancer"], env=env)
    procs: list[Any] = []
    try:
        with grpc.insecure_channel(target) as probe:
            grpc.channel_ready_future(probe).result(timeout=60)
        go, result = ctx.Event(), ctx.Queue()
        predictors = 0 if echo else PREDICTORS
        readies = [ctx.Event() for _ in range(predictors + 1)]
        procs = [
            ctx.Process(target=_grpc_predictor, args=(target, readies[i]), daemon=True)
            for i in range(predictors)
        ]
        procs.append(
            ctx.Process(
                target=_grpc_feeder,
                args=(target, payloads, n, echo, readies[-1], go, result),
                daemon=True,
            )
        )
        return _measure(server.pid, procs, readies, go, result, n)
    finally:
        for p in procs:
            p.kill()
        if echo:
            server.kill()
            server.join(15)
        else:
            server.terminate()
            server.wait(15)


def _measure(
    pid: int, procs: list[Any], readies: list[Any], go: Any, result: Any, n: int
) -> dict[str, float]:
    """Start the clients, then the server's CPU while n orders go through."""
    for p in procs:
        p.start()
    for r in readies:
        if not r.wait(300):
            raise TimeoutError("a fake client did not start")
    time.sleep(1.0)  # let the predictors' streams open
    server = psutil.Process(pid)
    c0 = server.cpu_times()
    go.set()
    wall = result.get(timeout=600)
    c1 = server.cpu_times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    return {"us_per_order": cpu / n * 1e6, "orders_per_s": n / wall}


# --- the legacy design: ZeroMQ + JSON, round robin, one order a message -------------------


def _zmq_balancer(ports: list[int], ready: Any) -> None:
    """The original Hydra's balancer: orders in from feeders, round robin to predictors.

    Each order is one JSON message; the balancer decodes it, stamps its queued and
    dispatched times, and encodes it again for the predictor (the legacy code did this to
    route and time orders). Done notices from predictors are decoded and routed back to
    the feeder the same way.
    """
    import zmq

    ctx = zmq.Context()
    orders_in = ctx.socket(zmq.PULL)
    orders_in.bind(f"tcp://127.0.0.1:{ports[0]}")
    orders_out = ctx.socket(zmq.PUSH)  # PUSH deals round robin over the connected predictors
    orders_out.bind(f"tcp://127.0.0.1:{ports[1]}")
    done_in = ctx.socket(zmq.PULL)
    done_in.bind(f"tcp://127.0.0.1:{ports[2]}")
    done_out = ctx.socket(zmq.PUSH)
    done_out.bind(f"tcp://127.0.0.1:{ports[3]}")
    poller = zmq.Poller()
    poller.register(orders_in, zmq.POLLIN)
    poller.register(done_in, zmq.POLLIN)
    ready.set()
    while True:
        for sock, _ in poller.poll():
            if sock is orders_in:
                order = json.loads(orders_in.recv())
                now = time.time_ns()
                order["stages"]["queued_ns"] = now
                order["stages"]["dispatched_ns"] = now
                orders_out.send(json.dumps(order).encode())
            else:
                done = json.loads(done_in.recv())
                done_out.send(json.dumps({"done": done["order_id"]}).encode())


def _zmq_feeder(ports: list[int], payloads: list[bytes], ready: Any, go: Any, result: Any) -> None:
    import threading

    import zmq

    ctx = zmq.Context()
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{ports[0]}")
    pull = ctx.socket(zmq.PULL)
    pull.connect(f"tcp://127.0.0.1:{ports[3]}")
    ready.set()
    go.wait()
    t0 = time.perf_counter()

    def send() -> None:
        for p in payloads:
            push.send(p)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    for _ in payloads:
        pull.recv()
    result.put(time.perf_counter() - t0)
    sender.join()


def _zmq_predictor(ports: list[int], ready: Any) -> None:
    import zmq

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(f"tcp://127.0.0.1:{ports[1]}")
    push = ctx.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.1:{ports[2]}")
    ready.set()
    while True:
        order = json.loads(pull.recv())
        push.send(json.dumps({"order_id": order["order_id"]}).encode())


def run_zmq(payloads: list[bytes]) -> dict[str, float]:
    """The legacy balancer with the same fake feeder and predictors (in their own processes)."""
    ports = free_ports(4)
    ctx = mp.get_context("spawn")
    server_ready = ctx.Event()
    server = ctx.Process(target=_zmq_balancer, args=(ports, server_ready), daemon=True)
    server.start()
    procs: list[Any] = []
    try:
        if not server_ready.wait(60):
            raise TimeoutError("the legacy balancer did not start")
        go, result = ctx.Event(), ctx.Queue()
        readies = [ctx.Event() for _ in range(PREDICTORS + 1)]
        procs = [
            ctx.Process(target=_zmq_predictor, args=(ports, readies[i]), daemon=True)
            for i in range(PREDICTORS)
        ]
        procs.append(
            ctx.Process(
                target=_zmq_feeder, args=(ports, payloads, readies[-1], go, result), daemon=True
            )
        )
        assert server.pid is not None
        return _measure(server.pid, procs, readies, go, result, len(payloads))
    finally:
        for p in procs:
            p.kill()
        server.kill()
        server.join(15)


# --- the figures --------------------------------------------------------------------------


def measure(quick: bool = False, repeats: int = REPEATS) -> dict[str, Any]:
    """Every variant ``repeats`` times, alternating; medians, spreads and in-round ratios."""
    n4, n64 = (12_800, 3_200) if quick else (51_200, 12_800)
    small, big = epic_pngs(), noise_pngs()
    grpc_4k = grpc_payloads(n4, small)
    grpc_64k = grpc_payloads(n64, big)
    legacy = json_payloads(n4, small)
    rounds: dict[str, list[float]] = {}

    def note(key: str, value: float) -> None:
        rounds.setdefault(key, []).append(value)

    for _ in range(repeats):
        ours = run_grpc(grpc_4k, n4)
        zmq_ = run_zmq(legacy)
        floor4 = run_grpc(grpc_4k, n4, echo=True)
        ours64 = run_grpc(grpc_64k, n64)
        floor64 = run_grpc(grpc_64k, n64, echo=True)
        note("balancer_us_per_order", ours["us_per_order"])
        note("balancer_orders_per_s", ours["orders_per_s"])
        note("zmq_us_per_order", zmq_["us_per_order"])
        note("zmq_orders_per_s", zmq_["orders_per_s"])
        note("balancer_vs_zmq", zmq_["us_per_order"] / ours["us_per_order"])
        note("grpc_floor_us_per_order", floor4["us_per_order"])
        note("balancer_vs_grpc_floor", ours["us_per_order"] / floor4["us_per_order"])
        note("balancer_us_per_order_64k", ours64["us_per_order"])
        note("balancer_orders_per_s_64k", ours64["orders_per_s"])
        note("grpc_floor_us_per_order_64k", floor64["us_per_order"])
        note("balancer_64k_vs_grpc_floor", ours64["us_per_order"] / floor64["us_per_order"])
    figures: dict[str, Any] = {}
    for key, samples in rounds.items():
        figures.update(median_spread(key, samples, 0 if "per_s" in key else 3))
    figures.update(
        balancer_bench_orders=n4,
        balancer_bench_orders_64k=n64,
        balancer_bench_batch=FEEDER_BATCH,
        balancer_bench_credits=CREDITS,
        balancer_bench_predictors=PREDICTORS,
        balancer_bench_image_mean_bytes=round(statistics.mean(map(len, small))),
        balancer_bench_image_64k_mean_bytes=round(statistics.mean(map(len, big))),
        balancer_bench_repeats=repeats,
    )
    return figures


def main() -> dict[str, Any]:
    """Measure every variant, print and record them."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs")
    ap.add_argument("--repeats", type=int, default=REPEATS)
    args = ap.parse_args()
    figures = measure(args.quick, args.repeats)
    for k, v in figures.items():
        print(f"{k:40s} {v}")
    record("balancer", figures)
    return figures


if __name__ == "__main__":
    main()
