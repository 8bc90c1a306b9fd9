"""The Log, Status and Summary pages' figures, and run conditions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import Pagination, audit
from hydra_api.domain.queries import aware, colors, count
from hydra_api.models import (
    LogEntry,
    LogGroup,
    LogPage,
    Page,
    RunAverage,
    RunConditionIn,
    RunConditionOut,
    ServiceStatusOut,
    StageDistribution,
    StatusOut,
    SummaryOut,
    ThroughputPoint,
)
from hydra_common.db.schema import (
    Classification,
    Label,
    Model,
    ModelStatus,
    MonitoringLog,
    PlotType,
    RunCondition,
    RunVerdictCount,
    ServiceStatus,
    StageHourly,
    User,
    utcnow,
)
from hydra_common.errors import NotFound
from hydra_common.labels import NO_MODEL
from hydra_common.stagestats import INFERENCES, STAGE_EDGES, hour_of

ALIVE_SECONDS = 120


async def log_page(
    session: AsyncSession,
    page: Pagination,
    hours: float,
    detector: str | None = None,
    transitions_only: bool = False,
) -> LogPage:
    """Confirmed alarms and unconfirmed verdicts of the trailing hours, by detector (newest
    first within each), one page of them."""
    window = [MonitoringLog.created_at >= utcnow() - timedelta(hours=hours)]
    if transitions_only:
        window.append(MonitoringLog.transition == sa.true())  # "IS true" would not use the index
    # Detector by detector (the database's order of names), never sorting the whole window:
    # the window's entries per plot type come from one index (plot type, time), and the
    # page's from the ranges of the one or two detectors it falls in.
    types = await session.execute(
        sa.select(PlotType.id, PlotType.detector).order_by(PlotType.detector, PlotType.id)
    )
    detectors: dict[str, list[int]] = {}
    for pid, det in types.tuples():
        if detector is None or det == detector:
            detectors.setdefault(det, []).append(pid)
    per_type = dict(
        (
            await session.execute(
                sa.select(MonitoringLog.plot_type_id, sa.func.count())
                .where(*window)
                .group_by(MonitoringLog.plot_type_id)
            )
        )
        .tuples()
        .all()
    )
    sizes = [(ids, sum(per_type.get(i, 0) for i in ids)) for ids in detectors.values()]
    total = sum(n for _, n in sizes)
    rows: list[tuple[MonitoringLog, str, str]] = []
    skip, want = page.offset, page.limit
    for ids, n in sizes:
        if want <= 0:
            break
        if skip >= n:
            skip -= n
            continue
        stmt = (
            sa.select(MonitoringLog, PlotType.name, PlotType.detector)
            .join(PlotType, PlotType.id == MonitoringLog.plot_type_id)
            .where(*window, MonitoringLog.plot_type_id.in_(ids))
            .order_by(MonitoringLog.created_at.desc(), MonitoringLog.id.desc())
            .limit(want)
            .offset(skip)
        )
        if transitions_only:
            # MariaDB would read every entry of the detector's plot types for the flag
            # (0.7 s on 30 days of ePIC); the transitions' own index holds it (0.1 s).
            stmt = stmt.with_hint(
                MonitoringLog, "FORCE INDEX (ix_monitoring_log_transition)", "mysql"
            )
        part = await session.execute(stmt)
        got = part.tuples().all()
        rows += got
        want -= len(got)
        skip = 0
    palette = await colors(session)
    groups: dict[str, list[LogEntry]] = {}
    for entry, name, det in rows:
        groups.setdefault(det, []).append(
            LogEntry(
                id=entry.id,
                plot_type=name,
                detector=det,
                run_number=entry.run_number,
                chunk=entry.chunk,
                verdict=entry.verdict,
                confirmed=entry.confirmed,
                transition=entry.transition,
                transition_kind=entry.transition_kind,
                alarm=entry.alarm,
                event=entry.event,
                actor=entry.actor,
                time=entry.created_at,
                color=palette.get(entry.verdict, palette[NO_MODEL]),
            )
        )
    return LogPage(
        groups=[LogGroup(detector=d, entries=e) for d, e in groups.items()],
        total=total,
        next=page.next_offset(len(rows), total),
    )


def quantile(counts: list[int], q: float) -> float:
    """The q-quantile of a histogram over ``STAGE_EDGES``, linear within its bin."""
    total = sum(counts)
    if not total:
        return 0.0
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            lo, hi = STAGE_EDGES[i], STAGE_EDGES[i + 1]
            return lo + (hi - lo) * max(0.0, rank - seen) / n
        seen += n
    return STAGE_EDGES[-1]


async def heartbeats(session: AsyncSession, now: datetime) -> list[ServiceStatusOut]:
    """The services' database heartbeats; alive when one came in the two minutes to now."""
    return [
        ServiceStatusOut(
            service=s.service,
            instance=s.instance,
            state=s.state,
            details=s.details or {},
            last_seen=s.last_seen,
            alive=(now - s.last_seen).total_seconds() < ALIVE_SECONDS,
        )
        for s in await session.scalars(
            sa.select(ServiceStatus).order_by(ServiceStatus.service, ServiceStatus.instance)
        )
    ]


async def status(
    session: AsyncSession, hours: float, probed: Iterable[ServiceStatusOut] = ()
) -> StatusOut:
    """Services' heartbeats (then ``probed``, the services read over their /metrics),
    per-stage processing-time distributions and per-run averages, and inferences per hour:
    every inference of the window (from its first whole hour), from the hourly figures the
    keeper keeps (``stage_hourly``)."""
    now = utcnow()
    since = hour_of(now - timedelta(hours=hours))
    services = await heartbeats(session, now)
    services += probed
    sh = StageHourly
    rows = (
        await session.execute(
            sa.select(
                sh.stage, sh.bin, sh.run_number, sa.func.sum(sh.count), sa.func.sum(sh.seconds_sum)
            )
            .where(sh.hour >= since)
            .group_by(sh.stage, sh.bin, sh.run_number)
        )
    ).tuples()
    bins = len(STAGE_EDGES) - 1
    per_stage: dict[str, list[int]] = defaultdict(lambda: [0] * bins)
    stage_sum: dict[str, float] = defaultdict(float)
    per_run: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
    per_run_n: dict[int, int] = defaultdict(int)
    for stage, b, run_number, n, total in rows:
        n, total = int(n or 0), float(total or 0.0)
        if stage == INFERENCES:
            per_run_n[run_number] += n
            continue
        per_stage[stage][min(int(b), bins - 1)] += n
        stage_sum[stage] += total
        cell = per_run[run_number][stage]
        cell[0] += n
        cell[1] += total
    stages = [
        StageDistribution(
            stage=stage,
            bin_edges=STAGE_EDGES,
            counts=counts,
            count=sum(counts),
            mean=stage_sum[stage] / sum(counts),
            p50=quantile(counts, 0.5),
            p95=quantile(counts, 0.95),
        )
        for stage, counts in sorted(per_stage.items())
        if sum(counts)
    ]
    runs = [
        RunAverage(
            run_number=run,
            inferences=per_run_n[run],
            mean_seconds={s: c[1] / c[0] for s, c in per_run[run].items() if c[0]},
        )
        for run in sorted(per_run_n, reverse=True)[:200]
    ]
    throughput = [
        ThroughputPoint(hour=aware(hour), count=int(n or 0))
        for hour, n in (
            await session.execute(
                sa.select(sh.hour, sa.func.sum(sh.count))
                .where(sh.hour >= since, sh.stage == INFERENCES)
                .group_by(sh.hour)
                .order_by(sh.hour)
            )
        ).tuples()
    ]
    return StatusOut(
        since=since,
        services=services,
        stages=stages,
        runs=runs,
        throughput=throughput,
        sampled=sum(per_run_n.values()),
    )


async def _count(session: AsyncSession, stmt: sa.Select[Any]) -> int:
    return int(await session.scalar(stmt) or 0)


async def summary(session: AsyncSession, hall: str) -> SummaryOut:
    """The deployment's figures, all counted now. The run history's two come from the
    verdicts per run the keeper keeps (``run_verdicts``: a few rows a run, where the history
    has thousands), with the alarm labels read now: a label an admin has just made an
    alarm (or not) counts at once."""
    rv = RunVerdictCount
    alarm_labels = sa.select(Classification.name).where(Classification.alarm.is_(True))
    return SummaryOut(
        hall=hall,
        labelled_images=await _count(session, sa.select(sa.func.count()).select_from(Label)),
        plot_types=await _count(
            session,
            sa.select(sa.func.count()).select_from(PlotType).where(PlotType.ignored.is_(False)),
        ),
        active_models=await _count(
            session,
            sa.select(sa.func.count()).select_from(Model).where(Model.status == ModelStatus.ACTIVE),
        ),
        runs_with_bad=await _count(
            session,
            sa.select(sa.func.count(sa.distinct(rv.run_number))).where(
                rv.verdict.in_(alarm_labels), rv.count > 0
            ),
        ),
        total_analysed=await _count(session, sa.select(sa.func.sum(rv.count))),
    )


async def run_conditions(
    session: AsyncSession, page: Pagination, run_number: int | None = None
) -> Page[RunConditionOut]:
    """Recorded run conditions (of one run, when given), latest first."""
    stmt = sa.select(RunCondition)
    if run_number is not None:
        stmt = stmt.where(RunCondition.run_number == run_number)
    total = await count(session, stmt)
    rows = await session.scalars(
        stmt.order_by(RunCondition.recorded_at.desc(), RunCondition.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    items = [RunConditionOut.model_validate(r) for r in rows]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


async def record_run_conditions(
    session: AsyncSession, body: RunConditionIn, who: str
) -> RunConditionOut:
    """Record run conditions, audited as who recorded them."""
    rc = RunCondition(**body.model_dump())
    session.add(rc)
    await session.flush()
    audit(session, who, "record", "run_condition", rc.id, after=body.model_dump())
    await session.commit()
    return RunConditionOut.model_validate(rc)


async def delete_run_condition(session: AsyncSession, run_condition_id: int, by: User) -> None:
    """Remove a run-conditions row, audited with what it held; NotFound when there is none."""
    rc = await session.get(RunCondition, run_condition_id)
    if rc is None:
        raise NotFound(f"no run conditions {run_condition_id}")
    before = RunConditionOut.model_validate(rc).model_dump(mode="json")
    audit(session, by, "delete", "run_condition", rc.id, before=before)
    await session.delete(rc)
    await session.commit()
