"""The admin pages in a real browser, each page's main action checked in the database:
users (create, role, disable, reset password), the permissions grid (a grant that lets a
labeller label a plot type they could not before), the audit log (filters, older pages),
plot types (collect percentage, ignored, training defaults), news (post, expire, delete)
and run conditions (record, delete). Developers see only their part; viewers nothing.

Rows these tests make have names of their own, so the other browser tests' counts hold.
With HYDRA_SCREENSHOTS=1 the permissions grid is saved to docs/screenshots/admin.png.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from PIL import Image
from playwright.sync_api import expect

from hydra_common.db.engine import make_engine, make_sessionmaker
from hydra_common.db.schema import (
    AuditLog,
    Classification,
    KeptReason,
    Plot,
    PlotType,
    PlotTypeClassification,
    Role,
    User,
    utcnow,
)
from tests.browser.browser_support import Hall, OpenTab, Tab, run_async, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.mysql]


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:6]}"


@dataclass
class Made:
    """A plot type with one image waiting for a label, and a labeller without permission."""

    plot_type: str
    plot_id: int
    user_id: int
    username: str


async def _make(hall: Hall) -> Made:
    engine = make_engine(hall.url)
    try:
        async with make_sessionmaker(engine)() as s:
            pt = PlotType(name=_name("ADM_occupancy"), detector="ADMIN")
            s.add(pt)
            await s.flush()
            ids = await s.scalars(
                sa.select(Classification.id).where(Classification.name.in_(("Good", "Bad")))
            )
            s.add_all(PlotTypeClassification(plot_type_id=pt.id, classification_id=c) for c in ids)
            rel = f"plots/{pt.name}/waiting.png"
            png = io.BytesIO()
            Image.new("RGB", (160, 120), (40, 160, 40)).save(png, format="PNG")
            (hall.storage / rel).parent.mkdir(parents=True, exist_ok=True)
            (hall.storage / rel).write_bytes(png.getvalue())
            plot = Plot(plot_type_id=pt.id, image_path=rel, kept_reason=KeptReason.UNBIASED)
            user = User(
                username=_name("labeller"),
                role=Role.LABELER,
                password_hash=hall.seeded.password_hash,
            )
            s.add_all([plot, user])
            await s.commit()
            return Made(pt.name, plot.id, user.id, user.username)
    finally:
        await engine.dispose()


@pytest.fixture
def open_as(hall: Hall, open_tab: OpenTab) -> Callable[[int, str], Tab]:
    """Open a path with a session of any user (signed with the API's key), as open_page
    does for the seeded ones."""

    def open_(user_id: int, path: str) -> Tab:
        return open_tab(path, hall.session_cookies(user_id))

    return open_


def _one(hall: Hall, query: str, **params: Any) -> Any:
    rows = hall.sql(query, **params)
    assert len(rows) == 1, rows
    return rows[0]


def test_a_grant_on_the_permissions_grid_lets_a_labeller_label(
    hall: Hall, open_page: Callable[..., Tab], open_as: Callable[[int, str], Tab]
) -> None:
    made = run_async(_make(hall))
    before = open_as(made.user_id, f"/labeler?plot_type={made.plot_type}")
    expect(before.page.get_by_text(f"You may not label {made.plot_type}.")).to_be_visible()

    tab = open_page("/admin/permissions", who="admin")
    page = tab.page
    page.get_by_test_id("perm-filter").fill(made.plot_type)
    cell = page.locator(
        f"[data-testid=perm-cell][data-user={made.username}][data-plot-type={made.plot_type}]"
    )
    expect(cell).not_to_be_checked()
    cell.click()  # a controlled box: it turns once the API has granted
    expect(cell).to_be_checked()
    expect(cell).to_be_enabled()
    granted = hall.sql(
        "SELECT 1 FROM user_permissions WHERE user_id = :u AND plot_type_id ="
        " (SELECT id FROM plot_types WHERE name = :p)",
        u=made.user_id,
        p=made.plot_type,
    )
    assert len(granted) == 1
    page.get_by_test_id("perm-filter").fill("")  # the whole grid, for the picture
    expect(page.get_by_test_id("perm-cell").nth(40)).to_be_visible()
    screenshot(page, "admin")
    tab.assert_no_console_errors()

    after = open_as(made.user_id, f"/labeler?plot_type={made.plot_type}")
    lp = after.page
    card = lp.get_by_test_id("plot-card")
    expect(card).to_have_count(1)
    expect(lp.get_by_text(f"You may not label {made.plot_type}.")).to_have_count(0)
    lp.get_by_test_id("palette-Bad").click()
    card.first.click()
    lp.get_by_test_id("apply-labels").click()
    expect(lp.get_by_text("Stored 1 label.")).to_be_visible()
    label = _one(
        hall,
        "SELECT c.name, u.username FROM labels l JOIN classifications c"
        " ON c.id = l.classification_id JOIN users u ON u.id = l.user_id WHERE l.plot_id = :p",
        p=made.plot_id,
    )
    assert tuple(label) == ("Bad", made.username)
    after.assert_no_console_errors()
    # Out of the hall's figures (the summary bar) for the other tests' screenshots.
    run_async(_ignore(hall, made.plot_type))


async def _ignore(hall: Hall, plot_type: str) -> None:
    engine = make_engine(hall.url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(PlotType).where(PlotType.name == plot_type).values(ignored=True)
            )
    finally:
        await engine.dispose()


def test_an_admin_creates_changes_disables_and_resets_a_user(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    name = _name("crew")
    tab = open_page("/admin/users", who="admin")
    page = tab.page
    page.get_by_test_id("new-user-name").fill(name)
    page.get_by_test_id("new-user-display").fill("Night shift")
    page.get_by_test_id("new-user-role").select_option("labeler")
    page.get_by_test_id("new-user-password").fill("first password 1")
    page.get_by_test_id("new-user-create").click()
    row = page.locator(f"[data-testid=user-row][data-username={name}]")
    expect(row).to_have_attribute("data-role", "labeler")
    first_hash = _one(hall, "SELECT password_hash FROM users WHERE username = :n", n=name)[0]

    row.get_by_test_id("user-role").select_option("expert")
    row.get_by_test_id("user-save-role").click()
    expect(row).to_have_attribute("data-role", "expert")
    row.get_by_test_id("user-toggle-active").click()
    expect(row).to_have_attribute("data-active", "false")
    row.get_by_test_id("user-password").fill("second password 2")
    row.get_by_test_id("user-set-password").click()
    expect(row.get_by_test_id("user-password")).to_have_value("")

    role, active, pw_hash, valid_after = _one(
        hall,
        "SELECT role, active, password_hash, sessions_valid_after FROM users WHERE username = :n",
        n=name,
    )
    assert (role, active) == ("expert", 0)
    assert pw_hash != first_hash and valid_after is not None
    actions = hall.sql(
        "SELECT action FROM audit_log WHERE entity = 'user' AND entity_id ="
        " (SELECT CAST(id AS CHAR) FROM users WHERE username = :n) ORDER BY id",
        n=name,
    )
    assert [a[0] for a in actions] == ["create", "update", "update", "update"]
    tab.assert_no_console_errors()


async def _audit_rows(hall: Hall, who: str, n: int) -> None:
    engine = make_engine(hall.url)
    now = utcnow()
    try:
        async with make_sessionmaker(engine)() as s:
            s.add_all(
                AuditLog(
                    username=who,
                    action="grant" if i == n - 1 else "update",
                    entity=who,  # a kind of its own: no other test's query sees these
                    entity_id=str(i),
                    after={"step": i},
                    at=now - timedelta(seconds=n - i),
                )
                for i in range(n)
            )
            await s.commit()
    finally:
        await engine.dispose()


def test_the_audit_log_filters_and_pages_back(hall: Hall, open_page: Callable[..., Tab]) -> None:
    who = _name("auditor")
    run_async(_audit_rows(hall, who, 55))
    tab = open_page("/admin/audit", who="admin")
    page = tab.page
    rows = page.get_by_test_id("audit-row")
    page.get_by_test_id("audit-username").fill(who)
    page.get_by_test_id("audit-apply").click()
    expect(rows).to_have_count(50)
    expect(rows.first).to_have_attribute("data-action", "grant")  # newest first
    page.get_by_test_id("audit-older").click()
    expect(rows).to_have_count(5)
    expect(page.get_by_test_id("audit-older")).to_be_disabled()
    page.get_by_test_id("audit-newer").click()
    expect(rows).to_have_count(50)
    page.get_by_test_id("audit-action").fill("grant")
    page.get_by_test_id("audit-apply").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-username", who)
    tab.assert_no_console_errors()


def test_an_admin_changes_a_plot_type_and_an_expert_cannot(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    made = run_async(_make(hall))
    tab = open_page("/admin/plot-types", who="admin")
    page = tab.page
    page.get_by_test_id("pt-filter").fill(made.plot_type)
    row = page.locator(f"[data-testid=pt-row][data-plot-type={made.plot_type}]")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_count(2)  # Good and Bad, Bad marked as alarming
    expect(row.locator(".alarm-label")).to_have_text("Bad ⚠")
    row.get_by_test_id("pt-collect").fill("12.5")
    row.get_by_test_id("pt-ignored").check()
    row.get_by_test_id("pt-arch").select_option("small")
    row.get_by_test_id("pt-sampling").select_option("oversample")
    row.get_by_test_id("pt-save").click()
    expect(row).to_have_attribute("data-ignored", "true")
    expect(row).to_have_attribute("data-collect", "12.5")
    saved = _one(
        hall,
        "SELECT collect_percent, ignored, default_architecture, default_sampling"
        " FROM plot_types WHERE name = :n",
        n=made.plot_type,
    )
    assert tuple(saved) == (12.5, 1, "small", "oversample")
    tab.assert_no_console_errors()

    expert = open_page("/admin/plot-types", who="expert")
    expect(expert.page.get_by_text("The admin pages are for admins")).to_be_visible()
    expect(expert.page.get_by_test_id("admin-page")).to_have_count(0)


def test_news_is_posted_expired_and_deleted(hall: Hall, open_page: Callable[..., Tab]) -> None:
    title = _name("Magnet quench")
    tab = open_page("/admin/news", who="admin")
    page = tab.page
    page.get_by_test_id("news-title").fill(title)
    page.get_by_test_id("news-body").fill("The solenoid tripped; plots of run 72310 are empty.")
    page.get_by_test_id("news-severity").select_option("warning")
    page.get_by_test_id("news-post").click()
    row = page.locator(f"[data-testid=news-row][data-title='{title}']")
    expect(row).to_have_attribute("data-expired", "false")
    assert _one(hall, "SELECT severity FROM news WHERE title = :t", t=title)[0] == "warning"

    row.get_by_test_id("news-expire").click()
    expect(row).to_have_attribute("data-expired", "true")
    assert _one(hall, "SELECT expires_at FROM news WHERE title = :t", t=title)[0] is not None
    row.get_by_test_id("news-delete").click()
    expect(row).to_have_count(0)
    assert hall.sql("SELECT id FROM news WHERE title = :t", t=title) == []
    tab.assert_no_console_errors()


def test_run_conditions_are_recorded_shown_live_and_deleted(
    hall: Hall, open_page: Callable[..., Tab]
) -> None:
    run = 990000 + uuid.uuid4().int % 9999
    tab = open_page("/admin/run-conditions", who="admin")
    page = tab.page
    expect(page.get_by_test_id("rc-live")).to_contain_text("GET /api/run-conditions")
    page.get_by_test_id("rc-run").fill(str(run))
    page.get_by_test_id("rc-beam").fill("0.25")
    page.get_by_test_id("rc-type").fill("cosmics")
    page.get_by_test_id("rc-special").check()
    page.get_by_test_id("rc-add").click()
    expect(page.get_by_test_id("rc-current")).to_have_attribute("data-run", str(run))
    expect(page.get_by_test_id("rc-current")).to_contain_text("special: alarms suppressed")
    # What the keeper's rule makes of it (no EPICS PVs in this hall: run conditions rule).
    state = page.get_by_test_id("rc-beam-state")
    expect(state).to_have_attribute("data-source", "rest")
    expect(state).to_have_attribute("data-state", "off")  # 0.25 nA, below the threshold
    expect(state).to_contain_text("suppressed")
    row = page.locator(f"[data-testid=rc-row][data-run='{run}']")
    expect(row).to_have_count(1)
    beam, run_type, special = _one(
        hall,
        "SELECT beam_current, run_type, special FROM run_conditions WHERE run_number = :r",
        r=run,
    )
    assert (beam, run_type, special) == (0.25, "cosmics", 1)
    row.get_by_test_id("rc-delete").click()
    expect(row).to_have_count(0)
    assert hall.sql("SELECT id FROM run_conditions WHERE run_number = :r", r=run) == []
    tab.assert_no_console_errors()


def test_developers_see_their_part_and_viewers_nothing(
    hall: Hall, open_page: Callable[..., Tab], open_as: Callable[[int, str], Tab]
) -> None:
    viewer = open_page("/admin/users", who="viewer")
    expect(viewer.page.get_by_text("The admin pages are for admins")).to_be_visible()
    expect(viewer.page.get_by_test_id("nav-admin")).to_have_count(0)

    developer = run_async(_developer(hall))
    tab = open_as(developer, "/admin")
    page = tab.page
    expect(page.get_by_test_id("plot-types-admin")).to_be_visible()  # the developer's start
    for tab_name in ("plot-types", "news", "run-conditions"):
        expect(page.get_by_test_id(f"admin-tab-{tab_name}")).to_be_visible()
    for tab_name in ("users", "permissions", "audit"):
        expect(page.get_by_test_id(f"admin-tab-{tab_name}")).to_have_count(0)
    expect(page.get_by_test_id("pt-save")).to_have_count(0)
    expect(page.get_by_test_id("pt-collect").first).to_be_disabled()
    page.goto("/admin/run-conditions")
    expect(page.get_by_test_id("rc-add")).to_be_visible()
    expect(page.get_by_test_id("rc-delete")).to_have_count(0)
    tab.assert_no_console_errors()


async def _developer(hall: Hall) -> int:
    engine = make_engine(hall.url)
    try:
        async with make_sessionmaker(engine)() as s:
            user = User(
                username=_name("dev"),
                role=Role.DEVELOPER,
                password_hash=hall.seeded.password_hash,
            )
            s.add(user)
            await s.commit()
            return user.id
    finally:
        await engine.dispose()
