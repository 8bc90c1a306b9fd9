"""Helpers of the browser tests: the hall under test (its database, sessions and keeper),
pages, screenshots, off-loop calls.

Sync Playwright keeps an event loop running in the test thread while a browser is open, so
everything asynchronous here (database, gRPC) runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hydra.v1 import keeper_pb2, keeper_pb2_grpc, order_pb2, report_pb2
from PIL import Image
from playwright.sync_api import Page

from hydra_api.security import SessionSigner
from hydra_common.grpcserver import channel
from hydra_common.launcher import LocalStack
from hydra_testsupport.rows import fetch_rows
from hydra_trainer.catalog import find_spec
from tests.browser import browser_seed

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "services" / "api" / "src" / "hydra_api" / "static"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
SCREENSHOTS = REPO / "docs" / "screenshots"
SCREENSHOT_MAX_BYTES = 400_000
ADMIN_PASSWORD = "browser-test-admin-password"


def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Call ``fn`` in a worker thread (the test thread may hold Playwright's running loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion in a worker thread."""
    result: T = off_loop(asyncio.run, coro)
    return result


def require_chromium() -> None:
    """Skip without Chromium, except in CI, where the browser tests must run."""
    if CHROMIUM.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is required in CI (the browser tests must run)")
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); browser tests skipped")


def ensure_frontend() -> None:
    """Build the front end when it is missing or older than its sources."""
    index = STATIC / "index.html"
    sources = [*(REPO / "frontend" / "src").rglob("*"), REPO / "frontend" / "index.html"]
    newest = max((p.stat().st_mtime for p in sources if p.is_file()), default=0.0)
    if index.is_file() and index.stat().st_mtime >= newest:
        return
    subprocess.run(["make", "frontend"], cwd=REPO, check=True)


@dataclass
class Hall:
    """The seeded hall and the running API and keeper."""

    url: str
    base: str
    keeper_address: str
    storage: Path
    secret_key: str
    seeded: browser_seed.Seeded
    stack: LocalStack

    def sql(self, query: str, **params: Any) -> list[Any]:
        """Rows of a SQL query on the hall's database."""
        return run_async(fetch_rows(self.url, query, params))

    def record(self, *batches: list[report_pb2.Report]) -> list[str]:
        """Send reports to the hall's keeper as a predictor does, one Record request per batch
        (the keeper commits each request as one batch, in order); the order ids it acked."""
        return run_async(_record(self.keeper_address, batches))

    def report(
        self, order: order_pb2.InferenceOrder, weights: dict[str, float], **extra: Any
    ) -> report_pb2.Report:
        """A predictor's report on ``order`` by its plot type's seeded active model (v1)."""
        labels = list(find_spec(order.plot_type, "halld").labels)
        return report_pb2.Report(
            order=order,
            status=report_pb2.REPORT_STATUS_OK,
            model_id=self.seeded.active_model[order.plot_type],
            model_name=order.plot_type.lower(),
            model_version=1,
            labels=labels,
            weights=[weights[label] for label in labels],
            predictor_id="browser-test",
            **extra,
        )

    def username(self, who: str) -> str:
        """The seeded username of ``admin``, ``expert``, ``labeler`` or ``viewer``."""
        return self.seeded.users[who][1]

    def cookies(self, who: str) -> list[dict[str, Any]]:
        """Session and CSRF cookies of a seeded user, signed with the API's key."""
        return self.session_cookies(self.seeded.users[who][0])

    def session_cookies(self, user_id: int) -> list[dict[str, Any]]:
        """Session and CSRF cookies of any user (whose password hash is the seeded one)."""
        signer = SessionSigner(self.secret_key)
        token = signer.issue(user_id, self.seeded.password_hash, 3600)
        claims = signer.verify(token)
        assert claims is not None
        csrf = signer.csrf_token(claims.nonce)
        return [
            {"name": "hydra_session", "value": token, "url": self.base, "httpOnly": True},
            {"name": "hydra_csrf", "value": csrf, "url": self.base},
        ]


async def _record(address: str, batches: tuple[list[report_pb2.Report], ...]) -> list[str]:
    async with channel(address) as ch:
        call = keeper_pb2_grpc.KeeperServiceStub(ch).Record()
        for batch in batches:
            await call.write(keeper_pb2.RecordRequest(reports=batch))
        await call.done_writing()
        acked: list[str] = []
        async for response in call:
            acked.extend(response.order_ids)
        return acked


def log_tails(log_dir: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in log_dir.glob("*.log")
    )


@dataclass
class Tab:
    """A page of its own browser context, with what its console reported."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def assert_no_console_errors(self) -> None:
        """Fail on any console error or uncaught exception the page had."""
        assert self.errors == [], f"console errors on {self.page.url}: {self.errors}"


# open_tab(path, cookies): a path of the front end in a browser context of its own.
OpenTab = Callable[[str, list[dict[str, Any]]], Tab]


def wait_for_images(page: Page) -> None:
    """Wait until every image in the viewport has loaded."""
    page.wait_for_function(
        """() => Array.from(document.images).filter((i) => {
              const r = i.getBoundingClientRect();
              return r.width > 0 && r.bottom > 0 && r.top < window.innerHeight;
            }).every((i) => i.complete && i.naturalWidth > 0)"""
    )


def screenshot(page: Page, name: str) -> None:
    """With HYDRA_SCREENSHOTS=1, save the viewport as docs/screenshots/<name>.png."""
    if os.environ.get("HYDRA_SCREENSHOTS") != "1":
        return
    wait_for_images(page)
    page.mouse.move(0, 0)  # no hover highlight or focus ring in the picture
    page.evaluate("document.activeElement?.blur()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    if path.stat().st_size > SCREENSHOT_MAX_BYTES:
        # A dark page with plots quantises to 256 colours without visible loss.
        with Image.open(path) as img:
            img.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(
                path, optimize=True
            )
