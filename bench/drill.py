"""Fault drill: kill every part of a running Hydra at random moments; prove nothing is lost.

    make drill                                   # long form: >= 2,000 images, every service
                                                 # and MariaDB SIGKILLed several times
    python -m bench.drill --images 300 --cycles 1 --no-record      # a short one

A ``LocalStack`` (every service a supervised local process, as ``hydra up`` runs them) works
on a MariaDB server of the drill's own (``bench/private_mariadb.py``: its own data directory,
loopback port and socket; the machine's shared server is never touched) with two plot types
served by a small untrained model (verdict quality is not the point here), one plot type
without a model, and the plot types of the bad-input corpus (``tests/badinput``). A
simulator thread writes plots into the input directory all along. Meanwhile the drill
SIGKILLs, one at a time and at random moments, the feeder, balancer, predictor, keeper, model
server, model config writer, API and MariaDB (InnoDB recovers from the crash); the launcher's
supervisor restarts the services, as Kubernetes would. Every other fault comes right after a
burst (90 images at once), so that it finds orders in every stage. Between faults it drops
the corpus's kinds, a few at a time, and a few bad files of its own.

Once, the image storage and quarantine volume (a small tmpfs, ``bench/small_volume.py``,
where the machine lets the drill mount one) fills up: verdicts must go on being recorded,
``hydra_keeper_files_skipped_total{reason="disk_full"}`` must rise, the feeder must report the
bad file it could not quarantine; once space returns, images are stored and bad files
quarantined again (``disk_full_episodes``). Once, the database volume (MariaDB's data directory
on a small tmpfs of its own) fills up while plots flow: InnoDB cannot grow a table and refuses
the keeper's and feeder's writes ("The table ... is full"), which they log and retry; nothing
is acknowledged before it commits. MariaDB must stay up, and once space returns the pipeline
must move again (``db_full_episodes``, ``db_full_resumed_s``).

*Recovery time* of a kill is the time from the kill until an image written after the kill has
its verdict committed (so the pipeline moves again, through the restarted part); for the
model server that verdict must come from the model, for the model config writer it must also
have matched the file to the database again, and for the API it is the time until
``/api/health`` answers again. After a burst it includes working off the backlog ahead.

At the end the simulator stops, the pipeline drains, and every image written must have
exactly one ``run_history`` row: ``lost`` counts images without one, ``duplicates`` the extra
rows (by order id, by source path and by plot type, run period, run and chunk). Error
verdicts are allowed only for the corpus's two broken models; every corpus kind must show its
documented outcome (``bad_input_kinds`` counts those seen). Figures go to
``bench/results/drill.json``. The CI form of this drill is ``tests/test_faults_drill.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.drill_corpus import (
    CorpusDrops,
    CorpusResult,
    corpus_paths,
    corpus_settings,
    error_paths,
    setup_hall,
)
from bench.private_mariadb import PrivateMariaDB, available
from bench.small_volume import SmallVolume
from hydra_common.launcher import LocalStack
from hydra_common.supervisor import ready
from hydra_testsupport.harness import (
    KILLABLE,
    MODEL_TYPES,
    NO_MODEL_TYPE,
    RUN_PERIOD,
    Db,
    Simulator,
    Supervisor,
    api_answers,
    prepare_hall,
    scrape,
    stack_env,
    start_stack,
)

log = logging.getLogger("bench.drill")

DISK_FULL = "disk_full"  # the episode's place among the faults
DB_FULL = "db_full"  # the database volume's episode
DB_STALL_TIMEOUT_S = 120.0  # full volume -> the first write InnoDB refuses (a table must grow)
DB_HOLD_S = 5.0  # then the volume stays full this long, writes failing all along
# The drill's MariaDB on its small volume: a 16 MB redo log (the default 96 MB would take most
# of it), and fsync instead of O_DIRECT, which tmpfs refuses on kernels before 6.6 (fsync costs
# nothing on memory).
DB_VOLUME_ARGS = ("--innodb-log-file-size=16M", "--innodb-flush-method=fsync")
# What the keeper's and feeder's logs say when InnoDB cannot grow a table (error 1114).
DB_FULL_MARK = "is full"
# The chart's alerts (deploy/helm/hydra/files/alerts.yaml) on the keeper's refused writes and
# on the feeder's: when the ledger table is the one that must grow, the feeder stops feeding
# before the keeper meets a full table (and with nothing fed HydraPipelineStalled stays quiet).
DB_FULL_ALERT = "HydraDatabaseWriteErrors"
LEDGER_ALERT = "HydraFeederLedgerErrors"
SETTLE_S = 5.0  # time the feeder gets to quarantine what was dropped before the disk fills
BAD_RUN = 99_999_999  # run number of the bad files, apart from the simulated runs


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def bad_files() -> list[tuple[str, str, bytes, str]]:
    """(kind, relative path, content, outcome) of the bad inputs a drill drops among the plots.

    Outcome ``quarantined``: moved to ``quarantine/<kind>/``; ``skipped``: left in place.
    """
    png = _png_bytes()
    run = f"RunPeriod-{RUN_PERIOD}/Run{BAD_RUN}"
    return [
        ("empty", f"{run}/{NO_MODEL_TYPE}_0001.png", b"", "quarantined"),
        ("truncated", f"{run}/{NO_MODEL_TYPE}_0002.png", png[: len(png) // 2], "quarantined"),
        ("not_an_image", f"{run}/{NO_MODEL_TYPE}_0003.png", b"not a plot\n" * 40, "quarantined"),
        ("unknown_plot_type", f"{run}/NoSuchPlot_0004.png", png, "skipped"),
        ("bad_name", f"{run}/{NO_MODEL_TYPE}_0005.jpg", png, "quarantined"),
    ]


def write_atomically(path: Path, data: bytes) -> None:
    """Write a file so that it appears complete at once (as the simulator does)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def read_lines(path: Path) -> list[str]:
    """A log file's lines (empty when it does not exist)."""
    try:
        return path.read_text(errors="backslashreplace").splitlines()
    except FileNotFoundError:
        return []


# --- the drill ----------------------------------------------------------------------------


@dataclass
class DrillConfig:
    """What a drill does."""

    images: int = 2000  # write at least this many images
    cycles: int = 2  # kill every service at least this many times
    restart_db: bool = True  # SIGKILL the drill's own MariaDB once per cycle
    disk_full: bool = True  # fill the image storage volume once (where it can be mounted)
    db_full: bool = True  # fill the database volume once (where it can be mounted)
    corpus: bool = True  # drop the whole bad-input corpus among the plots
    interval: float = 0.5  # seconds between simulated batches (one image per plot type)
    gap: tuple[float, float] = (1.0, 8.0)  # random wait before each kill
    burst: int = 30  # before every other kill, this many batches back to back
    seed: int = 2026
    recover_timeout: float = 240.0
    drain_timeout: float = 600.0
    kill_until_images: bool = True  # go on killing until `images` are written
    keep: bool = False  # keep the data dir (database, logs) afterwards
    volume_mb: int = 512  # size of the image storage volume (filled only in the episode)
    db_volume_mb: int = 256  # size of MariaDB's data volume (about 45 MB used at the start)
    # Model server copies, as a hall runs them (the chart's modelServer.replicas): the kill
    # hits the first; the predictors go on with the other while it restarts. 1 measures a
    # lone model server, whose restart (TensorFlow's import, every model's load) stops all
    # verdicts for its whole length.
    modelserver_replicas: int = 2
    env: dict[str, str] = field(default_factory=dict)  # extra settings of the stack


@dataclass
class Kill:
    """One fault and how long the pipeline took to move again."""

    target: str
    at_s: float  # seconds since the drill started
    recover_s: float | None  # None: it did not recover within the timeout
    images_written: int  # images written when it happened
    burst: bool = False  # it hit a burst of images (a backlog in every stage)
    outage_s: float | None = None  # MariaDB only: SIGKILL to answering again
    restart_s: float | None = None  # a server: SIGKILL to the killed copy answering again


@dataclass
class DiskFull:
    """One disk-full episode of the image storage (and quarantine) volume."""

    at_s: float = 0.0
    filled_bytes: int = 0
    full_s: float = 0.0  # how long the volume stayed full
    skipped_disk_full: float = 0.0  # hydra_keeper_files_skipped_total{reason="disk_full"} rise
    rows_while_full: int = 0  # verdicts recorded for images written while it was full
    quarantine_refused: bool = False  # a bad file the feeder could not move stayed put
    resumed_s: float | None = None  # space back -> a new image stored again
    quarantine_resumed: bool = False  # a bad file after that was quarantined
    quarantine_caught_up: bool = False  # the file it could not move was moved after all
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Everything the episode must show was seen."""
        return not self.problems


@dataclass
class DbFull:
    """One disk-full episode of the database volume."""

    at_s: float = 0.0
    filled_bytes: int = 0
    stall_s: float | None = None  # volume full -> the keeper's or feeder's first refused write
    full_s: float = 0.0  # how long the volume stayed full
    write_errors: float = 0.0  # hydra_keeper_db_write_errors_total rise
    ledger_errors: float = 0.0  # hydra_feeder_ledger_write_errors_total rise
    keeper_log_lines: int = 0  # keeper log lines with the refusal
    feeder_log_lines: int = 0  # feeder log lines with the refusal
    # MariaDB answered while full. InnoDB usually refuses the growth and goes on (error 1114),
    # but a redo or undo write that cannot be extended makes it abort (seen once in about six
    # episodes): then it is started again on the same data, as Kubernetes would, and the
    # episode must still lose nothing and see verdicts flow again.
    mariadb_up: bool = False
    mariadb_restarted: bool = False
    resumed_s: float | None = None  # space back -> a verdict for an image written after that
    alert: str = ""  # the chart's alerts that fire (comma-separated), if any
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Everything the episode must show was seen."""
        return not self.problems


@dataclass
class Outcome:
    """What a drill found."""

    images: int = 0
    rows: int = 0
    lost: int = 0
    duplicates: int = 0
    duplicate_order_ids: int = 0
    duplicate_source_paths: int = 0
    duplicate_plot_chunks: int = 0
    unexpected_rows: int = 0
    error_rows: int = 0
    expected_error_rows: int = 0
    unexpected_error_rows: list[str] = field(default_factory=list)
    ledger_pending: int = 0
    kills: list[Kill] = field(default_factory=list)
    restarts: dict[str, int] = field(default_factory=dict)
    unexpected_restarts: dict[str, int] = field(default_factory=dict)
    mariadb_crash_recoveries: int = 0
    bad_files: int = 0
    bad_files_with_rows: int = 0
    bad_files_quarantined: int = 0
    bad_files_skipped: int = 0
    bad_files_misplaced: list[str] = field(default_factory=list)
    corpus: CorpusResult = field(default_factory=CorpusResult)
    disk_full: list[DiskFull] = field(default_factory=list)
    disk_full_note: str = ""
    db_full: list[DbFull] = field(default_factory=list)
    db_full_note: str = ""
    simulator_error: str = ""
    drain_s: float = 0.0
    elapsed_s: float = 0.0
    lost_examples: list[str] = field(default_factory=list)
    data_dir: str = ""

    def recoveries(self) -> dict[str, list[float | None]]:
        """Recovery times per target."""
        out: dict[str, list[float | None]] = {}
        for k in self.kills:
            out.setdefault(k.target, []).append(k.recover_s)
        return out

    def failures(self) -> list[str]:
        """What went wrong (empty: the drill passed)."""
        checks = {
            "lost": self.lost,
            "duplicates": self.duplicates,
            "unexpected_rows": self.unexpected_rows,
            "unexpected_error_rows": self.unexpected_error_rows,
            "bad_files_with_rows": self.bad_files_with_rows,
            "bad_files_misplaced": self.bad_files_misplaced,
            "bad_input_problems": self.corpus.problems,
            "not_recovered": [k.target for k in self.kills if k.recover_s is None],
            "disk_full_problems": [p for e in self.disk_full for p in e.problems],
            "db_full_problems": [p for e in self.db_full for p in e.problems],
            "simulator_error": self.simulator_error,
        }
        kill9 = sum(k.target == "mariadb" for k in self.kills)
        if self.mariadb_crash_recoveries < kill9:
            checks["mariadb_no_crash_recovery"] = kill9 - self.mariadb_crash_recoveries
        return [f"{name}: {value}" for name, value in checks.items() if value]

    def figures(self) -> dict[str, Any]:
        """The JSON figures of bench/results/drill.json."""
        times = [k.recover_s for k in self.kills if k.recover_s is not None]
        per: dict[str, Any] = {}
        for target, values in self.recoveries().items():
            done = [v for v in values if v is not None]
            per[target] = {
                "kills": len(values),
                "recovered": len(done),
                "recover_max_s": round(max(done), 2) if done else None,
                "recover_mean_s": round(sum(done) / len(done), 2) if done else None,
                "recover_s": [None if v is None else round(v, 2) for v in values],
            }
            restarts = [k.restart_s for k in self.kills if k.target == target and k.restart_s]
            if restarts:
                per[target]["restart_max_s"] = round(max(restarts), 2)
        outage = [k.outage_s for k in self.kills if k.outage_s is not None]
        resumed = [e.resumed_s for e in self.db_full if e.resumed_s is not None]
        return {
            "images": self.images,
            "rows": self.rows,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "duplicate_order_ids": self.duplicate_order_ids,
            "duplicate_source_paths": self.duplicate_source_paths,
            "duplicate_plot_chunks": self.duplicate_plot_chunks,
            "unexpected_rows": self.unexpected_rows,
            "error_rows": self.error_rows,
            "expected_error_rows": self.expected_error_rows,
            "unexpected_error_rows": len(self.unexpected_error_rows),
            "ledger_pending": self.ledger_pending,
            "kills": len(self.kills),
            "not_recovered": sum(k.recover_s is None for k in self.kills),
            "recover_max_s": round(max(times), 2) if times else None,
            "recovery": per,
            "recover_note": (
                "recover: SIGKILL to a fresh verdict through the killed service (the model"
                " server: one its model made); restart_max_s: to the killed copy answering"
                " health again"
            ),
            "mariadb_kill9": sum(k.target == "mariadb" for k in self.kills),
            "mariadb_crash_recoveries": self.mariadb_crash_recoveries,
            "mariadb_outage_max_s": round(max(outage), 2) if outage else None,
            "restarts": self.restarts,
            "unexpected_restarts": self.unexpected_restarts,
            "bad_input_kinds": self.corpus.as_documented,
            "bad_input_refused": self.corpus.refused,
            "bad_input_refused_by_reason": self.corpus.by_reason,
            "bad_input_corpus": self.corpus.kinds,
            "bad_input_dropped": self.corpus.dropped,
            "bad_input_problems": self.corpus.problems,
            "bad_input_note": (
                "kinds of tests/badinput dropped during the run whose documented outcome was"
                " seen (quarantine folder and note, feeder log line, rows); refused = the"
                " quarantined or skipped ones"
            ),
            "bad_files": self.bad_files,
            "bad_files_with_rows": self.bad_files_with_rows,
            "bad_files_quarantined": self.bad_files_quarantined,
            "bad_files_skipped": self.bad_files_skipped,
            "bad_files_misplaced": self.bad_files_misplaced,
            "disk_full_episodes": sum(e.passed for e in self.disk_full),
            "disk_full": [asdict(e) for e in self.disk_full],
            "disk_full_note": self.disk_full_note,
            "db_full_episodes": sum(e.passed for e in self.db_full),
            "db_full_resumed_s": round(max(resumed), 2) if resumed else None,
            "db_full_alerts": sorted({e.alert for e in self.db_full if e.alert}),
            "db_full": [asdict(e) for e in self.db_full],
            "db_full_note": self.db_full_note,
            "drain_s": round(self.drain_s, 2),
            "elapsed_s": round(self.elapsed_s, 1),
            "simulator_error": self.simulator_error,
            "timeline": [
                {
                    "target": k.target,
                    "at_s": round(k.at_s, 1),
                    "recover_s": None if k.recover_s is None else round(k.recover_s, 2),
                    "images_written": k.images_written,
                    "burst": k.burst,
                }
                for k in self.kills
            ],
        }


class Drill:
    """One drill on one stack: call ``run()``."""

    def __init__(self, cfg: DrillConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.outcome = Outcome()
        self.failed = True  # until _check finds everything in order
        self.volume: SmallVolume | None = None
        self.db_volume: SmallVolume | None = None
        self.corpus: CorpusDrops | None = None
        self.disk_full_bad: list[str] = []  # bad files dropped in the disk-full episode

    @contextmanager
    def _hall(self) -> Iterator[tuple[str, Path]]:
        """A data dir with the drill's own MariaDB (never the machine's shared one) and, where
        a file system can be mounted, a small volume for images and quarantine and one for
        MariaDB's data."""
        data_dir = Path(tempfile.mkdtemp(prefix="hydra-drill-"))
        why = available()
        if why:
            raise RuntimeError(f"the drill needs a MariaDB server of its own: {why}")
        server_args: tuple[str, ...] = ()
        if self.cfg.db_full:
            db_volume = SmallVolume(data_dir / "mariadb" / "data", self.cfg.db_volume_mb)
            why = db_volume.mount()
            if why:
                self.outcome.db_full_note = f"no database-full episode: {why}"
            else:
                self.db_volume = db_volume
                server_args = DB_VOLUME_ARGS
        self.mariadb = PrivateMariaDB(data_dir / "mariadb", server_args)
        try:
            self.mariadb.start()
            url = self.mariadb.create_database()
            if self.cfg.disk_full:
                volume = SmallVolume(data_dir / "volume", self.cfg.volume_mb)
                why = volume.mount()
                if why:
                    self.outcome.disk_full_note = f"no disk-full episode: {why}"
                else:
                    self.volume = volume
            yield url, data_dir
        finally:
            self.mariadb.stop()
            for mounted in (self.volume, self.db_volume):
                if mounted is not None:
                    mounted.unmount()
            if not self.failed and not self.cfg.keep:
                shutil.rmtree(data_dir, ignore_errors=True)
            else:
                log.warning("keeping the drill's data dir", extra={"data_dir": str(data_dir)})

    def run(self, progress: Callable[[str], None] = print) -> Outcome:
        """Prepare, start, drill, drain and check; returns what was found."""
        self.progress = progress
        started = time.monotonic()
        with self._hall() as (url, data_dir):
            self.outcome.data_dir = str(data_dir)
            input_dir = self.input_dir = data_dir / "input"
            input_dir.mkdir()
            prepare_hall(url, data_dir / "models")
            extra = dict(self.cfg.env)
            if self.cfg.corpus:
                setup_hall(url, data_dir / "models")
                self.corpus = CorpusDrops(input_dir, data_dir / "outside", self.cfg.seed)
                extra = {**corpus_settings(), **extra}
            files = self.volume.path if self.volume is not None else data_dir
            self.quarantine_dir = files / "quarantine"
            self.storage_dir = files / "storage"
            env, ports = stack_env(
                url,
                data_dir,
                input_dir,
                HYDRA_STORAGE_DIR=str(self.storage_dir),
                HYDRA_QUARANTINE_DIR=str(self.quarantine_dir),
                # A file deleted 0.3 s after it appeared (a corpus kind) must not be read.
                HYDRA_STABLE_SECONDS="1.0",
                # Longer than a model server restart: a restart costs time, not verdicts.
                HYDRA_MODEL_SERVER_RETRY_SECONDS="90",
                HYDRA_MODEL_SERVER_REPLICAS=str(self.cfg.modelserver_replicas),
                **extra,
            )
            self.logs = data_dir / "logs"
            progress(f"starting the stack (logs in {self.logs})")
            stack = start_stack(env, ports, self.logs)
            self.db = Db(url)
            try:
                with Supervisor(stack):
                    self._drill(stack, input_dir, started)
                self._check(stack, data_dir)
            finally:
                stack.stop(15)
                self.db.close()
        self.outcome.elapsed_s = time.monotonic() - started
        return self.outcome

    def _targets(self) -> Iterator[str]:
        """Every service (and MariaDB) once per cycle in random order; the disk-full episodes
        once each, in the first cycle.

        After ``cycles`` cycles, more follow only while the simulator has not yet written
        ``images`` images and ``kill_until_images`` is set.
        """
        cycle_no = 0
        while cycle_no < self.cfg.cycles or (
            self.cfg.kill_until_images and self.sim.count() < self.cfg.images
        ):
            cycle: list[str] = list(KILLABLE)
            if self.cfg.restart_db:
                cycle.append("mariadb")
            self.rng.shuffle(cycle)
            if cycle_no == 0 and self.volume is not None:
                cycle.insert(self.rng.randrange(1, len(cycle) + 1), DISK_FULL)
            if cycle_no == 0 and self.db_volume is not None:
                cycle.insert(self.rng.randrange(1, len(cycle) + 1), DB_FULL)
            yield from cycle
            cycle_no += 1

    def _drill(self, stack: LocalStack, input_dir: Path, started: float) -> None:
        cfg, out = self.cfg, self.outcome
        sim = Simulator(
            input_dir,
            (*MODEL_TYPES, NO_MODEL_TYPE),
            cfg.interval,
            cfg.seed,
            start_run=5000 + cfg.seed % 1000 * 10,
        )
        self.sim = sim
        sim.start()
        bad = iter(bad_files())
        per_fault = 1
        if self.corpus is not None:
            episodes = (self.volume is not None) + (self.db_volume is not None)
            faults = len(KILLABLE) + cfg.restart_db + episodes
            per_fault = -(-len(self.corpus.pending) // faults)
        try:
            self._wait_first_rows()
            for target in self._targets():
                time.sleep(self.rng.uniform(*cfg.gap))
                if target == DISK_FULL:
                    self._disk_full(stack, started)
                    continue
                if target == DB_FULL:
                    self._db_full(stack, started)
                    continue
                # A bad file now and then: it must never stop the pipeline nor get a row.
                for _kind, rel, data, _outcome in itertools.islice(bad, 1):
                    write_atomically(input_dir / rel, data)
                    out.bad_files += 1
                if self.corpus is not None:
                    self.corpus.drop(per_fault)
                burst = cfg.burst > 0 and self.rng.random() < 0.5
                if burst:
                    # Kill while a backlog moves through every stage.
                    sim.burst(cfg.burst)
                    time.sleep(self.rng.uniform(0.2, 2.0))
                k = self._kill(stack, target, started, burst)
                out.kills.append(k)
                self.progress(
                    f"[{k.at_s:6.1f}s] {target:<11} recovered in "
                    + (f"{k.recover_s:.1f}s" if k.recover_s is not None else "NEVER")
                    + f"  ({sim.count()} images written{', in a burst' if k.burst else ''})"
                )
            for _kind, rel, data, _outcome in bad:
                write_atomically(input_dir / rel, data)
                out.bad_files += 1
            if self.corpus is not None:
                self.corpus.finish(self._has_row, self._wait_for)
            while sim.count() < cfg.images and sim.running:
                time.sleep(0.5)
        finally:
            sim.stop()
        if sim.error is not None:
            out.simulator_error = repr(sim.error)
        out.images = sim.count()
        self.progress(f"simulator stopped after {out.images} images; draining")

    def _wait_for(self, cond: Callable[[], bool], timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout or self.cfg.recover_timeout)
        while not cond():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.25)
        return True

    def _has_row(self, path: str) -> bool:
        try:
            return bool(
                self.db.scalar("SELECT COUNT(*) FROM run_history WHERE source_path = :p", p=path)
            )
        except Exception:  # MariaDB restarting
            return False

    def _wait_first_rows(self) -> None:
        if not self._wait_for(lambda: self._rows_count() > 0):
            raise TimeoutError("the pipeline committed nothing")

    def _rows_count(self) -> int:
        try:
            return int(self.db.scalar("SELECT COUNT(*) FROM run_history"))
        except Exception:  # MariaDB restarting
            return 0

    def _max_id(self, table: str = "run_history") -> int:
        return int(self.db.scalar(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))

    def _kill(self, stack: LocalStack, target: str, started: float, burst: bool) -> Kill:
        last_id = self._max_id()
        t0 = time.monotonic()
        wall0 = time.time()
        kill = Kill(target, t0 - started, None, self.sim.count(), burst=burst)
        if target == "mariadb":
            kill.outage_s = self.mariadb.kill9()
        else:
            stack.kill(target, signal.SIGKILL)  # the supervisor thread restarts it
        deadline = t0 + self.cfg.recover_timeout
        while time.monotonic() < deadline:
            if self._progressed(stack, target, t0, wall0, last_id):
                kill.recover_s = time.monotonic() - t0
                break
            time.sleep(0.25)
        if target in stack.ports.servers:
            # The killed copy itself back (with a second model server the pipeline moves on
            # before it is): one fault at a time, and its own restart time on record.
            while time.monotonic() < deadline:
                if ready(target, stack.ports):
                    kill.restart_s = time.monotonic() - t0
                    break
                time.sleep(0.25)
        return kill

    def _progressed(
        self, stack: LocalStack, target: str, t0: float, wall0: float, last_id: int
    ) -> bool:
        """Has the pipeline moved since ``t0``, through ``target``?"""
        if target == "api":
            return api_answers(stack)
        if target == "modelconfig":
            # Back when it has read the database and matched the file again.
            port = stack.ports.metrics["modelconfig"]
            done = scrape(port, "hydra_modelconfig_last_success_timestamp_seconds")
            if done is None or done < wall0:
                return False
        try:
            rows = self.fresh_rows(last_id)
        except Exception:  # MariaDB still restarting
            return False
        fresh = self.sim.written_since(t0)
        for path, status, plot_type in rows:
            if path not in fresh:
                continue
            if target != "modelserver":
                return True
            # The model server's way back: a verdict the model made after the kill.
            if plot_type in MODEL_TYPES and str(status).lower() == "ok":
                return True
        return False

    def fresh_rows(self, last_id: int) -> list[Any]:
        """(source path, status, plot type) of the rows after ``last_id``."""
        return self.db.rows(
            "SELECT rh.source_path, rh.status, pt.name FROM run_history rh"
            " JOIN plot_types pt ON pt.id = rh.plot_type_id WHERE rh.id > :last",
            last=last_id,
        )

    # --- the disk-full episode ------------------------------------------------------------

    def _disk_full(self, stack: LocalStack, started: float) -> None:
        """Fill the storage volume: verdicts go on, images are skipped with a reason and a
        metric, the feeder cannot quarantine; free it: storing and quarantining resume."""
        assert self.volume is not None
        time.sleep(SETTLE_S)  # bad files dropped before are quarantined before it fills
        ep = DiskFull(at_s=time.monotonic() - started)
        self.outcome.disk_full.append(ep)
        keeper = stack.ports.metrics["keeper"]
        skipped = 'hydra_keeper_files_skipped_total{reason="disk_full"}'
        before = scrape(keeper, skipped) or 0.0
        last_id = self._max_id()
        ep.filled_bytes = self.volume.fill()
        t_full = time.monotonic()
        refused = self._drop_bad(901)
        if not self._wait_for(lambda: (scrape(keeper, skipped) or 0.0) > before):
            ep.problems.append("hydra_keeper_files_skipped_total{disk_full} did not rise")
        ep.skipped_disk_full = (scrape(keeper, skipped) or 0.0) - before

        def recorded_while_full() -> bool:
            fresh = self.sim.written_since(t_full)
            ep.rows_while_full = sum(r[0] in fresh for r in self.fresh_rows(last_id))
            return ep.rows_while_full >= 3

        if not self._wait_for(recorded_while_full):
            ep.problems.append("no verdicts recorded while the disk was full")
        feeder_log = self.logs / "feeder.log"
        ep.quarantine_refused = self._wait_for(
            lambda: (
                (self.input_dir / refused).is_file()
                and any(
                    "could not quarantine" in line and refused in line
                    for line in read_lines(feeder_log)
                )
            ),
            timeout=60,
        )
        if not ep.quarantine_refused:
            ep.problems.append("the feeder did not report the bad file it could not quarantine")
        if not self.volume.is_full():
            ep.problems.append("the volume was not full")
        self.volume.free()
        t_free, wall_free = time.monotonic(), time.time()
        ep.full_s = t_free - t_full
        stored = self._wait_for(lambda: self._stored_since(wall_free))
        ep.resumed_s = time.monotonic() - t_free if stored else None
        if not stored:
            ep.problems.append("no image stored after the space returned")
        after = self._drop_bad(902)
        ep.quarantine_resumed = self._wait_for(
            lambda: (self.quarantine_dir / "not_an_image" / after).is_file(), timeout=60
        )
        if not ep.quarantine_resumed:
            ep.problems.append("a bad file after the space returned was not quarantined")
        ep.quarantine_caught_up = self._wait_for(
            lambda: (
                (self.quarantine_dir / "not_an_image" / refused).is_file()
                and not (self.input_dir / refused).exists()
            ),
            timeout=60,
        )
        if not ep.quarantine_caught_up:
            ep.problems.append("the bad file the full quarantine refused stayed in the input")
        self.progress(
            f"[{ep.at_s:6.1f}s] disk full   {ep.skipped_disk_full:.0f} files skipped, "
            f"{ep.rows_while_full} verdicts while full; storing again after "
            + (f"{ep.resumed_s:.1f}s" if ep.resumed_s is not None else "NEVER")
        )

    # --- the database-full episode ---------------------------------------------------------

    def _db_full(self, stack: LocalStack, started: float) -> None:
        """Fill MariaDB's volume while plots flow: once a table must grow, InnoDB refuses the
        writes, which the keeper and feeder log and retry; hold it full, free it: MariaDB is
        still up and verdicts are committed again."""
        assert self.db_volume is not None
        ep = DbFull(at_s=time.monotonic() - started)
        self.outcome.db_full.append(ep)
        keeper = stack.ports.metrics["keeper"]
        errors = "hydra_keeper_db_write_errors_total"
        before = scrape(keeper, errors) or 0.0
        feeder = stack.ports.metrics["feeder"]
        ledger_errors = "hydra_feeder_ledger_write_errors_total"
        ledger_before = scrape(feeder, ledger_errors) or 0.0
        logs = {name: self.logs / f"{name}.log" for name in ("keeper", "feeder")}
        seen = {name: len(read_lines(path)) for name, path in logs.items()}

        def refusals(name: str) -> int:
            lines = read_lines(logs[name])[seen[name] :]
            return sum(DB_FULL_MARK in line for line in lines)

        ep.filled_bytes = self.db_volume.fill()
        t_full = time.monotonic()
        stalled = self._wait_for(
            lambda: (
                (scrape(keeper, errors) or 0.0) > before
                or (scrape(feeder, ledger_errors) or 0.0) > ledger_before
            ),
            timeout=DB_STALL_TIMEOUT_S,
        )
        if stalled:
            ep.stall_s = time.monotonic() - t_full
            time.sleep(DB_HOLD_S)
        else:
            ep.problems.append("no write was refused while the database volume was full")
        ep.mariadb_up = self.mariadb.answers()
        if not self.db_volume.is_full():
            ep.problems.append("the database volume was not full")
        self.db_volume.free()
        t_free = time.monotonic()
        ep.full_s = t_free - t_full
        if not ep.mariadb_up and not self.mariadb.answers():
            self.mariadb.start()  # it died: as Kubernetes would restart it
            ep.mariadb_restarted = True
        ep.write_errors = (scrape(keeper, errors) or 0.0) - before
        ep.ledger_errors = (scrape(feeder, ledger_errors) or 0.0) - ledger_before
        ep.keeper_log_lines, ep.feeder_log_lines = refusals("keeper"), refusals("feeder")
        if stalled and not (ep.keeper_log_lines or ep.feeder_log_lines) and ep.mariadb_up:
            # (A MariaDB that aborted answers no "is full": its clients log the lost link.)
            ep.problems.append("neither the keeper nor the feeder logged the refused writes")
        fired = [
            a for a, n in ((DB_FULL_ALERT, ep.write_errors), (LEDGER_ALERT, ep.ledger_errors)) if n
        ]
        ep.alert = ", ".join(fired)
        if stalled and not fired:
            ep.problems.append("writes were refused but no alert rule's counter rose")
        last_id = self._max_id()

        def resumed() -> bool:
            fresh = self.sim.written_since(t_free)
            return any(r[0] in fresh for r in self.fresh_rows(last_id))

        if self._wait_for(resumed):
            ep.resumed_s = time.monotonic() - t_free
        else:
            ep.problems.append("no verdict committed after the space returned")
        self.progress(
            f"[{ep.at_s:6.1f}s] db full     writes refused after "
            + (f"{ep.stall_s:.1f}s" if ep.stall_s is not None else "NEVER")
            + f" ({ep.write_errors:.0f} keeper write errors, held {ep.full_s:.1f}s);"
            " verdicts again after "
            + (f"{ep.resumed_s:.1f}s" if ep.resumed_s is not None else "NEVER")
        )

    def _drop_bad(self, chunk: int) -> str:
        """A text file named like a plot (quarantined as ``not_an_image``; it has bytes to
        copy, which a full volume refuses); returns its relative path."""
        rel = f"RunPeriod-{RUN_PERIOD}/Run{BAD_RUN}/{NO_MODEL_TYPE}_{chunk:04d}.png"
        write_atomically(self.input_dir / rel, b"not a plot\n" * 400)
        self.disk_full_bad.append(rel)
        return rel

    def _stored_since(self, wall: float) -> bool:
        """A file under the storage root written at or after ``wall`` (Unix time)."""
        for path in self.storage_dir.rglob("*"):
            try:
                if path.is_file() and path.stat().st_mtime >= wall:
                    return True
            except FileNotFoundError:
                continue
        return False

    # --- the final check ------------------------------------------------------------------

    def _check(self, stack: LocalStack, data_dir: Path) -> None:
        out = self.outcome
        written = self.sim.paths()
        expected_rows = len(written) + (self.corpus.expected_rows() if self.corpus else 0)
        begun = time.monotonic()
        deadline = begun + self.cfg.drain_timeout
        while time.monotonic() < deadline:
            if self._rows_count() >= expected_rows:
                break
            time.sleep(1.0)
        time.sleep(3.0)  # an extra (duplicate) row would show up now
        out.drain_s = time.monotonic() - begun
        rows = self.db.rows(
            "SELECT rh.source_path, rh.order_id, rh.status, rh.verdict, rh.run_number,"
            " rh.run_period, rh.chunk, pt.name"
            " FROM run_history rh JOIN plot_types pt ON pt.id = rh.plot_type_id"
        )
        out.rows = len(rows)
        sim_rows = [r for r in rows if r[0] in written]
        sim_paths = [r[0] for r in sim_rows]
        out.duplicate_order_ids = len(rows) - len({r[1] for r in rows})
        out.duplicate_source_paths = len(sim_paths) - len(set(sim_paths))
        chunks = [(r[7], r[5], r[4], r[6]) for r in sim_rows]
        out.duplicate_plot_chunks = len(chunks) - len(set(chunks))
        out.duplicates = (
            out.duplicate_order_ids + out.duplicate_source_paths + out.duplicate_plot_chunks
        )
        lost = sorted(written - set(sim_paths))
        out.lost = len(lost)
        out.lost_examples = lost[:10]
        bad = bad_files()[: out.bad_files]
        bad_paths = {rel for _k, rel, _d, _o in bad} | set(self.disk_full_bad)
        corpus = corpus_paths() if self.corpus is not None else set()
        paths = {r[0] for r in rows}
        out.unexpected_rows = len(paths - written - corpus - bad_paths)
        allowed_errors = error_paths() if self.corpus is not None else set()
        errors = [r[0] for r in rows if r[3] == "Error" or str(r[2]).lower() == "error"]
        out.error_rows = len(errors)
        out.expected_error_rows = sum(p in allowed_errors for p in errors)
        out.unexpected_error_rows = sorted(p for p in errors if p not in allowed_errors)[:20]
        out.ledger_pending = int(
            self.db.scalar("SELECT COUNT(*) FROM fed_files WHERE state = 'pending'")
        )
        out.bad_files_with_rows = len(bad_paths & paths)
        for kind, rel, _data, outcome in bad:
            where = self.quarantine_dir / kind / rel if outcome == "quarantined" else None
            if where is not None and where.is_file():
                out.bad_files_quarantined += 1
            elif where is None and (self.input_dir / rel).is_file():
                out.bad_files_skipped += 1
            else:
                out.bad_files_misplaced.append(f"{kind}: {rel}")
        if self.corpus is not None:
            by_path: dict[str, list[tuple[str, int]]] = {}
            for r in rows:
                if r[0] in corpus:
                    by_path.setdefault(r[0], []).append((r[3], int(r[4])))
            feeder_log = read_lines(self.logs / "feeder.log")
            out.corpus = self.corpus.check(self.quarantine_dir, by_path, feeder_log)
        out.mariadb_crash_recoveries = self.mariadb.crash_recoveries()
        out.restarts = dict(stack.restarts)
        killed = {t: sum(k.target == t for k in out.kills) for t in KILLABLE}
        out.unexpected_restarts = {
            s: n - killed.get(s, 0) for s, n in stack.restarts.items() if n != killed.get(s, 0)
        }
        self.failed = bool(out.failures())


def main() -> None:
    """``make drill``: the long form; prints the figures and writes bench/results/drill.json."""
    from bench.results import record

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    parser.add_argument("--no-kill-db", dest="restart_db", action="store_false")
    parser.add_argument("--no-disk-full", dest="disk_full", action="store_false")
    parser.add_argument("--no-db-full", dest="db_full", action="store_false")
    parser.add_argument("--no-corpus", dest="corpus", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    parser.add_argument(
        "--modelserver-replicas", type=int, default=2, help="model server copies (1: a lone one)"
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("asyncmy").setLevel(logging.ERROR)  # migration noise
    cfg = DrillConfig(
        images=args.images,
        cycles=args.cycles,
        restart_db=args.restart_db,
        disk_full=args.disk_full,
        db_full=args.db_full,
        corpus=args.corpus,
        interval=args.interval,
        seed=args.seed,
        keep=args.keep,
        modelserver_replicas=args.modelserver_replicas,
    )
    outcome = Drill(cfg).run()
    figures = {
        **outcome.figures(),
        "seed": cfg.seed,
        "cycles": cfg.cycles,
        "modelserver_replicas": cfg.modelserver_replicas,
    }
    if args.record:
        path = record("drill", figures)
        print(f"figures written to {path}")
    short = {k: v for k, v in figures.items() if k not in ("timeline", "recovery")}
    print(json.dumps(short, indent=2))
    for target, fig in figures["recovery"].items():
        print(f"  {target:<11} kills={fig['kills']} max={fig['recover_max_s']}s {fig['recover_s']}")
    failures = outcome.failures()
    if failures:
        raise SystemExit(f"DRILL FAILED: {'; '.join(failures)} (data kept in {outcome.data_dir})")


if __name__ == "__main__":
    main()
