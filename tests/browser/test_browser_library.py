"""Thresholds in the Library: a Viewer cannot change them (nothing to edit, and the API
refuses a forced PUT), an Expert with permission on the plot type can."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.browser_seed import LIBRARY, PAINTING
from tests.browser.browser_support import Hall, Tab

pytestmark = [pytest.mark.browser, pytest.mark.mysql]

FORCED_PUT = """async ([modelId, label]) => {
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("hydra_csrf="))?.slice(11);
  const r = await fetch(`/api/models/${modelId}/thresholds/${label}`, {
    method: "PUT",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf ?? ""},
    body: JSON.stringify({value: 0.11}),
  });
  return r.status;
}"""


def _threshold(hall: Hall, model_id: int, label: str) -> tuple[float, str, str]:
    rows = hall.sql(
        """SELECT t.threshold, t.method, t.set_by FROM thresholds t
           JOIN classifications c ON c.id = t.classification_id
           WHERE t.model_id = :m AND c.name = :label""",
        m=model_id,
        label=label,
    )
    return rows[0][0], rows[0][1], rows[0][2]


def _open_library(open_page: Callable[..., Tab], who: str, plot_type: str) -> Tab:
    tab = open_page(f"/library?plot_type={plot_type}", who=who)
    expect(tab.page.get_by_test_id("threshold-row").first).to_be_visible()
    return tab


def _bad_row(page: Page) -> Locator:
    return page.locator("[data-testid=threshold-row][data-label=Bad]")


def test_viewer_cannot_edit_a_threshold(hall: Hall, open_page: Callable[..., Tab]) -> None:
    model_id = hall.seeded.active_model[LIBRARY]
    before = _threshold(hall, model_id, "Bad")
    tab = _open_library(open_page, "viewer", LIBRARY)
    page = tab.page
    expect(page.get_by_test_id("threshold-input")).to_have_count(0)
    expect(page.get_by_test_id("threshold-save")).to_have_count(0)
    expect(_bad_row(page).get_by_test_id("threshold-value")).to_have_text(f"{before[0]:.2f}")
    expect(page.get_by_test_id("promote-model")).to_have_count(0)  # the active model is shown
    assert page.evaluate(FORCED_PUT, [model_id, "Bad"]) == 403
    assert _threshold(hall, model_id, "Bad") == before


def test_expert_edits_a_threshold_of_their_plot_type(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    expert = hall.username("expert")
    model_id = hall.seeded.active_model[LIBRARY]
    tab = _open_library(open_page, "expert", LIBRARY)
    page = tab.page
    expect(page.get_by_test_id("model-panel")).to_have_attribute("data-model-id", str(model_id))
    row = _bad_row(page)
    row.get_by_test_id("threshold-input").fill("0.83")
    row.get_by_test_id("threshold-save").click()
    expect(_bad_row(page).get_by_test_id("threshold-set-by")).to_contain_text(f"manual · {expert}")
    expect(_bad_row(page).get_by_test_id("threshold-input")).to_have_value("0.83")
    value, method, set_by = _threshold(hall, model_id, "Bad")
    assert value == pytest.approx(0.83, abs=1e-6) and (method, set_by) == ("manual", expert)
    audit = hall.sql(
        "SELECT username, action, entity_id FROM audit_log WHERE action = 'set_threshold'"
    )
    assert (expert, "set_threshold", f"{model_id}/Bad") in audit
    tab.assert_no_console_errors()


def test_expert_cannot_edit_another_plot_type(hall: Hall, open_page: Callable[..., Tab]) -> None:
    model_id = hall.seeded.active_model[PAINTING]
    tab = _open_library(open_page, "expert", PAINTING)
    expect(tab.page.get_by_test_id("threshold-input")).to_have_count(0)
    assert tab.page.evaluate(FORCED_PUT, [model_id, "Bad"]) == 403
