"""What the feeder alone costs per image: CPU and SQL statements, at a trickle and in a burst.

    python -m bench.feeder_cost                  # MariaDB ledger (as make bench), both modes
    python -m bench.feeder_cost --sqlite         # the SQLite ledger of the embedded default
    python -m bench.feeder_cost --profile trickle --repeats 1   # the event loop's profile
    python -m bench.feeder_cost --existing 8000 --set rescan_seconds=60   # other shapes
    python -m bench.feeder_cost --before HEAD~3   # that commit's feeder first, then this one's
    python -m bench.feeder_cost --existing 8000 --repeats 1 --prefix tree8000 --merge

A real ``FeederService`` runs at its default settings in a process of its own against a fake
balancer on loopback (this process) that answers every message as the real one does: the
ids accepted, then done. The hall's plot types (the 568 ePIC ones) are in the database and
``--existing`` plots from earlier runs are in the input tree (fed and done before the
measurement starts, as in a hall's input folder, which every rescan walks).

``quiet``
    ``--seconds`` with no new file: the feeder's CPU and statements per second, the floor
    under the trickle's figures.
``trickle``
    One image a second for ``--seconds`` (renamed into a run directory with a fresh mtime,
    as ``pipeline_bench`` lands them): the feeder's CPU (``time.process_time`` in its own
    process, every thread) and SQL statements from the first landing to the last order done
    in the ledger, per image. This is the idle cost the pipeline bench's
    ``idle_cpu_ms_per_image_feeder`` measures with every other service beside it.
``burst``
    ``--burst`` images renamed in at once: the same figures per image at throughput.

Every mode runs ``--repeats`` rounds (3): each figure is the median, with its spread.
Statements are counted with a ``before_cursor_execute`` listener on the feeder's engine
(an ``executemany`` is one), transactions with a ``commit`` listener. ``loop_cpu_ms`` is the
event loop's thread alone; the rest is worker threads (the rescans' walks, file reads,
inotify).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import sqlalchemy as sa
from hydra.v1 import balancer_pb2, balancer_pb2_grpc
from PIL import Image
from prometheus_client import CollectorRegistry
from pyinstrument import Profiler

from bench.results import median_spread
from hydra_common.db.engine import make_engine
from hydra_common.db.migrate import upgrade
from hydra_common.db.schema import PlotType

RUN_PERIOD = "RunPeriod-2026-11"
EXISTING = 600  # plots from earlier runs in the input tree
SECONDS = 30  # the trickle: one image a second
BURST = 2_000
REPEATS = 3  # rounds of every mode; each figure is their median, with its spread


# --- the fake balancer (this process) -------------------------------------------------------


class FakeBalancer(balancer_pb2_grpc.BalancerServiceServicer):
    """Answers each message with its ids accepted, then done (the keeper has the reports)."""

    def __init__(self) -> None:
        self.done = 0
        self.changed = asyncio.Event()

    async def Submit(
        self,
        request_iterator: AsyncIterator[balancer_pb2.SubmitRequest],
        context: grpc.aio.ServicerContext[balancer_pb2.SubmitRequest, balancer_pb2.SubmitResponse],
    ) -> AsyncIterator[balancer_pb2.SubmitResponse]:
        async for request in request_iterator:
            ids = [o.order_id for o in request.orders]
            yield balancer_pb2.SubmitResponse(accepted=ids)
            yield balancer_pb2.SubmitResponse(done=ids)
            self.done += len(ids)
            self.changed.set()

    async def wait_done(self, count: int, within: float) -> None:
        """Wait until ``count`` orders were reported done in all."""
        deadline = time.monotonic() + within
        while self.done < count:
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.done} of {count} orders done after {within:.0f}s")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                continue


# --- the feeder (a child process) -----------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """The feeder process at one moment."""

    cpu_s: float  # process CPU, every thread
    loop_cpu_s: float  # the event loop's thread
    statements: int
    commits: int
    pending: int
    unwritten: int
    threads: dict[str, float]  # CPU by thread name (the kernel's, so grpc's own are apart)


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads by name, from /proc (Linux; else empty).

    A Python thread is named as Python names it, with its number left out (``asyncio_3``
    counts as ``asyncio``); the others (grpc's, watchfiles' inotify) by the kernel's name."""
    python_names = {
        t.native_id: t.name.rstrip("0123456789").rstrip("_- ") for t in threading.enumerate()
    }
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # the thread ended
        name = (
            python_names.get(int(stat.parent.name)) or text[text.index("(") + 1 : text.rindex(")")]
        )
        fields = text[text.rindex(")") + 2 :].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return out


def _feeder_process(values: dict[str, Any], log_path: str, conn: Connection, src: str) -> None:
    """The child: run a FeederService and answer the parent's requests until ``stop``.

    It logs at INFO into ``log_path`` as under ``hydra up`` (a log line costs CPU too).
    ``src``: another feeder's source folder (``--before``), imported ahead of this one's."""
    from hydra_common.logs import setup_logging

    if src:
        sys.path.insert(0, src)
    with open(log_path, "ab") as log_file:
        os.dup2(log_file.fileno(), 2)
    setup_logging("feeder", "INFO")
    asyncio.run(_serve_feeder(values, conn))


class LoopProfile:
    """A profile of the event loop's thread (the worker threads are not in it).

    ``pyinstrument`` samples wall time: leaving out the waits in epoll, that is the loop's
    CPU, give or take the machine's other load. ``cprofile`` times every call in the
    thread's own CPU time (``time.thread_time``): exact counts, some overhead per call.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        if kind == "cprofile":
            self._cprofile = cProfile.Profile(time.thread_time)
            self._cprofile.enable()
        else:
            self._pyinstrument = Profiler(interval=0.0005, async_mode="disabled")
            self._pyinstrument.start()

    def stop(self) -> str:
        """Stop and return the report: the parts over 0.1 % of the window, the top lines."""
        if self.kind == "cprofile":
            self._cprofile.disable()
            out = io.StringIO()
            stats = pstats.Stats(self._cprofile, stream=out).sort_stats("cumulative")
            stats.print_stats(45)
            stats.sort_stats("tottime").print_stats(25)
            return out.getvalue()
        self._pyinstrument.stop()
        options = {"filter_threshold": 0.001}
        tree = self._pyinstrument.output_text(unicode=True, processor_options=options)
        flat = self._pyinstrument.output_text(flat=True, processor_options=options)
        return tree + "\n" + "\n".join(flat.splitlines()[:40])


async def _serve_feeder(values: dict[str, Any], conn: Connection) -> None:
    from hydra_feeder import service
    from hydra_feeder.service import FeederService
    from hydra_feeder.settings import FeederSettings

    feeder = FeederService(FeederSettings(**values), CollectorRegistry())
    print("feeder from", service.__file__, file=sys.stderr, flush=True)
    counts = {"statements": 0, "commits": 0}

    def statement(*_args: Any) -> None:
        counts["statements"] += 1

    def commit(*_args: Any) -> None:
        counts["commits"] += 1

    sync_engine = feeder.ledger.engine.sync_engine
    sa.event.listen(sync_engine, "before_cursor_execute", statement)
    sa.event.listen(sync_engine, "commit", commit)
    await feeder.start()
    # As the feeder's main() does once started (a feeder older than c085b0f has none: the
    # bench measures any commit, PYTHONPATH=<its services/feeder/src>).
    settle = getattr(service, "settle_collector", None)
    if settle is not None:
        settle()
    loop = asyncio.get_running_loop()
    # A thread of its own blocks on the pipe (no CPU while it waits; the default executor
    # stays the feeder's).
    requests: asyncio.Queue[str] = asyncio.Queue()

    def read_pipe() -> None:
        while True:
            request: str = conn.recv()
            loop.call_soon_threadsafe(requests.put_nowait, request)
            if request == "stop":
                return

    threading.Thread(target=read_pipe, daemon=True).start()
    profiler: LoopProfile | None = None
    while True:
        command = await requests.get()
        if command == "sample":
            conn.send(
                Sample(
                    time.process_time(),
                    time.thread_time(),
                    counts["statements"],
                    counts["commits"],
                    len(feeder.orders),
                    feeder.done.unwritten,
                    thread_cpu(),
                )
            )
        elif command.startswith("profile:"):
            profiler = LoopProfile(command.partition(":")[2])
            conn.send(None)
        elif command == "profile_stop" and profiler is not None:
            conn.send(profiler.stop())
            profiler = None
        elif command == "stop":
            break
    await feeder.stop()
    conn.send(None)


class Feeder:
    """The parent's handle on the feeder process."""

    def __init__(self, values: dict[str, Any], log_path: Path, src: str = "") -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=_feeder_process, args=(values, str(log_path), child, src), daemon=True
        )
        self.process.start()

    async def ask(self, command: str) -> Any:
        """Send a request and wait for the answer (in a worker thread: the loop keeps going)."""
        self._conn.send(command)
        return await asyncio.to_thread(self._conn.recv)

    async def sample(self) -> Sample:
        """The feeder's counters now."""
        sample: Sample = await self.ask("sample")
        return sample

    async def settled(self, within: float = 60.0) -> Sample:
        """Wait until no order is pending and every done notice is in the ledger."""
        deadline = time.monotonic() + within
        while True:
            sample = await self.sample()
            if sample.pending == 0 and sample.unwritten == 0:
                return sample
            if time.monotonic() > deadline:
                raise TimeoutError(f"feeder not settled: {sample}")
            await asyncio.sleep(0.2)

    async def stop(self) -> None:
        """Stop the feeder and wait for its process."""
        await self.ask("stop")
        await asyncio.to_thread(self.process.join, 30)


# --- the hall ------------------------------------------------------------------------------


def png(rng: np.random.Generator) -> bytes:
    """A small plot-like PNG (about 4 KiB, as the simulator's)."""
    pixels = np.full((120, 160, 3), 255, dtype=np.uint8)
    pixels[40:80, :, :] = rng.integers(0, 255, (40, 160, 3), dtype=np.uint8) // 64 * 64
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def plot_type_names() -> list[str]:
    """The ePIC hall's plot types."""
    from hydra_trainer.catalog import hall_catalog

    return [spec.name for spec in hall_catalog("epic")]


async def seed_plot_types(url: str, names: list[str]) -> None:
    """Make every plot type known to the feeder."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(PlotType.__table__),
                [{"name": n, "file_type": "png", "ignored": False} for n in names],
            )
    finally:
        await engine.dispose()


@dataclass
class Stage:
    """Files written outside the input dir, to be renamed into one run directory."""

    run_dir: Path
    files: list[tuple[Path, Path]]  # (staged, target)

    def clear(self, away: Path) -> None:
        """Move the landed run out of the input dir, so every round sees the same tree."""
        away.mkdir(exist_ok=True)
        os.rename(self.run_dir, away / self.run_dir.name)


def stage(work: Path, input_dir: Path, run: int, names: list[str], count: int) -> Stage:
    """``count`` plots of run ``run``, cycling over the plot types (chunk = round)."""
    rng = np.random.default_rng(run)
    staging = work / "staging" / str(run)
    staging.mkdir(parents=True)
    run_dir = input_dir / RUN_PERIOD / f"Run{run}"
    run_dir.mkdir(parents=True)  # before the files come, as a hall's run directory
    files = []
    for i in range(count):
        staged = staging / f"{names[i % len(names)]}_{i // len(names):04d}.png"
        staged.write_bytes(png(rng))
        files.append((staged, run_dir / staged.name))
    return Stage(run_dir, files)


def write_existing(input_dir: Path, names: list[str], count: int) -> None:
    """Earlier runs' plots, a few hundred a run, written a minute ago."""
    rng = np.random.default_rng(0)
    past = time.time() - 60
    per_run = len(names)
    for i in range(count):
        run_dir = input_dir / RUN_PERIOD / f"Run{1000 + i // per_run}"
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / f"{names[i % per_run]}.png"
        path.write_bytes(png(rng))
        os.utime(path, (past, past))


@contextmanager
def database(sqlite: bool, work: Path) -> Iterator[str]:
    """A fresh, migrated ledger database: MariaDB (as make bench) or SQLite (hydra up)."""
    if sqlite:
        url = f"sqlite+aiosqlite:///{work / 'hydra.db'}"
        upgrade(url)
        yield url
        return
    from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database

    url = create_mysql_database("hydra_feedercost")
    try:
        yield url
    finally:
        drop_mysql_database(url)


# --- one measurement -----------------------------------------------------------------------


def per_image(before: Sample, after: Sample, images: int) -> dict[str, float]:
    """CPU ms, loop CPU ms, statements and commits per image between two samples."""
    return {
        "cpu_ms": round(1000 * (after.cpu_s - before.cpu_s) / images, 3),
        "loop_cpu_ms": round(1000 * (after.loop_cpu_s - before.loop_cpu_s) / images, 3),
        "statements": round((after.statements - before.statements) / images, 3),
        "commits": round((after.commits - before.commits) / images, 3),
    }


async def measure(
    feeder: Feeder, balancer: FakeBalancer, batch: Stage, pause: float, profile: str
) -> dict[str, float]:
    """Land a batch (``pause`` s between files, 0: at once) and what the feeder spent on it."""
    expected = balancer.done + len(batch.files)
    if profile:
        await feeder.ask(f"profile:{profile}")
    before = await feeder.sample()
    started = time.monotonic()
    for i, (staged, target) in enumerate(batch.files):
        if pause:
            await asyncio.sleep(max(0.0, started + i * pause - time.monotonic()))
        os.utime(staged)
        os.rename(staged, target)
    await balancer.wait_done(expected, within=120 + len(batch.files) * pause)
    after = await feeder.settled()
    wall = time.monotonic() - started
    if profile:
        print(await feeder.ask("profile_stop"))
    threads = {
        name: round(1000 * (cpu - before.threads.get(name, 0.0)) / len(batch.files), 3)
        for name, cpu in after.threads.items()
    }
    print("CPU ms per image by thread name:", threads)
    return {**per_image(before, after, len(batch.files)), "wall_s": round(wall, 2)}


async def quiet(feeder: Feeder, seconds: float) -> dict[str, float]:
    """The feeder's cost per second while no file arrives (the floor of the trickle's)."""
    before = await feeder.sample()
    await asyncio.sleep(seconds)
    after = await feeder.sample()
    threads = {
        name: round(1000 * (cpu - before.threads.get(name, 0.0)) / seconds, 3)
        for name, cpu in after.threads.items()
    }
    print("CPU ms per second by thread name:", threads)
    spent = per_image(before, after, 1)
    return {f"quiet_{k}_per_s": round(v / seconds, 3) for k, v in spent.items()}


async def run(args: argparse.Namespace, work: Path, url: str, src: str = "") -> dict[str, Any]:
    """Start the balancer and the feeder (from ``src`` when given), settle the existing
    plots, measure each mode."""
    names = plot_type_names()
    await seed_plot_types(url, names)
    input_dir = work / "input"
    write_existing(input_dir, names, args.existing)
    rounds = [
        (
            stage(work, input_dir, 5000 + i, names, args.seconds),
            stage(work, input_dir, 6000 + i, names, args.burst),
        )
        for i in range(args.repeats)
    ]
    balancer = FakeBalancer()
    server = grpc.aio.server()
    balancer_pb2_grpc.add_BalancerServiceServicer_to_server(balancer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    feeder = Feeder(
        {
            "database_url": url,
            "data_dir": str(work),
            "input_dir": str(input_dir),
            "balancer_address": f"127.0.0.1:{port}",
            "feeder_id": "feeder-cost",
            **dict(item.split("=", 1) for item in args.set),
        },
        args.log or work / "feeder.log",
        src,
    )
    samples: dict[str, list[float]] = {}
    try:
        await balancer.wait_done(args.existing, within=300)
        await feeder.settled()
        for trickle, burst in rounds:
            spent: dict[str, float] = {}
            if "quiet" in args.modes:
                spent.update(await quiet(feeder, args.seconds))
            for mode, batch, pause in (("trickle", trickle, 1.0), ("burst", burst, 0.0)):
                if mode in args.modes:
                    profile = args.profiler if args.profile == mode else ""
                    mode_spent = await measure(feeder, balancer, batch, pause, profile)
                    batch.clear(work / "landed")
                    spent[f"{mode}_wall_s"] = mode_spent.pop("wall_s")
                    spent.update({f"{mode}_{k}_per_image": v for k, v in mode_spent.items()})
            for key, value in spent.items():
                samples.setdefault(key, []).append(value)
    finally:
        await feeder.stop()
        await server.stop(1)
    figures: dict[str, Any] = {}
    for key, values in samples.items():
        figures.update(median_spread(key, values))
    return figures


def main() -> None:
    """Measure, print the figures and write bench/results/feeder_cost.json."""
    from bench.results import record

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", action="store_true", help="an SQLite ledger (hydra up)")
    parser.add_argument("--existing", type=int, default=EXISTING, help="plots already there")
    parser.add_argument("--seconds", type=int, default=SECONDS, help="trickle length (1/s)")
    parser.add_argument("--repeats", type=int, default=REPEATS, help="rounds (the median)")
    parser.add_argument("--burst", type=int, default=BURST, help="images landed at once")
    parser.add_argument(
        "--modes", default="quiet,trickle,burst", type=lambda s: s.split(","), help="which to run"
    )
    parser.add_argument("--profile", choices=("trickle", "burst"), help="profile one mode")
    parser.add_argument("--profiler", choices=("pyinstrument", "cprofile"), default="pyinstrument")
    parser.add_argument(
        "--set", action="append", default=[], help="a feeder setting, e.g. rescan_seconds=60"
    )
    parser.add_argument("--log", type=Path, help="keep the feeder's log here")
    parser.add_argument(
        "--before",
        metavar="REV",
        help="measure that git revision's feeder first (figures named before_...), then this one",
    )
    parser.add_argument("--prefix", default="", help="put this before every figure's name")
    parser.add_argument(
        "--merge", action="store_true", help="keep the recorded figures this run does not make"
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    prefix = f"{args.prefix}_" if args.prefix else ""
    builds = [("", "")]
    if args.before:
        builds.insert(0, ("before_", args.before))
    for label, rev in builds:
        work = Path(tempfile.mkdtemp(prefix="hydra-feedercost-"))
        try:
            src = export_feeder(rev, work) if rev else ""
            with database(args.sqlite, work) as url:
                measured = asyncio.run(run(args, work, url, src))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        figures.update({f"{label}{prefix}{key}": value for key, value in measured.items()})
    figures.update(
        {
            f"feeder_cost_{prefix}ledger": "sqlite" if args.sqlite else "mariadb",
            f"feeder_cost_{prefix}existing_files": args.existing,
            f"feeder_cost_{prefix}trickle_images": args.seconds,
            f"feeder_cost_{prefix}burst_images": args.burst,
            f"feeder_cost_{prefix}repeats": args.repeats,
            f"feeder_cost_{prefix}after_commit": git_describe("HEAD"),
        }
    )
    if args.before:
        figures[f"feeder_cost_{prefix}before_commit"] = git_describe(args.before)
    for key, value in sorted(figures.items()):
        print(f"{key:40} {value}")
    if args.record and not args.profile:
        if args.merge:
            recorded = Path(__file__).parent / "results" / "feeder_cost.json"
            if recorded.exists():
                kept = json.loads(recorded.read_text())
                kept.pop("machine", None)
                figures = {**kept, **figures}
        print(record("feeder_cost", figures))


def git_describe(rev: str) -> str:
    """The short commit of ``rev`` (with ``+changes`` for HEAD when the feeder's files differ
    from it: the figures are then the working tree's)."""
    root = Path(__file__).resolve().parents[1]
    short = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=root, capture_output=True, text=True, check=True
    ).stdout.strip()
    if rev == "HEAD":
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "services/feeder/src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if dirty:
            short += "+changes"
    return short


def export_feeder(rev: str, work: Path) -> str:
    """That revision's ``services/feeder/src`` in a folder of its own; the folder's path."""
    root = Path(__file__).resolve().parents[1]
    out = work / "feeder_src"
    out.mkdir()
    archive = subprocess.run(
        ["git", "archive", rev, "services/feeder/src"], cwd=root, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return str(out / "services" / "feeder" / "src")


if __name__ == "__main__":
    main()
