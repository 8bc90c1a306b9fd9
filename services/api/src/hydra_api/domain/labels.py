"""Labels: the images to label (or correct), applying labels, counts and the leaderboard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hydra_api.common import Pagination, audit, file_url
from hydra_api.domain.queries import aware, count, plot_type_by_name
from hydra_api.models import LabelCount, LabelCounts, LabelResult, LeaderboardEntry, Page, PlotOut
from hydra_common.db.schema import (
    Classification,
    Label,
    LabelHistory,
    Plot,
    PlotType,
    PlotTypeClassification,
    RunHistory,
    User,
    utcnow,
)
from hydra_common.errors import Conflict, InvalidInput
from hydra_common.uncertainty import Candidate, margin, suggested_order

# The uncertainty order ranks at most this many of the newest matching images (bounded work
# per request; a labeller never pages past it).
MAX_RANKED = 20_000


async def list_plots(
    session: AsyncSession,
    page: Pagination,
    *,
    plot_type: str | None = None,
    labelled: bool | None = None,
    label: str | None = None,
    run_min: int | None = None,
    run_max: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    order: Literal["newest", "uncertainty"] = "newest",
    per_run: int,
) -> Page[PlotOut]:
    """Kept images with their current label, filtered for labelling or editing, newest first
    or in the suggested (most uncertain first) order; the latter needs a plot type."""
    stmt = (
        sa.select(Plot, PlotType.name, Classification.name, User.username, Label.labelled_at)
        .join(PlotType, PlotType.id == Plot.plot_type_id)
        .outerjoin(Label, Label.plot_id == Plot.id)
        .outerjoin(Classification, Classification.id == Label.classification_id)
        .outerjoin(User, User.id == Label.user_id)
    )
    conds: list[sa.ColumnElement[bool]] = []
    if plot_type is not None:
        pt = await plot_type_by_name(session, plot_type)
        conds.append(Plot.plot_type_id == pt.id)
    if labelled is not None:
        conds.append(Label.id.is_not(None) if labelled else Label.id.is_(None))
    if label is not None:
        conds.append(Classification.name == label)
    if run_min is not None:
        conds.append(Plot.run_number >= run_min)
    if run_max is not None:
        conds.append(Plot.run_number <= run_max)
    if since is not None:
        conds.append(Plot.created_at >= aware(since))
    if until is not None:
        conds.append(Plot.created_at < aware(until))
    stmt = stmt.where(*conds)
    total = await _count_plots(session, conds, labelled is not None or label is not None, label)
    margins: dict[int, float | None] = {}
    if order == "uncertainty":
        if plot_type is None:
            raise InvalidInput("order=uncertainty needs plot_type (margins compare within one)")
        ids, margins = await _uncertainty_page(session, stmt, page, per_run)
        total = min(total, MAX_RANKED)
        stmt = stmt.where(Plot.id.in_(ids))
    if order == "newest":
        stmt = stmt.order_by(Plot.id.desc()).limit(page.limit).offset(page.offset)
    rows = list((await session.execute(stmt)).tuples())
    if order == "uncertainty":
        rank = {pid: i for i, pid in enumerate(ids)}
        rows.sort(key=lambda r: rank[r[0].id])
    items = [_plot_out(*row, margins.get(row[0].id)) for row in rows]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))


async def _count_plots(
    session: AsyncSession,
    conds: list[sa.ColumnElement[bool]],
    by_label: bool,
    label_name: str | None,
) -> int:
    """Plots matching conds, counted with only the joins the filters need: a hall keeps
    hundreds of thousands of images, and every join of the page's query is a lookup per
    image counted."""
    counted = sa.select(Plot.id)
    if by_label:
        counted = counted.outerjoin(Label, Label.plot_id == Plot.id)
    if label_name is not None:
        counted = counted.outerjoin(Classification, Classification.id == Label.classification_id)
    return await count(session, counted.where(*conds))


def _plot_out(
    p: Plot,
    pt_name: str,
    label_name: str | None,
    username: str | None,
    labelled_at: datetime | None,
    margin_: float | None,
) -> PlotOut:
    return PlotOut(
        id=p.id,
        plot_type=pt_name,
        plot_type_id=p.plot_type_id,
        run_period=p.run_period,
        run_number=p.run_number,
        chunk=p.chunk,
        image_url=file_url(p.image_path) or "",
        heatmap_url=file_url(p.heatmap_path),
        kept_reason=p.kept_reason.value,
        created_at=p.created_at,
        file_time=p.file_time,
        label=label_name,
        labelled_by=username,
        labelled_at=labelled_at,
        margin=None if margin_ is None else round(margin_, 6),
    )


async def _uncertainty_page(
    session: AsyncSession,
    stmt: sa.Select[*tuple[Any, ...]],
    page: Pagination,
    per_run: int,
) -> tuple[list[int], dict[int, float | None]]:
    """The plot ids of one page of the suggested order, and every ranked plot's margin."""
    matching = stmt.with_only_columns(Plot.id, Plot.run_number, Plot.order_id).order_by(
        Plot.id.desc()
    )
    found = matching.limit(MAX_RANKED).subquery()
    rows = await session.execute(
        sa.select(found.c.id, found.c.run_number, RunHistory.weights).outerjoin(
            RunHistory, RunHistory.order_id == found.c.order_id
        )
    )
    margins: dict[int, float | None] = {}
    runs: dict[int, int] = {}
    for pid, run_number, weights in rows.tuples():
        margins[pid] = margin(weights if isinstance(weights, dict) else None)
        runs[pid] = run_number
    ranked = suggested_order((Candidate(p, runs[p], m) for p, m in margins.items()), per_run)
    ids = [c.key for c in ranked[page.offset : page.offset + page.limit]]
    return ids, margins


async def plots_of(session: AsyncSession, plot_ids: list[int]) -> dict[int, Plot]:
    """The plots with these ids, by id; InvalidInput naming those that do not exist."""
    plots = {p.id: p for p in await session.scalars(sa.select(Plot).where(Plot.id.in_(plot_ids)))}
    missing = sorted(set(plot_ids) - set(plots))
    if missing:
        raise InvalidInput(f"unknown plots: {missing[:20]}")
    return plots


async def _valid_labels(
    session: AsyncSession, plot_type_ids: set[int]
) -> dict[tuple[int, str], int]:
    """(plot type id, label name) -> label id, for the labels valid for these plot types."""
    rows = await session.execute(
        sa.select(PlotTypeClassification.plot_type_id, Classification.name, Classification.id)
        .join(Classification, Classification.id == PlotTypeClassification.classification_id)
        .where(PlotTypeClassification.plot_type_id.in_(plot_type_ids))
    )
    return {(pt_id, name): cid for pt_id, name, cid in rows.tuples()}


async def apply_labels(
    session: AsyncSession, user: User, wanted: dict[int, str], plots: dict[int, Plot]
) -> LabelResult:
    """Give each plot (of ``plots_of``) its wanted label: each replaces the plot's label and
    is written to label history, all in one transaction (committed here). Labels not valid
    for the plot type are refused (InvalidInput); a concurrent labelling is a Conflict."""
    valid = await _valid_labels(session, {p.plot_type_id for p in plots.values()})
    invalid = sorted(
        {name for pid, name in wanted.items() if (plots[pid].plot_type_id, name) not in valid}
    )
    if invalid:
        raise InvalidInput(f"labels not valid for the plot type: {', '.join(invalid)}")
    existing = {
        lab.plot_id: lab
        for lab in await session.scalars(sa.select(Label).where(Label.plot_id.in_(list(wanted))))
    }
    names = {cid: name for (_, name), cid in valid.items()}
    before: dict[str, str | None] = {}
    after: dict[str, str] = {}
    for pid, name in wanted.items():
        new_id = valid[(plots[pid].plot_type_id, name)]
        current = existing.get(pid)
        old_id = current.classification_id if current else None
        if old_id == new_id:
            continue
        if current is None:
            session.add(
                Label(
                    plot_id=pid,
                    plot_type_id=plots[pid].plot_type_id,
                    classification_id=new_id,
                    user_id=user.id,
                )
            )
        else:
            current.classification_id = new_id
            current.user_id = user.id
            current.labelled_at = utcnow()
        session.add(
            LabelHistory(
                plot_id=pid,
                old_classification_id=old_id,
                new_classification_id=new_id,
                user_id=user.id,
                source="labeler",
            )
        )
        before[str(pid)] = names.get(old_id) if old_id is not None else None
        after[str(pid)] = name
    if after:
        audit(session, user, "label", "plots", len(after), before=before, after=after)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise Conflict("someone labelled these plots at the same time; reload") from exc
    return LabelResult(changed=len(after), unchanged=len(wanted) - len(after))


async def label_counts(session: AsyncSession, plot_type: str) -> LabelCounts:
    """How many of a plot type's kept images carry each label, and how many none."""
    pt = await plot_type_by_name(session, plot_type)
    total = await session.scalar(
        sa.select(sa.func.count()).select_from(Plot).where(Plot.plot_type_id == pt.id)
    )
    per_label: dict[int, int] = dict(
        (
            await session.execute(
                sa.select(Label.classification_id, sa.func.count())
                .where(Label.plot_type_id == pt.id)
                .group_by(Label.classification_id)
            )
        )
        .tuples()
        .all()
    )
    counts = [
        LabelCount(label=c.name, color=c.color, count=int(per_label.get(c.id, 0)))
        for c in pt.valid_classifications
    ]
    labelled = sum(int(v) for v in per_label.values())
    return LabelCounts(
        plot_type=pt.name,
        total_plots=int(total or 0),
        unlabelled=int(total or 0) - labelled,
        counts=counts,
    )


async def leaderboard(
    session: AsyncSession, page: Pagination, days: float | None = None
) -> Page[LeaderboardEntry]:
    """Who labelled most (label changes made, in the trailing days when given), most first."""
    n = sa.func.count(LabelHistory.id).label("n")
    stmt = (
        sa.select(User.username, User.display_name, n, sa.func.max(LabelHistory.changed_at))
        .join(User, User.id == LabelHistory.user_id)
        .group_by(User.id, User.username, User.display_name)
    )
    if days is not None:
        stmt = stmt.where(LabelHistory.changed_at >= datetime.now(UTC) - timedelta(days=days))
    total = await count(session, stmt)
    rows = (
        await session.execute(
            stmt.order_by(n.desc(), User.username).limit(page.limit).offset(page.offset)
        )
    ).tuples()
    items = [
        LeaderboardEntry(username=u, display_name=d, labels=int(c), last_at=last)
        for u, d, c, last in rows
    ]
    return Page(items=items, total=total, next=page.next_offset(len(items), total))
