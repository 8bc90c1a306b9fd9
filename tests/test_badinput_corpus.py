"""The bad-input corpus through the real local stack on MariaDB: nothing bad stops the pipeline.

Every service runs as its own process (the launcher ``hydra up`` uses); the bundled model
server serves an untrained ``small`` model (verdict quality is not the point here, that every
image gets exactly one is). Each kind of tests/badinput/corpus.py is written between good
images; afterwards each bad one must be logged with its reason, counted in
``hydra_feeder_rejected_total{reason}``, quarantined or skipped as documented
(docs/bad-input.md), each accepted one must have exactly one run_history row, and so must
every good image around them.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.launcher import LocalStack, Ports, stack_environment
from hydra_common.testing import create_mysql_database, drop_mysql_database

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.badinput is imported as a package of the repository
    sys.path.insert(0, str(ROOT))

from tests.badinput import corpus as c  # noqa: E402

pytestmark = [pytest.mark.mysql, pytest.mark.tf, pytest.mark.slow]

MODEL_LABELS = ("Good", "Bad")


@dataclass
class Hall:
    url: str
    data_dir: Path
    ctx: c.Context
    stack: LocalStack
    goods: list[str]


def _sql(url: str, query: str, **params: Any) -> list[Any]:
    async def run() -> list[Any]:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(sa.text(query), params)).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _setup_hall(url: str, model_dir: Path) -> None:
    """Plot types and models the corpus expects (see tests/badinput/corpus.py)."""
    from hydra_common.db import schema as s
    from hydra_trainer.export import export_untrained_model
    from hydra_trainer.store import add_plot_type

    export_untrained_model(model_dir, c.GOOD, 1, MODEL_LABELS, input_size=32)
    for name in (c.JPEG_TYPE, c.FAILING):
        shutil.copytree(model_dir / c.GOOD, model_dir / name)
    # name -> (file type, label order of its model row; None = no model)
    models: dict[str, tuple[str, tuple[str, ...] | None]] = {
        c.GOOD: ("png", MODEL_LABELS),
        c.JPEG_TYPE: ("jpg", MODEL_LABELS),
        c.MISSING: ("png", MODEL_LABELS),  # no files on the model server
        c.FAILING: ("png", (*MODEL_LABELS, "NoData")),  # the model gives 2 weights, not 3
        c.IGNORED: ("png", None),
    }

    async def run() -> None:
        engine = make_engine(url)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                for name, (file_type, labels) in models.items():
                    pt = await add_plot_type(
                        session,
                        name,
                        ("Good", "Bad", "NoData"),
                        detector="BI",
                        collect_percent=0.0,
                        file_type=file_type,
                    )
                    pt.ignored = name == c.IGNORED
                    if labels is None:
                        continue
                    model = s.Model(
                        plot_type_id=pt.id,
                        name=name,
                        version=1,
                        architecture="small",
                        input_height=32,
                        input_width=32,
                        label_order=list(labels),
                        status=s.ModelStatus.ACTIVE,
                        trained_by="badinput",
                    )
                    session.add(model)
                    await session.flush()
                    pt.active_model_id = model.id
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(scope="module")
def hall() -> Iterator[Hall]:
    url = create_mysql_database("hydra_badinput")
    data_dir = Path(tempfile.mkdtemp(prefix="hydra-badinput-"))
    ctx = c.Context(input_dir=data_dir / "input", outside_dir=data_dir / "outside")
    ctx.input_dir.mkdir()
    _setup_hall(url, data_dir / "models")
    ports = Ports.free()
    env = stack_environment(ports)
    env.update(
        HYDRA_DATABASE_URL=url,
        HYDRA_DATA_DIR=str(data_dir),
        HYDRA_INPUT_DIR=str(ctx.input_dir),
        HYDRA_RESCAN_SECONDS="1",
        HYDRA_STABLE_SECONDS=str(c.STABLE_SECONDS),
        HYDRA_MAX_FILE_BYTES=str(c.MAX_FILE_BYTES),
        HYDRA_MAX_PIXELS=str(c.MAX_PIXELS),
        HYDRA_MODEL_REFRESH_SECONDS="1",
        HYDRA_MODEL_SERVER_RETRY_SECONDS=str(c.MODEL_SERVER_RETRY_SECONDS),
        HYDRA_MAX_WAIT_MS="50",
        HYDRA_ADMIN_PASSWORD="badinput-admin-password",
        HYDRA_LOG_LEVEL="INFO",
    )
    stack = LocalStack(env, ports, data_dir / "logs")
    try:
        stack.start(wait=240)
        stack.wait_ready(timeout=240)
        yield Hall(url, data_dir, ctx, stack, [])
    finally:
        stack.stop(10)
        drop_mysql_database(url)
        shutil.rmtree(data_dir, ignore_errors=True)


def _rows(url: str) -> dict[str, list[tuple[str, int]]]:
    """source_path -> [(verdict, run_number)] for every run_history row."""
    found: dict[str, list[tuple[str, int]]] = {}
    for path, verdict, run in _sql(url, "SELECT source_path, verdict, run_number FROM run_history"):
        found.setdefault(path, []).append((verdict, int(run)))
    return found


def _metrics(hall: Hall) -> dict[tuple[str, str], float]:
    """The feeder's counters: (metric name with labels, label value) -> value."""
    port = hall.stack.ports.metrics["feeder"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    values: dict[tuple[str, str], float] = {}
    for m in re.finditer(r'^(hydra_feeder_\w+_total)\{\w+="([^"]*)"\} (\S+)$', text, re.M):
        values[(m[1], m[2])] = float(m[3])
    return values


def _wait(cond: Any, what: str, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:.0f}s: {what}")
        time.sleep(1.0)


def _expected_rows(kinds: list[c.Kind]) -> int:
    rows = {c.VERDICT: 1, c.ERROR_VERDICT: 1, c.FED_AGAIN: 1}
    return sum(rows.get(k.outcome, 0) for k in kinds)


def _write_good(hall: Hall) -> None:
    rel = c.good_rel(len(hall.goods))
    hall.ctx.write(rel, c.noise_png(1000 + len(hall.goods)))
    hall.goods.append(rel)


def _feed_phase(hall: Hall, phase: int) -> None:
    kinds = [k for k in c.KINDS if k.phase == phase]
    before = sum(len(v) for v in _rows(hall.url).values())
    goods_before = len(hall.goods)
    if phase == 1:
        c.write_duplicate_source(hall.ctx)
    for kind in kinds:
        _write_good(hall)
        kind.make(hall.ctx)
    _write_good(hall)
    expected = (
        before + (len(hall.goods) - goods_before) + _expected_rows(kinds) + (phase == 1)
    )  # phase 1 also feeds the duplicates' source image
    _wait(
        lambda: sum(len(v) for v in _rows(hall.url).values()) >= expected,
        f"{expected} run_history rows after phase {phase}",
    )


def _log_lines(hall: Hall) -> list[str]:
    text = (hall.data_dir / "logs" / "feeder.log").read_text(errors="backslashreplace")
    return text.splitlines()


def _as_logged(rel: str) -> str:
    # The services write their logs with Python's stderr error handler, backslashreplace.
    return rel.encode("utf-8", "backslashreplace").decode()


def _check_kind(hall: Hall, kind: c.Kind, rows: dict[str, list[tuple[str, int]]]) -> list[str]:
    """What is wrong with this kind's outcome (empty when it is as documented)."""
    problems: list[str] = []
    source = hall.ctx.input_dir / kind.rel
    logged = [line for line in _log_lines(hall) if f"path={_as_logged(kind.rel)} " in line + " "]
    mine = rows.get(kind.rel, [])
    quarantined = hall.data_dir / "quarantine" / (kind.reason or "-") / kind.rel
    if kind.outcome == c.QUARANTINED:
        if source.exists() or source.is_symlink():
            problems.append("still in the input directory")
        if not (quarantined.exists() or quarantined.is_symlink()):
            problems.append(f"not in {quarantined}")
        else:
            notes = [p for p in quarantined.parent.iterdir() if p.name.endswith(".reason.txt")]
            if not any(f"reason: {kind.reason}" in p.read_text() for p in notes):
                problems.append("no note with the reason")
        if not any("file quarantined" in x and f"reason={kind.reason}" in x for x in logged):
            problems.append(f"no log line 'file quarantined' with reason={kind.reason}")
    elif kind.outcome == c.SKIPPED:
        if not source.is_file():
            problems.append("a skipped file must stay in place")
        if not any("file skipped" in x and f"reason={kind.reason}" in x for x in logged):
            problems.append(f"no log line 'file skipped' with reason={kind.reason}")
    elif kind.outcome in (c.NOT_A_FILE, c.FORGOTTEN):
        # A file deleted between the stability check and the read is logged as vanished.
        unexpected = [x for x in logged if "reason=vanished" not in x]
        if unexpected or (kind.outcome == c.NOT_A_FILE and logged):
            problems.append(f"logged: {logged[:2]}")
        if kind.outcome == c.NOT_A_FILE and not source.exists():
            problems.append("it must be left alone")
    if kind.outcome in (c.QUARANTINED, c.SKIPPED, c.NOT_A_FILE, c.FORGOTTEN) and mine:
        problems.append(f"has run_history rows {mine}")
    if kind.outcome == c.VERDICT:
        if len(mine) != 1 or mine[0][0] not in MODEL_LABELS:
            problems.append(f"wants one row with a model verdict, has {mine}")
    elif kind.outcome == c.ERROR_VERDICT:
        if [v for v, _ in mine] != ["Error"]:
            problems.append(f"wants one Error row, has {mine}")
    elif kind.outcome == c.FED_AGAIN and len(mine) != 2:
        problems.append(f"wants two rows (first write and rewrite), has {mine}")
    return problems


def test_corpus_lists_enough_kinds_and_reasons() -> None:
    from hydra_feeder.validate import REASONS

    assert len(c.KINDS) >= 25
    for kind in c.KINDS:
        assert kind.reason is None or kind.reason in REASONS, kind
        assert (kind.reason is None) == (kind.outcome not in (c.QUARANTINED, c.SKIPPED)), kind.name


def test_documentation_lists_every_kind() -> None:
    doc = (ROOT / "docs" / "bad-input.md").read_text()
    for kind in c.KINDS:
        assert f"`{kind.name}`" in doc, kind.name


def test_corpus_through_the_pipeline(hall: Hall) -> None:
    _feed_phase(hall, 1)
    _feed_phase(hall, 2)
    expected = c.expected_rejections()
    quarantined = sum(1 for k in c.KINDS if k.outcome == c.QUARANTINED)
    _wait(
        lambda: all(
            _metrics(hall).get(("hydra_feeder_rejected_total", r)) == n for r, n in expected.items()
        ),
        f"rejections {expected}",
        timeout=60,
    )
    time.sleep(3)  # anything extra (a duplicate, a late rejection) would show up now
    rows = _rows(hall.url)

    problems = {k.name: p for k in c.KINDS if (p := _check_kind(hall, k, rows))}
    assert not problems, problems

    good_counts = {rel: len(rows.get(rel, [])) for rel in hall.goods}
    assert set(good_counts.values()) == {1}, good_counts
    assert all(rows[rel][0][0] in MODEL_LABELS for rel in hall.goods)
    assert len(rows[c.DUP_REL]) == 2  # written in phase 1, rewritten in phase 2
    assert rows[next(k.rel for k in c.KINDS if k.name == "negative_run_number")][0][1] == 5

    metrics = _metrics(hall)
    for reason in expected:
        assert metrics[("hydra_feeder_rejected_total", reason)] == expected[reason], reason
    assert metrics[("hydra_feeder_rejected_total", "error")] == 0
    assert metrics[("hydra_feeder_rejected_total", "vanished")] in (0, 1)
    assert metrics[("hydra_feeder_files_total", "quarantined")] == quarantined
    assert metrics[("hydra_feeder_files_total", "skipped")] == sum(
        1 for k in c.KINDS if k.outcome == c.SKIPPED
    )
    fed_rows = sum(len(v) for v in rows.values())
    assert metrics[("hydra_feeder_files_total", "fed")] == fed_rows
    assert Counter(len(v) for v in rows.values()) == Counter({1: len(rows) - 1, 2: 1})

    # The symlink's target outside the input directory is untouched.
    assert (hall.ctx.outside_dir / "secret.png").is_file()
    # No bad file made a batch fail (the feeder retries a failing batch until it passes).
    log = "\n".join(_log_lines(hall))
    assert "could not process files" not in log
    assert "could not quarantine" not in log


def test_every_service_survived(hall: Hall) -> None:
    for service, proc in hall.stack.procs.items():
        assert proc.poll() is None, f"{service} died; see {hall.data_dir}/logs/{service}.log"
    assert all(n == 0 for n in hall.stack.restarts.values()), hall.stack.restarts
