"""Masks of accepted problems on the Run page: an expert of a plot type opens a card's
details, drags a rectangle on its image, gives a reason and an expiry, saves, and the mask
is stored (audited) and drawn on the card, for the crew too."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from hydra_common.db.engine import make_engine
from hydra_common.db.schema import PlotTypeMask
from tests.browser.browser_seed import CURRENT_RUN, LIBRARY
from tests.browser.browser_support import Hall, Tab, run_async, wait_for_images

pytestmark = [pytest.mark.browser, pytest.mark.mysql]

REASON = "dead FCAL block 12, accepted"


async def _remove_masks(url: str, plot_type_id: int) -> None:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.delete(PlotTypeMask).where(PlotTypeMask.plot_type_id == plot_type_id)
            )
    finally:
        await engine.dispose()


def test_expert_draws_a_mask_on_a_run_card(hall: Hall, open_page: Callable[..., Tab]) -> None:
    pid = hall.seeded.plot_types[LIBRARY]  # the seeded expert's plot type
    try:
        tab = open_page("/", who="expert")
        page = tab.page
        card = page.locator(f'[data-testid="run-card"][data-plot-type="{LIBRARY}"]')
        expect(card).to_be_visible()
        expect(card.get_by_test_id("mask-overlay")).to_have_count(0)
        card.get_by_test_id("card-details").click()
        canvas = page.get_by_test_id("mask-canvas")
        expect(canvas).to_be_visible()
        wait_for_images(page)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 50 and box["height"] > 50
        # Drag from (0.1, 0.2) to (0.5, 0.6) of the image.
        page.mouse.move(box["x"] + 0.1 * box["width"], box["y"] + 0.2 * box["height"])
        page.mouse.down()
        page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.4 * box["height"], steps=4)
        page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.6 * box["height"], steps=4)
        page.mouse.up()
        expect(page.get_by_test_id("mask-row")).to_have_count(1)
        expect(page.get_by_test_id("mask-save")).to_be_disabled()  # no reason, no expiry yet
        page.get_by_test_id("mask-reason").fill(REASON)
        page.get_by_test_id("mask-until-run").fill(str(CURRENT_RUN + 5))
        page.get_by_test_id("mask-until-time").fill("2099-12-31T12:00")
        page.get_by_test_id("mask-save").click()
        expect(page.get_by_test_id("mask-saved")).to_contain_text("1 mask saved")

        rows = hall.sql(
            "SELECT x0, y0, x1, y1, reason, until_run, until_time, created_by"
            " FROM plot_type_masks WHERE plot_type_id = :p",
            p=pid,
        )
        assert len(rows) == 1
        x0, y0, x1, y1, reason, until_run, until_time, by = rows[0]
        assert (x0, y0, x1, y1) == pytest.approx((0.1, 0.2, 0.5, 0.6), abs=0.02)
        assert (reason, until_run, by) == (REASON, CURRENT_RUN + 5, hall.username("expert"))
        assert until_time is not None and until_time.year == 2099
        audit = hall.sql(
            "SELECT username FROM audit_log WHERE action = 'set_masks' AND entity_id = :p",
            p=str(pid),
        )
        assert [a[0] for a in audit] == [hall.username("expert")]

        page.get_by_test_id("close-details").click()
        overlay = card.get_by_test_id("mask-overlay")
        expect(overlay).to_have_count(1)
        title = re.compile(re.escape(f"accepted: {REASON} (until run {CURRENT_RUN + 5} or "))
        expect(overlay).to_have_attribute("title", title)
        tab.assert_no_console_errors()

        # The crew sees the mask on the card, and no editor.
        crew = open_page("/", who="viewer")
        crew_card = crew.page.locator(f'[data-testid="run-card"][data-plot-type="{LIBRARY}"]')
        expect(crew_card.get_by_test_id("mask-overlay")).to_have_count(1)
        crew_card.get_by_test_id("card-details").click()
        expect(crew.page.get_by_test_id("card-details-panel")).to_be_visible()
        expect(crew.page.get_by_test_id("mask-editor")).to_have_count(0)
        crew.assert_no_console_errors()
    finally:
        run_async(_remove_masks(hall.url, pid))
