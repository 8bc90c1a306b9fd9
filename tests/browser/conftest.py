"""Fixtures of the browser tests: a seeded hall, the real API and keeper, and Chromium.

The API (``python -m hydra_api``, serving the built front end) and the keeper
(``python -m hydra_keeper``) run as their own processes through the launcher, on a fresh
MariaDB database seeded by ``browser_seed``. Playwright drives Debian's Chromium at
/usr/bin/chromium (never a downloaded browser). Sessions are minted with the API's signing
key, as the API tests do, so only the login test pays for argon2. The browser is
module-scoped: sync Playwright holds a running event loop in the test thread while it is
open, which the rest of the suite's tests must not inherit.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, expect, sync_playwright

from hydra_api.security import hash_password
from hydra_common.launcher import LocalStack, Ports, stack_environment
from hydra_testsupport.mysql import create_mysql_database, drop_mysql_database
from tests.browser import browser_seed
from tests.browser.browser_support import (
    ADMIN_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    VIEWPORT,
    Hall,
    OpenTab,
    Tab,
    ensure_frontend,
    log_tails,
    off_loop,
    require_chromium,
    run_async,
)

# A loaded 2-core machine can take seconds to render; never wait for an exact moment.
expect.set_options(timeout=30_000)


@pytest.fixture(scope="session")
def hall() -> Iterator[Hall]:
    """A fresh MariaDB database with a day of Hall D, and the API, keeper and balancer on it."""
    require_chromium()
    off_loop(ensure_frontend)
    url = off_loop(create_mysql_database, "hydra_browser")
    data_dir = Path(tempfile.mkdtemp(prefix="hydra-browser-"))
    stack: LocalStack | None = None
    try:
        storage = data_dir / "storage"
        seeded = run_async(browser_seed.seed(url, storage, hash_password(ADMIN_PASSWORD)))
        ports = Ports.free()
        secret = secrets.token_urlsafe(48)
        env = stack_environment(ports)
        env.update(
            HYDRA_DATABASE_URL=url,
            HYDRA_DATA_DIR=str(data_dir),
            HYDRA_HALL="Hall D",
            HYDRA_API_HOST="127.0.0.1",
            HYDRA_KEEPER_HOST="127.0.0.1",
            HYDRA_SECRET_KEY=secret,
            HYDRA_ADMIN_PASSWORD=ADMIN_PASSWORD,
            HYDRA_STATUS_PROBE_TIMEOUT="10",  # a loaded CI machine may answer slowly
            HYDRA_SSE_POLL_SECONDS="0.25",
            HYDRA_DRIFT_INTERVAL_SECONDS="2",  # the drift test waits for the keeper's pass
            HYDRA_LOG_LEVEL="INFO",
            # The Status page's live figures come from the real balancer's /metrics (the
            # keeper leaves its own heartbeat in the database).
            HYDRA_STATUS_TARGETS=f"balancer=http://127.0.0.1:{ports.metrics['balancer']}/metrics",
        )
        stack = LocalStack(
            env, ports, data_dir / "logs", services=("keeper", "balancer", "api"), restart=False
        )
        stack.start()
        try:
            off_loop(stack.wait_ready, 120.0)
        except Exception as exc:
            raise RuntimeError(
                f"API or keeper did not start:\n{log_tails(data_dir / 'logs')}"
            ) from exc
        yield Hall(
            url=url,
            base=f"http://127.0.0.1:{ports.api}",
            keeper_address=f"127.0.0.1:{ports.keeper}",
            storage=storage,
            secret_key=secret,
            seeded=seeded,
            stack=stack,
        )
    finally:
        if stack is not None:
            stack.stop(10)
        off_loop(drop_mysql_database, url)
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, for one test module."""
    require_chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_tab(hall: Hall, browser: Browser) -> Iterator[OpenTab]:
    """Open a path of the front end with these cookies, in a browser context of its own
    (1600x1000) that records the page's console errors; the contexts close after the test."""
    contexts = []

    def open_(path: str, cookies: list[dict[str, Any]]) -> Tab:
        context = browser.new_context(viewport=VIEWPORT, base_url=hall.base)  # type: ignore[arg-type]
        contexts.append(context)
        if cookies:
            context.add_cookies(cookies)  # type: ignore[arg-type]
        page = context.new_page()
        page.set_default_timeout(30_000)
        tab = Tab(page)

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                tab.errors.append(f"{msg.text} ({msg.location.get('url', '')})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: tab.errors.append(f"uncaught: {exc}"))
        page.goto(path)
        return tab

    yield open_
    for context in contexts:
        context.close()


@pytest.fixture
def open_page(hall: Hall, open_tab: OpenTab) -> Callable[..., Tab]:
    """Open a path of the front end as a seeded user (or anonymously)."""

    def open_(path: str, who: str | None = None) -> Tab:
        return open_tab(path, [] if who is None else hall.cookies(who))

    return open_
