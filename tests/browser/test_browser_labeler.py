"""The Labeler in a real browser: 100 images labelled with one click, one shift+click and
Apply, stored as labels and label history in the database."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.browser_seed import LABELLING, PAINTING
from tests.browser.browser_support import Hall, Tab, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.mysql]


def test_label_100_images_with_a_click_and_a_shift_click(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    tab = open_page(f"/labeler?plot_type={LABELLING}", who="labeler")
    page = tab.page
    page.get_by_test_id("page-size").select_option("120")
    cards = page.get_by_test_id("plot-card")
    expect(cards).to_have_count(120)
    page.get_by_test_id("palette-Acceptable").click()
    expect(page.get_by_test_id("palette-Acceptable")).to_have_attribute("data-active", "true")

    cards.nth(0).click()
    cards.nth(99).click(modifiers=["Shift"])

    expect(page.locator("[data-testid=plot-card][data-painted=Acceptable]")).to_have_count(100)
    expect(cards.nth(100)).to_have_attribute("data-painted", "")
    wanted = [int(cards.nth(i).get_attribute("data-plot-id") or 0) for i in range(100)]
    apply = page.get_by_test_id("apply-labels")
    expect(apply).to_have_text("Apply (100)")
    apply.click()

    expect(page.get_by_text("Stored 100 labels.")).to_be_visible()
    # The labelled images leave the unlabelled grid: the 30 left of the 130 remain.
    expect(cards).to_have_count(30)
    expect(page.get_by_test_id("label-count-Acceptable").locator("td.num")).to_have_text("100")

    labels = hall.sql(
        """SELECT l.plot_id, c.name, u.username FROM labels l
           JOIN classifications c ON c.id = l.classification_id
           JOIN users u ON u.id = l.user_id
           JOIN plot_types pt ON pt.id = l.plot_type_id WHERE pt.name = :pt""",
        pt=LABELLING,
    )
    assert sorted(r[0] for r in labels) == sorted(wanted)
    assert {(r[1], r[2]) for r in labels} == {("Acceptable", hall.username("labeler"))}
    history = hall.sql(
        """SELECT h.plot_id, h.old_classification_id, c.name, h.source FROM label_history h
           JOIN classifications c ON c.id = h.new_classification_id
           WHERE h.plot_id IN :ids""".replace(":ids", f"({','.join(map(str, wanted))})"),
    )
    assert sorted(r[0] for r in history) == sorted(wanted)
    assert {(r[1], r[2], r[3]) for r in history} == {(None, "Acceptable", "labeler")}
    tab.assert_no_console_errors()


def test_paint_several_labels_before_applying(hall: Hall, open_page: Callable[..., Tab]) -> None:
    tab = open_page(f"/labeler?plot_type={PAINTING}", who="labeler")
    page = tab.page
    cards = page.get_by_test_id("plot-card")
    expect(cards).to_have_count(48)
    page.get_by_test_id("palette-Good").click()
    cards.nth(0).click()
    cards.nth(4).click(modifiers=["Shift"])
    page.get_by_test_id("palette-Bad").click()
    cards.nth(5).click()
    page.get_by_test_id("palette-Acceptable").click()
    cards.nth(6).click()
    palette = page.get_by_test_id("palette").get_by_role("radio")
    order = [palette.nth(i).get_attribute("data-testid") for i in range(palette.count())]
    page.keyboard.press(str(order.index("palette-NoData") + 1))  # keys 1-9 pick labels
    expect(page.get_by_test_id("palette-NoData")).to_have_attribute("data-active", "true")
    cards.nth(7).click()
    page.keyboard.press(str(order.index("palette-Good") + 1))
    cards.nth(8).click()
    cards.nth(11).click(modifiers=["Shift"])

    painted = [cards.nth(i).get_attribute("data-painted") for i in range(13)]
    assert painted == ["Good"] * 5 + ["Bad", "Acceptable", "NoData"] + ["Good"] * 4 + [""]
    expect(page.get_by_test_id("apply-labels")).to_have_text("Apply (12)")
    expect(page.get_by_test_id("leaderboard-entry").first).to_be_visible()
    screenshot(page, "labeler")
    # Nothing is stored before Apply.
    assert hall.sql(
        """SELECT COUNT(*) FROM labels l JOIN plots p ON p.id = l.plot_id
           WHERE p.kept_reason = 'unconfirmed'"""
    ) == [(0,)]
    tab.assert_no_console_errors()
