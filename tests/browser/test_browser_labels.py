"""The Labels page: an admin adds a hall's own label and makes it valid for a plot type, in
a real browser; the database then holds exactly that. Others do not see the page.

With HYDRA_SCREENSHOTS=1 the page is saved to docs/screenshots/labels.png.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.browser_seed import LIBRARY
from tests.browser.browser_support import Hall, Tab, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.mysql]


def test_an_admin_adds_a_label_and_makes_it_valid(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    name = f"Glitch{uuid.uuid4().hex[:6]}"
    tab = open_page("/labels", who="admin")
    page = tab.page
    expect(page.get_by_test_id("label-row").first).to_be_visible()
    page.get_by_test_id("new-label-name").fill(name)
    page.get_by_test_id("new-label-alarm").check()
    page.get_by_test_id("new-label-description").fill("electronics glitch in one crate")
    page.get_by_test_id("new-label-create").click()
    row = page.locator(f"[data-testid=label-row][data-label={name}]")
    expect(row).to_have_attribute("data-alarm", "true")
    expect(row).to_have_attribute("data-trainable", "true")

    page.get_by_test_id("plot-type-select").select_option(LIBRARY)
    box = page.locator(f"[data-testid=plot-type-labels][data-plot-type={LIBRARY}]")
    box.get_by_test_id(f"valid-{name}").check()
    box.get_by_test_id("save-plot-type-labels").click()
    expect(box.get_by_test_id("save-plot-type-labels")).to_be_disabled()

    (created,) = hall.sql(
        "SELECT alarm, trainable, description FROM classifications WHERE name = :n", n=name
    )
    assert tuple(created) == (1, 1, "electronics glitch in one crate")
    valid = hall.sql(
        "SELECT c.name FROM plot_type_classifications ptc"
        " JOIN classifications c ON c.id = ptc.classification_id"
        " JOIN plot_types pt ON pt.id = ptc.plot_type_id WHERE pt.name = :p",
        p=LIBRARY,
    )
    assert name in {r[0] for r in valid}
    screenshot(page, "labels")
    tab.assert_no_console_errors()


def test_the_labels_page_is_for_admins_only(hall: Hall, open_page: Callable[..., Tab]) -> None:
    tab = open_page("/labels", who="expert")
    expect(tab.page.get_by_text("Only admins manage the hall's labels.")).to_be_visible()
    expect(tab.page.get_by_test_id("labels-page")).to_have_count(0)
