"""Alarms on the Run page in a real browser: two Bads of three, sent to the real keeper,
raise a plot type's alarm; a logged-in crew member acknowledges it and the card shows it
acknowledged (a viewer gets no button); the monitoring log and the audit log record it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hydra.v1 import order_pb2, report_pb2
from playwright.sync_api import expect

from hydra_common.ids import uuid7
from hydra_trainer.catalog import find_spec
from tests.browser.browser_seed import (
    BAD_FROM,
    LABELLING,
    LIBRARY,
    LIVE,
    NO_MODEL,
    PAINTING,
    UNCONFIRMED,
)
from tests.browser.browser_support import Hall, Tab

pytestmark = [pytest.mark.browser, pytest.mark.mysql]

TAKEN = {LIVE, LABELLING, PAINTING, LIBRARY, NO_MODEL, UNCONFIRMED, *BAD_FROM}


def _plot_type(hall: Hall) -> str:
    """A seeded plot type with an active model that no other browser test changes."""
    good = {
        row[0]
        for row in hall.sql(
            """SELECT pt.name FROM run_time rt JOIN plot_types pt ON pt.id = rt.plot_type_id
               WHERE rt.verdict = 'Good'"""
        )
    }
    return sorted(n for n in hall.seeded.active_model if n not in TAKEN and n in good)[0]


def _report(hall: Hall, plot_type: str, verdict: str, chunk: int) -> report_pb2.Report:
    labels = find_spec(plot_type, "halld").labels
    weights = {label: 0.96 if label == verdict else 0.04 / (len(labels) - 1) for label in labels}
    now = time.time_ns()
    order = order_pb2.InferenceOrder(
        order_id=uuid7(),
        plot_type=plot_type,
        run_period="RunPeriod-2026-01",
        run_number=72310,
        chunk=chunk,
        source_path=f"RunPeriod-2026-01/Run072310/{plot_type}_{chunk:04d}.png",
        stages=order_pb2.StageTimestamps(file_ns=now - 1_000_000, reported_ns=now),
    )
    return hall.report(order, weights)


def test_crew_acknowledges_an_alarm_on_the_run_page(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    plot_type = _plot_type(hall)
    crew = open_page("/", who="labeler")
    viewer = open_page("/", who="viewer")
    tabs = {"crew": crew, "viewer": viewer}
    cards = {
        who: tab.page.locator(f"[data-testid=run-card][data-plot-type={plot_type}]")
        for who, tab in tabs.items()
    }
    for card in cards.values():
        expect(card).to_have_attribute("data-alarm", "clear")

    reports = [_report(hall, plot_type, v, c) for c, v in enumerate(("Bad", "Good", "Bad"))]
    # One request each: one batch each, in order.
    assert hall.record(*([r] for r in reports)) == [r.order.order_id for r in reports]
    for who, card in cards.items():
        expect(card).to_have_attribute("data-alarm", "raised")
        expect(card.get_by_test_id("alarm-raised")).to_be_visible()
        expect(tabs[who].page.get_by_test_id("new-bad")).to_contain_text(plot_type)
    expect(cards["viewer"].get_by_test_id("card-acknowledge")).to_have_count(0)

    cards["crew"].get_by_test_id("card-acknowledge").click()
    expect(cards["crew"]).to_have_attribute("data-alarm", "acknowledged")
    expect(cards["crew"].get_by_test_id("alarm-acknowledged")).to_contain_text(
        hall.username("labeler")
    )
    expect(cards["crew"].get_by_test_id("card-acknowledge")).to_have_count(0)
    expect(cards["viewer"]).to_have_attribute("data-alarm", "acknowledged")

    # Still flickering: no new alarm while acknowledged.
    more = [_report(hall, plot_type, v, c) for c, v in ((3, "Good"), (4, "Bad"))]
    hall.record(*([r] for r in more))
    expect(cards["crew"]).to_have_attribute("data-verdict", "Bad")
    expect(cards["crew"]).to_have_attribute("data-alarm", "acknowledged")

    logged = hall.sql(
        """SELECT m.event, m.actor FROM monitoring_log m JOIN plot_types pt
           ON pt.id = m.plot_type_id WHERE pt.name = :pt AND m.event != '' ORDER BY m.id""",
        pt=plot_type,
    )
    assert [tuple(r) for r in logged] == [("raise", ""), ("acknowledge", hall.username("labeler"))]
    audit = hall.sql(
        "SELECT username FROM audit_log WHERE entity = 'alarm' AND entity_id = :pt", pt=plot_type
    )
    assert [r[0] for r in audit] == [hall.username("labeler")]
    # The Log page shows the raise and who acknowledged it.
    log = open_page("/log", who="viewer")
    rows = log.page.locator("[data-testid=log-row]", has_text=plot_type)
    expect(rows.get_by_test_id("log-event").filter(has_text="alarm acknowledge")).to_contain_text(
        f"by {hall.username('labeler')}"
    )
    expect(rows.get_by_test_id("log-event").filter(has_text="alarm raise")).to_have_count(1)
    for tab in (crew, viewer, log):
        tab.assert_no_console_errors()
