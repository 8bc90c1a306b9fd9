"""The labelling domain functions, called directly (no HTTP): which plots exist, which labels
are valid for a plot type, what changes (and is written to history), and the counts."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from hydra_api.common import Pagination
from hydra_api.domain import labels
from hydra_common.db.schema import LabelHistory, Role
from hydra_common.errors import InvalidInput


async def test_apply_labels_changes_only_what_differs(api: Any) -> None:
    pt = await api.plot_type(labels=("Good", "Bad"))
    ps = await api.plots(pt, 2)
    user = await api.user(Role.DEVELOPER)
    wanted = {ps[0].id: "Bad", ps[1].id: "Good"}
    async with api.session() as s:
        plots = await labels.plots_of(s, list(wanted))
        first = await labels.apply_labels(s, user, wanted, plots)
        assert (first.changed, first.unchanged) == (2, 0)
        again = await labels.apply_labels(s, user, {ps[0].id: "Bad", ps[1].id: "Bad"}, plots)
        assert (again.changed, again.unchanged) == (1, 1)
        history = await s.scalars(
            sa.select(LabelHistory.plot_id).where(LabelHistory.plot_id.in_(list(wanted)))
        )
        assert sorted(history) == sorted([ps[0].id, ps[1].id, ps[1].id])
        counts = await labels.label_counts(s, pt.name)
        assert counts.unlabelled == 0 and {c.label: c.count for c in counts.counts} == {
            "Good": 0,
            "Bad": 2,
        }


async def test_unknown_plots_and_invalid_labels_are_refused(api: Any) -> None:
    pt = await api.plot_type(labels=("Good", "Bad"))
    (plot,) = await api.plots(pt, 1)
    user = await api.user(Role.DEVELOPER)
    async with api.session() as s:
        with pytest.raises(InvalidInput, match="unknown plots"):
            await labels.plots_of(s, [plot.id, 999_999_999])
        plots = await labels.plots_of(s, [plot.id])
        with pytest.raises(InvalidInput, match="NoData"):
            await labels.apply_labels(s, user, {plot.id: "NoData"}, plots)
        listed = await labels.list_plots(
            s, Pagination(limit=10, offset=0), plot_type=pt.name, labelled=False, per_run=5
        )
        assert [p.id for p in listed.items] == [plot.id] and listed.items[0].label is None


async def test_the_suggested_order_needs_a_plot_type(api: Any) -> None:
    async with api.session() as s:
        with pytest.raises(InvalidInput, match="plot_type"):
            await labels.list_plots(
                s, Pagination(limit=10, offset=0), order="uncertainty", per_run=5
            )
