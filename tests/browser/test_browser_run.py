"""The Run page in a real browser: a report sent to the real keeper turns an open page's card
Bad and moves it into the BAD PLOTS strip, without a reload."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

import numpy as np
import pytest
from hydra.v1 import order_pb2, report_pb2
from playwright.sync_api import expect

from hydra_common.ids import uuid7
from hydra_trainer.catalog import find_spec
from hydra_trainer.plots import make_plot
from tests.browser.browser_seed import CURRENT_RUN, LIVE, heat_map_for
from tests.browser.browser_support import Hall, Tab, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.mysql]


def _bad_report(hall: Hall) -> report_pb2.Report:
    """A predictor's report of a confirmed Bad image of LIVE, with its Grad-CAM map."""
    spec = find_spec(LIVE, "halld")
    image, truth = make_plot(spec, "Bad", np.random.default_rng(2))  # a dead sector
    png = io.BytesIO()
    image.save(png, format="PNG")
    now = time.time_ns()
    order = order_pb2.InferenceOrder(
        order_id=uuid7(),
        plot_type=LIVE,
        run_period="RunPeriod-2026-01",
        run_number=CURRENT_RUN,
        chunk=4,
        source_path=f"RunPeriod-2026-01/Run0{CURRENT_RUN}/{LIVE}_0004.png",
        image=png.getvalue(),
        stages=order_pb2.StageTimestamps(
            file_ns=now - 900_000_000,
            fed_ns=now - 300_000_000,
            queued_ns=now - 290_000_000,
            dispatched_ns=now - 280_000_000,
            predict_start_ns=now - 270_000_000,
            predict_end_ns=now - 200_000_000,
            reported_ns=now - 100_000_000,
        ),
        file_size=len(png.getvalue()),
    )
    weights = {"Good": 0.02, "Acceptable": 0.01, "Bad": 0.96, "NoData": 0.01}
    return hall.report(order, weights, heat_map=heat_map_for(truth))


def test_new_bad_verdict_appears_without_reload(hall: Hall, open_page: Callable[..., Tab]) -> None:
    tab = open_page("/", who="viewer")
    page = tab.page
    expect(page.get_by_test_id("sse-state")).to_have_attribute("data-state", "live")
    card = page.locator(f"[data-testid=run-card][data-plot-type={LIVE}]")
    expect(card).to_have_attribute("data-verdict", "Good")
    expect(page.get_by_test_id("run-grid").locator(f"[data-plot-type={LIVE}]")).to_have_count(1)
    expect(page.get_by_test_id("run-number")).to_have_text(str(CURRENT_RUN))
    page.evaluate("window.__sameDocument = true")

    report = _bad_report(hall)
    assert hall.record([report]) == [report.order.order_id]
    # One Bad is a verdict, not an alarm (2 of 3 raise it): no flash yet.
    expect(page.get_by_test_id("bad-strip").locator(f"[data-plot-type={LIVE}]")).to_have_count(1)
    expect(page.get_by_test_id("new-bad")).to_have_count(0)
    second = _bad_report(hall)
    assert hall.record([second]) == [second.order.order_id]

    in_strip = page.get_by_test_id("bad-strip").locator(f"[data-plot-type={LIVE}]")
    expect(in_strip).to_have_attribute("data-verdict", "Bad")
    expect(in_strip).to_have_attribute("data-confirmed", "true")
    expect(in_strip.get_by_test_id("heatmap")).to_be_visible()
    expect(page.get_by_test_id("run-grid").locator(f"[data-plot-type={LIVE}]")).to_have_count(0)
    expect(page.get_by_test_id("new-bad")).to_contain_text(LIVE)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    stored = hall.sql(
        """SELECT rt.verdict, rt.confirmed, rt.heatmap_path FROM run_time rt
           JOIN plot_types pt ON pt.id = rt.plot_type_id WHERE pt.name = :pt""",
        pt=LIVE,
    )
    assert stored[0][:2] == ("Bad", 1) and stored[0][2]
    tab.assert_no_console_errors()


def test_run_page_shows_bad_plots_first_with_heat_maps(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    tab = open_page("/", who="viewer")
    page = tab.page
    strip = page.get_by_test_id("bad-strip")
    # Seeded: FDC and RF_TAGH confirmed Bad, DIRC unconfirmed; all others in the grid.
    for plot_type in ("FDC_occupancy", "RF_TAGH_selftiming", "DIRC_occupancy"):
        expect(strip.locator(f"[data-plot-type={plot_type}]")).to_have_count(1)
    expect(
        strip.locator("[data-plot-type=FDC_occupancy]").get_by_test_id("heatmap")
    ).to_be_visible()
    expect(page.get_by_test_id("run-grid").get_by_test_id("run-card").first).to_be_visible()
    expect(page.get_by_test_id("beam")).to_contain_text("beam on")
    page.get_by_test_id("heatmap-opacity").fill("0.6")
    screenshot(page, "run")
    page.get_by_test_id("detector-filter-RF").uncheck()
    expect(page.locator("[data-testid=run-card][data-plot-type^=RF_]")).to_have_count(0)
    tab.assert_no_console_errors()
