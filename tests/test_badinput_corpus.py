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

import re
import shutil
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hydra_common.launcher import LocalStack, Ports, stack_environment
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database
from hydra_testsupport.rows import sql_rows

ROOT = Path(__file__).resolve().parents[1]

from tests.badinput import corpus as c  # noqa: E402
from tests.badinput import outcomes as o  # noqa: E402

pytestmark = [pytest.mark.mysql, pytest.mark.tf, pytest.mark.slow]

MODEL_LABELS = o.MODEL_LABELS


@dataclass
class Hall:
    url: str
    data_dir: Path
    ctx: c.Context
    stack: LocalStack
    goods: list[str]


@pytest.fixture(scope="module")
def hall() -> Iterator[Hall]:
    url = create_mysql_database("hydra_badinput")
    data_dir = Path(tempfile.mkdtemp(prefix="hydra-badinput-"))
    ctx = c.Context(input_dir=data_dir / "input", outside_dir=data_dir / "outside")
    ctx.input_dir.mkdir()
    o.setup_hall(url, data_dir / "models")
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
    for path, verdict, run in sql_rows(
        url, "SELECT source_path, verdict, run_number FROM run_history"
    ):
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


def _check_kind(hall: Hall, kind: c.Kind, rows: dict[str, list[tuple[str, int]]]) -> list[str]:
    """What is wrong with this kind's outcome (empty when it is as documented)."""
    quarantine = hall.data_dir / "quarantine"
    return o.check_kind(kind, hall.ctx.input_dir, quarantine, rows, _log_lines(hall))


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
