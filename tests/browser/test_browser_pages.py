"""Every page renders its seeded content without console errors, with the summary figures
and the news banner in the header; the login page logs a user in.

With HYDRA_SCREENSHOTS=1 the pages are saved to docs/screenshots/ (the README shows them).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.browser_seed import LIBRARY, PAINTING
from tests.browser.browser_support import ADMIN_PASSWORD, Hall, Tab, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.mysql]

# page name -> (path, a test id that only shows once the page's data is there)
PAGES = {
    "run": ("/", "run-card"),
    "labeler": (f"/labeler?plot_type={PAINTING}", "plot-card"),
    "library": (f"/library?plot_type={LIBRARY}", "confusion-cell"),
    "report": ("/report/{model}", "report-row"),
    "log": ("/log", "log-row"),
    "status": ("/status", "timing"),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_without_console_errors(
    name: str, hall: Hall, open_page: Callable[..., Tab]
) -> None:
    path, ready = PAGES[name]
    tab = open_page(path.format(model=hall.seeded.active_model[LIBRARY]), who="admin")
    page = tab.page
    expect(page.get_by_test_id(ready).first).to_be_visible()
    expect(page.get_by_test_id("current-user")).to_contain_text("admin")
    expect(page.get_by_test_id("summary-plot-types").locator("dd")).to_have_text("15")
    expect(page.get_by_test_id("summary-active-models").locator("dd")).to_have_text("14")
    expect(page.get_by_test_id("summary-analysed").locator("dd")).not_to_have_text("0")
    expect(page.get_by_test_id("news-banner")).to_contain_text("Beam studies")
    if name == "library":
        # The active model's enhanced confusion matrix: counts and weight histograms.
        expect(page.get_by_test_id("model-row")).to_have_count(3)
        diagonal = page.locator("[data-testid=confusion-cell][data-true=Good][data-predicted=Good]")
        expect(diagonal.locator(".count")).not_to_have_text("0")
        expect(diagonal.locator("svg.sparkline rect").first).to_be_attached()
        expect(page.get_by_test_id("sampling-method")).to_have_text("undersample")
    if name == "log":
        expect(page.locator("[data-testid=log-row][data-transition=true]").first).to_be_visible()
        expect(page.locator("[data-testid=log-group][data-detector=FDC]")).to_be_visible()
    if name == "status":
        # The keeper's heartbeat from the database, the balancer's figures from its /metrics.
        for service in ("keeper", "balancer"):
            row = page.locator(f"[data-testid=service-row][data-alive=true]:has-text('{service}')")
            expect(row.first).to_be_visible()
        expect(page.get_by_test_id("queue-depth")).to_contain_text("0")
        expect(page.get_by_test_id("service-row").filter(has_text="queue_depth=0")).to_be_visible()
    if name not in ("run", "labeler"):  # those two are taken with what their tests show
        screenshot(page, name)
    tab.assert_no_console_errors()


def test_login_page_logs_the_admin_in(open_page: Callable[..., Tab]) -> None:
    tab = open_page("/login")
    page = tab.page
    page.get_by_test_id("login-username").fill("admin")
    page.get_by_test_id("login-password").fill("not the password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("error")).to_be_visible()
    page.get_by_test_id("login-password").fill(ADMIN_PASSWORD)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("current-user")).to_contain_text("admin")
