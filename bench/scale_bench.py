"""The API behind every page on a hall's history: 30 days of ePIC on MariaDB (``make bench-scale``).

ePIC writes about 270,000 inferences a day (568 plot types every 3 minutes). This benchmark
makes a fresh database on the MariaDB server, bulk-loads 30 days of that history into it
(generated server-side from MariaDB's ``seq_0_to_N`` sequence tables with ``INSERT ...
SELECT``, in chunks), and measures the real API process (its own entry point, uvicorn) in
front of it:

- ``run_history``: one row per inference, 568 plot types in turn every 3 minutes for 30
  days (≥ 8,000,000 rows), a run an hour of 20 chunks; 2 % confirmed Bad, 2 % unconfirmed,
  the rest confirmed Good; every row with its weights, thresholds and stage times;
- ``monitoring_log``: the Bad and unconfirmed inferences (4 %); ``plots``: those and a 1 %
  unbiased sample (kept images, ~5 %); ``labels``: one kept image in 10 labelled;
- ``run_time``: each plot type's latest inference; ``run_conditions``: one row per run;
- ``stage_hourly`` and ``run_verdicts``: the figures the keeper keeps for the Status and
  Summary pages. ``run_verdicts`` is filled as migration 0013 back-fills it, one ``INSERT
  ... SELECT ... GROUP BY`` over the loaded history: ``scale_run_verdicts_backfill_s`` is
  what that migration costs a hall with this history.

Then ``REQUESTS`` requests (30) with varied parameters against each page's endpoint, one
after another, and the 95th percentile of their wall time (nearest rank) per page:
``api_p95_s_runtime`` (Run), ``_log`` (Log: 1 h to 30 days, by detector, pages deep),
``_status`` (Status: 1 h to 7 days), ``_plots`` (Labeler: by plot type, labelled or not,
pages deep), ``_summary`` (the deployment's figures), ``_inferences`` (Run page details: by
plot type, run, pages deep). ``api_first_s_<page>``: the first request of each page, the
one that meets cold caches; ``api_first_s_summary`` is the uncached Summary (the API once
cached its figures for 30 s, and only the first request counted the whole history).

``status_window_covered_fraction``: the share of the Status page's 24-hour window that its
distributions draw from (the API answers ``covered_fraction``; an API without it draws the
most recent ``HYDRA_STATUS_SAMPLE_ROWS`` rows, whose span is read from the database).

The database is dropped at the end. ``--keep`` keeps it (and prints its URL) for EXPLAIN;
``--url`` measures an existing one without loading.

    python -m bench.scale_bench [--days 30] [--keep] [--url mysql+asyncmy://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from bench.results import record
from hydra_common.db.engine import make_engine
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database
from hydra_testsupport.stacks import Site, running_stack

PLOT_TYPES = 568
PERIOD_S = 180  # every plot type every 3 minutes
CHUNKS_PER_RUN = 20  # a run an hour
CHUNK_ROWS = 1_000_000  # rows per INSERT ... SELECT
REQUESTS = 30
ADMIN_PASSWORD = "scale-bench-admin-password"
STATUS_WINDOW_H = 24
PAGES = ("runtime", "log", "status", "plots", "summary", "inferences")

# Every 50th inference is confirmed Bad, another unconfirmed; every 100th sampled.
_BAD = "seq % 50 = 7"
_UNCONFIRMED = "seq % 50 = 13"
_KEPT = f"({_BAD} OR {_UNCONFIRMED} OR seq % 100 = 1)"


def _sql(url: str, statements: list[str], params: dict[str, Any] | None = None) -> list[Any]:
    """Run statements in one transaction; returns the last one's rows (if any)."""

    async def run() -> list[Any]:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                result: Any = None
                for stmt in statements:
                    # JSON literals hold colons that are not bind parameters.
                    stmt = re.sub(r":(?=[\d'])", r"\\:", stmt)
                    result = await conn.execute(sa.text(stmt), params or {})
                return list(result.all()) if result is not None and result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


# --- the load -------------------------------------------------------------------------------


def seed_hall(url: str) -> tuple[int, int]:
    """The 568 ePIC plot types (labels Good, Bad, NoData), each with an active model.

    Multi-row inserts (the trainer's ``add_plot_type`` takes a minute for 568 on 2 busy
    cores); returns (first plot type id, first model id).
    """
    from hydra_common.db import schema as s
    from hydra_trainer.catalog import hall_catalog

    specs = hall_catalog("epic")

    async def run() -> tuple[list[int], list[int]]:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    sa.insert(s.PlotType.__table__),
                    [{"name": spec.name, "detector": spec.detector} for spec in specs],
                )
                pts = dict((await conn.execute(sa.select(s.PlotType.name, s.PlotType.id))).all())
                await conn.execute(
                    sa.text(
                        "INSERT INTO plot_type_classifications (plot_type_id, classification_id)"
                        " SELECT p.id, c.id FROM plot_types p JOIN classifications c"
                        " ON c.name IN ('Good', 'Bad', 'NoData')"
                    )
                )
                await conn.execute(
                    sa.insert(s.Model.__table__),
                    [
                        {
                            "plot_type_id": pts[spec.name],
                            "name": spec.name,
                            "version": 1,
                            "architecture": "small",
                            "label_order": ["Good", "Bad", "NoData"],
                            "status": s.ModelStatus.ACTIVE,
                            "trained_by": "scale-bench",
                        }
                        for spec in specs
                    ],
                )
                await conn.execute(
                    sa.text(
                        "UPDATE plot_types p JOIN models m ON m.plot_type_id = p.id"
                        " SET p.active_model_id = m.id"
                    )
                )
                pt_ids = [pts[spec.name] for spec in specs]
                rows = await conn.execute(sa.select(s.Model.id).order_by(s.Model.plot_type_id))
                return pt_ids, [int(r[0]) for r in rows]
        finally:
            await engine.dispose()

    pt_ids, m_ids = asyncio.run(run())
    # The load maps seq → plot type by arithmetic: the ids must be consecutive.
    assert pt_ids == list(range(pt_ids[0], pt_ids[0] + PLOT_TYPES)), "plot type ids"
    assert m_ids == list(range(m_ids[0], m_ids[0] + PLOT_TYPES)), "model ids"
    return pt_ids[0], m_ids[0]


# Stage times (seconds) for the history: 16 variants, picked by ``seq``.
_STAGE_JSON = [
    json.dumps(
        {
            "feed": round(1.0 + 0.061 * i, 3),
            "queue": round(0.0003 * (i % 5), 4),
            "dispatch": round(0.0002 * (i % 3), 4),
            "predict": round(0.02 + 0.0047 * i, 4),
            "report": round(0.001 * (i % 7), 4),
            "keep": round(0.01 + 0.0023 * i, 4),
            "total": round(1.05 + 0.07 * i, 3),
        },
        separators=(",", ":"),
    )
    for i in range(16)
]
# Secondary indexes of run_history built after the load (sorted builds are much faster
# than row-by-row maintenance); ix_run_history_type_time stays: a foreign key needs it.
_DEFERRED = {
    "ix_run_history_run": "(run_number)",
    "ix_run_history_created": "(created_at)",
}


def load_history(url: str, rows: int, start: datetime, pt0: int, m0: int) -> None:
    """run_history, plots, monitoring_log for ``rows`` inferences from ``start`` on."""
    step_us = PERIOD_S * 1_000_000 // PLOT_TYPES  # one plot type after another
    stages = ", ".join(f"'{j}'" for j in _STAGE_JSON)
    indexes = (
        "SELECT DISTINCT index_name FROM information_schema.statistics"
        " WHERE table_schema = DATABASE() AND table_name = 'run_history'"
    )
    present = {str(r[0]) for r in _sql(url, [indexes])}
    drops = [f"DROP INDEX {ix}" for ix in _DEFERRED if ix in present]
    if drops:
        _sql(url, [f"ALTER TABLE run_history {', '.join(drops)}"])
    common = {"start": start.replace(tzinfo=None), "step": step_us, "pt0": pt0, "m0": m0}
    for lo in range(0, rows, CHUNK_ROWS):
        hi = min(rows, lo + CHUNK_ROWS) - 1
        seq = f"seq_{lo}_to_{hi}"
        t = "(:start + INTERVAL (seq * :step) MICROSECOND)"
        run = f"(10000 + seq DIV {PLOT_TYPES * CHUNKS_PER_RUN})"
        chunk = f"((seq DIV {PLOT_TYPES}) % {CHUNKS_PER_RUN})"
        pt = f"(:pt0 + seq % {PLOT_TYPES})"
        oid = "CONCAT('00000000-0000-7000-8000-', LPAD(HEX(seq), 12, '0'))"
        path = f"CONCAT('RunPeriod-2026-01/Run', {run}, '/p', seq % {PLOT_TYPES}, '.png')"
        plots = f"""
            INSERT INTO plots (id, plot_type_id, run_period, run_number, chunk, image_path,
                heatmap_path, order_id, kept_reason, source_path, file_time, created_at)
            SELECT seq + 1, {pt}, 'RunPeriod-2026-01', {run}, {chunk},
                CONCAT('plots/p', seq % {PLOT_TYPES}, '/', seq, '.png'),
                IF({_BAD}, CONCAT('heatmaps/p', seq % {PLOT_TYPES}, '/', seq, '.png'), NULL),
                {oid}, IF({_BAD}, 'bad', IF({_UNCONFIRMED}, 'unconfirmed', 'unbiased')),
                {path}, {t}, {t}
            FROM {seq} WHERE {_KEPT}"""
        history = f"""
            INSERT INTO run_history (id, order_id, plot_type_id, run_period, run_number, chunk,
                status, model_id, verdict, confidence, confirmed, weights, thresholds,
                stage_seconds, error, source_path, plot_id, predictor_id, file_time, created_at)
            SELECT seq + 1, {oid}, {pt}, 'RunPeriod-2026-01', {run}, {chunk}, 'ok',
                :m0 + seq % {PLOT_TYPES}, IF({_BAD}, 'Bad', 'Good'),
                IF({_BAD}, 0.91, IF({_UNCONFIRMED}, 0.55, 0.95)), NOT ({_UNCONFIRMED}),
                IF({_BAD}, '{{"Good":0.06,"Bad":0.91,"NoData":0.03}}',
                   IF({_UNCONFIRMED}, '{{"Good":0.55,"Bad":0.35,"NoData":0.10}}',
                      '{{"Good":0.95,"Bad":0.03,"NoData":0.02}}')),
                '{{"Good":0.7,"Bad":0.6,"NoData":0.8}}',
                ELT(1 + (seq * 7) % 16, {stages}),
                '', {path}, IF({_KEPT}, seq + 1, NULL), 'predictor-0', {t}, {t}
            FROM {seq}"""
        log = f"""
            INSERT INTO monitoring_log (run_history_id, plot_type_id, run_number, chunk, verdict,
                confirmed, transition, transition_kind, alarm, created_at)
            SELECT seq + 1, {pt}, {run}, {chunk}, IF({_BAD}, 'Bad', 'Good'), NOT ({_UNCONFIRMED}),
                seq % 200 = 7, IF(seq % 200 = 7, 'verdict', ''), {_BAD}, {t}
            FROM {seq} WHERE {_BAD} OR {_UNCONFIRMED}"""
        # A bulk load of rows made here: the checks each row would pay are known to pass.
        fast = "SET SESSION unique_checks = 0, foreign_key_checks = 0"
        _sql(url, [fast, plots, history, log], common)
        print(f"  loaded {hi + 1:,} of {rows:,} inferences", flush=True)
    adds = [f"ADD INDEX {ix} {cols}" for ix, cols in _DEFERRED.items() if ix in present]
    if adds:
        _sql(url, [f"ALTER TABLE run_history {', '.join(adds)}"])


def load_stage_hourly(url: str, rows: int, start: datetime) -> int:
    """The keeper's hourly stage figures (``stage_hourly``) for the loaded history.

    Worked out from the same arithmetic that made the rows (time, run and stage-time variant
    follow from ``seq``), so the 8 million rows are not read back; returns the rows written.
    """
    import numpy as np

    from hydra_common.db.schema import StageHourly
    from hydra_common.stagestats import INFERENCES, bin_index, hour_of

    step_us = PERIOD_S * 1_000_000 // PLOT_TYPES
    seq = np.arange(rows, dtype=np.int64)
    start_naive = start.replace(tzinfo=None)
    base = hour_of(start_naive)
    offset_us = int((start_naive - base).total_seconds() * 1e6)
    hour = (offset_us + seq * step_us) // 3_600_000_000
    run = 10000 + seq // (PLOT_TYPES * CHUNKS_PER_RUN)
    variant = (seq * 7) % 16
    keys, counts = np.unique(np.stack([hour, run, variant]), axis=1, return_counts=True)
    acc: dict[tuple[int, int, str, int], list[float]] = {}
    stage_times = [json.loads(j) for j in _STAGE_JSON]
    for (h, r, v), n in zip(keys.T.tolist(), counts.tolist(), strict=True):
        acc.setdefault((h, r, INFERENCES, 0), [0, 0.0])[0] += n
        for stage, seconds in stage_times[v].items():
            cell = acc.setdefault((h, r, stage, bin_index(seconds)), [0, 0.0])
            cell[0] += n
            cell[1] += n * seconds
    out = [
        {
            "hour": (base + timedelta(hours=h)).replace(tzinfo=UTC),
            "run_number": r,
            "stage": stage,
            "bin": b,
            "count": int(n),
            "seconds_sum": total,
        }
        for (h, r, stage, b), (n, total) in acc.items()
    ]

    async def write() -> None:
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                for i in range(0, len(out), 5000):
                    await conn.execute(sa.insert(StageHourly.__table__), out[i : i + 5000])
        finally:
            await engine.dispose()

    asyncio.run(write())
    return len(out)


def load_run_verdicts(url: str) -> tuple[int, float]:
    """The Summary's verdicts per run (``run_verdicts``), counted from the loaded history by
    the statement migration 0013 back-fills it with; (rows written, seconds it took)."""
    started = time.monotonic()
    _sql(
        url,
        [
            "INSERT INTO run_verdicts (run_number, verdict, count)"
            " SELECT run_number, verdict, COUNT(*) FROM run_history"
            " GROUP BY run_number, verdict"
        ],
    )
    took = time.monotonic() - started
    return int(_sql(url, ["SELECT COUNT(*) FROM run_verdicts"])[0][0]), took


def finish_load(url: str, rows: int, start: datetime, pt0: int) -> None:
    """Labels, run_time, run_conditions, then fresh index statistics."""
    good_bad = "(SELECT id FROM classifications WHERE name = IF(p.id % 20 = 0, 'Bad', 'Good'))"
    _sql(
        url,
        [
            f"""INSERT INTO labels (plot_id, plot_type_id, classification_id, labelled_at)
                SELECT p.id, p.plot_type_id, {good_bad}, p.created_at + INTERVAL 1 HOUR
                FROM plots p WHERE p.id % 7 = 0""",
            f"""INSERT INTO run_time (plot_type_id, run_history_id, order_id, run_period,
                    run_number, chunk, verdict, confidence, confirmed, model_id, image_path,
                    heatmap_path, updated_at)
                SELECT plot_type_id, id, order_id, run_period, run_number, chunk, verdict,
                    confidence, confirmed, model_id, CONCAT('live/', plot_type_id, '.png'),
                    NULL, created_at
                FROM run_history WHERE id > {rows - PLOT_TYPES}""",
            f"""INSERT INTO run_conditions (run_number, beam_current, run_type, special,
                    recorded_at)
                SELECT 10000 + seq, 100.0, 'production', 0,
                    :start + INTERVAL (seq * {CHUNKS_PER_RUN * PERIOD_S}) SECOND
                FROM seq_0_to_{rows // (PLOT_TYPES * CHUNKS_PER_RUN)}""",
        ],
        {"start": start.replace(tzinfo=None)},
    )
    for table in ("run_history", "monitoring_log", "plots", "labels", "run_time"):
        _sql(url, [f"ANALYZE TABLE {table}"])


def load(url: str, days: float) -> dict[str, Any]:
    """The whole history; returns its size and how long it took."""
    started = time.monotonic()
    rows = int(days * 86_400 / PERIOD_S) * PLOT_TYPES
    # The history ends a few minutes ago (the hall is running).
    start = datetime.now(UTC) - timedelta(seconds=rows * PERIOD_S / PLOT_TYPES + 60)
    pt0, m0 = seed_hall(url)
    print(f"  hall seeded in {time.monotonic() - started:.0f} s", flush=True)
    load_history(url, rows, start, pt0, m0)
    print(f"  history loaded at {time.monotonic() - started:.0f} s", flush=True)
    finish_load(url, rows, start, pt0)
    hourly = load_stage_hourly(url, rows, start)
    verdicts, backfill_s = load_run_verdicts(url)
    counts = {
        t: int(_sql(url, [f"SELECT COUNT(*) FROM {t}"])[0][0])
        for t in ("run_history", "monitoring_log", "plots", "labels")
    }
    return {
        "scale_rows": counts["run_history"],
        "scale_log_rows": counts["monitoring_log"],
        "scale_kept_images": counts["plots"],
        "scale_labels": counts["labels"],
        "scale_days": days,
        "scale_stage_hourly_rows": hourly,
        "scale_run_verdicts_rows": verdicts,
        "scale_run_verdicts_backfill_s": round(backfill_s, 1),
        "scale_load_s": round(time.monotonic() - started, 1),
    }


# --- the requests ---------------------------------------------------------------------------


def requests_for(page: str, names: list[str], detectors: list[str], runs: list[int]) -> list[str]:
    """``REQUESTS`` URLs of one page's endpoint with varied parameters."""
    out = []
    for i in range(REQUESTS):
        name, det, run = names[(i * 37) % len(names)], detectors[i % len(detectors)], runs[i]
        if page == "runtime":
            out.append("/api/runtime" + ("" if i % 3 == 0 else f"?detector={det}"))
        elif page == "log":
            hours = (1, 6, 24, 72, 168, 720)[i % 6]
            q = f"/api/log?hours={hours}&offset={(i % 5) * 100}"
            q += f"&detector={det}" if i % 2 else ""
            q += "&transitions_only=true" if i % 4 == 3 else ""
            out.append(q)
        elif page == "status":
            out.append(f"/api/status?hours={(1, 3, 6, 12, 24, 48, 96, 168)[i % 8]}")
        elif page == "plots":
            q = f"/api/plots?limit=100&offset={(0, 100, 1000, 3000)[i % 4]}"
            q += f"&plot_type={name}" if i % 3 else ""
            q += ("", "&labelled=false", "&labelled=true")[i % 3]
            out.append(q)
        elif page == "summary":
            out.append("/api/summary")
        elif page == "inferences":
            q = f"/api/inferences?limit=100&offset={(0, 100, 1000, 5000)[i % 4]}"
            q += f"&plot_type={name}" if i % 2 else ""
            q += f"&run_number={run}" if i % 3 == 1 else ""
            out.append(q)
    return out


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank, q in 0..100) of non-empty values."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def measure_api(url: str, covered: Callable[[dict[str, Any]], float]) -> dict[str, Any]:
    """Start the API on the database and time every page's requests."""
    names = [str(r[0]) for r in _sql(url, ["SELECT name FROM plot_types ORDER BY id"])]
    detectors = sorted({str(r[0]) for r in _sql(url, ["SELECT DISTINCT detector FROM plot_types"])})
    last_run = int(_sql(url, ["SELECT MAX(run_number) FROM run_history"])[0][0])
    runs = [last_run - (i * 53) % 700 for i in range(REQUESTS)]
    figures: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="hydra-scale-") as tmp,
        running_stack(
            Site(url, Path(tmp)),
            ("api",),
            120,
            HYDRA_ADMIN_PASSWORD=ADMIN_PASSWORD,
            HYDRA_LOG_LEVEL="WARNING",
        ) as stack,
    ):
        base = f"http://127.0.0.1:{stack.ports.api}"
        with httpx.Client(base_url=base, timeout=120) as client:
            login = {"username": "admin", "password": ADMIN_PASSWORD}
            client.post("/api/auth/login", json=login).raise_for_status()
            for page in PAGES:
                times = []
                for path in requests_for(page, names, detectors, runs):
                    t0 = time.perf_counter()
                    resp = client.get(path)
                    times.append(time.perf_counter() - t0)
                    if resp.status_code != 200:
                        raise RuntimeError(f"{path}: HTTP {resp.status_code} {resp.text[:300]}")
                figures[f"api_p95_s_{page}"] = round(percentile(times, 95), 4)
                figures[f"api_median_s_{page}"] = round(statistics.median(times), 4)
                figures[f"api_max_s_{page}"] = round(max(times), 4)
                figures[f"api_first_s_{page}"] = round(times[0], 4)
                print(f"  {page:11s} p95 {figures[f'api_p95_s_{page}']:.3f} s", flush=True)
            status = client.get(f"/api/status?hours={STATUS_WINDOW_H}").json()
            figures["status_window_covered_fraction"] = round(covered(status), 4)
            figures["status_sampled_rows"] = status.get("sampled")
    return figures


def covered_by(url: str) -> Callable[[dict[str, Any]], float]:
    """What share of the Status window its figures draw from (see the module docstring)."""

    def covered(status: dict[str, Any]) -> float:
        if "covered_fraction" in status:
            return float(status["covered_fraction"])
        # The most recent ``sampled`` rows of the window: from the oldest of them to now.
        since = datetime.fromisoformat(status["since"])
        n = int(status.get("sampled") or 0)
        if n == 0:
            return 0.0
        rows = _sql(
            url,
            [
                "SELECT created_at FROM run_history WHERE created_at >= :since"
                " ORDER BY created_at DESC LIMIT 1 OFFSET :n"
            ],
            {"since": since.astimezone(UTC).replace(tzinfo=None), "n": n - 1},
        )
        oldest: datetime = rows[0][0].replace(tzinfo=UTC)
        window = datetime.now(UTC) - since
        return min(1.0, (datetime.now(UTC) - oldest) / window)

    return covered


def main() -> dict[str, Any]:
    """Load (or take) a database, measure, record bench/results/scale.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--url", default="", help="measure this database (no load, no drop)")
    args = parser.parse_args()
    started = time.monotonic()
    url = args.url or create_mysql_database("hydra_scale")
    figures: dict[str, Any] = {}
    try:
        if not args.url:
            print(f"loading {args.days:g} days of ePIC into {url.rpartition('/')[2]}", flush=True)
            figures.update(load(url, args.days))
        else:
            for key, table in (
                ("scale_rows", "run_history"),
                ("scale_log_rows", "monitoring_log"),
                ("scale_kept_images", "plots"),
                ("scale_labels", "labels"),
                ("scale_stage_hourly_rows", "stage_hourly"),
                ("scale_run_verdicts_rows", "run_verdicts"),
            ):
                figures[key] = int(_sql(url, [f"SELECT COUNT(*) FROM {table}"])[0][0])
        figures.update(measure_api(url, covered_by(url)))
    finally:
        if args.keep or args.url:
            print(f"database kept: {url}")
        else:
            drop_mysql_database(url)
    figures["scale_total_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(figures, indent=2, sort_keys=True))
    print(f"written to {record('scale', figures)}")
    return figures


if __name__ == "__main__":
    main()
